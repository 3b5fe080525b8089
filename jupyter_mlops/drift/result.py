"""DriftReport: the outcome of a drift comparison, as computed or read back from the store.

It holds plain records (one dict a column) and the distributions the dashboard draws;
rendering lives in :mod:`jupyter_mlops.dashboards.drift`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

RECORD_FIELDS = (
    "column", "kind", "test", "statistic", "p_value", "threshold", "drifted", "role",
    "n_reference", "n_current", "missing_reference", "missing_current", "binning", "note",
)


class DriftReport:
    """The outcome of :func:`drift_report`, as computed or as read back from the store.

    Attributes
    ----------
    columns : pandas.DataFrame
        One row a column: ``column, kind, test, statistic, p_value, threshold, drifted``,
        then ``role, n_reference, n_current, missing_reference, missing_current, binning,
        note``.
    drifted : bool
        Dataset drift: ``share_drifted >= drift_share`` (over the tested columns).
    share_drifted, n_drifted, n_columns
        Share and number of drifted columns, and the number of columns tested.
    """

    def __init__(self, records: list[dict[str, Any]], drift_share: float, *,
                 distributions: dict[str, Any] | None = None,
                 options: dict[str, Any] | None = None, report_id: str | None = None,
                 run_id: str | None = None, model_uri: str | None = None,
                 created: float | None = None, reference_fingerprint: str | None = None,
                 current_fingerprint: str | None = None, reference_rows: int = 0,
                 current_rows: int = 0, reference_profile: str | None = None) -> None:
        self.records = records
        self.drift_share = drift_share
        self.distributions = distributions or {}
        self.options = options or {}
        self.report_id = report_id or uuid.uuid4().hex
        self.run_id = run_id
        self.model_uri = model_uri
        self.created = created if created is not None else time.time()
        self.reference_fingerprint = reference_fingerprint
        self.current_fingerprint = current_fingerprint
        self.reference_rows = reference_rows
        self.current_rows = current_rows
        self.reference_profile = reference_profile
        tested = [r for r in records if r["test"]]
        self.n_columns = len(tested)
        self.n_drifted = sum(1 for r in tested if r["drifted"])
        self.share_drifted = self.n_drifted / self.n_columns if self.n_columns else 0.0
        self.drifted = bool(self.n_columns) and self.share_drifted >= drift_share
        self._frame = None
        self._render_cache: dict[str, Any] = {}

    @property
    def columns(self):
        """Per-column results as a pandas DataFrame (a copy: change it freely)."""
        if self._frame is None:
            import pandas as pd

            frame = pd.DataFrame.from_records(self.records, columns=list(RECORD_FIELDS))
            frame["drifted"] = frame["drifted"].astype(bool)
            for name in ("statistic", "p_value", "threshold"):
                frame[name] = frame[name].astype("float64")
            self._frame = frame
        return self._frame.copy()

    @property
    def drifted_columns(self) -> list[str]:
        return [r["column"] for r in self.records if r["test"] and r["drifted"]]

    @property
    def skipped(self) -> dict[str, str]:
        """Columns that were not tested, with the reason."""
        return {r["column"]: r["note"] for r in self.records if not r["test"]}

    def column(self, name: str) -> dict[str, Any]:
        """The result of one column as a dict (``KeyError`` if it is not in the report)."""
        for record in self.records:
            if record["column"] == name:
                return dict(record)
        raise KeyError(name)

    @property
    def summary(self) -> str:
        verdict = "dataset drift" if self.drifted else "no dataset drift"
        return (f"{self.n_drifted} of {self.n_columns} columns drifted "
                f"(share {self.share_drifted:.3g}, threshold {self.drift_share:g}): {verdict}")

    def __repr__(self) -> str:
        return f"<DriftReport {self.report_id[:8]}: {self.summary}>"

    # Display lives in dashboards/drift.py: computing never renders.
    def _repr_html_(self) -> str:
        from ..dashboards.drift import drift_html

        return drift_html(self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        from ..dashboards.drift import widget_bundle

        return widget_bundle(self)

    def widget(self):
        """The interactive dashboard (ipywidgets): sortable table and per-column plots."""
        from ..dashboards.drift import drift_widget

        return drift_widget(self)


__all__ = ["RECORD_FIELDS", "DriftReport"]
