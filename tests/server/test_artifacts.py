"""``artifacts/<sha256>``: the bytes with their media type, safe headers, and no way out
of the artifact folder, whatever the path says."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from .canary import SECRET, OpenWatch, link_digest_folder_to_sibling, plant_canaries


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


async def login_cookie(jp_fetch, jp_serverapp) -> str:
    """The cookie a browser holds after logging in with the token in the URL."""
    token = jp_serverapp.identity_provider.token
    response = await jp_fetch("api", "status", params={"token": token},
                              headers={"Authorization": ""})
    (cookie,) = [c.split(";", 1)[0] for c in response.headers.get_list("Set-Cookie")
                 if c.startswith("username-")]
    return cookie


async def test_a_cookie_alone_cannot_pull_an_artifact(jp_fetch, jp_serverapp, seeded, png):
    """An <img> or <a download> on another site sends the user's cookie but not the XSRF
    header: the artifact is refused, while the same cookie still reads runs."""
    cookie = await login_cookie(jp_fetch, jp_serverapp)
    as_browser = {"Authorization": "", "Cookie": cookie}
    runs = await jp_fetch("jupyter-mlops", "api", "runs", headers=as_browser)
    assert runs.code == 200  # the cookie does log in
    response = await jp_fetch("jupyter-mlops", "api", "artifacts", seeded.png_sha256,
                              headers=as_browser, raise_error=False)
    assert response.code == 403 and png not in response.body
    with_xsrf = {**as_browser, "Cookie": f"{cookie}; _xsrf=0123abcd", "X-XSRFToken": "0123abcd"}
    response = await jp_fetch("jupyter-mlops", "api", "artifacts", seeded.png_sha256,
                              headers=with_xsrf)
    assert response.code == 200 and response.body == png


@pytest.mark.parametrize("media_type", ["text/plain\n", "text/html\r\nX-Injected: 1",
                                        "", "../../x", "image/png\x00"])
async def test_an_odd_recorded_media_type_is_not_sent(jp_fetch, seeded, media_type):
    """A media type is whatever the user logged: only a plain ``type/subtype`` is sent."""
    import jupyter_mlops as mlops

    with mlops.start_run(name="odd", experiment="odd"):
        digest = mlops.log_bytes(b"odd bytes", "odd.bin", media_type=media_type)
    response = await jp_fetch("jupyter-mlops", "api", "artifacts", digest)
    assert response.code == 200 and response.body == b"odd bytes"
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert "X-Injected" not in response.headers
    assert_safe_headers(response)


# Paths that must never reach a file: traversal, encodings, separators, odd digests.
TRAVERSALS = [
    "../x", "..%2fx", "..%2Fx", "%2e%2e/x", "%2e%2e%2fx", "%252e%252e%252fx",
    "%25252e%25252e%25252fx", "..%5cx", "..\\x", "%2fetc%2fpasswd", "/etc/passwd",
    "C:%5cx", "C:\\x", "%5c%5cserver%5cshare%5cx", "\\\\server\\share\\x",
    "x/../../y", "x/%2e%2e/%2e%2e/y", ";/../x", "x;/../../y", "x%23/../y", "x#/../y",
    "x%00.png", "%EF%BC%8E%EF%BC%8E%EF%BC%8Fx", "a" * 4096, "..", "%2e%2e", ".",
    "0" * 63, "0" * 65, "A" * 64, "g" * 64, "0" * 64 + "/..", "0" * 64 + "%00",
    "0" * 64 + "%0a", "0" * 64 + "%2f..%2f..%2fcanary", "..%2f" * 8 + "canary",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2fcanary", "%20" + "0" * 64, "%EF%BC%90" * 64,
    "../artifacts-secret/canary", "..%2fartifacts-secret%2fcanary",
    "%2e%2e%2f%2e%2e%2fcanary", "....//....//canary",
]


@pytest.fixture
def canary(seeded):
    """Secret files outside the artifact folder, watched for any attempt to open them."""
    secrets = plant_canaries(seeded.store.path, seeded.store.artifacts.root)
    with OpenWatch(*secrets) as watch:
        yield watch


async def get_raw(http_server_client, jp_base_url, jp_auth_header, path: str):
    """GET ``path`` under the API as raw as a client can: no normalisation of '..' or of
    the escapes."""
    url = f"{jp_base_url}jupyter-mlops/api/{path}"
    return await http_server_client.fetch(url, headers=jp_auth_header, raise_error=False)


def assert_refused(response, where: str) -> None:
    assert response.code in (400, 404), (where, response.code)
    assert response.headers["Content-Type"].startswith("application/json"), where
    assert SECRET not in response.body, where
    assert b"Traceback" not in response.body, where


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_traversal_is_refused(http_server_client, jp_base_url, jp_auth_header, canary,
                                    path):
    response = await get_raw(http_server_client, jp_base_url, jp_auth_header,
                             f"artifacts/{path}")
    assert_refused(response, path)
    assert canary.opened == []


async def test_hostile_run_ids_and_model_names_are_refused(http_server_client, jp_base_url,
                                                           jp_auth_header, canary):
    for path in TRAVERSALS:
        for route in ("runs", "models"):
            response = await get_raw(http_server_client, jp_base_url, jp_auth_header,
                                     f"{route}/{path}")
            assert_refused(response, f"{route}/{path}")
    assert canary.opened == []


@pytest.mark.parametrize("digest", ["0" * 64 + "%0a", "0" * 64 + "%0d", "0" * 64 + "%20",
                                    "0" * 63 + "%00"])
async def test_a_digest_with_a_trailing_character_is_400(http_server_client, jp_base_url,
                                                         jp_auth_header, seeded, digest):
    response = await get_raw(http_server_client, jp_base_url, jp_auth_header,
                             f"artifacts/{digest}")
    assert response.code == 400


async def test_symlink_out_of_the_artifact_folder_is_not_followed(api, seeded, canary):
    root = seeded.store.artifacts.root
    fake = "ab" * 32
    (root / fake[:2]).mkdir(parents=True, exist_ok=True)
    (root / fake[:2] / fake).symlink_to(seeded.store.path.parent / "canary")
    code, body = await api("artifacts", fake)
    # Not a recorded artifact: the digest names no artifact, so nothing is served.
    assert code == 404
    assert canary.opened == []


async def test_a_recorded_artifact_swapped_for_a_symlink_is_not_served(jp_fetch, seeded,
                                                                       canary):
    stored = seeded.store.artifacts.path_for(seeded.text_sha256)
    stored.unlink()
    stored.symlink_to(seeded.store.path.parent / "canary")
    response = await jp_fetch("jupyter-mlops", "api", "artifacts", seeded.text_sha256,
                              raise_error=False)
    assert response.code == 404
    assert SECRET not in response.body
    assert canary.opened == []


async def test_a_folder_linked_to_the_sibling_secret_folder_is_not_served(jp_fetch, seeded,
                                                                          canary):
    digest = link_digest_folder_to_sibling(seeded.store.artifacts.root, canary)
    response = await jp_fetch("jupyter-mlops", "api", "artifacts", digest, raise_error=False)
    assert response.code == 404
    assert SECRET not in response.body
    assert canary.opened == []


async def test_the_canary_watch_sees_an_open(seeded, canary):
    """The watch itself works: reading the canary through a symlink is recorded."""
    link = seeded.store.path.parent / "innocent-name"
    link.symlink_to(seeded.store.path.parent / "canary")
    assert link.read_bytes() == SECRET
    assert len(canary.opened) == 1


async def test_a_hard_link_to_a_secret_in_place_of_an_artifact_is_not_served(jp_fetch, seeded,
                                                                             canary):
    """A regular file inside the folder, not a link, but not the recorded bytes: the
    sha256 of what would be served is checked before the first byte goes out."""
    stored = seeded.store.artifacts.path_for(seeded.text_sha256)
    stored.unlink()
    os.link(seeded.store.path.parent / "canary", stored)
    response = await jp_fetch("jupyter-mlops", "api", "artifacts", seeded.text_sha256,
                              raise_error=False)
    assert response.code == 500
    assert SECRET not in response.body
    assert "changed on disk" in json.loads(response.body)["message"]


@pytest.fixture
def changed_after_the_check(seeded, monkeypatch):
    """``log(data)`` → a digest whose file is changed in place (its last byte) right
    after the server checked it and before it sends it."""
    import jupyter_mlops as mlops
    from jupyter_mlops.server import queries

    real_open = queries.open_artifact

    def open_then_change(store, sha256):
        opened = real_open(store, sha256)
        with open(store.artifacts.path_for(sha256), "r+b") as same_file:
            same_file.seek(-1, os.SEEK_END)
            last = same_file.read(1)
            same_file.seek(-1, os.SEEK_END)
            same_file.write(bytes([last[0] ^ 1]))
        return opened

    monkeypatch.setattr(queries, "open_artifact", open_then_change)

    def log(data: bytes) -> str:
        with mlops.start_run(name="changing", experiment="changing"):
            return mlops.log_bytes(data, "changing.bin")

    return log


async def test_a_small_file_changed_before_sending_is_not_sent(jp_fetch,
                                                               changed_after_the_check):
    digest = changed_after_the_check(b"small bytes")
    response = await jp_fetch("jupyter-mlops", "api", "artifacts", digest, raise_error=False)
    assert response.code == 500
    assert b"small byte" not in response.body
    assert "changed on disk while it was sent" in json.loads(response.body)["message"]


async def test_a_large_file_changed_while_sending_is_cut_short(jp_fetch,
                                                               changed_after_the_check):
    """Chunks go out as they are read, but the last is held back until the bytes sent
    prove right: the client never receives a whole (wrong) file."""
    from tornado.simple_httpclient import HTTPStreamClosedError

    data = bytes(range(256)) * (3 * 4096 + 7)  # ~3 MB: several read chunks
    digest = changed_after_the_check(data)
    received = []
    with pytest.raises(HTTPStreamClosedError):
        await jp_fetch("jupyter-mlops", "api", "artifacts", digest,
                       streaming_callback=received.append)
    assert 0 < sum(map(len, received)) < len(data)
