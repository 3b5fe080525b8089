"""How far each registered model is along the way to automated training and deployment.

The levels of the MLOps maturity model, each read off what the store holds: a model is
*tracked* when a tracked run produced a version of it, has *lineage* when that version links
to the cell executions that made it, is *gated* when a check of one of its versions passed,
*served* when its server logged traffic, *monitored* when it was checked on new data, and
*retrained automatically* when a trigger retrains it and moves its alias.
"""

from __future__ import annotations

from typing import Any

LEVELS = ("tracked", "lineage", "gated", "served", "monitored", "automated")
NEXT_STEP = {
    "tracked": "train it in a %%track cell and register it from the run",
    "lineage": "register it from the notebook where it was trained (%mlops register NAME)",
    "gated": "check a version on a holdout (jupyter-mlops check NAME/N --against NAME@ALIAS)",
    "served": "serve it (%mlops serve NAME@ALIAS or jupyter-mlops serve)",
    "monitored": "monitor it on new data (jupyter-mlops monitor NAME@ALIAS)",
    "automated": "schedule its retraining (schedule(..., model='NAME@ALIAS', gate=...))",
}


def maturity(*, store: Any = None):
    """One row per registered model: each level reached (True/False), ``level`` (how many
    levels in a row it reaches) and ``next``, what to do to reach the next one."""
    import pandas as pd

    from ..store.current import get_store

    store = store or get_store()
    names = [n for (n,) in store.query("SELECT name FROM models ORDER BY name")]

    def having(sql: str) -> set[str]:
        return {n for (n,) in store.query(sql)}

    reached = {
        "tracked": having("SELECT DISTINCT name FROM model_versions WHERE run_id IS NOT NULL"),
        "lineage": having("SELECT DISTINCT name FROM model_versions WHERE run_id IS NOT NULL "
                          "AND cell IS NOT NULL"),
        "gated": {_model_of(uri) for (uri,) in store.query(
            "SELECT p.value FROM runs r JOIN experiments e USING (experiment_id) "
            "JOIN params p ON p.run_id = r.run_id AND p.key = 'candidate' "
            "JOIN tags t ON t.run_id = r.run_id AND t.key = 'jupyter_mlops.check.passed' "
            "WHERE e.name = 'checks' AND r.status = 'FINISHED' AND t.value = 'true'")},
        "served": having("SELECT DISTINCT name FROM predictions"),
        "monitored": having("SELECT DISTINCT name FROM monitors"),
        "automated": {_model_of(m) for (m,) in store.query(
            "SELECT model FROM triggers WHERE enabled = 1 AND model IS NOT NULL "
            "AND gate IS NOT NULL")},
    }
    rows = []
    for name in names:
        flags = {level: name in reached[level] for level in LEVELS}
        count = next((i for i, level in enumerate(LEVELS) if not flags[level]), len(LEVELS))
        missing = next((level for level in LEVELS if not flags[level]), None)
        rows.append({"model": name, **flags, "level": count,
                     "next": NEXT_STEP[missing].replace("NAME", name) if missing else ""})
    return pd.DataFrame(rows, columns=["model", *LEVELS, "level", "next"])


def _model_of(uri: Any) -> str:
    """``models:/churn/4`` or ``churn@champion`` (a param's stored JSON too) → ``churn``."""
    import json

    text = str(uri)
    if text.startswith('"'):
        text = str(json.loads(text))
    text = text[len("models:/"):] if text.startswith("models:/") else text
    return text.split("@", 1)[0].split("/", 1)[0]
