"""Registered versions and aliases pushed as MLflow registered models.

A version goes up as the MLflow model folder ``export_mlflow`` writes (so ``mlflow models
serve`` and ``mlflow.pyfunc.load_model`` read it), with the replay script beside ``MLmodel``,
below its run's artifacts when the run was pushed. Versions are numbered by the server;
the ledger maps ``name/3`` here to the number there. A version registered with no run (a
model fitted outside ``%%track``, or imported) goes up as an MLflow 3 logged model in the
experiment ``jupyter_mlops models``: MLflow accepts a version's source only inside a run's or a
logged model's artifacts. An alias is moved on the server only
when the server still holds what this store last set; otherwise someone else moved it and
the difference is reported as a conflict.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import MLOpsError, SyncError
from ..store.sqlite import Store
from . import ledger
from .rest import Client, RemoteError, experiment_id


def _versions(store: Store, experiments: list[str] | None) -> list[tuple]:
    rows = store.query(
        "SELECT v.name, v.version, v.sha256, v.run_id, e.name, v.user, c.cell_id, "
        "c.execution_count FROM model_versions v LEFT JOIN runs r USING (run_id) "
        "LEFT JOIN experiments e USING (experiment_id) LEFT JOIN cells c ON c.id = v.cell "
        "WHERE r.origin IS NULL ORDER BY v.name, v.version")
    if experiments:
        rows = [r for r in rows if r[4] in experiments]
    return rows


def _find_version(client: Client, name: str, version: int, sha256: str) -> str | None:
    """The remote version a stopped sync made for ``name/version``, found by its tags."""
    answer = client.call("GET", "model-versions/search",
                         {"filter": f"name='{name}'", "max_results": 1000})
    for found in answer.get("model_versions", []):
        tags = {t["key"]: t["value"] for t in found.get("tags", [])}
        if (tags.get("jupyter_mlops.version") == str(version)
                and tags.get("jupyter_mlops.sha256") == sha256):
            return found["version"]
    return None


def _upload_folder(client: Client, folder: Path, root: str) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            relative = path.relative_to(folder).as_posix()
            with open(path, "rb") as handle:
                client.upload(f"{root}/{relative}", handle, os.path.getsize(path))


RUNLESS_EXPERIMENT = "jupyter_mlops models"


def _logged_model(client: Client, name: str, tags: list[dict[str, str]],
                  creating: bool) -> tuple[str, str]:
    """(model id, artifact location) of the logged model that holds a version with no run;
    a stopped sync's own is found again by its tags rather than made twice."""
    experiment, _ = experiment_id(client, RUNLESS_EXPERIMENT)
    if creating:
        wanted = {t["key"]: t["value"] for t in tags if t["key"].startswith("jupyter_mlops.")}
        answer = client.call("POST", "logged-models/search",
                             {"experiment_ids": [experiment], "max_results": 100,
                              "filter": f"name = '{name}'"})
        for found in answer.get("models", []):
            have = {t["key"]: t["value"] for t in found["info"].get("tags", [])}
            if all(have.get(k) == v for k, v in wanted.items()):
                return found["info"]["model_id"], found["info"]["artifact_uri"]
    try:
        info = client.call("POST", "logged-models",
                           {"experiment_id": experiment, "name": name, "tags": tags})["model"]
    except RemoteError as exc:
        if exc.status in (404, 405):
            raise SyncError(
                f"{client.uri} has no logged models (MLflow before 3.0), so a version "
                "registered with no run cannot go there; register it from a tracked run, or "
                "upgrade the server.") from exc
        raise
    return info["info"]["model_id"], info["info"]["artifact_uri"]


