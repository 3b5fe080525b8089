"""R9 from Python: the loaders that take an artifact digest or a run id refuse anything
else before the filesystem is touched, and never follow a link out of the store.

Artifacts are content-addressed (``artifacts/<2 hex>/<sha256>``), so the hostile inputs
are handed over as digests; the HTTP side of the same promise is in
``tests/server/test_artifacts.py``.
"""

from pathlib import Path

import pytest
from server.canary import SECRET, OpenWatch, link_digest_folder_to_sibling, plant_canaries

import jupyter_mlops as mlops
from jupyter_mlops.drift.profile import load_drift_profile
from jupyter_mlops.errors import IntegrityError, NotFoundError, ValidationError
from jupyter_mlops.server.queries import artifact_info

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(60)]

# Decoded forms of what an attacker would send, plus what no digest can be.
HOSTILE = [
    "../x", "..%2fx", "%2e%2e/x", "%252e%252e%252fx", "..\\x", "/etc/passwd", "C:\\x",
    "\\\\server\\share\\x", "x/../../y", "x/%2e%2e/%2e%2e/y", ";/../x", "x;/../../y",
    "x#/../y", "x\x00.png", "x%00.png", "．．／x", "a" * 4096, "..", ".", "", "0" * 63,
    "0" * 65, "A" * 64, "g" * 64, "0" * 64 + "/..", "0" * 64 + "\x00", "0" * 64 + "\n",
    " " + "0" * 64, "0" * 64 + " ", "../" * 8 + "canary", "../artifacts-secret/canary",
    "../../canary", "０" * 64, "0" * 62 + "/.", "ab/" + "ab" * 32, "\u202e" + "0" * 63,
]
NOT_TEXT = [None, 123, b"0" * 64, Path("../canary"), ["0" * 64]]
REFUSALS = (ValidationError, NotFoundError)


def loaders(store):
    """Every Python entry point that reads an artifact by digest."""
    return {
        "path_for": store.artifacts.path_for,
        "open": lambda digest: store.artifacts.open(digest).close(),
        "read_verified": store.artifacts.read_verified,
        "load_drift_profile": lambda digest: load_drift_profile(digest, store),
        "artifact_info": lambda digest: artifact_info(store, digest),
    }


@pytest.fixture
def canary(store):
    """Secret files beside the store and in a sibling of its artifact folder, watched."""
    with mlops.start_run("real"):
        mlops.log_bytes(b"real bytes", "real.bin")  # the artifact folder exists
    secrets = plant_canaries(store.path, store.artifacts.root)
    with OpenWatch(*secrets) as watch:
        yield watch


def test_the_corpus_is_big_enough():
    assert len(HOSTILE) + len(NOT_TEXT) >= 30


@pytest.mark.parametrize("name", ["path_for", "open", "read_verified", "load_drift_profile",
                                  "artifact_info"])
def test_hostile_digests_are_refused_before_any_file_is_opened(store, canary, name):
    load = loaders(store)[name]
    for digest in [*HOSTILE, *NOT_TEXT]:
        with pytest.raises(ValidationError) as caught:
            load(digest)
        assert SECRET.decode() not in str(caught.value), (name, digest)
    assert canary.opened == []


def test_hostile_run_ids_are_refused(store, canary):
    for ref in [*HOSTILE, "abc", "0" * 31, "0" * 33, "%", "____", "0000%"]:
        with pytest.raises(REFUSALS):
            mlops.get_run(ref)
    assert canary.opened == []


def replace_with_link(path: Path, target: Path) -> None:
    path.unlink()
    path.symlink_to(target)


def test_a_recorded_artifact_swapped_for_a_symlink_is_not_read(store, canary):
    with mlops.start_run():
        digest = mlops.log_bytes(b"model bytes", "model.bin")
    replace_with_link(store.artifacts.path_for(digest), store.path.parent / "canary")
    for name in ("open", "read_verified", "load_drift_profile"):
        with pytest.raises((IntegrityError, NotFoundError)):
            loaders(store)[name](digest)
    assert canary.opened == []


def test_a_symlink_to_a_same_content_copy_outside_is_not_read(store, canary):
    """Even bytes that hash right are refused when they live outside the store."""
    with mlops.start_run():
        digest = mlops.log_bytes(SECRET, "secret.bin")
    outside = store.path.parent / "canary"  # holds exactly SECRET
    replace_with_link(store.artifacts.path_for(digest), outside)
    with pytest.raises((IntegrityError, NotFoundError)):
        store.artifacts.read_verified(digest)
    assert canary.opened == []


def test_a_folder_linked_to_the_sibling_secret_folder_is_not_read(store, canary):
    digest = link_digest_folder_to_sibling(store.artifacts.root, canary)
    for name in ("open", "read_verified", "load_drift_profile", "artifact_info"):
        with pytest.raises((IntegrityError, NotFoundError)):
            loaders(store)[name](digest)
    assert canary.opened == []


def test_real_artifacts_still_load(store, canary):
    with mlops.start_run():
        digest = mlops.log_bytes(b"\x89PNG\r\n\x1a\n fake image", "plots/roc.png")
    assert store.artifacts.read_verified(digest) == b"\x89PNG\r\n\x1a\n fake image"
    with store.artifacts.open(digest) as handle:
        assert handle.read(4) == b"\x89PNG"
    info = artifact_info(store, digest)
    assert (info["name"], info["media_type"]) == ("roc.png", "image/png")
    assert canary.opened == []
