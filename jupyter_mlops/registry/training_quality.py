"""The data quality of a registered version's training data, checked when it is registered.

The training data is the version's data with role ``train`` (else its ``reference``, else
the inputs of its run): the object in hand when it is that data, else its kept bytes. Data
whose bytes were not kept is not checked: its lineage says so instead (reading it back
from disk would check today's file, not the rows the model saw). Verdicts are stored by
fingerprint (``drift/qualitystore.py``), so data checked once is not checked again.
"""

from __future__ import annotations

from typing import Any

TRAINING_ROLES = ("train", "reference", "input")
_CHECKED_KINDS = ("dataframe", "series", "ndarray")


def training_datasets(store: Any, datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The version's training data: those of the first role of TRAINING_ROLES it has, of a
    kind the checks read."""
    kinds = {}
    for dataset in datasets:
        rows = store.query("SELECT kind FROM datasets WHERE fingerprint = ?",
                           (dataset["fingerprint"],))
        kinds[dataset["fingerprint"]] = rows[0][0] if rows else None
    for role in TRAINING_ROLES:
        found = [d for d in datasets if d["role"] == role
                 and kinds.get(d["fingerprint"]) in _CHECKED_KINDS]
        if found:
            return found
    return []


def check_training_quality(store: Any, datasets: list[dict[str, Any]],
                           in_hand: Any = None) -> int:
    """Run the quality checks on each training dataset not checked before; how many were
    checked. ``in_hand`` is the training data object the registration holds, used instead
    of reading the kept bytes when it is that data. Never raises: a registration does not
    fail on its data's checks."""
    from ..drift.qualitystore import has_quality, save_quality
    from ..tracking.datasets import fingerprint
    from ..tracking.keeping import is_kept, note

    checked = 0
    hand_fp = None
    for dataset in training_datasets(store, datasets):
        fp = dataset["fingerprint"]
        try:
            if has_quality(store, fp):
                continue
            if in_hand is not None and hand_fp is None:
                info = fingerprint(in_hand)
                hand_fp = info["fingerprint"] if info else ""
            if fp == hand_fp:
                value = in_hand
            elif is_kept(store, fp):
                from ..tracking.keptdata import KeptRef, read_kept

                value = read_kept(store, KeptRef(fp, "dataframe", dataset["name"]))
            else:
                continue
            save_quality(store, fp, _checked(value))
            checked += 1
        except Exception as exc:  # noqa: BLE001
            note(f"the quality of {dataset['name']} was not checked "
                 f"({type(exc).__name__}: {str(exc)[:120]}).")
    return checked


def _checked(value: Any) -> Any:
    import pandas as pd

    from ..drift.quality import check_quality

    if not isinstance(value, (pd.DataFrame, pd.Series)):
        value = pd.DataFrame(value.reshape(len(value), -1) if value.ndim != 2 else value)
    return check_quality(value)[0]


def training_quality(store: Any, datasets: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{fingerprint: verdicts}`` for the version's training data; a dataset not checked
    has ``{"checked": False, "reason": ...}``."""
    from ..drift.qualitystore import load_quality
    from ..tracking.keeping import is_kept

    found = training_datasets(store, datasets)
    stored = load_quality(store, [d["fingerprint"] for d in found])
    out = {}
    for dataset in found:
        fp = dataset["fingerprint"]
        if fp in stored:
            out[fp] = {"checked": True, **stored[fp]}
        else:
            out[fp] = {"checked": False, "reason": "its data was not kept" if not is_kept(
                store, fp) else "not checked when it was registered"}
    return out
