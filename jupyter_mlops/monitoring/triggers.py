"""Triggers: what makes a training notebook run by itself, kept in the store.

A trigger names a notebook (with parameters) and when to run it: a cron expression, a
period, a new or changed file in a folder, a new monitoring alert of a model, or a change
of the notebook's own code. Optionally it names the model alias to move (``churn@champion``)
and the gates the new version must pass first (``check``'s options), and a webhook to tell.
Firing runs code, so each trigger row is signed with its author's key and a trigger whose
signature is not the user's own never fires (a store shared with others cannot make this
user run their notebook).

Deciding *whether* a trigger is due lives here; *firing* it lives in ``scheduler``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, ValidationError, shorten
from ..store.signing import sign_statement, verify_statement
from ..validation import check_name

KINDS = ("cron", "every", "watch", "alert", "code")
MAX_WATCHED_FILES = 10_000  # a folder watched is a data folder, not a file system
MAX_MISSED_COUNTED = 10_000


@dataclass(frozen=True)
class Trigger:
    name: str
    kind: str
    spec: str
    notebook: str
    parameters: dict[str, Any]
    model: str | None
    gate: dict[str, Any] | None
    webhook: str | None
    created: float
    enabled: bool = True
    hmac: str | None = None
    state: Any = None
    last_checked: float | None = None

    def fields(self) -> list[Any]:
        """What the author's signature covers: everything that decides what runs."""
        return [self.name, self.kind, self.spec, self.notebook, _dump(self.parameters),
                self.model, _dump(self.gate), self.webhook]

    def untrusted(self) -> str | None:
        """None when this user signed the trigger as it stands, else why it may not fire."""
        return verify_statement("trigger", self.fields(), self.hmac)


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, allow_nan=False)


def _parse_every(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    try:
        seconds = float(number) * units[unit]
    except (KeyError, ValueError):
        raise ValidationError(f"A period is a number and a unit (s, m, h or d), such as 30s or "
                              f"6h; got {shorten(text)}.") from None
    if not math.isfinite(seconds) or seconds < 1:
        raise ValidationError(f"A period is at least 1s; got {shorten(text)}.")
    return seconds


def _cron(expression: str):
    try:
        from apscheduler.triggers.cron import CronTrigger
    except ImportError:
        raise ValidationError("Cron schedules need APScheduler: pip install apscheduler "
                              "(or give every='6h').") from None
    try:
        return CronTrigger.from_crontab(expression, timezone=timezone.utc)
    except ValueError as exc:
        raise ValidationError(f"Not a cron expression ({exc}): {shorten(expression)}; write "
                              "five fields, such as '0 3 * * *' for 03:00 UTC daily.") from None


def schedule(
    name: str,
    notebook: str | os.PathLike[str] | None = None,
    *,
    pipeline: str | None = None,
    cron: str | None = None,
    every: str | None = None,
    watch: str | os.PathLike[str] | None = None,
    on_alert: str | None = None,
    on_code_change: bool = False,
    parameters: dict[str, Any] | None = None,
    model: str | None = None,
    gate: dict[str, Any] | None = None,
    webhook: str | None = None,
    store: Any = None,
) -> Trigger:
    """Run ``notebook`` (or ``pipeline``, a pipeline's name or folder: see
    :func:`pipeline`) with ``parameters`` whenever its trigger fires (exactly one of
    ``cron``, ``every``, ``watch`` (a folder), ``on_alert`` (a model name) or
    ``on_code_change``); then, with ``model`` (``name@alias``) and ``gate`` (options of
    :func:`check`, e.g. ``{"data": "holdout.csv", "target": "y"}``), check the version the
    notebook registered against that alias and move the alias when every gate passes; then
    POST the outcome to ``webhook``. The Jupyter server extension and ``jupyter-mlops
    scheduler`` fire triggers; scheduling the same name again replaces the trigger.

    Examples
    --------
    >>> schedule("nightly", "train.ipynb", cron="0 3 * * *", model="churn@champion",
    ...          gate={"data": "holdout.parquet", "target": "churned"})  # doctest: +SKIP
    """
    from ..registry.versions import parse_model_uri
    from ..store.current import get_store
    from ..tracking.notebook_runs import check_parameters

    check_name("Trigger name", name)
    chosen = [(k, v) for k, v in (("cron", cron), ("every", every), ("watch", watch),
                                  ("alert", on_alert), ("code", on_code_change or None))
              if v is not None]
    if len(chosen) != 1:
        raise ValidationError("Give exactly one of cron=, every=, watch=, on_alert= or "
                              "on_code_change=True.")
    kind, value = chosen[0]
    if (notebook is None) == (pipeline is None):
        raise ValidationError("Give the notebook to run or pipeline=NAME, one of the two.")
    if pipeline is not None:
        from ..pipelines.pipeline import open_pipeline

        path = open_pipeline(pipeline, store=store).folder
    else:
        path = Path(notebook).resolve()
        if path.suffix != ".ipynb" or not path.is_file():
            raise ValidationError(f"{shorten(str(notebook))} is not a notebook file (.ipynb).")
    if kind == "cron":
        _cron(str(value))
        spec = str(value)
    elif kind == "every":
        spec = str(_parse_every(str(value)))
    elif kind == "watch":
        folder = Path(value).resolve()
        if not folder.is_dir():
            raise ValidationError(f"watch= takes a folder; {shorten(str(value))} is not one.")
        spec = str(folder)
    elif kind == "alert":
        spec = parse_model_uri(str(value))[0]
    else:
        spec = str(path)
    if model is not None and parse_model_uri(model)[2] is None:
        raise ValidationError(f"model= names the alias to move (name@champion); got "
                              f"{shorten(model)}.")
    if gate is not None and model is None:
        raise ValidationError("gate= checks a new version against model=name@alias; give "
                              "model= too.")
    if gate is not None and ("data" not in gate or not isinstance(gate, dict)):
        raise ValidationError("gate= needs at least the holdout: {'data': 'holdout.csv', "
                              "'target': 'label'}.")
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        raise ValidationError(f"A webhook is an http:// or https:// URL; got {shorten(webhook)}.")
    trigger = Trigger(name, kind, spec, str(path), check_parameters(parameters or {}), model,
                      _absolute_data(gate), webhook, time.time())
    signature = sign_statement("trigger", trigger.fields())
    if signature is None:
        raise ValidationError("Triggers run code, so they are signed with your key, and none "
                              "can be made here: set JUPYTER_MLOPS_KEY_FILE to a writable path.")
    store = store or get_store()
    with store.write() as conn:
        conn.execute("DELETE FROM triggers WHERE name = ?", (name,))
        conn.execute(
            "INSERT INTO triggers (name, created, kind, spec, notebook, parameters, model, "
            "gate, webhook, hmac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, trigger.created, kind, spec, trigger.notebook, _dump(trigger.parameters),
             model, _dump(trigger.gate), webhook, signature))
    return get_trigger(name, store=store)


