"""What autolog keeps of one trained model: params, metric histories, tables, files.

Each family hook runs on its own: a framework version that lacks an attribute, or a model
that cannot be written in its native format, costs that one part and one warning line;
the params, the metrics and every other file are still logged.
"""

from __future__ import annotations

import csv
import io
import warnings
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any, Callable

from ...validation import MAX_NAME_LENGTH
from .family import Family, NativeFile

NATIVE_KIND = "model-native"
TABLE_KIND = "table"


@dataclass
class Artifact:
    name: str
    kind: str
    data: bytes
    media_type: str
    signed: bool = False


@dataclass
class ModelRecord:
    params: dict[str, Any] = field(default_factory=dict)
    metrics: list[tuple[str, float, int]] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)

    def metric_rows(self, name: str, taken: set[str]) -> list[tuple[str, float, int]]:
        """The metrics under MLflow's names; a name the cell (or another model) already
        gave a value is prefixed with the model's variable instead of mixed with it."""
        rows = []
        for key, value, step in self.metrics:
            if key in taken:
                key = metric_key(f"{name}.{key}")
                if key is None or key in taken:
                    continue
            rows.append((key, value, step))
        return rows


def metric_key(key: str) -> str | None:
    """A metric name as MLflow writes it (``ndcg@3`` -> ``ndcg_at_3``); None when too long."""
    key = str(key).replace("@", "_at_")
    return key if 0 < len(key) <= MAX_NAME_LENGTH else None


def _number(value: Any) -> float | None:
    """A real number as float (NaN and infinities kept, as the store keeps them)."""
    if isinstance(value, (bool, str, bytes)):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _guarded(family: Family, name: str, what: str, call: Callable[[], Any], default: Any) -> Any:
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - any framework may fail in its own way
        message = f"{type(exc).__name__}: {exc}".split("\n", 1)[0][:300]
        warnings.warn(f"jupyter_mlops: the {what} of {family.name} model {name!r} could not "
                      f"be read ({message}); everything else about it was logged.",
                      stacklevel=3)
        return default


def csv_table(columns: dict[str, list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(columns))
    writer.writerows(zip(*columns.values()))
    return out.getvalue().encode()


def _evals_shape(value: Any) -> bool:
    if not isinstance(value, dict) or not value:
        return False
    lengths = set()
    for data, metrics in value.items():
        if not isinstance(data, str) or not isinstance(metrics, dict) or not metrics:
            return False
        for key, values in metrics.items():
            if not isinstance(key, str) or not isinstance(values, list) or not values:
                return False
            lengths.add(len(values))
    return len(lengths) == 1 and _number(next(iter(next(iter(value.values())).values()))[0]) \
        is not None


def evaluation_histories(names: list[str], namespace: dict[str, Any]) -> dict[str, list[Any]]:
    """The per-round results a native training call wrote into the caller's dict
    (``xgb.train(..., evals_result=history)``, ``lgb.record_evaluation(history)``), shaped
    ``{data: {metric: [one value per round]}}``, as ``<data>-<metric>`` histories."""
    found: dict[str, list[Any]] = {}
    for name in names:
        value = namespace.get(name)
        if _evals_shape(value):
            for data, metrics in value.items():
                for metric, values in metrics.items():
                    found.setdefault(f"{data}-{metric}", list(values))
    return found


def container_sources(container: Any, role: str | None,
                      namespace: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The notebook's names for the objects an lgb.Dataset was built from, fingerprinted:
    ``X`` and ``y`` in ``lgb.Dataset(X, label=y)``, so replay can still predict on ``X`` once
    training freed the Dataset's rows. Roles follow the container's: ``train`` and
    ``target`` when it was trained on, else ``input``."""
    from ..datasets import fingerprint
    from . import data_sources

    sources = data_sources(container)
    if not sources:
        return []
    found = []
    for source, source_role in sources:
        name = next((n for n, v in namespace.items() if v is source and not n.startswith("_")),
                    None)
        info = fingerprint(source) if name is not None else None
        if info is not None:
            found.append((name, source_role if role == "train" else "input", info))
    return found


def record_models(models: list[tuple[str, Any, Family]], names: list[str],
                  namespace: dict[str, Any]) -> list[ModelRecord]:
    """``record_model`` for each ``(name, value, family)``; a model that keeps no history
    of its own takes the evaluation dict the cell filled (``names``: what it bound or read)."""
    evals = None
    records = []
    for name, value, family in models:
        caller = None
        if _guarded(family, name, "training history", lambda: family.history_in_caller(value),
                    False):
            evals = evaluation_histories(names, namespace) if evals is None else evals
            caller = evals
        records.append(record_model(name, value, family, caller))
    return records


def training_history(name: str, value: Any, family: Family,
                     evals: dict[str, list[Any]] | None = None) -> list[tuple[str, float, int]]:
    """``(key, value, step)`` rows of the model's own histories (``evals`` when it keeps
    none) and single numbers (best iteration, AIC, ...), under MLflow's names."""
    rows = []
    histories = _guarded(family, name, "training history",
                         lambda: family.histories(value), {}) or evals or {}
    for key, values in histories.items():
        key = metric_key(key)
        if key is None:
            continue
        for step, point in enumerate(values):
            if isinstance(point, tuple):
                step, point = point
            number = _number(point)
            if number is not None:
                rows.append((key, number, step))
    for key, point in (_guarded(family, name, "metrics", lambda: family.metrics(value), {})
                       or {}).items():
        key, number = metric_key(key), _number(point)
        if key is not None and number is not None:
            rows.append((key, number, 0))
    return rows


def record_model(name: str, value: Any, family: Family,
                 evals: dict[str, list[Any]] | None = None) -> ModelRecord:
    """Everything ``family`` can tell about the model bound to ``name``, but its pickle;
    ``evals``: histories the cell recorded for it, when the model keeps none itself."""
    record = ModelRecord()
    record.params = _guarded(family, name, "params", lambda: family.params(value), {}) or {}
    record.metrics = training_history(name, value, family, evals)
    table = _guarded(family, name, "feature importances", lambda: family.importances(value),
                     None)
    if table:
        record.artifacts.append(Artifact(f"model/{name}.importance.csv", TABLE_KIND,
                                         csv_table(table), "text/csv"))
    for file_name, text in (_guarded(family, name, "summary", lambda: family.texts(value), {})
                            or {}).items():
        record.artifacts.append(Artifact(f"model/{name}.{file_name}", "text",
                                         text.encode("utf-8", "replace"), "text/plain"))
    native: NativeFile | None = _guarded(family, name, "native file",
                                         lambda: family.native(value), None)
    if native is not None:
        # Signed as pickles are: see the family's module for what loading it can run.
        record.artifacts.append(Artifact(f"model/{name}.{native.suffix}", NATIVE_KIND,
                                         native.data, native.media_type, signed=True))
    return record
