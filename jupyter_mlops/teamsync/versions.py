"""Registered versions pulled from a tracking server: read-only records beside the runs.

A colleague's version stays on the server (its model is an MLflow model folder, loaded with
``mlflow.pyfunc.load_model("models:/name/3")`` against that server); here it is a row in
``pulled_versions`` naming its origin, run, aliases and who registered it, refreshed by
every pull and never mixed with the versions registered here, which are signed by this user.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..store.sqlite import Store
from .rest import Client

RUNS_PER_QUERY = 50


def fetch(client: Client, run_ids: list[str]) -> list[dict[str, Any]]:
    """The server's versions made from ``run_ids`` (MLflow's ``run_id IN (...)`` filter)."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(run_ids), RUNS_PER_QUERY):
        batch = ", ".join(f"'{r}'" for r in run_ids[start:start + RUNS_PER_QUERY])
        answer = client.call("GET", "model-versions/search",
                             {"filter": f"run_id IN ({batch})", "max_results": 1000})
        found += answer.get("model_versions", [])
    # model-versions/search leaves the aliases out: each model's come with the model.
    aliases: dict[tuple[str, str], list[str]] = {}
    for name in sorted({v["name"] for v in found}):
        model = client.get_or_none("registered-models/get", {"name": name}) or {}
        for entry in model.get("registered_model", {}).get("aliases", []):
            aliases.setdefault((name, str(entry["version"])), []).append(entry["alias"])
    for v in found:
        v["aliases"] = v.get("aliases") or aliases.get((v["name"], str(v["version"])), [])
    return found


def replace(store: Store, origin: str, versions: list[dict[str, Any]],
            skip: set[tuple[str, str]]) -> int:
    """Store (or refresh) the server's ``versions``, except ``skip`` (``(name, version)``
    pushed from here); how many were stored."""
    now = time.time()
    rows = []
    for v in versions:
        key = (v["name"], str(v["version"]))
        if key in skip:
            continue
        tags = {t["key"]: t["value"] for t in v.get("tags", [])}
        created = v.get("creation_timestamp")
        rows.append((origin, key[0], key[1], v.get("run_id"), v.get("source"),
                     json.dumps(sorted(v.get("aliases", [])), allow_nan=False),
                     json.dumps(tags, sort_keys=True, allow_nan=False),
                     v.get("user_id") or tags.get("mlflow.user") or None,
                     None if created is None else created / 1000, now))
    if rows:
        with store.write() as conn:
            conn.executemany(
                "INSERT INTO pulled_versions (origin, name, version, run_id, source, aliases, "
                "tags, user, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (origin, name, version) DO UPDATE SET run_id = excluded.run_id, "
                "source = excluded.source, aliases = excluded.aliases, tags = excluded.tags, "
                "user = excluded.user, created = excluded.created, updated = excluded.updated",
                rows)
    return len(rows)


def pulled_versions(*, store: Store | None = None) -> Any:
    """The registered versions pulled from tracking servers: one row a version, with its
    ``origin``, ``user``, ``aliases`` and the ``uri`` mlflow loads it by from that server.

    Examples
    --------
    >>> pull("http://127.0.0.1:5000", experiment="churn")    # doctest: +SKIP
    >>> pulled_versions()[["name", "version", "aliases", "user", "origin"]]   # doctest: +SKIP
    """
    import pandas as pd

    from ..store.current import get_store

    store = store or get_store()
    rows = store.query(
        "SELECT name, version, aliases, user, origin, run_id, source, created FROM "
        "pulled_versions ORDER BY origin, name, CAST(version AS INTEGER)")
    frame = pd.DataFrame(rows, columns=["name", "version", "aliases", "user", "origin",
                                        "run_id", "source", "created"])
    frame["aliases"] = [json.loads(a) for a in frame["aliases"]]
    frame["uri"] = [f"models:/{n}/{v}" for n, v in zip(frame["name"], frame["version"])]
    return frame
