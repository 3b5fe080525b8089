"""``evaluate`` and ``get_evaluation``: compute, store, link; nothing here draws."""

from __future__ import annotations

import time
import unicodedata
import uuid
from collections.abc import Callable
from typing import Any

from ..errors import ValidationError, shorten
from ..store import jsoncodec
from ..tracking import storage as run_storage
from ..validation import check_name, metric_value
from .result import EvaluationResult

MAX_URI_LENGTH = 1000


def _check_uri(model_uri: object) -> str:
    if not isinstance(model_uri, str) or not model_uri.strip():
        raise ValidationError(f"model_uri must be non-empty text; got {shorten(model_uri)}.")
    if len(model_uri) > MAX_URI_LENGTH or any(
            unicodedata.category(c) in ("Cc", "Cs") for c in model_uri):
        raise ValidationError(
            f"model_uri must be printable text of at most {MAX_URI_LENGTH} characters; got "
            f"{shorten(model_uri)}."
        )
    return model_uri


def evaluate(
    model: Any,
    X: Any,
    y: Any = None,
    name: str | None = None,
    model_uri: str | None = None,
    *,
    task: str | None = None,
    importance: bool = True,
    importance_rows: int = 2000,
    importance_features: int | None = 50,
    n_repeats: int = 5,
    importance_scoring: str | None = None,
    random_state: int | None = 0,
    progress: bool | Callable[[int, int], None] | None = None,
    client: Any = None,
) -> EvaluationResult:
    """Evaluate a fitted model on held-out data; store the result and link it to the run.

    The task (binary or multiclass classification, or regression) comes from the model.
    ``predict`` and ``predict_proba`` are each called once on ``X``; every metric (values
    equal to scikit-learn's functions) and curve is computed from those predictions.
    Permutation importance runs on at most ``importance_rows`` rows with ``n_repeats``
    shuffles per feature, over at most ``importance_features`` features (the model's most
    important by its own ``feature_importances_`` or ``coef_``, else a seeded random
    choice; ``None`` runs over all of them), with a progress bar when it would take more
    than a few seconds (``progress=False`` never shows one; a callable receives
    ``(done, total)``).

    The evaluation is stored with the active run, if any, whose metrics also get
    ``eval.<metric>`` (``eval.<name>.<metric>`` when ``name`` is given), with ``model_uri``
    as given, and with the fingerprints of ``X`` and ``y``. Figures are drawn only when
    shown.

    Parameters
    ----------
    model : a fitted estimator with ``predict`` (scikit-learn API), a trained model of a
        framework autolog recognises (a native XGBoost or LightGBM Booster, CatBoost,
        Keras, statsmodels), or a registered model's URI (``"churn@champion"``), which is
        loaded and linked as ``model_uri``
    X : DataFrame, array or list of rows, passed to the model as given; or an XGBoost
        DMatrix or LightGBM Dataset, whose rows are used
    y : Series, one-column DataFrame, array or list of true values (labels may be
        strings); None takes the labels a DMatrix or Dataset ``X`` carries
    name : a name for this evaluation, such as ``"holdout"``
    model_uri : the model version evaluated, such as ``"models:/churn/3"``
    task : ``"classification"`` or ``"regression"`` when the model does not say
    client : a ``dask.distributed.Client`` or scheduler address; ``X`` (and ``y``) may also
        be Dask collections. The model predicts each partition on a worker, the
        predictions come back in order and the metrics are the single-machine ones;
        permutation importance is skipped (run it on a pandas sample).

    Raises
    ------
    ValidationError
        NaN or infinite values in ``y`` or in the predictions, lengths that differ, a model
        that is neither a classifier nor a regressor.

    Examples
    --------
    >>> from jupyter_mlops.evaluation import evaluate            # doctest: +SKIP
    >>> result = evaluate(clf, X_test, y_test, name="holdout")   # doctest: +SKIP
    >>> result.metrics["f1_macro"]                               # doctest: +SKIP
    0.9412
    """
    from ..tracking.datasets import fingerprint
    from ..tracking.runs import active_run
    from ..store.current import get_store
    from . import inputs, storage
    from . import metrics as compute

    if name is not None:
        check_name("Evaluation name", name)
    if isinstance(model, str):
        # A registered model by URI: evaluate that version and link the result to it.
        from ..registry.versions import get_model_version, load_model

        version = get_model_version(model)
        model_uri = model_uri or version.uri
        model = load_model(version.uri)
    if model_uri is not None:
        _check_uri(model_uri)
    from ..tracking.frameworks import plain_data, predictor

    from ..cluster import as_dask, get_client, is_dask

    distributed = client is not None or is_dask(X)
    if distributed:
        from . import partitioned

        client = get_client(client)
        X = as_dask(X, client, "X")
        if is_dask(y):
            y = partitioned.values(y, client)
    model_class = type(model)
    # A native Booster predicts as its scikit-learn wrapper would; a DMatrix or an
    # lgb.Dataset gives its rows (and its labels, when y is not given).
    if y is None:
        y = _labels(X)
    X = X if distributed else plain_data(X)
    model = predictor(model)
    for label, value, low in (("importance_rows", importance_rows, 2),
                              ("n_repeats", n_repeats, 1),
                              ("importance_features", importance_features, 1)):
        if value is None and label == "importance_features":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValidationError(f"{label} must be an integer >= {low}; got {shorten(value)}.")
    kind = inputs.model_kind(model, task)
    y_index = getattr(y, "index", None)
    y_array = inputs.target_array(y)
    n = len(X) if distributed else inputs.n_samples(X)
    if n != len(y_array):
        raise ValidationError(f"X has {n} rows but y has {len(y_array)}; they must match.")
    if n == 0:
        raise ValidationError("X and y are empty; there is nothing to evaluate.")
    y_array = inputs.check_target(y_array, kind, y_index)

    timings: dict[str, float] = {}
    predictions = partitioned.predict(model, X, kind, client) if distributed else \
        inputs.predict(model, X, kind, n)
    timings["predict_s"] = predictions.seconds
    started = time.perf_counter()
    if kind == "classifier":
        classes = getattr(model, "classes_", None)
        binary = (len(classes) if classes is not None else
                  len(set(y_array.tolist()) | set(predictions.pred.tolist()))) <= 2
        if task in ("binary", "multiclass"):
            binary = task == "binary"
        computed = compute.classification(y_array, predictions.pred, predictions.proba,
                                          classes, binary, predictions.no_proba)
        task_name = "binary" if binary else "multiclass"
    else:
        computed = compute.regression(y_array, predictions.pred, random_state)
        task_name = "regression"
    timings["metrics_s"] = time.perf_counter() - started

    details = computed.details
    if importance and distributed:
        computed.notes.append("Permutation importance was skipped: X is a Dask DataFrame; "
                              "evaluate a pandas sample of it for importance.")
    elif importance:
        record, reason = _importance(model, X, y_array, kind, importance_rows, n_repeats,
                                     importance_scoring, random_state, progress,
                                     importance_features)
        if record is not None:
            details["importance"] = record
            timings["importance_s"] = record["seconds"]
            if record["features_chosen"]:
                computed.notes.append(
                    f"Permutation importance ran over {len(record['features'])} of "
                    f"{record['n_features']} features ({record['features_chosen']}); pass "
                    "importance_features=None to run it over all of them.")
        else:
            computed.notes.append(f"Permutation importance was skipped: {reason}")
    details["skipped"] = computed.skipped
    details["notes"] = computed.notes
    details["model"] = {"class": model_class.__name__, "module": model_class.__module__}
    details["timings"] = timings

    run = active_run()
    store = run.store if run is not None else get_store()
    if distributed:
        from ..cluster import fingerprint as partitions_fingerprint

        x_info = partitions_fingerprint(X, client)
    else:
        x_info = fingerprint(X) or fingerprint(_as_array(X))
    y_info = fingerprint(y) or fingerprint(y_array)
    prefix = f"eval.{name}" if name else "eval"
    datasets = [(f"{prefix}.{part}", "evaluation", info)
                for part, info in (("X", x_info), ("y", y_info)) if info is not None]
    result = EvaluationResult(
        evaluation_id=uuid.uuid4().hex, task=task_name,
        metrics=jsoncodec.normalize(computed.metrics), details=jsoncodec.normalize(details),
        name=name,
        model_uri=model_uri, run_id=run.run_id if run is not None else None,
        dataset_fingerprint=x_info["fingerprint"] if x_info else None,
        target_fingerprint=y_info["fingerprint"] if y_info else None,
        n_rows=n, created=time.time(), _store=store,
    )
    storage.insert(store, vars(result), datasets)
    if run is not None:
        logged = [(check_name("Metric name", f"{prefix}.{key}"), metric_value(key, value), None)
                  for key, value in result.metrics.items()]
        run_storage.log_metrics(store, run.run_id, logged, time.time())
    return result


