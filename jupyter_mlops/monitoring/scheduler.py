"""The scheduler: checks the store's triggers and fires those that are due.

Hosted by the Jupyter server extension (no daemon of its own) or run headless by
``jupyter-mlops scheduler``. A firing runs the trigger's notebook with its parameters
(``run_notebook``: one run, the cells' runs its children), then, when the trigger names a
model alias and gates, checks the version the notebook produced against that alias and
moves the alias only when every gate passes, then POSTs the outcome to the webhook. Every
firing is a ``firings`` row; due times missed while no scheduler ran are recorded as one
``missed`` row, not silently skipped; a trigger fires at most once at a time, across
processes (the claim is a row, and a claim left by a dead process is released).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..store.process import current_process, is_alive
from ..tracking import storage
from .triggers import Due, Trigger, due, triggers

WEBHOOK_TIMEOUT_S = 10


@dataclass
class Firing:
    firing_id: str
    trigger: str
    status: str  # running, finished, failed, refused, missed
    reason: str
    run_id: str | None = None
    version: int | None = None
    promoted: bool = False
    message: str = ""


class Scheduler:
    """Checks triggers every ``interval`` seconds on a thread of its own (``start``), or
    once (``tick``). Firings run on worker threads so a long notebook holds up no other
    trigger."""

    def __init__(self, store: Any = None, interval: float = 15.0, log: Any = None, *,
                 opener: Any = None) -> None:
        """``store``, or ``opener``: a callable giving the store, or None while there is
        none yet (the server extension's, which never creates a store itself)."""
        self.store = store
        self._opener = opener
        self.interval = interval
        self.log = log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._workers: list[threading.Thread] = []

    # -- the loop ------------------------------------------------------------------------

    def start(self) -> Scheduler:
        self._thread = threading.Thread(target=self._loop, name="jupyter_mlops-scheduler",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._opener is not None:
            self.store = None  # the opener's to close; a store deleted since is let go here

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - one bad tick must not end the loop
                self._say(f"scheduler tick failed: {type(exc).__name__}: {exc}")
            self._stop.wait(self.interval)

    def tick(self, now: float | None = None, *, wait: bool = False) -> list[Firing]:
        """Check every trigger once; fire the due ones (``wait``: until they finish)."""
        now = time.time() if now is None else now
        if self._opener is not None:
            self.store = self._opener()
        if self.store is None or self.store.read_only:
            return []
        started = []
        for trigger in triggers(self.store):
            found, state = due(trigger, now, self.store)
            with self.store.write() as conn:
                conn.execute("UPDATE triggers SET state = ?, last_checked = ? WHERE name = ?",
                             (json.dumps(state, allow_nan=False), now, trigger.name))
            if found is None:
                continue
            firing = self._claim(trigger, found)
            if firing is None:
                continue
            started.append(firing)
            worker = threading.Thread(target=self._fire, args=(trigger, firing),
                                      name=f"jupyter_mlops-fire-{trigger.name}", daemon=True)
            self._workers = [w for w in self._workers if w.is_alive()] + [worker]
            worker.start()
            if wait:
                worker.join()
        return started

    def join(self, timeout: float | None = None) -> None:
        """Wait for the firings under way."""
        for worker in list(self._workers):
            worker.join(timeout)

    def _say(self, text: str) -> None:
        if self.log is not None and text != getattr(self, "_said", None):
            self._said = text  # the same trouble every tick is said once
            self.log.warning("jupyter_mlops: %s", text)

    # -- one firing ----------------------------------------------------------------------

    def _claim(self, trigger: Trigger, found: Due) -> Firing | None:
        """A ``running`` row for the trigger, unless one of a live process exists."""
        pid, host, start = current_process()
        now = time.time()
        with self.store.write() as conn:
            for firing_id, r_pid, r_host, r_start in conn.execute(
                    "SELECT firing_id, pid, host, proc_start FROM firings WHERE trigger = ? AND "
                    "status = 'running'", (trigger.name,)).fetchall():
                if is_alive(r_pid, r_host, r_start):
                    return None  # at most one firing of a trigger at a time
                conn.execute("UPDATE firings SET status = 'failed', finished = ?, message = "
                             "'the process firing it ended first' WHERE firing_id = ?",
                             (now, firing_id))
            if found.missed:
                conn.execute(
                    "INSERT INTO firings (firing_id, trigger, started, finished, status, "
                    "reason, message) VALUES (?, ?, ?, ?, 'missed', ?, ?)",
                    (uuid.uuid4().hex, trigger.name, now, now, found.reason,
                     f"{found.missed} due time(s) passed while no scheduler ran; fired once "
                     "for all of them"))
            firing = Firing(uuid.uuid4().hex, trigger.name, "running", found.reason)
            conn.execute(
                "INSERT INTO firings (firing_id, trigger, started, status, reason, pid, host, "
                "proc_start) VALUES (?, ?, ?, 'running', ?, ?, ?, ?)",
                (firing.firing_id, trigger.name, now, found.reason, pid, host, start))
        return firing

    def _fire(self, trigger: Trigger, firing: Firing) -> None:
        from ..store import Store

        store = Store(self.store.path)  # this thread's own connection
        try:
            try:
                self._run(store, trigger, firing)
            except Exception as exc:  # noqa: BLE001 - recorded on the firing, never lost
                firing.status = "failed"
                firing.message = f"{type(exc).__name__}: {exc}".split("\n", 1)[0]
            finally:
                with store.write() as conn:
                    conn.execute(
                        "UPDATE firings SET finished = ?, status = ?, run_id = ?, version = ?, "
                        "promoted = ?, message = ? WHERE firing_id = ?",
                        (time.time(), firing.status, firing.run_id, firing.version,
                         int(firing.promoted), firing.message[:2000], firing.firing_id))
                self._notify(store, trigger, firing)
        finally:
            store.close()

    def _run(self, store: Any, trigger: Trigger, firing: Firing) -> None:
        from ..registry.versions import parse_model_uri, set_alias
        from ..tracking.notebook_runs import run_notebook
        from .gates import check
        from .retrain import _new_version

        untrusted = trigger.untrusted()
        if untrusted is not None:
            firing.status = "refused"
            firing.message = (f"trigger {trigger.name!r} was not fired: {untrusted}; "
                              "schedule it again yourself to trust it")
            return
        name = before = None
        if trigger.model is not None:
            name, _, alias = parse_model_uri(trigger.model)
            before = store.query("SELECT max(version) FROM model_versions WHERE name = ?",
                                      (name,))[0][0] or 0
        started = time.time()
        if Path(trigger.notebook).is_dir():  # a pipeline's folder
            from ..pipelines.pipeline import open_pipeline

            result = open_pipeline(trigger.notebook, store=store).run(trigger.parameters)
            storage.set_tags(store, result.run_id, {
                "jupyter_mlops.trigger": trigger.name,
                "jupyter_mlops.trigger_reason": firing.reason[:500]})
        else:
            result = run_notebook(trigger.notebook, trigger.parameters, store=store,
                                  tags={"jupyter_mlops.trigger": trigger.name,
                                        "jupyter_mlops.trigger_reason": firing.reason[:500]})
        firing.run_id = result.run_id
        if result.status != "FINISHED":
            firing.status = "failed"
            firing.message = result.error or "the notebook failed"
            return
        firing.status = "finished"
        firing.message = f"ran {trigger.notebook}"
        if trigger.model is None:
            return
        version, how = _new_version(store, name, before, started)
        if version is None or version <= before:
            firing.message += f"; {how}: nothing to promote"
            return
        firing.version = version
        if not trigger.gate:
            firing.message += (f"; registered {name}/{version}; @{alias} not moved (the "
                               "trigger has no gate)")
            return
        current = store.query("SELECT version FROM aliases WHERE name = ? AND alias = ?",
                                   (name, alias))
        against = trigger.model if current else None
        checked = check(f"{name}/{version}", against, store=store, **trigger.gate)
        firing.message += f"; {name}/{version}: " + ", ".join(
            f"{g.name} {g.verdict}" for g in checked.gates)
        if checked.passed:
            set_alias(name, version, alias, store=store)
            firing.promoted = True
            firing.message += f"; moved @{alias} to {version}"
        else:
            firing.message += f"; @{alias} not moved"

    def _notify(self, store: Any, trigger: Trigger, firing: Firing) -> None:
        """POST the outcome to the trigger's webhook; a failure is noted, never raised."""
        if not trigger.webhook or firing.status == "refused":
            return
        import urllib.request

        body = json.dumps({"trigger": trigger.name, "reason": firing.reason,
                           "status": firing.status, "run_id": firing.run_id,
                           "model": trigger.model, "version": firing.version,
                           "promoted": firing.promoted, "message": firing.message},
                          allow_nan=False).encode()
        request = urllib.request.Request(trigger.webhook, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:
                response.read(1 << 16)
        except Exception as exc:  # noqa: BLE001 - the firing stands; say the hook failed
            note = f"; webhook failed: {type(exc).__name__}: {exc}"[:300]
            with store.write() as conn:
                conn.execute("UPDATE firings SET message = message || ? WHERE firing_id = ?",
                             (note, firing.firing_id))
