"""Data quality: the checks Evidently's ``DataSummaryPreset`` makes, with verdicts.

Dataset checks: missing values, duplicated rows, duplicated columns, constant columns and
empty columns; with a reference also the row and column counts. Column checks (with a
reference): numbers inside the reference's range, no new categories, no more missing values
than the reference. Without a reference a check passes when its count is zero (missing
values: at most 5 % of the cells); with one, when it is no worse than the reference's. Every
column's summary (missing, distinct, min, max, mean, std and quartiles, most common value)
comes with it. Run inside a run, the result is logged there (a JSON artifact and both
datasets' fingerprints).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from .qualityrules import numeric as _numeric, verdicts


@dataclass
class DataQuality:
    """``checks``: one row a check (check, column, value, condition, ok); ``columns``: one
    row a column's summary; ``fingerprints``: of the data and of the reference."""

    checks: Any = field(repr=False)
    columns: Any = field(repr=False)
    rows: int
    n_columns: int
    fingerprints: dict[str, str | None]

    @property
    def ok(self) -> bool:
        return bool(self.checks["ok"].all())

    @property
    def failed(self) -> int:
        return int((~self.checks["ok"]).sum())

    @property
    def failures(self) -> Any:
        return self.checks[~self.checks["ok"]]

    def __repr__(self) -> str:
        verdict = "all checks pass" if self.ok else f"{self.failed} checks fail"
        return f"<DataQuality {self.rows} rows × {self.n_columns} columns: {verdict}>"

    def _repr_html_(self) -> str:
        from ..dashboards.datadiff import quality_html

        return quality_html(self)


def column_summary(frame: Any) -> Any:
    """One row a column: dtype, count, missing (and share), distinct, constant, empty, and
    for numbers min, max, mean, std and quartiles; the most common value."""
    import pandas as pd

    rows = []
    for column in frame.columns:
        series = frame[column]
        count = int(series.count())
        row = {"column": column, "dtype": str(series.dtype), "count": count,
               "missing": int(len(series) - count),
               "missing_share": (len(series) - count) / len(series) if len(series) else 0.0,
               "distinct": int(series.nunique(dropna=True)),
               "empty": count == 0, "constant": count > 0 and series.nunique(dropna=False) == 1}
        numbers = _numeric(series) and count > 0
        for stat in ("min", "max", "mean", "std", "q25", "q50", "q75"):
            row[stat] = float("nan")
        if numbers:
            values = series.dropna()
            quartiles = values.quantile([0.25, 0.5, 0.75]).to_numpy()
            row.update(min=float(values.min()), max=float(values.max()),
                       mean=float(values.mean()),
                       std=float(values.std()) if count > 1 else float("nan"),
                       q25=float(quartiles[0]), q50=float(quartiles[1]),
                       q75=float(quartiles[2]))
        top = series.mode(dropna=True)
        row["most_common"] = None if top.empty else str(top.iloc[0])
        rows.append(row)
    return pd.DataFrame(rows)


def _duplicated_columns(frame: Any) -> list[str]:
    import pandas as pd

    hashes: dict[int, str] = {}
    found = []
    for column in frame.columns:
        series = frame[column]
        try:
            digest = int(pd.util.hash_pandas_object(series, index=False).sum())
        except TypeError:
            digest = int(pd.util.hash_pandas_object(series.astype(str), index=False).sum())
        key = (digest, str(series.dtype))
        if key in hashes and frame[hashes[key]].equals(series):
            found.append(str(column))
        else:
            hashes.setdefault(key, column)
    return found


def _dataset_numbers(frame: Any, summary: Any) -> dict[str, float]:
    cells = frame.shape[0] * frame.shape[1]
    try:
        duplicated = int(frame.duplicated().sum())
    except TypeError:
        duplicated = int(frame.astype(str).duplicated().sum())
    return {
        "missing_share": float(summary["missing"].sum() / cells) if cells else 0.0,
        "duplicated_rows": duplicated,
        "duplicated_columns": len(_duplicated_columns(frame)),
        "constant_columns": int(summary["constant"].sum()),
        "empty_columns": int(summary["empty"].sum()),
    }


