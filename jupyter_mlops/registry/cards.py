"""Model cards: everything the store knows about a version, for a reviewer.

A card is gathered, never typed: the training data's fingerprints and schema, the
evaluations of the version (and of the run that made it) with their figures, the latest
drift it was monitored for, the run and cell executions it came from, the environment it
was trained in, and the gates it passed. What only a person knows (a description, the
intended use, the owner, known limitations, tags) is added with :func:`describe`, as
MLflow's model version description and tags. Rendering (Markdown in the style of a Hugging
Face README, HTML inline or as a standalone file) lives in ``dashboards/cards.py``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ValidationError, shorten
from ..store import Store
from ..validation import check_name

NOTE_FIELDS = ("description", "intended_use", "owner", "limitations")
MAX_NOTE = 20_000


@dataclass
class ModelCard:
    """What :func:`model_card` gathered. ``markdown()`` and ``save(path)`` (``.md`` or
    ``.html``) render it; it shows itself inline in a notebook."""

    version: Any
    notes: dict[str, str]
    tags: dict[str, str]
    datasets: list[dict[str, Any]]
    evaluations: list[dict[str, Any]]
    drift: dict[str, Any] | None
    lineage: dict[str, Any]
    environment: dict[str, Any] | None
    gates: list[dict[str, Any]]
    figures: dict[str, bytes] = field(default_factory=dict, repr=False)  # sha256 -> PNG
    # Evaluations whose figures were never drawn: drawn (and kept) when HTML first needs
    # them, so the Markdown card never waits for matplotlib.
    pending: list[str] = field(default_factory=list, repr=False)
    store: Any = field(default=None, repr=False)  # where the pending figures are kept

    def markdown(self) -> str:
        from ..dashboards.cards import card_markdown

        return card_markdown(self)

    def html(self, standalone: bool = False) -> str:
        from ..dashboards.cards import card_html

        self._draw_pending()
        return card_html(self, standalone=standalone)

    def _draw_pending(self) -> None:
        from ..evaluation import get_evaluation
        from ..evaluation import storage as evaluations

        while self.pending:
            evaluation_id = self.pending.pop()
            try:
                get_evaluation(evaluation_id, store=self.store).save_figures()
                drawn = evaluations.load(self.store, evaluation_id)["figures"]
            except Exception:  # noqa: BLE001 - a card without plots is still a card
                continue
            for ev in self.evaluations:
                if ev["evaluation_id"] == evaluation_id:
                    ev["figures"] = drawn
            _read_figures(self.store, drawn, self.figures)

    def _repr_html_(self) -> str:
        return self.html()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the card as Markdown (``.md``) or a standalone HTML page (``.html``)."""
        target = Path(path)
        if target.suffix not in (".md", ".html"):
            raise ValidationError(f"A card is saved as .md or .html; got {shorten(str(path))}.")
        text = self.markdown() if target.suffix == ".md" else self.html(standalone=True)
        target.write_text(text, encoding="utf-8")
        return target

    def __repr__(self) -> str:
        return f"<ModelCard {self.version.name}/{self.version.version}>"


def describe(uri: str, *, description: str | None = None, intended_use: str | None = None,
             owner: str | None = None, limitations: str | None = None,
             tags: dict[str, Any] | None = None, store: Store | None = None) -> dict[str, str]:
    """Say what a version is for: the fields given replace the stored ones (``""`` clears
    one); ``tags`` are added or replaced one by one. Returns the version's notes."""
    from ..store.current import get_store
    from .versions import get_model_version

    store = store or get_store()
    version = get_model_version(uri, store=store)
    given = {"description": description, "intended_use": intended_use, "owner": owner,
             "limitations": limitations}
    for key, value in (tags or {}).items():
        check_name("Tag key", key)
        given[f"tag.{key}"] = "" if value is None else str(value)
    now = time.time()
    with store.write() as conn:
        for key, value in given.items():
            if value is None:
                continue
            if not isinstance(value, str) or len(value) > MAX_NOTE:
                raise ValidationError(f"{key} is text of at most {MAX_NOTE:,} characters.")
            if value == "":
                conn.execute("DELETE FROM version_notes WHERE name = ? AND version = ? AND "
                             "key = ?", (version.name, version.version, key))
            else:
                conn.execute(
                    "INSERT INTO version_notes (name, version, key, value, updated) VALUES "
                    "(?, ?, ?, ?, ?) ON CONFLICT (name, version, key) DO UPDATE SET "
                    "value = excluded.value, updated = excluded.updated",
                    (version.name, version.version, key, value, now))
    return dict(store.query("SELECT key, value FROM version_notes WHERE name = ? AND "
                            "version = ? ORDER BY key", (version.name, version.version)))


