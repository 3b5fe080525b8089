"""Registered models, their versions, aliases, lineage and key metrics; setting and
removing an alias.

The registry's tables may be missing (a store of an older schema): then there are no
models. Rows are read over whatever columns the tables have, so columns the registry adds
later reach the sidebar without a change here. Aliases are written by the registry's own
``set_alias`` and ``delete_alias``, which sign them as any other alias is signed.
"""

from __future__ import annotations

from typing import Any

from ...entities import SYSTEM_METRIC_PREFIX
from ...errors import NotFoundError, ValidationError, shorten
from ...registry import versions as registry
from ...registry.versions import check_model_name
from ...store import Store
from ...tracking import storage
from .values import Relative, has_table, json_or_text, metric_value, plain, table_rows

KEY_METRICS = 4


def list_models(store: Store | None) -> dict[str, Any]:
    """Every registered model with its version count, latest version and aliases."""
    if store is None or not has_table(store, "models"):
        return {"models": []}
    models = table_rows(store, "models", "1", (), "name COLLATE NOCASE")
    versions: dict[str, list[dict[str, Any]]] = {}
    if has_table(store, "model_versions"):
        for row in table_rows(store, "model_versions", "1", (), "name, version"):
            versions.setdefault(row.get("name"), []).append(row)
    aliases: dict[str, dict[str, Any]] = {}
    if has_table(store, "aliases"):
        for row in table_rows(store, "aliases", "1", (), "name, alias"):
            aliases.setdefault(row.get("name"), {})[row.get("alias")] = row.get("version")
    out = []
    for model in models:
        name = model.get("name")
        mine = versions.get(name, [])
        latest = mine[-1] if mine else None
        out.append({
            "name": name, "created": model.get("created"),
            "versions": len(mine),
            "latest_version": latest.get("version") if latest else None,
            "latest_run_id": latest.get("run_id") if latest else None,
            "updated": latest.get("created") if latest else model.get("created"),
            "aliases": aliases.get(name, {}),
        })
    return {"models": out}


def model_detail(store: Store | None, name: str, relative: Relative) -> dict[str, Any]:
    """One model: its versions (newest first), aliases and each version's lineage."""
    check_model_name(name)
    if store is None or not has_table(store, "models"):
        raise NotFoundError(f"No model {name!r} in the store (no model is registered yet).")
    found = table_rows(store, "models", "name = ?", (name,), "name")
    if not found:
        raise NotFoundError(f"No model {name!r} in the store. Register one with "
                            "register_model(model, name) or %mlops register NAME.")
    aliases: dict[str, Any] = {}
    if has_table(store, "aliases"):
        aliases = {row.get("alias"): row.get("version")
                   for row in table_rows(store, "aliases", "name = ?", (name,), "alias")}
    versions = []
    if has_table(store, "model_versions"):
        for row in table_rows(store, "model_versions", "name = ?", (name,), "version DESC"):
            version = {k: json_or_text(v) if k in ("signature", "datasets", "library_versions")
                       else plain(v) for k, v in row.items()}
            version["aliases"] = sorted(a for a, v in aliases.items() if v == row.get("version"))
            version["lineage"] = _lineage(store, row, relative)
            version.update(_key_metrics(store, row.get("run_id")))
            versions.append(version)
    return {"name": name, "created": found[0].get("created"), "aliases": aliases,
            "versions": versions}


def _lineage(store: Store, version: dict[str, Any], relative: Relative) -> dict[str, Any]:
    """Where a version came from: its run, the cell execution that made it, the notebook."""
    lineage: dict[str, Any] = {"run": None, "cell": None, "notebook_path": None,
                               "datasets": []}
    run_id = version.get("run_id")
    session_id = None
    if run_id:
        rows = store.query(
            "SELECT r.run_id, r.name, e.name, r.status, r.cell_id, r.session_id "
            "FROM runs r JOIN experiments e USING (experiment_id) WHERE r.run_id = ?",
            (run_id,))
        if rows:
            run_id, run_name, experiment, status, cell_id, session_id = rows[0]
            lineage["run"] = {"run_id": run_id, "name": run_name, "experiment": experiment,
                              "status": status, "cell_id": cell_id}
    cell_row = version.get("cell")
    if isinstance(cell_row, int):
        cells = storage.cells(store, "id = ?", (cell_row,))
        if cells:
            cell = cells[0]
            session_id = cell.session_id
            lineage["cell"] = {"seq": cell.id, "cell_id": cell.cell_id,
                               "execution_count": cell.execution_count,
                               "source": cell.source, "session_id": cell.session_id}
    if session_id:
        rows = store.query("SELECT notebook FROM sessions WHERE session_id = ?", (session_id,))
        lineage["notebook_path"] = relative(rows[0][0]) if rows else None
    datasets = json_or_text(version.get("datasets"))
    lineage["datasets"] = datasets if isinstance(datasets, list) else []
    return lineage


def _key_metrics(store: Store, run_id: Any) -> dict[str, Any]:
    """The latest values of the run's main metrics (the cell's own names first, then an
    estimator's nested ones, what the cell cost last), as the runs list shows them."""
    if not isinstance(run_id, str):
        return {"metrics": {}}
    rows = store.query("SELECT key, value, is_nan FROM latest_metrics WHERE run_id = ?",
                       (run_id,))
    rows.sort(key=lambda r: (r[0].startswith(SYSTEM_METRIC_PREFIX), "." in r[0], r[0]))
    values = {key: metric_value(value, is_nan) for key, value, is_nan in rows[:KEY_METRICS]}
    out: dict[str, Any] = {"metrics": {k: v for k, (v, _) in values.items()}}
    nonfinite = {k: mark for k, (_, mark) in values.items() if mark}
    if nonfinite:
        out["nonfinite"] = nonfinite
    return out


def set_alias(store: Store | None, name: str, alias: Any, version: Any) -> dict[str, Any]:
    """Point ``name@alias`` at ``version`` through the registry (which signs it); says
    where it pointed before (None when new)."""
    check_model_name(name)
    registry.check_alias(alias)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= 2**53:
        raise ValidationError(f"version is a whole number ≥ 1, such as 2; got "
                              f"{shorten(version)}.")
    if store is None or not has_table(store, "aliases"):
        raise NotFoundError(f"No model {name!r} in the store (no model is registered yet).")
    before = store.query("SELECT version FROM aliases WHERE name = ? AND alias = ?",
                         (name, alias))
    registry.set_alias(name, version, alias, store=store)
    return {"name": name, "alias": alias, "version": version,
            "previous": before[0][0] if before else None}


def delete_alias(store: Store | None, name: str, alias: str) -> dict[str, Any]:
    """Remove ``name@alias`` through the registry; the version stays."""
    check_model_name(name)
    registry.check_alias(alias)
    if store is None or not has_table(store, "aliases"):
        raise NotFoundError(f"No model {name!r} in the store (no model is registered yet).")
    before = store.query("SELECT version FROM aliases WHERE name = ? AND alias = ?",
                         (name, alias))
    registry.delete_alias(name, alias, store=store)
    return {"name": name, "alias": alias, "version": None,
            "previous": before[0][0] if before else None}
