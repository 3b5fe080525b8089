"""Import: a model trained elsewhere becomes a registered version like any other.

Sources: an MLflow model folder (its ``MLmodel`` says the flavor), ``models:/`` and
``runs:/`` URIs of a tracking server (the folder is downloaded first), and single files in
a framework's own format: XGBoost ``.json``/``.ubj``, LightGBM ``.txt``, CatBoost ``.cbm``,
Keras ``.keras``, ONNX ``.onnx``, skops ``.skops``; and a pickle, only when the user
vouches for it.

Formats that are data (XGBoost, LightGBM and CatBoost files, ONNX graphs, skops with only
the types skops trusts) load without asking. Anything that can run code when loaded is
refused before it is read as Python objects unless ``trust=True``: a pickle (MLflow's
``pickle`` and ``cloudpickle`` serializations too), a skops file naming types outside
skops' trusted list, a Keras file outside Keras' safe mode, and an MLflow flavor loaded
through ``mlflow.pyfunc``. Once imported, the version is pickled and signed by this user
(``register_model`` does it), so later loads go through the usual gate.

The version keeps where it came from in its notes (``origin.*``): the path or URI, the
sha256 of the file (of the folder's file list for a folder), the source's own metadata and
the signature it declared.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UntrustedPickleError, ValidationError, shorten
from ..store import Store
from .mlmodel import read_mlmodel, signature_from_mlflow

NATIVE_SUFFIXES = {".json": "xgboost", ".ubj": "xgboost", ".txt": "lightgbm",
                   ".cbm": "catboost", ".keras": "keras", ".onnx": "onnx", ".skops": "skops",
                   ".pkl": "pickle", ".pickle": "pickle"}
# The MLflow flavors loaded natively, in the order they are preferred when a folder has
# several (each beside python_function).
NATIVE_FLAVORS = ("sklearn", "xgboost", "lightgbm", "catboost", "keras")
_XGB_CLASSES = {"Booster", "XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier",
                "XGBRFRegressor"}
_CB_CLASSES = {"CatBoost", "CatBoostClassifier", "CatBoostRegressor", "CatBoostRanker"}
_CB_CLASSIFIER_LOSSES = ("Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll")


@dataclass
class Loaded:
    """A model read from a source, with what the source said about itself."""

    model: Any
    format: str
    sha256: str
    metadata: dict[str, Any] = field(default_factory=dict)
    signature: Any = None  # the source's own, as it declared it


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _folder_files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): _sha256(p)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _trust_refusal(what: str, why: str, sha256: str) -> UntrustedPickleError:
    return UntrustedPickleError(
        f"{what} {why} (sha256 {sha256[:12]}…). Nothing was loaded or registered. If you "
        "trust where it came from, import it with trust=True (jupyter-mlops import --trust).")


# -- single files ----------------------------------------------------------------------

def _unpickle(path: Path, trust: bool, what: str) -> Any:
    """The R10 gate: a pickle is read as Python objects only after the user vouched, and
    the bytes unpickled are those hashed (``load_verified`` reads and checks them once)."""
    from ..store.serialize import load_verified

    sha256 = _sha256(path)
    if not trust:
        raise _trust_refusal(what, "is a pickle: unpickling runs any code it holds", sha256)
    with open(path, "rb") as handle:
        return load_verified(handle, sha256, what, signature=None, allow_pickle=True)


def _skops(path: Path, trust: bool) -> Any:
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return sio.load(path)  # skops' own trusted types only
    except UntrustedTypesFoundException:
        untrusted = sio.get_untrusted_types(file=path)
    if not trust:
        listed = ", ".join(untrusted[:5]) + (" …" if len(untrusted) > 5 else "")
        raise _trust_refusal(f"The skops file {path.name}",
                             f"names types outside skops' trusted list ({listed})",
                             _sha256(path))
    return sio.load(path, trusted=untrusted)


def _xgboost(path: Path, model_class: str = "Booster") -> Any:
    import xgboost as xgb

    name = model_class.rsplit(".", 1)[-1]
    if name not in _XGB_CLASSES:
        raise ValidationError(f"XGBoost model class {shorten(model_class)} is not one of "
                              f"{', '.join(sorted(_XGB_CLASSES))}. Nothing was imported.")
    model = getattr(xgb, name)()
    model.load_model(str(path))
    return model


def _lightgbm(path: Path) -> Any:
    import lightgbm as lgb

    return lgb.Booster(model_file=str(path))


def _catboost(path: Path, model_type: str | None = None, save_format: str = "cbm") -> Any:
    import catboost as cb

    if model_type is None:  # a bare .cbm file: its loss says classifier or regressor
        probe = cb.CatBoost()
        probe.load_model(str(path), format=save_format)
        loss = str(probe.get_all_params().get("loss_function", ""))
        model_type = ("CatBoostClassifier" if loss.startswith(_CB_CLASSIFIER_LOSSES)
                      else "CatBoostRegressor")
    if model_type not in _CB_CLASSES:
        raise ValidationError(f"CatBoost model type {shorten(model_type)} is not one of "
                              f"{', '.join(sorted(_CB_CLASSES))}. Nothing was imported.")
    model = getattr(cb, model_type)()
    model.load_model(str(path), format=save_format)
    return model


def _keras(path: Path, trust: bool) -> Any:
    import keras

    # Safe mode refuses the marshalled bytecode a Lambda layer carries.
    try:
        return keras.saving.load_model(str(path), safe_mode=not trust)
    except ValueError as exc:
        if "safe_mode" in str(exc):
            raise _trust_refusal(f"The Keras file {path.name}", "holds code (a Lambda "
                                 "layer) that Keras runs only outside its safe mode",
                                 _sha256(path)) from None
        raise


def _native_file(path: Path, trust: bool) -> Loaded:
    kind = NATIVE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ValidationError(
            f"{path.name!r} is not a model format jupyter_mlops imports; give an MLflow model "
            f"folder or a file ending in {', '.join(sorted(NATIVE_SUFFIXES))}.")
    if kind == "onnx":
        from .foreign import OnnxModel

        model: Any = OnnxModel(path.read_bytes())
    elif kind == "skops":
        model = _skops(path, trust)
    elif kind == "pickle":
        model = _unpickle(path, trust, f"The pickle {path.name}")
    elif kind == "xgboost":
        model = _xgboost(path)
    elif kind == "lightgbm":
        model = _lightgbm(path)
    elif kind == "catboost":
        model = _catboost(path)
    else:
        model = _keras(path, trust)
    library = type(model).__module__.split(".")[0]
    version = getattr(sys.modules.get(library), "__version__", None)
    return Loaded(model, kind, _sha256(path), {"file": path.name, "loaded_with": library,
                                               "library_version": version})


# -- MLflow folders ----------------------------------------------------------------------

def _flavor_file(folder: Path, name: Any) -> Path:
    """A file the MLmodel names, which must lie inside the folder."""
    if not isinstance(name, str) or not name:
        raise ValidationError(f"The MLmodel of {str(folder)!r} names no model file. Nothing "
                              "was imported.")
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()) or not path.exists():
        raise ValidationError(f"The MLmodel of {str(folder)!r} names {shorten(name)}, which "
                              "is not a file inside the folder. Nothing was imported.")
    return path


def _load_flavor(folder: Path, flavor: str, details: dict[str, Any], trust: bool,
                 label: str) -> Any:
    what = f"The {flavor} model of {label}"
    if flavor == "sklearn":
        path = _flavor_file(folder, details.get("pickled_model"))
        if details.get("serialization_format") == "skops":
            return _skops(path, trust)
        return _unpickle(path, trust, what)
    if flavor == "xgboost":
        return _xgboost(_flavor_file(folder, details.get("data")),
                        str(details.get("model_class") or "Booster"))
    if flavor == "lightgbm":
        path = _flavor_file(folder, details.get("data"))
        if details.get("serialization_format") in ("pickle", "cloudpickle"):
            return _unpickle(path, trust, what)
        return _lightgbm(path)
    if flavor == "catboost":
        return _catboost(_flavor_file(folder, details.get("data")),
                         str(details.get("model_type") or "CatBoost"),
                         str(details.get("save_format") or "cbm"))
    data = _flavor_file(folder, details.get("data", "data"))
    keras_file = data / "model.keras" if data.is_dir() else data
    return _keras(_flavor_file(folder, keras_file.relative_to(folder.resolve()).as_posix()),
                  trust)


def _pyfunc(folder: Path, flavors: dict[str, Any], trust: bool, sha256: str,
            label: str) -> Any:
    """A flavor we cannot load: a black box through mlflow.pyfunc, when MLflow is here."""
    others = [f for f in flavors if f != "python_function"] or ["python_function"]
    named = ", ".join(others)
    try:
        import mlflow.pyfunc  # noqa: F401
    except ImportError:
        raise ValidationError(
            f"The MLflow model {label} has the flavor {named}, which jupyter_mlops "
            f"does not load itself ({', '.join(NATIVE_FLAVORS)} it does); with MLflow "
            "installed it is imported as a python_function black box: pip install mlflow. "
            "Nothing was imported.") from None
    if "python_function" not in flavors:
        raise ValidationError(f"The MLflow model {label} has the flavor {named} and "
                              "no python_function flavor to predict through. Nothing was "
                              "imported.")
    if not trust:
        raise _trust_refusal(f"The MLflow model {label} (flavor {named})",
                             "loads through mlflow.pyfunc, which may unpickle what the "
                             "folder holds", sha256)
    from .foreign import PyfuncModel

    files = {p.relative_to(folder).as_posix(): p.read_bytes()
             for p in sorted(folder.rglob("*")) if p.is_file()}
    model = PyfuncModel(files, others[0])
    model.loaded()  # fails here, not at the first prediction
    return model


def _mlflow_folder(folder: Path, trust: bool, label: str | None = None) -> Loaded:
    label = label or repr(folder.name)
    mlmodel = read_mlmodel(folder)
    flavors = mlmodel["flavors"]
    files = _folder_files(folder)
    sha256 = hashlib.sha256("".join(f"{sha}  {name}\n" for name, sha in files.items())
                            .encode()).hexdigest()
    chosen = next((f for f in NATIVE_FLAVORS if isinstance(flavors.get(f), dict)), None)
    if chosen is not None:
        model = _load_flavor(folder, chosen, flavors[chosen], trust, label)
    else:
        model = _pyfunc(folder, flavors, trust, sha256, label)
        chosen = "python_function"
    metadata = {key: mlmodel[key] for key in ("mlflow_version", "model_uuid", "model_id",
                                              "run_id", "artifact_path", "utc_time_created",
                                              "metadata") if mlmodel.get(key) is not None}
    metadata["flavors"] = sorted(flavors)
    metadata["files"] = files
    return Loaded(model, f"mlflow/{chosen}", sha256, metadata, mlmodel.get("signature"))


# -- the public call -------------------------------------------------------------------

def _read(source: Any, trust: bool, tracking_uri: str | None) -> tuple[Loaded, str]:
    from ..teamsync.fetch import download_model, is_remote

    if isinstance(source, str) and is_remote(source):
        if tracking_uri is None:
            raise ValidationError(f"{source} names a model of a tracking server; say which "
                                  "with tracking_uri='http://HOST:PORT' (--tracking-uri).")
        with tempfile.TemporaryDirectory(prefix="jupyter-mlops-import-") as tmp:
            facts = download_model(source, tracking_uri, Path(tmp))
            loaded = _mlflow_folder(Path(tmp), trust, source)
        loaded.metadata.update(facts)
        return loaded, f"{source} at {facts['tracking_uri']}"
    path = Path(source)
    if not path.exists():
        raise ValidationError(f"{shorten(str(source))} is neither a file, a folder nor a "
                              "models:/ or runs:/ URI. Nothing was imported.")
    path = path.resolve()
    if path.is_dir():
        return _mlflow_folder(path, trust), str(path)
    return _native_file(path, trust), str(path)


def _check_sample(model: Any, sample: Any) -> None:
    from ..tracking.datasets import data_kind
    from ..tracking.frameworks import plain_data, predictor

    if data_kind(sample) is None:
        raise ValidationError(f"sample must be a DataFrame or an array of inputs; got "
                              f"{type(sample).__name__}. Nothing was imported.")
    rows = plain_data(sample)
    head = rows.iloc[:5] if hasattr(rows, "iloc") else rows[:5]
    try:
        predictor(model).predict(head)
    except Exception as exc:  # noqa: BLE001 - any failure means the sample does not fit
        raise ValidationError(
            f"The imported model cannot predict the sample ({type(exc).__name__}: "
            f"{shorten(str(exc), 160)}). Give a sample with the columns it was trained on. "
            "Nothing was registered.") from None


def _json(value: Any) -> str:
    """What a source said about itself (YAML may hold dates and odd numbers) as JSON."""
    from ..store.jsoncodec import plain

    return json.dumps(plain(value, nonfinite="name"), allow_nan=False, sort_keys=True,
                      default=str)


def import_model(source: str | Any, name: str, *, sample: Any = None, trust: bool = False,
                 tracking_uri: str | None = None, alias: str | None = None,
                 store: Store | None = None) -> Any:
    """Register a model trained elsewhere as a new version of ``name``.

    ``source`` is an MLflow model folder, a ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``
    or ``runs:/RUN_ID/PATH`` URI of the tracking server ``tracking_uri``, or a model file
    (XGBoost ``.json``/``.ubj``, LightGBM ``.txt``, CatBoost ``.cbm``, ``.keras``,
    ``.onnx``, ``.skops``, or a ``.pkl`` with ``trust=True``). ``sample`` (inputs the model
    takes, such as its training data) gives the version its signature and the reference
    sample drift and monitoring compare with; without it the signature is the one the
    source declares. Returns the ModelVersion, which evaluates, serves and monitors like
    any other.

    Examples
    --------
    >>> import_model("exported/churn", "churn", sample=X_train)          # doctest: +SKIP
    >>> import_model("booster.json", "churn", sample=X_train, alias="candidate")  # doctest: +SKIP
    """
    from .versions import check_alias, check_model_name, register

    check_model_name(name)
    if alias is not None:
        check_alias(alias)
    if not isinstance(trust, bool):
        raise ValidationError(f"trust is True or False; got {shorten(trust)}.")
    loaded, where = _read(source, trust, tracking_uri)
    if sample is not None:
        _check_sample(loaded.model, sample)
    signature = signature_from_mlflow(loaded.signature)
    notes = {"origin.source": where, "origin.format": loaded.format,
             "origin.sha256": loaded.sha256, "origin.metadata": _json(loaded.metadata)}
    if loaded.signature is not None:
        notes["origin.signature"] = _json(loaded.signature)
    return register(loaded.model, name, alias=alias, reference=sample, store=store,
                    signature=signature, notes=notes)


def model_origin(uri: str, *, store: Store | None = None) -> dict[str, Any] | None:
    """Where an imported version came from (None for a model registered here): its
    ``source`` (path, or URI and tracking server), ``format``, ``sha256`` (of the file, or
    of a folder's list of files), the source's own ``metadata`` and ``signature``.

    Examples
    --------
    >>> model_origin("churn/2")["format"]          # doctest: +SKIP
    'mlflow/sklearn'
    """
    from ..store.current import get_store
    from .versions import get_model_version

    store = store or get_store()
    version = get_model_version(uri, store=store)
    rows = store.query("SELECT key, value FROM version_notes WHERE name = ? AND version = ? "
                       "AND key LIKE 'origin.%' ORDER BY key", (version.name, version.version))
    if not rows:
        return None
    found: dict[str, Any] = {}
    for key, value in rows:
        short = key.removeprefix("origin.")
        found[short] = json.loads(value) if short in ("metadata", "signature") else value
    return found
