"""``artifacts/<sha256>``: the bytes with their media type, safe headers, and no way out
of the artifact folder, whatever the path says."""

from __future__ import annotations

import builtins
import hashlib

import pytest

def assert_safe_headers(response) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert "sandbox" in response.headers["Content-Security-Policy"]


async def test_png_download(jp_fetch, seeded, png):
    response = await jp_fetch("jupyter-mlops", "api", "artifacts", seeded.png_sha256)
    assert response.code == 200
    assert response.body == png
    assert response.headers["Content-Type"] == "image/png"
    assert "curve.png" in response.headers["Content-Disposition"]
    assert_safe_headers(response)


async def test_text_download(jp_fetch, seeded):
    response = await jp_fetch("jupyter-mlops", "api", "artifacts", seeded.text_sha256)
    assert response.body == b"hello"
    assert response.headers["Content-Type"].startswith("text/plain")
    assert_safe_headers(response)


async def test_html_artifact_cannot_run_in_the_jupyter_origin(jp_fetch, seeded):
    response = await jp_fetch("jupyter-mlops", "api", "artifacts", seeded.html_sha256)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert_safe_headers(response)


async def test_unknown_digest_is_404_json(api, seeded):
    code, body = await api("artifacts", "0" * 64)
    assert code == 404
    assert body["error"] == "not_found"


async def test_large_artifact_streams_whole(jp_fetch, seeded):
    import jupyter_mlops as mlops

    data = bytes(range(256)) * (3 * 4096 + 7)  # ~3 MB: several read chunks
    with mlops.start_run(name="big", experiment="big"):
        digest = mlops.log_bytes(data, "big.bin")
    response = await jp_fetch("jupyter-mlops", "api", "artifacts", digest)
    assert hashlib.sha256(response.body).hexdigest() == digest
    assert response.headers["Content-Type"] == "application/octet-stream"


# Paths that must never reach a file: traversal, encodings, separators, odd digests.
TRAVERSALS = [
    "../x", "..%2fx", "..%2Fx", "%2e%2e/x", "%2e%2e%2fx", "%252e%252e%252fx",
    "..%5cx", "..\\x", "%2fetc%2fpasswd", "/etc/passwd", "C:%5cx", "C:\\x",
    "%5c%5cserver%5cshare%5cx", "x/../../y", "x/%2e%2e/%2e%2e/y", ";/../x", "x;/../../y",
    "x%23/../y", "x%00.png", "%EF%BC%8E%EF%BC%8E%EF%BC%8Fx", "a" * 4096, "..",
    "%2e%2e", ".", "0" * 63, "0" * 65, "A" * 64, "g" * 64, "0" * 64 + "/..",
    "0" * 64 + "%00", "0" * 64 + "%2f..%2f..%2fcanary", "..%2f" * 8 + "canary",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2fcanary", " " + "0" * 64,
]


@pytest.fixture
def canary(tmp_path, seeded, monkeypatch):
    """A file next to the store, and a record of any attempt to open it."""
    secret = seeded.store.path.parent / "canary"
    secret.write_text("CANARY-SECRET")
    sibling = seeded.store.path.parent / f"{seeded.store.artifacts.root.name}-secret"
    sibling.mkdir()
    (sibling / "canary").write_text("CANARY-SECRET")
    opened: list[str] = []
    real_open = builtins.open

    def watching_open(file, *args, **kwargs):
        if "canary" in str(file):
            opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", watching_open)
    return opened


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_traversal_is_refused(http_server_client, jp_base_url, jp_auth_header, canary,
                                    path):
    # Sent as raw as a client can: no normalisation of '..' or of the escapes.
    url = f"{jp_base_url}jupyter-mlops/api/artifacts/{path}"
    response = await http_server_client.fetch(url, headers=jp_auth_header, raise_error=False)
    assert response.code in (400, 404), (path, response.code)
    assert b"CANARY" not in response.body
    assert b"Traceback" not in response.body
    assert canary == []


async def test_symlink_out_of_the_artifact_folder_is_not_followed(api, seeded, canary):
    root = seeded.store.artifacts.root
    fake = "ab" * 32
    (root / fake[:2]).mkdir(parents=True, exist_ok=True)
    (root / fake[:2] / fake).symlink_to(seeded.store.path.parent / "canary")
    code, body = await api("artifacts", fake)
    # Not a recorded artifact: the digest names no artifact, so nothing is served.
    assert code == 404
    assert canary == []