def _absolute_data(gate: dict[str, Any] | None) -> dict[str, Any] | None:
    """The gate with its holdout's path made absolute: the scheduler runs elsewhere."""
    if gate is None or not isinstance(gate.get("data"), (str, os.PathLike)):
        if gate is not None and "data" in gate:
            raise ValidationError("A scheduled gate reads its holdout from a file; give "
                                  "data= as a path (CSV or Parquet).")
        return gate
    return {**gate, "data": str(Path(gate["data"]).resolve())}


def _trigger(row: tuple) -> Trigger:
    (name, created, kind, spec, notebook, parameters, model, gate, webhook, hmac, enabled,
     state, last_checked) = row
    return Trigger(name, kind, spec, notebook, json.loads(parameters), model,
                   None if gate is None else json.loads(gate), webhook, created,
                   bool(enabled), hmac, None if state is None else json.loads(state),
                   last_checked)


COLUMNS = ("name, created, kind, spec, notebook, parameters, model, gate, webhook, hmac, "
           "enabled, state, last_checked")


def get_trigger(name: str, *, store: Any = None) -> Trigger:
    from ..store.current import get_store

    rows = (store or get_store()).query(f"SELECT {COLUMNS} FROM triggers WHERE name = ?",
                                        (name,))
    if not rows:
        raise NotFoundError(f"No trigger named {shorten(name)}; list them with "
                            "list_schedules().")
    return _trigger(rows[0])


def triggers(store: Any) -> list[Trigger]:
    return [_trigger(row) for row in store.query(
        f"SELECT {COLUMNS} FROM triggers WHERE enabled = 1 ORDER BY name")]


def every_trigger(store: Any) -> list[Trigger]:
    """Every trigger, enabled or not, by name."""
    return [_trigger(row) for row in store.query(f"SELECT {COLUMNS} FROM triggers ORDER BY name")]


def unschedule(name: str, *, store: Any = None) -> None:
    """Remove a trigger; its past firings stay."""
    from ..store.current import get_store

    store = store or get_store()
    get_trigger(name, store=store)
    with store.write() as conn:
        conn.execute("DELETE FROM triggers WHERE name = ?", (name,))


def list_schedules(*, store: Any = None):
    """Every trigger with its last firing, as a DataFrame."""
    import pandas as pd

    from ..store.current import get_store

    store = store or get_store()
    rows = []
    for trigger in every_trigger(store):
        last = store.query("SELECT started, status, message FROM firings WHERE trigger = ? "
                           "ORDER BY started DESC LIMIT 1", (trigger.name,))
        started, status, message = last[0] if last else (None, None, None)
        rows.append({"name": trigger.name, "when": f"{trigger.kind} {trigger.spec}",
                     "notebook": trigger.notebook, "model": trigger.model,
                     "trusted": trigger.untrusted() is None, "last_fired": started,
                     "last_status": status, "last_message": message})
    frame = pd.DataFrame(rows, columns=["name", "when", "notebook", "model", "trusted",
                                        "last_fired", "last_status", "last_message"])
    frame["last_fired"] = pd.to_datetime(frame["last_fired"], unit="s", utc=True)
    return frame