def _checks(frame: Any, summary: Any, reference: Any | None, ref_summary: Any | None) -> list:
    numbers = _dataset_numbers(frame, summary)
    if reference is None:
        return verdicts(numbers, len(frame), frame.shape[1], summary)

    def column_check(column: Any, ref: Any) -> tuple[str, Any] | None:
        series, ref_series = frame[column], reference[column]
        if _numeric(series) and _numeric(ref_series) and not math.isnan(ref["min"]):
            values = series.dropna()
            return "out_of_range", int(((values < ref["min"]) | (values > ref["max"])).sum())
        if not _numeric(series):
            known = set(ref_series.dropna().astype(str).unique())
            return "new_categories", sorted(set(series.dropna().astype(str).unique()) - known)
        return None

    ref = (_dataset_numbers(reference, ref_summary), len(reference), reference.shape[1],
           ref_summary)
    return verdicts(numbers, len(frame), frame.shape[1], summary, ref, column_check)


def data_quality(data: Any, reference: Any = None, *, client: Any = None) -> DataQuality:
    """Check a DataFrame's quality, alone or against a reference (the training data).

    With ``client=`` (a ``dask.distributed.Client`` or scheduler address), or Dask
    DataFrames, the checks run on the cluster from per-partition summaries combined
    exactly (:mod:`.quality_partitions`).

    Examples
    --------
    >>> import jupyter_mlops as mlops
    >>> result = mlops.data_quality(new_rows, reference=train)   # doctest: +SKIP
    >>> result.ok, list(result.failures["check"])                 # doctest: +SKIP
    (False, ['new_categories'])
    """
    from ..cluster import is_dask

    if client is not None or is_dask(data) or is_dask(reference):
        return _on_dask(data, reference, client)
    result, infos = check_quality(data, reference)
    _log(result, infos)
    return result


def check_quality(data: Any, reference: Any = None) -> tuple[DataQuality, dict[str, Any]]:
    """:func:`data_quality` without logging: the result and both fingerprint records."""
    import pandas as pd

    from ..tracking.datasets import fingerprint

    frames = []
    for name, value in (("data", data), ("reference", reference)):
        if value is None:
            frames.append(None)
            continue
        if isinstance(value, pd.Series):
            value = value.to_frame()
        if not isinstance(value, pd.DataFrame):
            raise ValidationError(f"data_quality checks a pandas DataFrame; {name} is a "
                                  f"{type(value).__name__}. Wrap an array with pd.DataFrame.")
        frames.append(value)
    frame, ref = frames
    summary = column_summary(frame)
    ref_summary = column_summary(ref) if ref is not None else None
    checks = pd.DataFrame(_checks(frame, summary, ref, ref_summary),
                          columns=["check", "column", "value", "condition", "ok"])
    infos = {"data": fingerprint(frame), "reference": fingerprint(ref) if ref is not None
             else None}
    result = DataQuality(checks, summary, len(frame), frame.shape[1],
                         {k: v["fingerprint"] if v else None for k, v in infos.items()})
    return result, infos


def _on_dask(data: Any, reference: Any, client: Any) -> DataQuality:
    import pandas as pd

    from .. import cluster
    from .quality_partitions import quality_parts

    client = cluster.get_client(client)
    frames = [None if value is None else cluster.as_dask(value, client, what)
              for value, what in ((data, "data"), (reference, "reference"))]
    frames = [f.to_frame() if f is not None and getattr(f, "ndim", 2) == 1 else f
              for f in frames]
    frame, ref = frames
    summary, _ref_summary, checks, rows = quality_parts(frame, ref, client)
    checks = pd.DataFrame(checks, columns=["check", "column", "value", "condition", "ok"])
    infos = {"data": cluster.fingerprint(frame, client),
             "reference": cluster.fingerprint(ref, client) if ref is not None else None}
    result = DataQuality(checks, summary, rows, len(frame.columns),
                         {k: v["fingerprint"] if v else None for k, v in infos.items()})
    _log(result, infos)
    return result


def _log(result: DataQuality, infos: dict[str, Any]) -> None:
    """In a run: the verdicts as a JSON artifact, and the data as the run's inputs."""
    from ..store import jsoncodec
    from ..tracking import storage
    from ..tracking.runs import active_run

    run = active_run()
    if run is None:
        return
    data = jsoncodec.dumps({"ok": result.ok, "fingerprints": result.fingerprints,
                            "checks": result.checks.to_dict(orient="records")}).encode()
    name = f"data_quality/{result.fingerprints['data'][:12]}.json"
    digest, size = run.store.artifacts.put_bytes(data)
    storage.add_artifact(run.store, run.run_id, name, "data_quality", digest, size,
                         "application/json")
    storage.add_datasets(run.store, run.run_id, [
        (f"quality:{role}", "quality", info) for role, info in infos.items() if info])
