"""A model folder of an MLflow tracking server, downloaded through its REST API.

``models:/name/3``, ``models:/name@alias`` and ``runs:/RUN_ID/path`` are resolved the way
MLflow resolves them (a registered version's download URI; a run's artifact folder, or,
for a model logged by MLflow 3 as a logged model, that model's own artifact folder) and
the folder's files are copied through the server's artifact proxy. No ``mlflow`` package
is needed, and every loop is bounded.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from ..errors import NotFoundError, SyncError, ValidationError, shorten
from .rest import ARTIFACTS, Client

MAX_FILES = 10_000
MAX_DEPTH = 12
_MODELS = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/@]+))\Z")
_RUNS = re.compile(r"^runs:/(?P<run>[0-9a-f]{32})(?:/(?P<path>.*))?\Z")


def is_remote(source: str) -> bool:
    return isinstance(source, str) and source.startswith(("models:/", "runs:/"))


def _artifact_folder(client: Client, source: str) -> tuple[str, dict[str, str]]:
    """The folder below the proxied artifact root that holds the model, and what the
    server said about it (registered name and version, run id)."""
    match = _MODELS.match(source)
    if match:
        name, version, alias = match.group("name", "version", "alias")
        if alias is not None:
            found = client.get_or_none("registered-models/alias", {"name": name, "alias": alias})
            if found is None:
                raise NotFoundError(f"{client.uri} has no alias {name}@{alias}.")
            version = found["model_version"]["version"]
        answer = client.get_or_none("model-versions/get-download-uri",
                                    {"name": name, "version": version})
        if answer is None:
            raise NotFoundError(f"{client.uri} has no model version {name}/{version}.")
        return (client.artifact_path(answer["artifact_uri"]),
                {"registered_model": name, "registered_version": str(version)})
    match = _RUNS.match(source)
    if not match:
        raise ValidationError(f"A tracking-server model is models:/NAME/VERSION, "
                              f"models:/NAME@ALIAS or runs:/RUN_ID/PATH; got {shorten(source)}.")
    run_id, path = match.group("run"), (match.group("path") or "").strip("/")
    found = client.get_or_none("runs/get", {"run_id": run_id})
    if found is None:
        raise NotFoundError(f"{client.uri} has no run {run_id}.")
    info = found["run"]["info"]
    folder = "/".join(p for p in (client.artifact_path(info["artifact_uri"]), path) if p)
    if _listing(client, folder):
        return folder, {"run_id": run_id}
    # MLflow 3 logs a model as a logged model of its own, named after the path.
    answer = client.call("POST", "logged-models/search", {
        "experiment_ids": [info["experiment_id"]],
        "filter": f"source_run_id = '{run_id}' AND name = '{path}'", "max_results": 1})
    models = answer.get("models", [])
    if not models:
        raise NotFoundError(f"{client.uri} holds no model at runs:/{run_id}/{path}.")
    location = models[0]["info"]["artifact_uri"]
    return client.artifact_path(location), {"run_id": run_id,
                                            "model_id": models[0]["info"].get("model_id", "")}


def _listing(client: Client, folder: str) -> list[dict]:
    status, data = client.request("GET", f"{ARTIFACTS.rstrip('/')}?path={quote(folder)}")
    answer = client._check(status, data, f"the listing of {folder}")
    return answer.get("files", [])


def download_model(source: str, tracking_uri: str, target: Path, *,
                   timeout: float = 60) -> dict[str, str]:
    """Copy the model folder ``source`` names on ``tracking_uri`` into ``target`` (a new
    folder); returns what the server said about it."""
    client = Client(tracking_uri, timeout=timeout)
    try:
        folder, facts = _artifact_folder(client, source)
        pending, count = [("", 0)], 0
        while pending:
            relative, depth = pending.pop()
            if depth > MAX_DEPTH:
                raise SyncError(f"{source} on {client.uri} nests folders deeper than "
                                f"{MAX_DEPTH}; not downloaded.")
            here = "/".join(p for p in (folder, relative) if p)
            for entry in _listing(client, here):
                name = entry["path"].rsplit("/", 1)[-1]
                if name in ("", ".", "..") or "\\" in name:
                    raise SyncError(f"{client.uri} listed an artifact named {shorten(name)}; "
                                    "nothing was imported.")
                inner = f"{relative}/{name}" if relative else name
                if entry.get("is_dir"):
                    pending.append((inner, depth + 1))
                    continue
                count += 1
                if count > MAX_FILES:
                    raise SyncError(f"{source} holds more than {MAX_FILES:,} files; not "
                                    "downloaded.")
                destination = target / inner
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(client.download(f"{folder}/{inner}"))
        if count == 0:
            raise NotFoundError(f"{client.uri} holds no files for {source}.")
        return {"tracking_uri": client.uri, **facts}
    finally:
        client.close()