# -- is it due? --------------------------------------------------------------------------

@dataclass
class Due:
    reason: str
    missed: int = 0  # due times that passed while nothing checked (a scheduler was down)


def due(trigger: Trigger, now: float, store: Any) -> tuple[Due | None, Any]:
    """Whether ``trigger`` fires at ``now``, and the state to keep for the next check. The
    first check of a watch, alert or code trigger only takes note of how things stand."""
    since = trigger.last_checked if trigger.last_checked is not None else trigger.created
    if trigger.kind == "every":
        period = float(trigger.spec)
        last_due = trigger.state if isinstance(trigger.state, (int, float)) else trigger.created
        passed = int((now - last_due) // period)
        if passed < 1:
            return None, trigger.state
        return (Due(f"every {_period(period)}", missed=passed - 1),
                last_due + passed * period)
    if trigger.kind == "cron":
        cron = _cron(trigger.spec)
        start = datetime.fromtimestamp(since, timezone.utc)
        stop = datetime.fromtimestamp(now, timezone.utc)
        times, fire = [], cron.get_next_fire_time(None, start)
        while fire is not None and fire <= stop and len(times) < MAX_MISSED_COUNTED:
            if fire > start:
                times.append(fire)
            fire = cron.get_next_fire_time(fire, fire)
            if times and fire == times[-1]:  # a trigger may hand back the same time
                break
        if not times:
            return None, trigger.state
        return Due(f"cron {trigger.spec} ({times[-1]:%Y-%m-%d %H:%M} UTC)",
                   missed=len(times) - 1), trigger.state
    if trigger.kind == "watch":
        seen = _folder_state(Path(trigger.spec), trigger.state or {})
        if trigger.state is None:
            return None, seen
        changed = sorted(k for k in seen if (trigger.state.get(k) or [None])[-1] != seen[k][-1])
        if not changed:
            return None, seen
        return Due(f"{len(changed)} new or changed file(s) in {trigger.spec}: "
                   f"{shorten(changed, 120)}"), seen
    if trigger.kind == "alert":
        latest = store.query("SELECT max(created) FROM alerts WHERE name = ?",
                             (trigger.spec,))[0][0] or 0.0  # 0: looked, and saw none yet
        if trigger.state is None or latest <= trigger.state:
            return None, latest if trigger.state is None else trigger.state
        count = store.query("SELECT count(*) FROM alerts WHERE name = ? AND created > ?",
                            (trigger.spec, trigger.state))[0][0]
        return Due(f"{count} new monitoring alert(s) of {trigger.spec}"), latest
    code = _code_digest(Path(trigger.spec))
    if trigger.state is None or code == trigger.state:
        return None, code
    return Due(f"the code of {Path(trigger.spec).name} changed"), code


def next_due(trigger: Trigger) -> float | None:
    """When a cron or period trigger is next due (a time already past fires at the next
    look); None for triggers that fire on a change."""
    if trigger.kind == "every":
        last_due = trigger.state if isinstance(trigger.state, (int, float)) else trigger.created
        return last_due + float(trigger.spec)
    if trigger.kind == "cron":
        since = trigger.last_checked if trigger.last_checked is not None else trigger.created
        start = datetime.fromtimestamp(since, timezone.utc)
        fire = _cron(trigger.spec).get_next_fire_time(None, start)
        while fire is not None and fire <= start:
            fire = _cron(trigger.spec).get_next_fire_time(fire, fire + timedelta(seconds=1))
        return None if fire is None else fire.timestamp()
    return None


def _period(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _folder_state(folder: Path, before: dict[str, list]) -> dict[str, list]:
    """``relative path → [size, mtime_ns, sha256]``; a file's content is hashed again only
    when its size or time changed."""
    state: dict[str, list] = {}
    if not folder.is_dir():
        return state
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or len(state) >= MAX_WATCHED_FILES:
                continue
            path = Path(root, name)
            try:
                info = path.stat()
            except OSError:
                continue  # gone between the listing and the look
            key = str(path.relative_to(folder))
            old = before.get(key)
            if old and old[:2] == [info.st_size, info.st_mtime_ns]:
                state[key] = old
                continue
            digest = hashlib.sha256()
            try:
                with open(path, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
            except OSError:
                continue
            state[key] = [info.st_size, info.st_mtime_ns, digest.hexdigest()]
    return state


def _code_digest(notebook: Path) -> str | None:
    """The sha256 of a notebook's code cells' sources (outputs and markdown do not count),
    or of a pipeline folder's steps."""
    if notebook.is_dir():
        steps = sorted((notebook / "steps").glob("*.py"))
        return hashlib.sha256(json.dumps([[s.name, s.read_text(encoding="utf-8")]
                                          for s in steps], allow_nan=False).encode()).hexdigest()
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return None
    sources = ["".join(c.get("source", "")) if isinstance(c.get("source"), list)
               else str(c.get("source", "")) for c in cells if c.get("cell_type") == "code"]
    return hashlib.sha256(json.dumps(sources, allow_nan=False).encode()).hexdigest()
