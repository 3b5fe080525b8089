"""The sidebar's source never turns server data into markup and never bypasses
ServerConnection (which carries the token and the XSRF header)."""

from __future__ import annotations

import re
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "labextension" / "src"
MARKUP_SINKS = re.compile(
    r"innerHTML|outerHTML|insertAdjacentHTML|dangerouslySetInnerHTML|document\.write|"
    r"\beval\s*\(|new Function\s*\(|createContextualFragment|DOMParser"
)


def sources() -> list[Path]:
    files = sorted(SOURCE.rglob("*.ts")) + sorted(SOURCE.rglob("*.tsx"))
    assert files, f"no TypeScript under {SOURCE}"
    return files


def test_no_html_sinks():
    found = [f"{path.name}: {line.strip()}" for path in sources()
             for line in path.read_text().splitlines() if MARKUP_SINKS.search(line)]
    assert found == []


def test_requests_only_through_server_connection():
    for path in sources():
        text = path.read_text()
        assert not re.search(r"\bfetch\s*\(|XMLHttpRequest|axios", text), path.name
    api = (SOURCE / "api.ts").read_text()
    assert "ServerConnection.makeRequest" in api


def test_index_only_registers_the_plugin():
    index = (SOURCE / "index.ts").read_text()
    assert "app.shell.add" in index
    assert len(index.splitlines()) < 60


OBJECT_URL = re.compile(r"createObjectURL\s*\(")
# The only blobs the sidebar hands to the page as object URLs (which live in JupyterLab's
# origin): raster bytes typed by the check of their magic bytes, or opaque bytes, which a
# tab downloads and never renders. An SVG or HTML blob would run its script as the user.
SAFE_OBJECT_URL = re.compile(
    r"createObjectURL\(\s*new Blob\(\s*\[\s*\w+\s*\]\s*,\s*\{\s*type:\s*"
    r"(?:checked|'application/octet-stream')\s*\}\s*\)\s*\)")
RASTER_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


def test_object_urls_only_for_checked_rasters_or_opaque_bytes_and_revoked():
    made = []
    for path in sources():
        text = path.read_text()
        calls = len(OBJECT_URL.findall(text))
        if calls:
            made.append(path.name)
            assert len(SAFE_OBJECT_URL.findall(text)) == calls, path.name
            assert "revokeObjectURL(" in text, path.name
    assert made, "no object URLs at all: is this test still looking at the right thing?"
    preview = (SOURCE / "preview.ts").read_text()
    assert "const checked = sniffRaster(" in preview
    assert set(re.findall(r"'(\w+/[\w.+-]+)'", preview)) == RASTER_TYPES
