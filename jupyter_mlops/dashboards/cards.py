"""A model card rendered: Markdown in the style of a Hugging Face README, and HTML.

Every string from the store is escaped (R7): in HTML by ``escape``, in Markdown by
``_md``, which also escapes HTML (Markdown renderers pass raw HTML through) and the
characters that would break a table cell.
"""

from __future__ import annotations

import html as html_module
import math
import time
from typing import Any

from .html import escape, png_img, section, table, wrap

SECTION_TITLES = ("Model details", "Intended use", "Training data", "Evaluation", "Drift",
                  "Lineage", "Environment", "Gates")


def _md(value: Any) -> str:
    text = "" if value is None else str(value)
    text = html_module.escape(text, quote=False)
    for char in "\\`*_[]|$":
        text = text.replace(char, "\\" + char)
    return text.replace("\n", " ")


def _when(seconds: float | None) -> str:
    return "" if seconds is None else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def _number(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def _facts(card) -> list[tuple[str, Any]]:
    v = card.version
    return [("Name", f"{v.name}/{v.version}"), ("Aliases", ", ".join(f"@{a}" for a in v.aliases)),
            ("Class", v.class_name), ("Framework", v.framework), ("Registered", _when(v.created)),
            ("sha256", v.sha256), ("Imported from", card.notes.get("imported_from", "")),
            ("Owner", card.notes.get("owner", "")),
            ("Tags", ", ".join(f"{k}={t}" for k, t in card.tags.items()))]


def quality_text(verdict: dict[str, Any] | None) -> str:
    """One line for a lineage table or a card."""
    if not verdict:
        return ""
    if not verdict["checked"]:
        return f"not checked: {verdict['reason']}"
    if verdict["ok"]:
        return f"all checks pass ({verdict['rows']:,} rows)"
    shown = ", ".join(verdict["failures"][:6]) + (", …" if len(verdict["failures"]) > 6 else "")
    return f"{verdict['failed']} checks fail ({verdict['rows']:,} rows): {shown}"


def _data_rows(card) -> list[list[Any]]:
    return [[d.get("name"), d.get("role"), d.get("fingerprint"), d.get("shape"),
             quality_text(d.get("quality"))] for d in card.datasets]


def _signature_text(card) -> str:
    signature = card.version.signature or {}
    if signature.get("kind") == "dataframe":
        return ", ".join(f"{c['name']} ({c.get('dtype') or '?'})"
                         for c in signature.get("columns", []))
    if signature.get("kind") == "ndarray":
        return f"array of {signature.get('dtype')}, shape {signature.get('shape')}"
    return "not recorded"


def card_markdown(card) -> str:
    v = card.version
    front = ["---", f"model_name: {_md(v.name)}", f"version: {v.version}",
             f"library_name: {_md(v.framework or 'unknown')}"]
    if card.tags:
        front.append("tags:")
        front += [f"- {_md(k)}={_md(t)}" for k, t in card.tags.items()]
    lines = front + ["---", "", f"# {_md(v.name)} version {v.version}", ""]
    if card.notes.get("description"):
        lines += [_md(card.notes["description"]), ""]
    lines += ["## Model details", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {_md(value)} |" for k, value in _facts(card) if value]
    lines += ["", "## Intended use", "",
              _md(card.notes.get("intended_use") or "Not stated (describe(uri, intended_use=...)).")]
    if card.notes.get("limitations"):
        lines += ["", "### Limitations", "", _md(card.notes["limitations"])]
    lines += ["", "## Training data", "", f"Inputs: {_md(_signature_text(card))}", ""]
    if card.datasets:
        lines += ["| name | role | fingerprint | shape | quality |", "|---|---|---|---|---|"]
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in _data_rows(card)]
    else:
        lines.append("No dataset was recorded with this version.")
    lines += ["", "## Evaluation", ""]
    if not card.evaluations:
        lines.append("Not evaluated yet (evaluate(model, X, y, model_uri=...)).")
    for ev in card.evaluations:
        lines += [f"**{_md(ev['name'] or ev['model_uri'] or 'evaluation')}** "
                  f"({_md(ev['task'])}, {ev['rows'] or 0:,} rows, {_when(ev['created'])})", "",
                  "| metric | value |", "|---|---|"]
        lines += [f"| {_md(k)} | {_number(m)} |" for k, m in ev["metrics"].items()]
        if ev["figures"]:
            lines += ["", "Figures: " + ", ".join(_md(f) for f in ev["figures"])]
        lines.append("")
    lines += ["## Drift", ""]
    if card.drift is None:
        lines.append("Not monitored yet (jupyter-mlops monitor).")
    else:
        d = card.drift
        lines.append(f"Latest monitoring {_when(d['created'])} on {d['rows']:,} rows "
                     f"({_md(d['source'])}): " + (
                         f"{d['drifted']} of {d['columns']} columns drifted "
                         f"({d['share_drifted']:.0%}), dataset drift "
                         f"{'yes' if d['dataset_drift'] else 'no'}." if d['columns'] is not None
                         else "no drift report."))
    lines += ["", "## Lineage", ""]
    lineage = card.lineage
    if lineage["run_id"]:
        lines.append(f"Run `{lineage['run_id'][:8]}` ({_md(lineage['run_name'] or 'unnamed')}, "
                     f"experiment {_md(lineage['experiment'])}), from the cell executions:")
        lines += [""] + [f"- [{c['execution_count']}] {_md(c['first_line'])}"
                         for c in lineage["cells"]]
    else:
        lines.append("Registered without a producing run (from a script).")
    lines += ["", "## Environment", ""]
    env = card.environment
    lines.append("Not recorded." if env is None else
                 f"Python {_md(env['python'])} on {_md(env['platform'])}, "
                 f"{env['packages']} distributions.")
    lines += ["", "## Gates", ""]
    if not card.gates:
        lines.append("No check recorded (jupyter-mlops check).")
    lines += [f"- {'passed' if g['passed'] else 'FAILED'} {_when(g['created'])}"
              + (f" against {_md(g['against'])}" if g["against"] else "")
              + f" on {_md(g['data'])} (run `{g['run_id'][:8]}`)" for g in card.gates]
    return "\n".join(lines).rstrip() + "\n"


def card_html(card, standalone: bool = False) -> str:
    v = card.version
    parts = [f"<h3>{escape(v.name)} version {v.version}</h3>"]
    if card.notes.get("description"):
        parts.append(f"<p>{escape(card.notes['description'])}</p>")
    parts.append(section("Model details", table(["", ""], [
        [k, value] for k, value in _facts(card) if value])))
    use = card.notes.get("intended_use") or "Not stated (describe(uri, intended_use=...))."
    limits = card.notes.get("limitations")
    parts.append(section("Intended use", f"<p>{escape(use)}</p>" + (
        f"<p><b>Limitations.</b> {escape(limits)}</p>" if limits else "")))
    data = f"<p>Inputs: {escape(_signature_text(card))}</p>" + (
        table(["name", "role", "fingerprint", "shape", "quality"], _data_rows(card)) if card.datasets
        else "<p>No dataset was recorded with this version.</p>")
    parts.append(section("Training data", data))
    evaluated = []
    for ev in card.evaluations:
        evaluated.append(f"<p><b>{escape(ev['name'] or ev['model_uri'] or 'evaluation')}</b> "
                         f"({escape(ev['task'])}, {ev['rows'] or 0:,} rows, "
                         f"{escape(_when(ev['created']))})</p>")
        evaluated.append(table(["metric", "value"], list(ev["metrics"].items())))
        for name, digest in ev["figures"].items():
            if digest in card.figures:
                evaluated.append(png_img(card.figures[digest], name))
    parts.append(section("Evaluation", "".join(evaluated) or "<p>Not evaluated yet.</p>"))
    if card.drift is None:
        parts.append(section("Drift", "<p>Not monitored yet.</p>"))
    else:
        d = card.drift
        parts.append(section("Drift", table(
            ["monitored", "rows", "source", "columns drifted", "share", "dataset drift"],
            [[_when(d["created"]), d["rows"], d["source"], d["drifted"], d["share_drifted"],
              "" if d["dataset_drift"] is None else ("yes" if d["dataset_drift"] else "no")]])))
    lineage = card.lineage
    if lineage["run_id"]:
        body = (f"<p>Run {escape(lineage['run_id'][:8])} ({escape(lineage['run_name'] or '')},"
                f" experiment {escape(lineage['experiment'])})</p>" + table(
                    ["execution", "first line"],
                    [[f"[{c['execution_count']}]", c["first_line"]] for c in lineage["cells"]],
                    code=(1,)))
    else:
        body = "<p>Registered without a producing run (from a script).</p>"
    parts.append(section("Lineage", body))
    env = card.environment
    parts.append(section("Environment", "<p>Not recorded.</p>" if env is None else
                         f"<p>Python {escape(env['python'])} on {escape(env['platform'])}, "
                         f"{env['packages']} distributions.</p>"))
    parts.append(section("Gates", table(
        ["checked", "verdict", "against", "holdout", "run"],
        [[_when(g["created"]), "passed" if g["passed"] else "FAILED", g["against"] or "",
          g["data"], g["run_id"][:8]] for g in card.gates]) if card.gates
        else "<p>No check recorded.</p>"))
    body = wrap("".join(parts))
    if not standalone:
        return body
    title = escape(f"{v.name} version {v.version}: model card")
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title>'
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            'img-src data:; style-src \'unsafe-inline\'">'
            '<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}</style>'
            f"</head><body>{body}</body></html>")
