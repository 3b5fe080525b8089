"""Plain, immutable records returned by the public API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

# The one list of run statuses; the sidebar's api.ts holds the same list (a test compares).
RUN_STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")
TERMINAL_STATUSES = RUN_STATUSES[1:]  # what a run can end as
# Metrics under this prefix are what a tracked cell cost (CPU, memory, GPU), recorded by
# itself: MLflow's system metrics, named with a dot as our keys are.
SYSTEM_METRIC_PREFIX = "system."


class MetricSource(Protocol):
    """What a Run needs of the store it came from (the store satisfies it), so entities do
    not depend on the store."""

    def metric_history(self, run_id: str, key: str) -> list[Metric]: ...


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    step: int
    timestamp: float


@dataclass(frozen=True)
class Artifact:
    name: str
    kind: str
    sha256: str
    size: int
    media_type: str | None


@dataclass(frozen=True)
class DatasetInput:
    name: str
    role: str
    fingerprint: str
    kind: str
    shape: tuple[int, ...]
    columns: list[str] | None
    dtypes: list[str] | None


@dataclass(frozen=True)
class CellExecution:
    id: int
    session_id: str
    execution_count: int | None
    cell_id: str | None
    source: str
    defined: list[str]
    used: list[str]
    started: float
    duration_s: float | None
    status: str
    error: str | None
    run_id: str | None
    modified: list[str] = field(default_factory=list)
    statements_run: int | None = None  # of a failed execution: how far it got
    unchanged: list[str] = field(default_factory=list)  # bound again to the same value
    cpu_time_s: float | None = None  # CPU time of the process while the cell ran
    start_rss: int | None = None  # resident memory (bytes) when the cell started
    peak_rss: int | None = None  # the highest resident memory (bytes) while it ran


@dataclass(frozen=True)
class Environment:
    """What a kernel session ran on, recorded once per session.

    ``vouched`` is True when the record carries this user's signature, so its versions can
    be written into requirement files.
    """

    session_id: str
    started: float | None
    notebook: str | None
    cwd: str | None
    python: str | None
    implementation: str | None
    platform: str | None
    machine: str | None
    packages: dict[str, str]
    git_commit: str | None
    git_branch: str | None
    git_dirty: bool | None
    sha256: str | None = None
    vouched: bool = False

    def __repr__(self) -> str:
        git = ""
        if self.git_commit:
            git = f", git {self.git_commit[:10]}{' (dirty)' if self.git_dirty else ''}"
        return (f"<Environment of session {self.session_id[:8]}: Python {self.python} on "
                f"{self.platform}, {len(self.packages)} distributions{git}>")

    def _repr_html_(self) -> str:
        from .dashboards.environment import environment_html

        return environment_html(self)


@dataclass(frozen=True)
class Run:
    """One tracked run, as stored. ``metric_history`` reads every step on demand."""

    run_id: str
    experiment: str
    name: str | None
    status: str
    start_time: float
    end_time: float | None
    session_id: str | None
    cell_id: str | None
    execution_count: int | None
    source: str | None
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    artifacts: list[Artifact]
    inputs: list[DatasetInput]
    cells: list[CellExecution]
    error_type: str | None = None
    error: str | None = None
    traceback: str | None = None
    parent_run_id: str | None = None  # a search's candidate, or a run started nested
    environment: Environment | None = None  # of the session that made it, via get_run
    # The system.* metrics (what the cell cost), kept apart from what it measured.
    system_metrics: dict[str, float] = field(default_factory=dict)
    _store: MetricSource | None = field(default=None, repr=False, compare=False)

    @property
    def duration_s(self) -> float | None:
        return None if self.end_time is None else self.end_time - self.start_time

    @property
    def model_names(self) -> list[str]:
        """The variables the run's models were saved from (``model/<var>.pkl``)."""
        return [a.name[len("model/"):].rsplit(".", 1)[0] for a in self.artifacts
                if a.kind == "model" and a.name.startswith("model/")]

    def model_of(self, key: str) -> str | None:
        """The model a param key belongs to (``clf.max_depth`` -> ``clf``), or None for
        the cell's own params."""
        prefix, dot, _ = key.partition(".")
        return prefix if dot and prefix in self.model_names else None

    def metric_history(self, key: str) -> list[Metric]:
        """Every logged step of ``key``, in step order."""
        if self._store is None:
            raise RuntimeError("This Run was built without a store; use get_run(run_id).")
        return self._store.metric_history(self.run_id, key)

    def __repr__(self) -> str:
        return (f"<Run {self.run_id[:8]} {self.name!r} {self.status} in {self.experiment!r}: "
                f"{len(self.params)} params, {len(self.metrics)} metrics, "
                f"{len(self.artifacts)} artifacts>")

    def _repr_html_(self) -> str:
        from .dashboards.runs import run_html

        return run_html(self)
