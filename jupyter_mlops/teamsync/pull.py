"""``pull(uri, experiment=...)``: copy a colleague's runs from an MLflow tracking server into
this store, beside the user's own, so ``search_runs``, ``%mlops runs`` and ``compare`` show
them together.

A pulled run keeps the server's run id, names the server in its ``origin`` column and its
``jupyter_mlops.origin`` tag, and is a read-only copy: a later pull replaces it with the
server's newer state, and nothing made here is ever overwritten. Runs this store pushed to
that server are not pulled back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import SyncError
from ..store.sqlite import Store
from ..tracking import storage
from . import ledger, versions
from .rest import MAX_PAGES, Client
from .runs import digest

HISTORY_PAGE = 25_000


@dataclass
class PullResult:
    """What one pull brought: runs new here, runs refreshed, and runs left as they were."""

    uri: str
    new: int = 0
    refreshed: int = 0
    unchanged: int = 0
    metrics: int = 0
    versions: int = 0
    skipped: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [f"Pulled from {self.uri}: {self.new} new run(s), {self.refreshed} refreshed, "
                 f"{self.unchanged} unchanged, {self.metrics} metric point(s), "
                 f"{self.versions} registered version(s) (read-only)."]
        return lines + [f"  skipped: {s}" for s in self.skipped]

    def __repr__(self) -> str:
        return "\n".join(self.lines())


def _history(client: Client, run_id: str, key: str) -> list[tuple[str, float, int, float]]:
    points: list[tuple[str, float, int, float]] = []
    token = None
    for _ in range(MAX_PAGES):
        query: dict[str, Any] = {"run_id": run_id, "metric_key": key,
                                 "max_results": HISTORY_PAGE}
        if token:
            query["page_token"] = token
        answer = client.call("GET", "metrics/get-history", query)
        points += [(key, float(m["value"]), int(m.get("step", 0)), m["timestamp"] / 1000)
                   for m in answer.get("metrics", [])]
        token = answer.get("next_page_token")
        if not token:
            break
    return points


def pull(uri: str, experiment: str | list[str], *, store: Store | None = None,
         timeout: float = 60.0) -> PullResult:
    """Copy the runs of ``experiment`` on the MLflow server at ``uri`` into this store,
    and the registered versions made from them as read-only records (``pulled_versions``).

    Examples
    --------
    >>> pull("http://127.0.0.1:5000", experiment="churn")          # doctest: +SKIP
    >>> search_runs("churn")[["run_id", "user", "origin"]]         # doctest: +SKIP
    """
    from ..store.current import get_store

    store = store or get_store()
    client = Client(uri, timeout=timeout)
    result = PullResult(client.uri)
    names = [experiment] if isinstance(experiment, str) else list(experiment)
    try:
        ours = {remote for remote, _ in ledger.entries(store, client.uri, "run").values()}
        seen = ledger.entries(store, client.uri, "pulled")
        pushed = {(local.rsplit("/", 1)[0], str(remote)) for local, (remote, _) in
                  ledger.entries(store, client.uri, "version").items() if remote}
        for name in names:
            found = client.get_or_none("experiments/get-by-name", {"experiment_name": name})
            if found is None:
                raise SyncError(f"{client.uri} has no experiment {name!r}; list them in its UI "
                                "or with mlflow experiments search.")
            theirs = []
            for remote in client.search_runs([found["experiment"]["experiment_id"]]):
                _pull_run(store, client, remote, name, ours, seen, result)
                if remote["info"]["run_id"] not in ours:
                    theirs.append(remote["info"]["run_id"])
            result.versions += versions.replace(store, client.uri, versions.fetch(client, theirs),
                                                pushed)
    except SyncError as exc:
        raise SyncError(f"Pull from {client.uri} stopped: {exc} Before it stopped: "
                        f"{result.lines()[0]} Pull again to finish.") from None
    finally:
        client.close()
    return result


def _pull_run(store: Store, client: Client, remote: dict[str, Any], experiment: str,
              ours: set[str | None], seen: dict[str, tuple], result: PullResult) -> None:
    info, data = remote["info"], remote.get("data", {})
    run_id = info["run_id"]
    if run_id in ours:
        return  # pushed from here
    tags = {t["key"]: t["value"] for t in data.get("tags", [])}
    params = {p["key"]: p["value"] for p in data.get("params", [])}
    latest = sorted((m["key"], m.get("step", 0), m["timestamp"], str(m["value"]))
                    for m in data.get("metrics", []))
    state = digest([info.get("status"), info.get("end_time"), info.get("run_name"), tags,
                    params, latest])
    if seen.get(run_id, (None, None))[1] == state:
        result.unchanged += 1
        return
    metrics = []
    for key in sorted({m["key"] for m in data.get("metrics", [])}):
        metrics += _history(client, run_id, key)
    count = tags.get("jupyter_mlops.execution_count")
    tags["jupyter_mlops.origin"] = client.uri
    record = {
        "run_id": run_id, "experiment": experiment, "name": info.get("run_name"),
        "status": info.get("status", "FINISHED"), "start_time": info["start_time"] / 1000,
        "end_time": None if info.get("end_time") is None else info["end_time"] / 1000,
        "user": tags.get("mlflow.user") or info.get("user_id") or None, "origin": client.uri,
        "cell_id": tags.get("jupyter_mlops.cell_id"),
        "execution_count": int(count) if count and count.isdigit() else None,
    }
    if not storage.replace_pulled_run(store, record, params, tags, metrics):
        result.skipped.append(f"run {run_id}: a run made here has the same id")
        return
    ledger.record(store, client.uri, "pulled", [(run_id, run_id, state)])
    if run_id in seen:
        result.refreshed += 1
    else:
        result.new += 1
    result.metrics += len(metrics)
