"""Data drift: did the data move between a reference set and a current set, and how far?

``drift_report(reference, current)`` tests every column with the test Evidently would
choose (or the one you name), with the same statistics and verdicts, computed from one
sort of each column; it stores the report with both datasets' fingerprints and renders it
in the notebook. ``drift_profile(reference)`` prepares a reference once for many reports.

Nothing heavy is imported here: pandas and scipy load when a report is computed.
"""

from __future__ import annotations

from .profile import DriftProfile, drift_profile, load_drift_profile
from .report import drift_report
from .result import DriftReport
from .stattests import STATTESTS
from .storage import get_drift_report

__all__ = [
    "STATTESTS", "DriftProfile", "DriftReport", "drift_profile", "drift_report",
    "get_drift_report", "load_drift_profile",
]
