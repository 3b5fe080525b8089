"""``drift_report``: did the data move between a reference set and a current set?

Each column is prepared once (numbers sorted, anything else counted; see :mod:`.kinds`),
tested with the test Evidently would choose or the one asked for (:mod:`.stattests`), and
summarised for the dashboard (histogram counts or value counts; no drawing happens here).
The report is stored with both datasets' fingerprints, linked to the active run and to a
model URI when given, and renders itself in the notebook (:mod:`..dashboards.drift`).
"""

from __future__ import annotations

import math
import os
from typing import Any

from ..errors import ValidationError, shorten
from .kinds import CATEGORICAL, NUMERIC, TESTED_KINDS, TEXT, Column, prepare_column
from .inputs import PREDICTION_COLUMN, as_frame, model_features, predictions
from .profile import DriftProfile, build_profile
from .result import DriftReport
from .stattests import StatTest, aligned_counts, default_stattest, get_stattest

MAX_BARS = 20
HIST_BINS = (10, 40)
HIST_TAIL = 0.005
# Below this many values in all, threads cost more than they save.
PARALLEL_MIN_VALUES = 2_000_000


def _check_share(drift_share: Any) -> float:
    if isinstance(drift_share, bool) or not isinstance(drift_share, (int, float)) or \
            not 0 < drift_share <= 1:
        raise ValidationError(
            f"drift_share is the share of drifted columns that makes dataset drift, in (0, 1]; "
            f"got {shorten(drift_share)}."
        )
    return float(drift_share)


