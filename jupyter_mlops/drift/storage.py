"""Drift reports in the store: one row of ``drift_reports``, its JSON through the one codec
(``store.jsoncodec``), so a NaN or infinite statistic (a chi-square against a value the
reference never saw is infinite) reads back as the same float.

Rows written before the codec hold a non-finite number as ``null`` and name it in the
record's ``nonfinite`` map (``{"statistic": "inf"}``); ``load_report`` still reads them.
"""

from __future__ import annotations

import math
from typing import Any

from ..store import jsoncodec
from ..tracking.storage import write_datasets
from .result import DriftReport

FLOAT_FIELDS = ("statistic", "p_value", "threshold")


def read_record(record: dict[str, Any]) -> dict[str, Any]:
    """A stored column result; a float field left empty reads as NaN."""
    out = dict(record)
    for key, name in out.pop("nonfinite", {}).items():  # written before the codec
        out[key] = float(name)
    for key in FLOAT_FIELDS:
        if out.get(key) is None:
            out[key] = math.nan
    return out


def save_report(store, report, datasets: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Write the report's row, its datasets and (inside a run) their links, in one transaction."""
    with store.write() as conn:
        write_datasets(conn, datasets, report.run_id)
        conn.execute(
            "INSERT INTO drift_reports (report_id, run_id, model_uri, created, "
            "reference_fingerprint, current_fingerprint, reference_rows, current_rows, "
            "n_columns, n_drifted, share_drifted, drift_share, dataset_drift, columns, options, "
            "distributions, reference_profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?)",
            (report.report_id, report.run_id, report.model_uri, report.created,
             report.reference_fingerprint, report.current_fingerprint, report.reference_rows,
             report.current_rows, report.n_columns, report.n_drifted, report.share_drifted,
             report.drift_share, int(report.drifted),
             jsoncodec.dumps(report.records), jsoncodec.dumps(report.options),
             jsoncodec.dumps(report.distributions), report.reference_profile),
        )


_COLUMNS = (
    "report_id, run_id, model_uri, created, reference_fingerprint, current_fingerprint, "
    "reference_rows, current_rows, drift_share, columns, options, distributions, "
    "reference_profile"
)


def load_report(store, report_id: str):
    """The stored report ``report_id`` (or a unique prefix of it), as a DriftReport."""
    from ..errors import NotFoundError, ValidationError, shorten

    if not isinstance(report_id, str) or not report_id or \
            any(c not in "0123456789abcdef" for c in report_id):
        raise ValidationError(
            f"A drift report id is lowercase hex (32 characters, or a unique prefix); got "
            f"{shorten(report_id)}."
        )
    rows = store.query(
        f"SELECT {_COLUMNS} FROM drift_reports WHERE report_id LIKE ? LIMIT 2",
        (report_id + "%",),
    )
    if not rows:
        raise NotFoundError(f"No drift report {report_id!r} in {store.path}.")
    if len(rows) > 1:
        raise ValidationError(
            f"Drift report prefix {report_id!r} matches several reports; give more characters."
        )
    (rid, run_id, model_uri, created, ref_fp, cur_fp, ref_rows, cur_rows, drift_share,
     columns, options, distributions, profile) = rows[0]
    return DriftReport(
        records=[read_record(r) for r in jsoncodec.loads(columns)],
        drift_share=drift_share,
        distributions=jsoncodec.loads(distributions) if distributions else {},
        options=jsoncodec.loads(options) if options else {},
        report_id=rid, run_id=run_id, model_uri=model_uri, created=created,
        reference_fingerprint=ref_fp, current_fingerprint=cur_fp,
        reference_rows=ref_rows, current_rows=cur_rows, reference_profile=profile,
    )


def get_drift_report(report_id: str, store: Any = None) -> DriftReport:
    """A stored drift report by id (or a unique prefix of it).

    Examples
    --------
    >>> get_drift_report(report.report_id).drifted        # doctest: +SKIP
    False
    """
    from ..store.current import get_store

    return load_report(store or get_store(), report_id)