def model_card(uri: str, *, store: Store | None = None) -> ModelCard:
    """The card of a registered version (``churn@champion``, ``churn/3``)."""
    from ..evaluation import get_evaluation
    from ..evaluation import storage as evaluations
    from ..store.current import get_store
    from ..tracking import storage
    from ..tracking.environment import run_environment
    from ..validation import encode_param
    from .versions import get_model_version, lineage

    store = store or get_store()
    version = get_model_version(uri, store=store)
    stored = dict(store.query("SELECT key, value FROM version_notes WHERE name = ? AND "
                              "version = ?", (version.name, version.version)))
    notes = {k: stored[k] for k in NOTE_FIELDS if k in stored}
    if "origin.source" in stored:  # an imported version: where it came from
        notes["imported_from"] = (f"{stored['origin.source']} ({stored.get('origin.format')}, "
                                  f"sha256 {str(stored.get('origin.sha256'))[:12]}…)")
    tags = {k[4:]: v for k, v in sorted(stored.items()) if k.startswith("tag.")}

    ids = [e for (e,) in store.query(
        "SELECT evaluation_id FROM evaluations WHERE model_uri = ? OR (run_id IS NOT NULL "
        "AND run_id = ?) ORDER BY created", (version.uri, version.run_id))]
    evaluated, figures, pending = [], {}, []
    for evaluation_id in ids:
        row = evaluations.load(store, evaluation_id)
        shown = row["figures"]
        if not shown:  # never drawn: named now, drawn when the HTML card first needs them
            try:
                shown = dict.fromkeys(get_evaluation(evaluation_id, store=store).figures)
                pending.append(evaluation_id)
            except Exception:  # noqa: BLE001 - a card without plots is still a card
                shown = {}
        evaluated.append({"evaluation_id": evaluation_id, "name": row["name"],
                          "model_uri": row["model_uri"], "task": row["task"],
                          "created": row["created"], "rows": row["n_rows"],
                          "metrics": row["metrics"], "figures": shown})
        _read_figures(store, row["figures"], figures)

    drift = None
    monitored = store.query(
        "SELECT m.created, m.n_rows, m.source, d.n_columns, d.n_drifted, d.share_drifted, "
        "d.dataset_drift FROM monitors m LEFT JOIN drift_reports d ON d.report_id = "
        "m.drift_report_id WHERE m.name = ? AND m.version = ? ORDER BY m.created DESC LIMIT 1",
        (version.name, version.version))
    if monitored:
        keys = ("created", "rows", "source", "columns", "drifted", "share_drifted",
                "dataset_drift")
        drift = dict(zip(keys, monitored[0]))

    found = lineage(version.uri, store=store)
    run = found["run"]
    cells = [{"execution_count": c.execution_count,
              "first_line": next((line for line in c.source.splitlines()
                                  if line.strip() and not line.startswith("%%")), "")}
             for c in found["cells"]]
    history = {"run_id": run.run_id if run else None, "run_name": run.name if run else None,
               "experiment": run.experiment if run else None, "cells": cells}

    environment = None
    if version.run_id:
        env = run_environment(store, version.run_id)
        if env is not None:
            environment = {"python": env.python, "platform": env.platform,
                           "packages": len(env.packages or {})}

    gates = []
    for run_id, created, passed in store.query(
            "SELECT r.run_id, r.start_time, t.value FROM runs r "
            "JOIN experiments e USING (experiment_id) "
            "JOIN params p ON p.run_id = r.run_id AND p.key = 'candidate' "
            "JOIN tags t ON t.run_id = r.run_id AND t.key = 'jupyter_mlops.check.passed' "
            "WHERE e.name = 'checks' AND p.value = ? ORDER BY r.start_time",
            (encode_param("candidate", version.uri),)):
        checked = storage.get_run(store, run_id)
        gates.append({"run_id": run_id, "created": created, "passed": passed == "true",
                      "against": checked.params.get("against") or None,
                      "data": checked.params.get("data")})
    datasets = [dict(d) for d in version.datasets]
    for item in datasets:
        item.setdefault("signature", None)
        item["quality"] = found["quality"].get(item["fingerprint"])
    return ModelCard(version, notes, tags, datasets, evaluated, drift, history, environment,
                     gates, figures, pending, store)


def _read_figures(store: Store, named: dict[str, str], into: dict[str, bytes]) -> None:
    """The PNGs of ``named`` (figure -> sha256) read into ``into`` by digest."""
    for digest in named.values():
        try:
            into[digest] = store.artifacts.read_verified(digest)
        except Exception:  # noqa: BLE001 - a figure lost from disk leaves its name only
            pass

