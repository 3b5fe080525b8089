"""A pipeline cut from what really ran: ``pipeline("churn@champion")``, then ``.run(C=0.5)``.

``pipeline(uri)`` cuts the model's replay slice into steps (the rule is in ``cut``) and
writes them as plain Python into ``<store>/pipelines/<model name>/`` (see ``folder``). A run
is one run of the store (experiment ``pipelines``): the runner runs in a process of its own
with the folder the notebook ran in as working directory, each step cached by the sha256 of
its source, its parameters and its inputs; the model it makes is registered as a new version
of the same model, its run the pipeline run. ``verify`` compares that model's predictions
with the slice's model's.

What is pickled into the cache is unpickled again only when this user signed it: the runner
is handed the cache entries and values whose signatures verify, the ones it adds are signed
once it reports them. The files of the folder are signed when written, and a run refuses
files changed since (``trust`` vouches for an edit).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.machinery import SourceFileLoader
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, ValidationError, shorten
from ..store.signing import sign, sign_statement, verify, verify_statement
from ..validation import check_name
from .cut import Step, cut
from .folder import RUNNER, private_folder, read_plan, write_folder

EXPERIMENT = "pipelines"
TAG = "jupyter_mlops.pipeline"
MODEL_TAG = "jupyter_mlops.pipeline_model"
VERSION_TAG = "jupyter_mlops.pipeline_version"
REPORT = "pipeline_report.json"
_SIGNATURE = ".signature"


class PipelineStepError(Exception):
    """A step of a pipeline run raised (the pipeline run's recorded error)."""


@dataclass
class PipelineRun:
    """What one run of a pipeline did: each step ``ran``, ``cached`` or ``failed``."""

    run_id: str
    status: str
    parameters: dict[str, Any]
    steps: list[dict[str, Any]] = field(repr=False)
    version: int | None = None
    error: str | None = None
    seconds: float = 0.0
    note: str = ""

    @property
    def ran(self) -> list[str]:
        return [s["step"] for s in self.steps if s["status"] == "ran"]

    @property
    def cached(self) -> list[str]:
        return [s["step"] for s in self.steps if s["status"] == "cached"]

    def __str__(self) -> str:
        lines = [f"pipeline run {self.run_id[:8]} {self.status} in {self.seconds:.2f} s: "
                 f"{len(self.ran)} step(s) ran, {len(self.cached)} from the cache"
                 + (f"; {self.note}" if self.note else "")]
        lines += [f"  {s['status']:<7} {s['step']}  ({s['label']})" for s in self.steps]
        if self.error:
            lines.append(self.error)
        return "\n".join(lines)


@dataclass
class Pipeline:
    """A pipeline's folder and the store it runs against."""

    name: str
    folder: Path
    store: Any

    @property
    def plan(self) -> dict[str, Any]:
        return read_plan(self.folder)

    @property
    def parameters(self) -> dict[str, Any]:
        """Parameter name → default."""
        return {k: v["default"] for k, v in self.plan["parameters"].items()}

    @property
    def steps(self) -> list[dict[str, Any]]:
        return self.plan["steps"]

    @property
    def cache(self) -> Path:
        return Path(self.store.path) / "pipeline-cache" / self.name

    def __repr__(self) -> str:
        plan = self.plan
        lines = [f"<Pipeline {self.name} from {plan['source_version']}: "
                 f"{len(plan['steps'])} step(s), parameters "
                 + (", ".join(f"{k}={v!r}" for k, v in self.parameters.items()) or "none")
                 + ">"]
        for step in plan["steps"]:
            reads = f" <- {', '.join(step['inputs'])}" if step["inputs"] else ""
            takes = f" [{', '.join(step['params'])}]" if step["params"] else ""
            lines.append(f"  {step['module']}{takes}{reads} -> "
                         f"{', '.join(step['outputs']) or '-'}  ({step['label']})")
        return "\n".join(lines)

    # -- running ---------------------------------------------------------------------------

    def check_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """All parameters with ``parameters`` applied; an unknown name or a value of the
        wrong type is refused, in one line, before anything runs."""
        runner = _runner_module()
        try:
            return runner.parameters(self.plan["parameters"], parameters)
        except runner.Refused as exc:
            raise ValidationError(f"{exc} Nothing was run.") from None

    def run(self, parameters: dict[str, Any] | None = None, *, timeout: float = 3600,
            **values: Any) -> PipelineRun:
        """Run the pipeline with ``parameters`` (or keywords), as one run of the store.

        Examples
        --------
        >>> result = pipeline("churn@champion").run(C=0.5)     # doctest: +SKIP
        >>> result.ran, result.version                         # doctest: +SKIP
        (['s03_model'], 4)
        """
        from ..tracking.runs import _end, log_bytes, log_metrics, log_params, set_tags, start_run

        given = {**(parameters or {}), **values}
        checked = self.check_parameters(given)
        self._check_files()
        started = time.perf_counter()
        run = start_run(f"pipeline {self.name}", EXPERIMENT,
                        {TAG: self.name, "jupyter_mlops.pipeline_of": self.plan["source_version"]},
                        store=self.store)
        try:
            if checked:
                log_params(checked)
            report, failure = self._execute(given, timeout)
            if report is not None:
                log_bytes(json.dumps(report, allow_nan=False, default=repr).encode(), REPORT,
                          media_type="application/json")
            steps = (report or {}).get("steps", [])
            log_metrics({"steps_ran": sum(s["status"] == "ran" for s in steps),
                         "steps_cached": sum(s["status"] == "cached" for s in steps)})
            result = PipelineRun(run.run_id, "FINISHED", checked, steps)
            if failure is not None:
                result.status, result.error = "FAILED", failure
                result.seconds = time.perf_counter() - started
                _end(run, "FAILED", PipelineStepError(failure))
                return result
            result.version, result.note = self._register(run.run_id, report)
            set_tags({VERSION_TAG: str(result.version), MODEL_TAG: _model_key(report)})
        except BaseException as exc:
            _end(run, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED", exc)
            raise
        _end(run, "FINISHED")
        result.seconds = time.perf_counter() - started
        return result

    def _execute(self, given: dict[str, Any], timeout: float
                 ) -> tuple[dict[str, Any] | None, str | None]:
        """Run the runner; its report and, when a step failed, the error naming it."""
        private_folder(self.cache / "objects")
        private_folder(self.cache / "steps")
        with tempfile.TemporaryDirectory(prefix="mlops-pipeline-") as scratch:
            trusted, report_path = Path(scratch, "trusted.json"), Path(scratch, "report.json")
            trusted.write_text(json.dumps(_trusted(self.cache), allow_nan=False))
            done = subprocess.run(
                [sys.executable, str(self.folder / "run.py"), "--parameters-json",
                 json.dumps(given, allow_nan=False), "--cache", str(self.cache), "--trusted",
                 str(trusted), "--report", str(report_path)],
                cwd=self.folder, capture_output=True, text=True, timeout=timeout,
                env={**os.environ, "JUPYTER_MLOPS_STORE": str(self.store.path),
                     "MPLBACKEND": "Agg"})
            report = json.loads(report_path.read_text()) if report_path.is_file() else None
        if report is None:
            tail = done.stderr.strip()[-4000:] or "no output"
            return None, f"The pipeline's runner failed before reporting:\n{tail}"
        _sign_new(self.cache, report)
        failed = report.get("failed")
        if failed:
            step = next(s for s in report["steps"] if s["step"] == failed)
            return report, (f"Step {failed} ({step['label']}) of pipeline {self.name} failed; "
                            f"the steps after it did not run.\n{step['traceback']}")
        return report, None

    def _register(self, run_id: str, report: dict[str, Any]) -> tuple[int, str]:
        """The version of this run's model: one registered before for the same model
        values when nothing changed, else a new one whose run is ``run_id``."""
        from ..registry.versions import register_model

        plan, key = self.plan, _model_key(report)
        model_name = plan["source_version"].split("/")[0]
        earlier = self.store.query(
            "SELECT v.value FROM tags m JOIN tags v ON v.run_id = m.run_id AND v.key = ? "
            "JOIN model_versions mv ON mv.name = ? AND mv.version = CAST(v.value AS INTEGER) "
            "WHERE m.key = ? AND m.value = ? ORDER BY v.run_id LIMIT 1",
            (VERSION_TAG, model_name, MODEL_TAG, key))
        if earlier:
            return int(earlier[0][0]), (f"the model is the one {model_name}/{earlier[0][0]} "
                                        "holds: no new version")
        parts = [self._load(report["model"][p], p) for p in plan["model"]]
        model = parts[0] if len(parts) == 1 else tuple(parts)
        # The data it was fitted on, as the registry keeps it for drift and monitoring.
        outputs = _outputs(report)
        train = next((n for n in plan.get("train", []) if n in outputs), None)
        version = register_model(
            model, model_name, run_id=run_id, variable=",".join(plan["model"]),
            reference=None if train is None else self._load(outputs[train], train),
            store=self.store)
        return version.version, f"registered {model_name}/{version.version}"

    def _load(self, digest: str, what: str) -> Any:
        from ..store.serialize import load_verified

        signature = _read(self.cache / "objects" / f"{digest}.sig")
        with open(self.cache / "objects" / f"{digest}.pkl", "rb") as handle:
            return load_verified(handle, digest, f"Pipeline value {what!r}",
                                 signature=signature)

    # -- trust -----------------------------------------------------------------------------

    def _check_files(self) -> None:
        files = _file_digests(self.folder)
        signed = _read(self.folder / _SIGNATURE)
        if verify_statement("pipeline files", [self.name, files], signed) is None:
            return
        try:
            before = json.loads(_read(self.folder / ".files") or "{}")
        except ValueError:
            before = {}
        changed = sorted(set(files) ^ set(before) | {f for f in files if before.get(f) != files[f]})
        raise ValidationError(
            f"Pipeline {self.name} was not run: " + (
                f"{', '.join(changed[:3])} changed since it was written" if changed else
                "its files carry no signature of yours") +
            f". Read them in {self.folder}; if the change is yours, trust it with "
            f"jupyter-mlops pipeline trust {self.name}, or cut the pipeline again.")

    def trust(self) -> None:
        """Vouch for the folder's files as they are now (after editing a step)."""
        _sign_files(self.folder, self.name)

    # -- verification ----------------------------------------------------------------------

    def verify(self, run_id: str | None = None) -> Any:
        """Compare the model of a pipeline run (the latest finished one by default) with the
        model the pipeline was cut from, by their predictions on the training data."""
        import numpy as np

        from ..registry.replay import Verification
        from ..registry.versions import load_model
        from ..tracking.frameworks import plain_data, predictor

        run_id, report = self._report(run_id)
        plan = self.plan
        version = self.store.query("SELECT value FROM tags WHERE run_id = ? AND key = ?",
                                   (run_id, VERSION_TAG))
        if not version:
            return Verification(False, f"Pipeline run {run_id[:8]} registered no model.")
        model_name = plan["source_version"].split("/")[0]
        built = load_model(f"{model_name}/{version[0][0]}", store=self.store)
        source = load_model(plan["source_version"], store=self.store)
        outputs = _outputs(report)
        for name in [n for n in plan.get("train", []) if n in outputs] + sorted(outputs):
            if name in plan["model"]:
                continue
            try:
                X = plain_data(self._load(outputs[name], name))
                theirs = np.asarray(predictor(source).predict(X))
            except Exception:  # noqa: BLE001 - not what the model predicts from; try the next
                continue
            mine = np.asarray(predictor(built).predict(X))
            label = f"{model_name}/{version[0][0]} (pipeline run {run_id[:8]})"
            if mine.shape == theirs.shape and bool(np.all(mine == theirs)):
                return Verification(True, f"{label} predicts the same as "
                                          f"{plan['source_version']} on all {len(theirs)} rows "
                                          f"of {name}.", {"rows": len(theirs), "data": name})
            rows = np.flatnonzero(np.asarray(mine != theirs).reshape(len(theirs), -1).any(
                axis=1)) if mine.shape == theirs.shape else [None]
            return Verification(False, f"{label} predicts differently from "
                                       f"{plan['source_version']} on {name}, first at row "
                                       f"{rows[0]} (parameters {report['parameters']}).",
                                {"data": name})
        return Verification(False, "No value the pipeline passes between steps is data both "
                                   "models predict from.")

    def _report(self, run_id: str | None) -> tuple[str, dict[str, Any]]:
        from ..tracking import storage

        if run_id is None:
            rows = self.store.query(
                "SELECT r.run_id FROM runs r JOIN tags t ON t.run_id = r.run_id AND t.key = ? "
                "AND t.value = ? WHERE r.status = 'FINISHED' ORDER BY r.start_time DESC LIMIT 1",
                (TAG, self.name))
            if not rows:
                raise NotFoundError(f"Pipeline {self.name} has no finished run yet; run it "
                                    "first (.run() or jupyter-mlops pipeline run).")
            run_id = rows[0][0]
        run = storage.get_run(self.store, run_id)
        artifact = next((a for a in run.artifacts if a.name == REPORT), None)
        if artifact is None:
            raise NotFoundError(f"Run {run_id[:8]} is not a pipeline run with a report.")
        return run_id, json.loads(self.store.artifacts.read_verified(artifact.sha256))


# -- building and opening -------------------------------------------------------------------

def _looks_like_uri(text: str) -> bool:
    return "@" in text or "/" in text.removeprefix("models:") or text.startswith("models:")


def pipeline(uri: str, *, name: str | None = None, folder: str | os.PathLike[str] | None = None,
             store: Any = None) -> Pipeline:
    """The pipeline cut from a registered model's replay slice (``uri``: ``churn@champion``,
    ``churn/3``), written to ``folder`` (default ``<store>/pipelines/<name>``); or, given a
    plain name (``churn``) or a folder, the pipeline written there before.

    Examples
    --------
    >>> p = pipeline("churn@champion")        # doctest: +SKIP
    >>> p.parameters                          # doctest: +SKIP
    {'C': 1.0, 'max_iter': 200}
    >>> p.run(C=0.5).version                  # doctest: +SKIP
    4
    """
    from ..store.current import get_store

    store = store or get_store()
    if isinstance(uri, str) and _looks_like_uri(uri) and not Path(uri).is_dir():
        return build_pipeline(uri, name=name, folder=folder, store=store)
    return open_pipeline(uri, store=store)


def open_pipeline(name_or_folder: str | os.PathLike[str], *, store: Any = None) -> Pipeline:
    from ..store.current import get_store

    store = store or get_store()
    given = Path(name_or_folder)
    folder = given if (given / "pipeline.json").is_file() else Path(store.path) / "pipelines" / str(
        name_or_folder)
    if not (folder / "pipeline.json").is_file():
        known = sorted(p.parent.name for p in (Path(store.path) / "pipelines").glob("*/pipeline.json"))
        raise NotFoundError(f"No pipeline {shorten(str(name_or_folder))}; cut one from a model "
                            f"with pipeline('NAME@ALIAS') (known: {', '.join(known) or 'none'}).")
    return Pipeline(read_plan(folder)["name"], folder.resolve(), store)


def build_pipeline(uri: str, *, name: str | None = None,
                   folder: str | os.PathLike[str] | None = None, store: Any = None) -> Pipeline:
    """Cut ``uri``'s replay slice into steps and write them (see ``cut`` for the rule)."""
    from ..registry.chain import variable_parts
    from ..registry.replay import _prediction_inputs
    from ..registry.script import _replayed_part, script_for, script_sha256, session_cwd
    from ..registry.versions import checked_version
    from ..registry.vouching import require_replay
    from ..store.current import get_store
    from ..tracking.capture import flush_capture

    flush_capture()
    store = store or get_store()
    version, row = checked_version(uri, store=store, done="cut into a pipeline")
    source, kept = script_for(store, version)
    cwd = session_cwd(store, kept[-1].session_id)
    require_replay(store, row, script_sha256(source), cwd)
    parts = variable_parts(version.variable)
    if not parts:
        raise ValidationError(f"{version.uri} does not name the variable holding the model, so "
                              "no step can hand it over; register it with --var NAME.")
    workdir = cwd if isinstance(cwd, str) and os.path.isdir(cwd) else None
    steps, parameters = cut(kept, parts, _replayed_part, workdir)
    made = {name for step in steps for name in step.outputs}
    if not set(parts) <= made:
        missing = sorted(set(parts) - made)
        raise ValidationError(f"No step of the slice of {version.uri} binds {missing[0]!r}, so "
                              "the pipeline could not hand the model over.")
    name = check_name("Pipeline name", name or version.name)
    target = Path(folder) if folder is not None else Path(store.path) / "pipelines" / name
    write_folder(target, name, uri, steps, parameters, parts, workdir, extra={
        "source_version": f"{version.name}/{version.version}",
        "train": [e for e in _prediction_inputs(version, kept[-1]) if e.isidentifier()]})
    _sign_files(target, name)
    return Pipeline(name, target.resolve(), store)


# -- the cache and the folder's signatures ---------------------------------------------------

def _runner_module() -> Any:
    """The runner written into every folder, loaded from this package (not from a folder)
    for its parameter rules: one truth for the runner and ``run``."""
    module = sys.modules.get("_jupyter_mlops_pipeline_runner")
    if module is None:
        loader = SourceFileLoader("_jupyter_mlops_pipeline_runner", str(RUNNER))
        spec = importlib.util.spec_from_loader(loader.name, loader)
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
        sys.modules[loader.name] = module
    return module


def _outputs(report: dict[str, Any]) -> dict[str, str]:
    """Name → digest of every value the run's steps passed on."""
    return {n: d for s in report["steps"] for n, d in (s.get("outputs") or {}).items()}


def _model_key(report: dict[str, Any]) -> str:
    return ",".join(str(d) for d in report["model"].values())


def _entry_fields(key: str, entry: dict[str, str]) -> list[Any]:
    return [key, json.dumps(entry, sort_keys=True, allow_nan=False)]


def _trusted(cache: Path) -> dict[str, Any]:
    """The cache entries and values this user signed."""
    steps = {}
    for signature in (cache / "steps").glob("*.sig"):
        try:
            entry = json.loads((cache / "steps" / f"{signature.stem}.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(entry, dict) and verify_statement(
                "pipeline cache entry", _entry_fields(signature.stem, entry),
                _read(signature)) is None:
            steps[signature.stem] = entry
    objects = [s.stem for s in (cache / "objects").glob("*.sig")
               if verify(s.stem, _read(s)) is None]
    return {"steps": steps, "objects": objects}


def _sign_new(cache: Path, report: dict[str, Any]) -> None:
    """Sign the entries and values the runner added: it is this user's own process."""
    for step in report["steps"]:
        if step["status"] != "ran":
            continue
        for digest in step["outputs"].values():
            _private(cache / "objects" / f"{digest}.sig", sign(digest))
        _private(cache / "steps" / f"{step['key']}.sig",
                 sign_statement("pipeline cache entry", _entry_fields(step["key"],
                                                                      step["outputs"])))


def _file_digests(folder: Path) -> dict[str, str]:
    files = [folder / "pipeline.json", folder / "run.py",
             *sorted((folder / "steps").glob("*.py"))]
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in files if f.is_file()}


def _sign_files(folder: Path, name: str) -> None:
    files = _file_digests(folder)
    _private(folder / _SIGNATURE, sign_statement("pipeline files", [name, files]))
    _private(folder / ".files", json.dumps(files, sort_keys=True, allow_nan=False))


def _private(path: Path, text: str | None) -> None:
    if text is None:
        return
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.replace(temporary, path)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


__all__ = ["Pipeline", "PipelineRun", "PipelineStepError", "Step", "build_pipeline",
           "open_pipeline", "pipeline"]
