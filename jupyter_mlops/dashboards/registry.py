"""HTML views of model versions (with lineage) and replay scripts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .cards import quality_text
from .html import Code, escape, mark, pre, section, table, wrap


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def version_html(version, lineage: dict[str, Any]) -> str:
    aliases = " ".join(f"@{a}" for a in version.aliases)
    parts = [f"<p><b>{escape(version.name)}</b> version {version.version} "
             f"{escape(aliases)} · {escape(version.class_name or '')} · registered "
             f"{_when(version.created)} · sha256 {escape(version.sha256[:16])}…</p>"]
    run = lineage.get("run")
    rows = []
    if run is not None:
        rows.append(("run", f"{run.run_id} ({run.name or 'unnamed'}, {run.status})"))
    for cell in lineage.get("cells", []):
        rows.append((f"cell [{cell.execution_count}]",
                     Code(cell.source if len(cell.source) < 400 else cell.source[:397] + "...")))
    quality = lineage.get("quality", {})
    for dataset in lineage.get("datasets", []):
        rows.append((f"data ({dataset['role']})",
                     f"{dataset['name']} fingerprint {dataset['fingerprint']}"))
        if dataset["fingerprint"] in quality:
            rows.append(("data quality", quality_text(quality[dataset["fingerprint"]])))
    if version.signature:
        signature = version.signature
        if signature.get("kind") == "dataframe":
            text = ", ".join(f"{c['name']}: {c['dtype']}" for c in signature["columns"])
        else:
            text = f"array {signature.get('dtype')} shape {signature.get('shape')}"
        rows.append(("signature", text[:600]))
    if version.reference_rows:
        rows.append(("reference sample", f"{version.reference_rows} rows"))
    parts.append(section("Lineage", table(["", "value"], rows)))
    return wrap("".join(parts))


def replay_html(script) -> str:
    parts = []
    if script.verification is not None:
        css = "" if script.verification.ok else " " + mark("bad")
        verdict = "verified" if script.verification.ok else "NOT verified"
        parts.append(f"<p{css}><b>{verdict}</b>: "
                     f"{escape(script.verification.message)}</p>")
    parts.append(section(f"Replay of {script.uri}", pre(script.source)))
    return wrap("".join(parts))