def _check_threshold(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or value < 0:
        raise ValidationError(
            f"A threshold must be a finite number >= 0; got {shorten(value)} {where}."
        )
    return float(value)


def _per_column(option: Any, name: str, names: list[str], check) -> tuple[Any, dict]:
    """A global value or a {column: value} dict, checked; unknown columns are an error."""
    if option is None:
        return None, {}
    if isinstance(option, dict):
        unknown = [c for c in option if c not in names]
        if unknown:
            raise ValidationError(
                f"{name} names columns that are not in the report: {shorten(unknown)}. "
                f"Columns: {shorten(names)}."
            )
        return None, {c: check(v, f"for column {c!r}") for c, v in option.items()}
    return check(option, "for all columns"), {}


def _select_columns(reference, current, columns, target, profile: DriftProfile | None):
    """Labels to test, in reference order; an error names whatever is missing."""
    ref_labels = profile.column_names if profile is not None else list(reference.columns)
    cur_labels = list(current.columns)
    cur_by_name = {str(c): c for c in cur_labels}
    ref_names = [str(c) for c in ref_labels]
    if columns is None:
        missing_cur = [n for n in ref_names if n not in cur_by_name]
        missing_ref = [str(c) for c in cur_labels if str(c) not in set(ref_names)]
        if profile is not None and profile.prediction in missing_cur:
            missing_cur.remove(profile.prediction)
        if missing_cur or missing_ref:
            parts = []
            if missing_cur:
                parts.append(f"the current set lacks {shorten(missing_cur)}")
            if missing_ref:
                parts.append(f"the reference set lacks {shorten(missing_ref)}")
            raise ValidationError(
                "The two sets have different columns: " + "; ".join(parts)
                + ". Pass columns=[...] to compare the columns they share."
            )
        chosen = [n for n in ref_names if n != (profile.prediction if profile else None)]
    else:
        if isinstance(columns, str):
            columns = [columns]
        chosen = [str(c) for c in columns]
        missing_cur = [n for n in chosen if n not in cur_by_name]
        missing_ref = [n for n in chosen if n not in set(ref_names)]
        if missing_cur or missing_ref:
            parts = []
            if missing_ref:
                parts.append(f"not in the reference set: {shorten(missing_ref)}")
            if missing_cur:
                parts.append(f"not in the current set: {shorten(missing_cur)}")
            raise ValidationError("Columns asked for are missing; " + "; ".join(parts) + ".")
        if not chosen:
            raise ValidationError("columns=[] selects nothing to compare; name some columns.")
    if target is not None:
        target = str(target)
        if target not in set(ref_names) or target not in cur_by_name:
            where = "reference" if target not in set(ref_names) else "current"
            raise ValidationError(f"Target column {target!r} is not in the {where} set.")
        if target not in chosen:
            chosen.append(target)
    ref_by_name = dict(zip(ref_names, ref_labels))
    return chosen, ref_by_name, cur_by_name


def _evaluate(column: Column, test: StatTest | None, threshold: float | None,
              note: list[str]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    ref, cur = column.reference, column.current
    record: dict[str, Any] = {
        "column": column.name, "kind": column.kind, "test": None, "statistic": math.nan,
        "p_value": math.nan, "threshold": math.nan, "drifted": False, "role": column.role,
        "n_reference": ref.n if ref else 0, "n_current": cur.n if cur else 0,
        "missing_reference": ref.n_missing if ref else 0,
        "missing_current": cur.n_missing if cur else 0, "binning": "",
    }
    notes = list(column.notes) + note
    if column.kind in TESTED_KINDS:
        empty = [w for w, s in (("reference", ref), ("current", cur)) if s.n == 0]
        if empty:
            where = "either set" if len(empty) == 2 else f"the {empty[0]} set"
            notes.append(f"no values in {where}: not tested")
        else:
            for where, side in (("reference", ref), ("current", cur)):
                if side.n_unique == 1:
                    notes.append(f"constant in the {where} set")
            if ref.sampled_from:
                notes.append(f"reference profile sketched: {ref.n:,} of {ref.sampled_from:,} "
                             "values; statistics are estimates")
            if test is None:
                test = default_stattest(column.kind, ref, cur)
            outcome = test.compute(ref, cur, column.kind)
            if outcome.note:
                notes.append(outcome.note)
            limit = test.threshold if threshold is None else threshold
            record.update(test=test.name, statistic=outcome.statistic,
                          p_value=math.nan if outcome.p_value is None else outcome.p_value,
                          threshold=limit, drifted=bool(test.drifted(outcome, limit)),
                          binning=outcome.binning)
    record["note"] = "; ".join(notes)
    tested = column.kind in TESTED_KINDS and ref.n and cur.n
    distribution = _distribution(column) if tested else None
    return record, distribution


def _distribution(column: Column) -> dict[str, Any]:
    """What the dashboard draws: histogram counts for numbers, value counts otherwise.

    Histograms span the 0.5th to 99.5th percentiles of both sets, with the tails counted
    in the edge bins, so one outlier does not squash the picture.
    """
    import numpy as np

    ref, cur = column.reference, column.current
    if column.kind == NUMERIC and (ref.n_unique > MAX_BARS or cur.n_unique > MAX_BARS):
        low = min(_quantile(ref.values, HIST_TAIL), _quantile(cur.values, HIST_TAIL))
        high = max(_quantile(ref.values, 1 - HIST_TAIL), _quantile(cur.values, 1 - HIST_TAIL))
        if low == high:
            low, high = min(ref.values[0], cur.values[0]), max(ref.values[-1], cur.values[-1])
        if low == high:
            low, high = low - 0.5, high + 0.5
        sturges = int(np.ceil(np.log2(ref.n + cur.n) + 1))
        edges = np.linspace(low, high, min(max(sturges, HIST_BINS[0]), HIST_BINS[1]) + 1)
        return {"type": "hist", "edges": [float(e) for e in edges],
                "reference": _folded_counts(ref.values, edges),
                "current": _folded_counts(cur.values, edges),
                "n_reference": ref.n, "n_current": cur.n}
    keys, ref_counts, cur_counts = aligned_counts(ref, cur)
    shares = ref_counts / ref.n + cur_counts / cur.n
    order = np.argsort(-shares, kind="stable")[:MAX_BARS]  # the most frequent values
    if keys.dtype != object:
        order = np.sort(order)  # numbers (sorted keys): shown in numeric order
    elif all(isinstance(k, bool) for k in keys):
        order = np.array(sorted(order, key=lambda i: keys[i]), dtype=np.intp)
    integer = bool(ref.integer and cur.integer)
    labels = [_label(keys[i], integer) for i in order]
    return {"type": "bars", "labels": labels,
            "reference": ref_counts[order].tolist(), "current": cur_counts[order].tolist(),
            "other": [int(ref.n - ref_counts[order].sum()), int(cur.n - cur_counts[order].sum())],
            "n_reference": ref.n, "n_current": cur.n}


def _quantile(sorted_values, q: float) -> float:
    return float(sorted_values[int(q * (sorted_values.size - 1))])


def _folded_counts(sorted_values, edges) -> list[int]:
    """Histogram counts, values below or above the edges counted in the first or last bin."""
    import numpy as np

    cuts = np.searchsorted(sorted_values, edges, side="left")
    cuts[0], cuts[-1] = 0, sorted_values.size
    return np.diff(cuts).tolist()


def _label(key: Any, integer: bool) -> str:
    if isinstance(key, float) or type(key).__module__ == "numpy":
        value = float(key)
        if integer or value.is_integer():
            return str(int(value))
        return f"{value:.6g}"
    return str(key)


def _run_all(jobs, n_values: int):
    """Prepare and test every column; threads when the data are large (numpy sorts and
    searches release the GIL)."""
    workers = min(4, os.cpu_count() or 1)
    if workers < 2 or n_values < PARALLEL_MIN_VALUES or len(jobs) < 2:
        return [job() for job in jobs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlops-drift") as pool:
        return list(pool.map(lambda job: job(), jobs))


def drift_report(
    reference: Any = None,
    current: Any = None,
    columns: list[str] | None = None,
    stattest: str | dict[str, str] | None = None,
    threshold: float | dict[str, float] | None = None,
    drift_share: float = 0.5,
    *,
    model: Any = None,
    target: str | None = None,
    model_uri: str | None = None,
    save_profile: bool = False,
    store: Any = None,
    client: Any = None,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column; store and return the report.

    Parameters
    ----------
    reference, current : pandas.DataFrame
        The reference (training) data and the new data, with the same columns.
        ``reference`` may also be a :class:`DriftProfile`.
    columns : list of str, optional
        Only these columns (default: all; the two sets must then have the same columns).
    stattest : str or dict, optional
        One test for every column it applies to (others keep their default), or
        ``{column: test}``: ``ks``, ``wasserstein``, ``psi``, ``jensenshannon``, ``kl_div``,
        ``chisquare``, ``ztest``, ``anderson``, ``cramer_von_mises``, ``hellinger``,
        ``energy``. Default: Evidently's choice (see :mod:`jupyter_mlops.drift.stattests`).
    threshold : float or dict, optional
        Replaces the test's default threshold, for every column or per column.
    drift_share : float
        Dataset drift when at least this share of the tested columns drifted.
    model : str or fitted estimator, optional
        A model URI (``models:/name/3``, ``name@alias``) stored with the report (without
        ``reference``, the reference sample registered with that version is used); or an
        estimator whose predictions on both sets are tested as one more column,
        ``prediction``.
    target : str, optional
        The target column, reported with role ``target``.
    model_uri : str, optional
        The URI to store when ``model`` is an estimator.
    save_profile : bool
        Also store the reference profile (sorted values, counts) as an artifact and keep its
        sha256 in the report (``report.reference_profile``), for cheaper later reports.
    client : dask.distributed.Client or str, optional
        Compute on this Dask cluster (or the scheduler at this address). ``reference`` and
        ``current`` may also be Dask DataFrames. Each partition is summarised on its worker
        and the summaries are merged exactly (:mod:`.partitions`): the statistics and
        verdicts are those of the same data on one machine.

    Examples
    --------
    >>> report = drift_report(train_df, new_df)                         # doctest: +SKIP
    >>> report.drifted, report.share_drifted                            # doctest: +SKIP
    (False, 0.1)
    >>> report.columns[["column", "test", "statistic", "drifted"]]      # doctest: +SKIP
    """
    drift_share = _check_share(drift_share)
    estimator = None
    if isinstance(model, str):
        if model_uri is not None and model_uri != model:
            raise ValidationError("Give the model URI once: model='...' or model_uri='...'.")
        model_uri = model
    elif model is not None:
        from ..tracking.frameworks import predictor

        model = predictor(model)  # a native Booster predicts labels, as its wrapper would
        if not callable(getattr(model, "predict", None)):
            raise ValidationError(
                f"model must be a model URI (str) or a fitted estimator with predict(); got "
                f"{type(model).__name__}."
            )
        estimator = model
    if model_uri is not None and (not isinstance(model_uri, str) or not model_uri.strip()):
        raise ValidationError(f"A model URI is a non-empty string; got {shorten(model_uri)}.")
    keep_registered_profile = False
    if reference is None:
        if model_uri is None:
            raise ValidationError("drift_report needs a reference set: reference=training data.")
        reference, model_uri = _registered_reference(model_uri, store, columns,
                                                     need_rows=estimator is not None)
        keep_registered_profile = not isinstance(reference, DriftProfile)
    if current is None:
        raise ValidationError("drift_report needs a current set: current=the new data.")
    profile = reference if isinstance(reference, DriftProfile) else None
    from ..cluster import as_dask, get_client, is_dask

    distributed = client is not None or is_dask(current) or is_dask(reference)
    if distributed:
        client = get_client(client)
        if estimator is not None or save_profile:
            raise ValidationError(
                "On Dask, drift_report compares the data only: leave out model=<estimator> "
                "and save_profile (build a profile from a pandas sample with drift_profile).")
        current = as_dask(current, client, "current set")
        if profile is None and reference is not None:
            reference = as_dask(reference, client, "reference set")
    ref_frame = None if profile is not None else as_frame(reference, "reference")
    cur_frame = as_frame(current, "current")
    ref_rows = profile.n_rows if profile is not None else len(ref_frame)
    for what, rows, frame in (("reference", ref_rows, ref_frame), ("current", len(cur_frame),
                                                                   cur_frame)):
        if rows == 0:
            raise ValidationError(f"The {what} set has no rows; there is nothing to compare.")
        if frame is not None and len(frame.columns) == 0:
            raise ValidationError(f"The {what} set has no columns; there is nothing to compare.")
    chosen, ref_by_name, cur_by_name = _select_columns(ref_frame, cur_frame, columns, target,
                                                       profile)
    test_all, test_for = _per_column(stattest, "stattest", chosen, lambda v, _w: get_stattest(v))
    limit_all, limit_for = _per_column(threshold, "threshold", chosen, _check_threshold)

    def source(frame, label, name):
        if not distributed:
            return frame[label]
        from .partitions import stored_side

        return lambda: stored_side(frame[label], name, client)  # run inside the job

    sources: list[tuple[str, Any, Any, str]] = []
    for name in chosen:
        if profile is not None:
            ref_source = profile.columns[name]
        else:
            ref_source = source(ref_frame, ref_by_name[name], name)
        role = "target" if target is not None and name == str(target) else "feature"
        sources.append((name, ref_source, source(cur_frame, cur_by_name[name], name), role))
    extra_reference = {}
    prediction_name = None
    if estimator is not None:
        features = model_features(estimator, [str(c) for c in cur_frame.columns], target)
        missing = [f for f in features if f not in cur_by_name]
        if missing:
            raise ValidationError(
                f"The model needs columns the current set lacks: {shorten(missing)}."
            )
        cur_pred = predictions(estimator, cur_frame, [cur_by_name[f] for f in features],
                               "current")
        if profile is not None:
            if profile.prediction is None:
                raise ValidationError(
                    "This reference profile holds no predictions (it keeps no raw rows); build "
                    "it with drift_profile(reference, model=estimator)."
                )
            ref_pred = profile.columns[profile.prediction]
        else:
            ref_pred = predictions(estimator, ref_frame, [ref_by_name[f] for f in features],
                                   "reference")
            extra_reference[PREDICTION_COLUMN] = ref_pred  # named as the profile expects
        prediction_name = PREDICTION_COLUMN
        while prediction_name in chosen:  # a data column already has the name
            prediction_name = "_" + prediction_name
        sources.append((prediction_name, ref_pred, cur_pred, "prediction"))

    def job_for(name, ref_source, cur_source, role):
        chosen_test = test_for.get(name, test_all)

        def job():
            ref, cur = (s() if callable(s) else s for s in (ref_source, cur_source))
            column = prepare_column(name, ref, cur, role,
                                    force_categorical=name in test_for)
            if column.kind == TEXT and name in test_for:
                column.kind = CATEGORICAL
            test, notes = chosen_test, []
            kind = column.kind
            if test is not None and kind in TESTED_KINDS and not test.applies_to(kind):
                if name in test_for:
                    raise ValidationError(
                        f"Test {test.name!r} does not apply to column {name!r}, which is "
                        f"{kind}; it applies to {' and '.join(test.kinds)} columns."
                    )
                notes.append(f"{test.name} does not apply to {kind} columns: default test used")
                test = None
            # Only the summary leaves the job: each column's sorted copies are freed as it ends.
            return _evaluate(column, test, limit_for.get(name, limit_all), notes)
        return job

    from ..tracking.datasets import fingerprint

    # The fingerprints hash every value: they run beside the columns when threads are used.
    if distributed:
        from .. import cluster

        def fingerprint(frame):  # noqa: F811 - the same digest, from the partitions
            return cluster.fingerprint(frame, client)
    jobs = [lambda: fingerprint(cur_frame)]
    if profile is None:
        jobs.append(lambda: fingerprint(ref_frame))
    jobs += [job_for(*source) for source in sources]
    cur_rows = len(cur_frame)
    n_values = (ref_rows + cur_rows) * len(sources)
    done = _run_all(jobs, PARALLEL_MIN_VALUES if distributed else n_values)
    cur_info = done[0]
    ref_info = profile.fingerprint if profile is not None else done[1]
    results = done[2 if profile is None else 1:]
    options = {
        "columns": None if columns is None else chosen,
        "stattest": _option_json(stattest), "threshold": threshold,
        "target": None if target is None else str(target),
        "prediction": prediction_name if estimator is not None else None,
        "model_class": None if estimator is None else type(estimator).__name__,
        "reference_is_profile": profile is not None,
        "registered_profile": keep_registered_profile,
        "profile_sampled": dict(profile.sampled) if profile is not None else {},
    }
    report = DriftReport(
        [r for r, _d in results], drift_share,
        distributions={r["column"]: d for r, d in results if d is not None},
        options=options, model_uri=model_uri,
        reference_fingerprint=None if ref_info is None else ref_info["fingerprint"],
        current_fingerprint=cur_info["fingerprint"], reference_rows=ref_rows,
        current_rows=cur_rows,
    )
    from ..tracking.runs import active_run
    from ..store.current import get_store

    store = store or get_store()
    run = active_run()
    if run is not None and run.store.path == store.path:
        report.run_id = run.run_id
    if keep_registered_profile:
        # A registered version is immutable: its sample, sorted once, serves every later
        # report against the version (all its columns, no predictions).
        labels = list(ref_frame.columns)
        profile = build_profile(ref_frame, labels, {c: str(c) for c in labels},
                                fingerprint=ref_info)
        report.reference_profile = profile.save(store)
    elif save_profile:
        if profile is None:
            profile = build_profile(ref_frame, [ref_by_name[n] for n in chosen],
                                    {ref_by_name[n]: n for n in chosen}, fingerprint=ref_info,
                                    prediction=PREDICTION_COLUMN if extra_reference else None,
                                    target=None if target is None else str(target),
                                    extra=extra_reference)
        report.reference_profile = profile.save(store)
    from .storage import save_report

    datasets = [("reference", "drift_reference", ref_info),
                ("current", "drift_current", cur_info)]
    save_report(store, report, [d for d in datasets if d[2] is not None])
    return report


def _registered_reference(model_uri: str, store: Any, columns: Any,
                          need_rows: bool) -> tuple[Any, str]:
    """The reference kept with a registered model version, and the version's URI (an alias
    is resolved, so the report names the version it was computed against).

    The profile saved by an earlier report against the same version is used when it holds
    the columns asked for; otherwise (or when a model's predictions need raw rows) the
    registry's reference sample.
    """
    from ..errors import MLOpsError
    from ..registry.versions import get_model_version, reference_sample
    from ..store.current import get_store
    from .profile import load_drift_profile

    store = store or get_store()
    version = get_model_version(model_uri, store=store)
    resolved = f"models:/{version.name}/{version.version}"
    if not need_rows:
        rows = store.query(
            "SELECT reference_profile FROM drift_reports WHERE model_uri = ? AND "
            "reference_profile IS NOT NULL AND options LIKE '%\"registered_profile\":true%' "
            "ORDER BY created DESC LIMIT 1", (resolved,))
        if rows:
            try:
                profile = load_drift_profile(rows[0][0], store)
            except MLOpsError:  # removed or damaged: fall back to the sample
                profile = None
            wanted = [str(c) for c in ([columns] if isinstance(columns, str) else columns or [])]
            if profile is not None and all(c in profile.columns for c in wanted):
                return profile, resolved
    sample = reference_sample(model_uri, store=store)
    if sample is None:
        raise ValidationError(
            f"drift_report needs a reference set, and model {resolved} was registered without "
            "the reference sample it would otherwise use; pass reference= (the model's "
            "training data), or register the model with reference=."
        )
    return sample, resolved


def _option_json(stattest: Any) -> Any:
    if stattest is None or isinstance(stattest, str):
        return stattest
    return {str(k): str(v) for k, v in stattest.items()}


__all__ = ["drift_report"]