def _push_version(store: Store, client: Client, row: tuple, remote_run: str | None,
                  creating: bool) -> str | None:
    """Upload and register one version; None when it cannot be exported (a reason is raised
    as MLOpsError by export_mlflow)."""
    from ..registry.export import export_mlflow
    name, version, sha256, run_id, _, user, cell_id, execution_count = row
    if creating:
        found = _find_version(client, name, version, sha256)
        if found is not None:
            return found
    tags = [{"key": "jupyter_mlops.version", "value": str(version)},
            {"key": "jupyter_mlops.sha256", "value": sha256}]
    if run_id:
        tags.append({"key": "jupyter_mlops.run_id", "value": run_id})
    if cell_id:
        tags.append({"key": "jupyter_mlops.cell_id", "value": cell_id})
    if execution_count is not None:
        tags.append({"key": "jupyter_mlops.execution_count", "value": str(execution_count)})
    if user:
        tags.append({"key": "mlflow.user", "value": user})
    model_id = None
    if remote_run:
        info = client.call("GET", "runs/get", {"run_id": remote_run})["run"]["info"]
        source = f"{info['artifact_uri'].rstrip('/')}/models/{name}/v{version}"
    else:
        model_id, source = _logged_model(client, name, tags, creating)
    root = client.artifact_path(source)
    with tempfile.TemporaryDirectory(prefix="mlops-sync-") as tmp:
        folder = export_mlflow(f"{name}/{version}", Path(tmp) / "model", store=store)
        try:
            from ..registry.replay import build_replay

            (folder / "replay.py").write_text(build_replay(f"{name}/{version}",
                                                           store=store).source)
        except MLOpsError:
            pass  # a version registered from outside the notebook has no cell history
        _upload_folder(client, folder, root)
    if model_id:
        client.call("PATCH", f"logged-models/{model_id}",
                    {"model_id": model_id, "status": "LOGGED_MODEL_READY"})
    try:
        client.call("POST", "registered-models/create", {"name": name})
    except RemoteError as exc:
        if exc.code != "RESOURCE_ALREADY_EXISTS":
            raise
    body: dict[str, Any] = {"name": name, "source": source, "tags": tags}
    if remote_run:
        body["run_id"] = remote_run
    if model_id:
        body["model_id"] = model_id
    return client.call("POST", "model-versions/create", body)["model_version"]["version"]


def push_models(store: Store, client: Client, result: Any, runs: dict[str, str],
                experiments: list[str] | None) -> None:
    known = ledger.entries(store, client.uri, "version")
    remote_versions = {k: v[0] for k, v in known.items() if v[1] != ledger.CREATING}
    for row in _versions(store, experiments):
        local = f"{row[0]}/{row[1]}"
        if local in remote_versions:
            continue
        creating = local in known
        ledger.record(store, client.uri, "version", [(local, None, ledger.CREATING)])
        try:
            remote = _push_version(store, client, row, runs.get(row[3] or ""), creating)
        except SyncError:
            raise
        except MLOpsError as exc:
            result.skipped.append(f"{local}: {exc}")
            continue
        ledger.record(store, client.uri, "version", [(local, remote, row[2])])
        remote_versions[local] = remote
        result.versions += 1
    _push_aliases(store, client, result, remote_versions, experiments)


def _push_aliases(store: Store, client: Client, result: Any, remote_versions: dict[str, str],
                  experiments: list[str] | None) -> None:
    last = ledger.entries(store, client.uri, "alias")
    for name, alias, version in store.query(
            "SELECT name, alias, version FROM aliases ORDER BY name, alias"):
        target = remote_versions.get(f"{name}/{version}")
        if target is None:
            continue  # its version was not pushed (another experiment, or skipped)
        local = f"{name}@{alias}"
        found = client.get_or_none("registered-models/alias", {"name": name, "alias": alias})
        there = found["model_version"]["version"] if found else None
        before = last.get(local, (None, None))[0]
        if there == target:
            if before != target:
                ledger.record(store, client.uri, "alias", [(local, target, str(version))])
            continue
        if there is not None and there != before:
            result.conflicts.append(
                f"{local} points at version {there} on {client.uri}, set there by someone "
                f"else; here it is {name}/{version} (version {target} there). Not overwritten: "
                f"move it on the server, or here with set_alias, to agree.")
            continue
        if there is None and before is not None:
            result.conflicts.append(
                f"{local} was deleted on {client.uri} after this store set it; not set "
                "again. Set it on the server if it should exist.")
            continue
        client.call("POST", "registered-models/alias",
                    {"name": name, "alias": alias, "version": target})
        ledger.record(store, client.uri, "alias", [(local, target, str(version))])
        result.aliases += 1