def _labels(X: Any) -> Any:
    """The labels a DMatrix or lgb.Dataset carries, for ``evaluate(booster, dtest)``."""
    from ..tracking.datasets import data_kind

    kind = data_kind(X)
    label = (X.get_label() if kind == "dmatrix" else
             X.get_label() if kind == "lgb_dataset" else None)
    if label is None or len(label) == 0:
        raise ValidationError("y is missing: pass the true values, or X as a DMatrix or "
                              "lgb.Dataset that carries its labels.")
    return label


def _as_array(X: Any) -> Any:
    import numpy as np

    if hasattr(X, "tocsr"):  # a sparse matrix: not fingerprinted
        return None
    try:
        return np.asarray(X)
    except (TypeError, ValueError):
        return None


def _importance(model, X, y, kind, rows, n_repeats, scoring, random_state, progress,
                features):
    from .importance import permutation_importance

    return permutation_importance(model, X, y, kind, max_rows=rows, n_repeats=n_repeats,
                                  scoring=scoring, random_state=random_state,
                                  progress=progress, open_display=_progress_display,
                                  max_features=features)


def _progress_display(total: int, description: str):
    """The user asked for a bar (or left it automatic): the dashboards draw it."""
    from ..dashboards.evaluation import progress_bar

    return progress_bar(total, description)


def get_evaluation(ref: str, *, store=None) -> EvaluationResult:
    """A stored evaluation by its id (or a unique prefix of at least 4 hex characters).

    Examples
    --------
    >>> again = get_evaluation(result.evaluation_id[:8])   # doctest: +SKIP
    >>> again.metrics == result.metrics                     # doctest: +SKIP
    True
    """
    from ..store.current import get_store
    from . import storage

    store = store or get_store()
    return from_row(storage.load(store, storage.resolve(store, ref)), store)


def from_row(row: dict[str, Any], store) -> EvaluationResult:
    return EvaluationResult(
        evaluation_id=row["evaluation_id"], task=row["task"], metrics=row["metrics"],
        details=row["details"], name=row["name"], model_uri=row["model_uri"],
        run_id=row["run_id"], dataset_fingerprint=row["dataset_fingerprint"],
        target_fingerprint=row["target_fingerprint"], n_rows=row["n_rows"],
        created=row["created"], stored_figures=row["figures"], _store=store,
    )
