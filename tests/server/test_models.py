"""``models`` and ``models/<name>``: empty without a registry, 404 for unknown names, and
versions, aliases and lineage read from whatever registry tables the store has."""

from __future__ import annotations

import time

import pytest

REGISTRY_TABLES = ("aliases", "model_versions", "models")


def tables(store) -> set[str]:
    return {name for (name,) in store.query("SELECT name FROM sqlite_master WHERE type='table'")}


def drop_registry(store) -> None:
    with store.write() as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        for table in REGISTRY_TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


def insert(conn, store, table: str, values: dict) -> None:
    """Insert ``values`` plus a placeholder for any other NOT NULL column the table has."""
    columns = store.query(f"PRAGMA table_info({table})")
    row = dict(values)
    for _, name, kind, notnull, default, _ in columns:
        if notnull and default is None and name not in row:
            row[name] = 0 if "INT" in (kind or "").upper() or "REAL" in (kind or "").upper() \
                else f"x-{name}"
    row = {k: v for k, v in row.items() if k in {c[1] for c in columns}}
    names = ", ".join(row)
    conn.execute(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(row))})",
                 list(row.values()))


@pytest.fixture
def registry(seeded):
    """Two versions of 'iris' (v2 is @champion, made by run alpha) and an empty 'empty'."""
    store = seeded.store
    if not {"models", "model_versions"} <= tables(store):
        # Older schemas have no registry; the registry's own issue creates these tables.
        with store.write() as conn:
            conn.execute("CREATE TABLE models (name TEXT PRIMARY KEY, created REAL NOT NULL)")
            conn.execute("CREATE TABLE model_versions (name TEXT NOT NULL, version INTEGER "
                         "NOT NULL, created REAL NOT NULL, sha256 TEXT NOT NULL, size INTEGER "
                         "NOT NULL, run_id TEXT, PRIMARY KEY (name, version))")
            conn.execute("CREATE TABLE aliases (name TEXT NOT NULL, alias TEXT NOT NULL, "
                         "version INTEGER NOT NULL, PRIMARY KEY (name, alias))")
    now = time.time()
    with store.write() as conn:
        insert(conn, store, "models", {"name": "iris", "created": now})
        insert(conn, store, "models", {"name": "empty", "created": now})
        insert(conn, store, "model_versions", {
            "name": "iris", "version": 1, "created": now, "sha256": "1" * 64, "size": 10,
            "serializer": "pickle", "class_name": "LogisticRegression"})
        insert(conn, store, "model_versions", {
            "name": "iris", "version": 2, "created": now + 1, "sha256": "2" * 64, "size": 12,
            "serializer": "pickle", "run_id": seeded.runs["alpha"], "datasets": "[]"})
        insert(conn, store, "aliases", {"name": "iris", "alias": "champion", "version": 2,
                                        "updated": now})
    return seeded


async def test_no_registry_tables_means_no_models(api, seeded):
    drop_registry(seeded.store)
    code, body = await api("models")
    assert code == 200
    assert body == {"models": []}
    code, body = await api("models", "iris")
    assert code == 404 and body["error"] == "not_found"


async def test_models_list(api, registry):
    code, body = await api("models")
    assert code == 200
    models = {m["name"]: m for m in body["models"]}
    assert set(models) == {"iris", "empty"}
    assert models["iris"]["versions"] == 2
    assert models["iris"]["latest_version"] == 2
    assert models["iris"]["aliases"] == {"champion": 2}
    assert models["empty"]["versions"] == 0 and models["empty"]["latest_version"] is None


async def test_model_detail_with_lineage(api, registry):
    code, model = await api("models", "iris")
    assert code == 200
    assert model["aliases"] == {"champion": 2}
    assert [v["version"] for v in model["versions"]] == [2, 1]
    newest = model["versions"][0]
    assert newest["aliases"] == ["champion"]
    assert newest["lineage"]["run"]["run_id"] == registry.runs["alpha"]
    assert newest["lineage"]["run"]["name"] == "alpha"
    assert model["versions"][1]["lineage"]["run"] is None


@pytest.mark.parametrize("name", ["nope", "iris2", "IRIS"])
async def test_unknown_model_is_404(api, registry, name):
    code, body = await api("models", name)
    assert code == 404
    assert body["error"] == "not_found"


@pytest.mark.parametrize("name", ["..", "a@b", " ", "x" * 300])
async def test_invalid_model_name_is_400(api, registry, name):
    code, body = await api("models", name)
    assert code == 400
    assert body["error"] == "invalid"
