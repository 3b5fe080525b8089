"""Quality verdicts in the store: the checks of a dataset, by its fingerprint.

Written when a model is registered (its training data checked) and read by its lineage and
card; keyed by fingerprint, so every version trained on the same rows shows the same
verdicts, and data checked once is not checked again.
"""

from __future__ import annotations

import time
from typing import Any

from ..store import jsoncodec


def save_quality(store: Any, fingerprint: str, result: Any) -> None:
    """Record ``result`` (a DataQuality) as the verdicts on the data of ``fingerprint``."""
    checks = jsoncodec.dumps(result.checks.to_dict(orient="records"))
    with store.write() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO data_quality (fingerprint, ok, failed, rows, checks, "
            "created) VALUES (?, ?, ?, ?, ?, ?)",
            (fingerprint, int(result.ok), result.failed, result.rows, checks, time.time()))


def has_quality(store: Any, fingerprint: str) -> bool:
    return bool(store.query("SELECT 1 FROM data_quality WHERE fingerprint = ?",
                            (fingerprint,)))


def load_quality(store: Any, fingerprints: list[str]) -> dict[str, dict[str, Any]]:
    """``{fingerprint: {ok, failed, rows, created, failures}}`` for those checked;
    ``failures`` lists the failed checks as ``check(column)``."""
    found: dict[str, dict[str, Any]] = {}
    for fingerprint in dict.fromkeys(fingerprints):
        rows = store.query("SELECT ok, failed, rows, checks, created FROM data_quality "
                           "WHERE fingerprint = ?", (fingerprint,))
        if not rows:
            continue
        ok, failed, count, checks, created = rows[0]
        failures = [c["check"] + (f"({c['column']})" if c.get("column") else "")
                    for c in jsoncodec.loads(checks) if not c.get("ok")]
        found[fingerprint] = {"ok": bool(ok), "failed": failed, "rows": count,
                              "created": created, "failures": failures}
    return found
