"""``sync(uri)``: push this store's experiments, runs and registered versions to an MLflow
tracking server, sending only what it has not had.

Order of work: experiments; new runs created (each marked ``creating`` in the ledger first,
so a crash cannot make one twice); every changed run's data sent by a few worker threads
(params, tags, metric points in ``log-batch`` pages, artifacts, dataset inputs, status); then
registered versions (as MLflow model folders) and their aliases. What the server confirmed
is recorded as it completes. A failure stops the sync with one line naming the server and
what was pushed; the next call resumes. An alias moved on the server by someone else is a
conflict: reported, never overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from ..errors import SyncError
from ..store.sqlite import Store
from . import ledger
from .models import push_models
from .rest import Client, experiment_id
from .runs import CELL_SOURCE, LocalRun, Payload, local_runs, millis, payload

WORKERS = 4
# MLflow's limits on one log-batch request.
BATCH_METRICS, BATCH_PARAMS, BATCH_TAGS, BATCH_TOTAL = 1000, 100, 100, 1000
RECORD_EVERY = 50  # completed runs recorded per ledger transaction


@dataclass
class SyncResult:
    """What one sync sent: counts, and the conflicts and versions it left alone."""

    uri: str
    experiments: int = 0
    runs_created: int = 0
    runs_updated: int = 0
    metrics: int = 0
    artifacts: int = 0
    versions: int = 0
    aliases: int = 0
    conflicts: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.runs_created} new run(s), {self.runs_updated} updated, "
                f"{self.metrics} metric point(s), {self.artifacts} artifact(s), "
                f"{self.versions} model version(s), {self.aliases} alias(es)")

    def lines(self) -> list[str]:
        lines = [f"Synced to {self.uri}: {self.summary()}."]
        lines += [f"  conflict: {c}" for c in self.conflicts]
        lines += [f"  skipped: {s}" for s in self.skipped]
        return lines

    def __repr__(self) -> str:
        return "\n".join(self.lines())


def _experiment_ids(store: Store, client: Client, names: Iterable[str],
                    result: SyncResult) -> dict[str, str]:
    known = ledger.entries(store, client.uri, "experiment")
    ids = {}
    for name in names:
        if name in known:
            ids[name] = known[name][0]
            continue
        ids[name], created = experiment_id(client, name)
        result.experiments += created
        ledger.record(store, client.uri, "experiment", [(name, ids[name], "")])
    return ids


def _sent(known: dict[str, tuple], run_id: str) -> dict[str, Any]:
    """The state last recorded for ``run_id`` ({} when none, or only being created)."""
    entry = known.get(run_id)
    if entry is None or entry[1] == ledger.CREATING:
        return {}
    return json.loads(entry[1] or "{}")


def _find_remote_run(client: Client, experiment_id: str, run_id: str) -> str | None:
    """The remote run a crashed sync made for ``run_id``, found by the tag it was made with."""
    for found in client.search_runs([experiment_id], f"tags.`jupyter_mlops.run_id` = '{run_id}'"):
        return found["info"]["run_id"]
    return None


def _create_run(client: Client, run: LocalRun, experiment_id: str) -> str:
    body: dict[str, Any] = {"experiment_id": experiment_id, "start_time": millis(run.start_time),
                            "tags": [{"key": "jupyter_mlops.run_id", "value": run.run_id}]}
    if run.name:
        body["run_name"] = run.name
    if run.user:
        body["user_id"] = run.user
    return client.call("POST", "runs/create", body)["run"]["info"]["run_id"]


def _artifact_root(client: Client, remote_id: str, cache: dict[str, str]) -> str:
    if remote_id not in cache:
        info = client.call("GET", "runs/get", {"run_id": remote_id})["run"]["info"]
        cache[remote_id] = client.artifact_path(info["artifact_uri"])
    return cache[remote_id]


def _send(client: Client, data: Payload, root: str) -> Payload:
    """Send one run's payload; returns it once the server has all of it."""
    params, tags, metrics = data.params, data.tags, data.metrics
    first = True
    while first or params or tags or metrics:
        first = False
        chunk_params, params = params[:BATCH_PARAMS], params[BATCH_PARAMS:]
        chunk_tags, tags = tags[:BATCH_TAGS], tags[BATCH_TAGS:]
        room = min(BATCH_METRICS, BATCH_TOTAL - len(chunk_params) - len(chunk_tags))
        chunk_metrics, metrics = metrics[:room], metrics[room:]
        if chunk_params or chunk_tags or chunk_metrics:
            client.call("POST", "runs/log-batch", {
                "run_id": data.remote_id, "params": chunk_params, "tags": chunk_tags,
                "metrics": chunk_metrics})
    for name, sha256, raw, size in data.artifacts:
        path = f"{root}/{_safe_path(name)}"
        if raw is not None:
            client.upload(path, raw, size)
        else:
            with data.store.artifacts.open(sha256) as handle:
                client.upload(path, handle, size)
    if data.datasets:
        client.call("POST", "runs/log-inputs", {"run_id": data.remote_id,
                                                "datasets": data.datasets})
    if data.update is not None:
        client.call("POST", "runs/update", data.update)
    return data


def _safe_path(name: str) -> str:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or "artifact"


def sync(uri: str, experiment: str | list[str] | None = None, *, models: bool = True,
         store: Store | None = None, workers: int = WORKERS, timeout: float = 60.0
         ) -> SyncResult:
    """Push runs (and registered versions) to the MLflow tracking server at ``uri``.

    Idempotent: a second call sends only what changed since the first (new runs, new metric
    steps, new tags or artifacts, a status, moved aliases). A call stopped halfway (a crash,
    the server down, 401, 500, a timeout) raises ``SyncError`` naming what was pushed; the
    next call finishes the job without duplicates. Auth: ``MLFLOW_TRACKING_TOKEN``, or
    ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD``.

    Examples
    --------
    >>> result = sync("http://127.0.0.1:5000")                     # doctest: +SKIP
    >>> result.runs_created, result.conflicts                     # doctest: +SKIP
    """
    from ..store.current import get_store

    store = store or get_store()
    client = Client(uri, timeout=timeout)
    result = SyncResult(client.uri)
    experiments = [experiment] if isinstance(experiment, str) else experiment
    try:
        mapping = _push_runs(store, client, experiments, result, max(1, workers))
        if models:
            push_models(store, client, result, mapping, experiments)
    except SyncError as exc:
        raise SyncError(f"Sync to {client.uri} stopped: {exc} Pushed before it stopped: "
                        f"{result.summary()}; sync again to resume.") from None
    finally:
        client.close()
    return result


def _push_runs(store: Store, client: Client, experiments: list[str] | None,
               result: SyncResult, workers: int) -> dict[str, str]:
    """Create and fill the remote runs; returns local run id -> remote run id."""
    runs = local_runs(store, experiments)
    known = ledger.entries(store, client.uri, "run")
    changed = [r for r in runs if _sent(known, r.run_id).get("q") != r.quick]
    if not changed:
        return {k: v[0] for k, v in known.items() if v[0]}
    ids = _experiment_ids(store, client, dict.fromkeys(r.experiment for r in changed), result)
    remote = {k: v[0] for k, v in known.items() if v[1] != ledger.CREATING}
    states = {k: json.loads(v[1]) for k, v in known.items() if v[1] != ledger.CREATING}
    # A run marked 'creating' by a sync that stopped may exist there already.
    for run in changed:
        if run.run_id in known and known[run.run_id][1] == ledger.CREATING:
            found = _find_remote_run(client, ids[run.experiment], run.run_id)
            if found:
                remote[run.run_id] = found
                states[run.run_id] = {}
                ledger.record(store, client.uri, "run", [(run.run_id, found, "{}")])
    new = [r for r in changed if r.run_id not in remote]
    ledger.record(store, client.uri, "run", [(r.run_id, None, ledger.CREATING) for r in new])
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlops-sync") as pool:
        created: list[tuple[str, str | None, str]] = []
        futures = {pool.submit(_create_run, client, r, ids[r.experiment]): r for r in new}
        try:
            for future in _completed(futures):
                run = futures[future]
                remote[run.run_id] = future.result()
                states[run.run_id] = {}
                created.append((run.run_id, remote[run.run_id], "{}"))
                result.runs_created += 1
                if len(created) >= RECORD_EVERY:
                    ledger.record(store, client.uri, "run", created)
                    created = []
        finally:
            ledger.record(store, client.uri, "run", created)
        _fill(store, client, pool, changed, remote, states, result, known, workers)
    return remote


def _completed(futures: dict[Future, Any]) -> Iterable[Future]:
    """Futures as they finish; on the first failure the rest are cancelled or awaited
    (what they did is still reported), then the failure is raised."""
    pending = set(futures)
    failure: BaseException | None = None
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            if future.cancelled():
                continue
            if future.exception() is not None:
                if failure is None:
                    failure = future.exception()
                    for other in pending:
                        other.cancel()
                continue
            yield future
    if failure is not None:
        raise failure


def _done(data: Payload) -> tuple[str, str, str]:
    return data.run.run_id, data.remote_id, json.dumps(data.state, allow_nan=False)


def _fill(store: Store, client: Client, pool: ThreadPoolExecutor, changed: list[LocalRun],
          remote: dict[str, str], states: dict[str, dict], result: SyncResult,
          known: dict[str, tuple], workers: int) -> None:
    roots: dict[str, str] = {}
    done: list[tuple[str, str | None, str]] = []
    window = 2 * workers  # payloads read ahead of the senders, so memory stays bounded
    queue = list(changed)
    futures: dict[Future, Payload] = {}
    try:
        while queue or futures:
            while queue and len(futures) < window:
                run = queue.pop(0)
                data = payload(store, run, remote[run.run_id], states.get(run.run_id, {}),
                               remote.get(run.parent_run_id or ""))
                root = _artifact_root(client, data.remote_id, roots) if data.artifacts else ""
                futures[pool.submit(_send, client, data, root)] = data
            finished, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in finished:
                data = futures.pop(future)
                future.result()  # raises the first failure; finished ones are recorded below
                done.append(_done(data))
                if data.run.run_id in known and known[data.run.run_id][1] != ledger.CREATING:
                    result.runs_updated += 1
                result.metrics += len(data.metrics)
                result.artifacts += sum(1 for a in data.artifacts if a[0] != CELL_SOURCE)
            if len(done) >= RECORD_EVERY:
                ledger.record(store, client.uri, "run", done)
                done = []
    except BaseException:
        for future in futures:
            future.cancel()
        for future, data in futures.items():
            if not future.cancelled() and future.exception() is None:
                done.append(_done(data))
        raise
    finally:
        ledger.record(store, client.uri, "run", done)
