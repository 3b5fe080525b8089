"""R9 from Python: the loaders that take an artifact digest or a run id refuse anything
else before the filesystem is touched, and never follow a link out of the store.

Artifacts are content-addressed (``artifacts/<2 hex>/<sha256>``), so the hostile inputs
are handed over as digests; the HTTP side of the same promise is in
``tests/server/test_artifacts.py``.
"""

import os
import sys
import subprocess
from pathlib import Path

import pytest
from server.canary import (
    SECRET,
    InotifyOpens,
    OpenWatch,
    link_digest_folder_to_sibling,
    plant_canaries,
)
from server.live import live_server

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


# -- races: a link swapped in and out while the artifact is read ------------------------

RACING_REQUESTS = 400  # over HTTP, as in the attack review
PYTHON_READS = 4_000  # in-process reads are quick: more of them for the same odds
MAX_SWAP_ROUNDS = 1_000_000  # the swapper stops when the reads are done, or here
REAL = b"REAL-ARTIFACT"  # as long as SECRET: a swapped-in canary would fit Content-Length
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the canary watch is Linux's inotify")


# The attacker: another process that swaps the artifact's file for a link to a secret and
# back, then the digest folder for a link to a folder outside the store (holding the
# secret under the artifact's name) and back, round after round, until told to stop.
# Each round ends with everything in place.
SWAP_SCRIPT = """
import os, sys
folder, path, aside, keep, secret_file, secret_folder, stop, limit = sys.argv[1:]
link, copy = os.path.join(folder, ".swap-link"), os.path.join(folder, ".swap-file")
rounds = 0
while rounds < int(limit) and not os.path.exists(stop):
    os.symlink(secret_file, link)
    os.replace(link, path)
    os.link(keep, copy)
    os.replace(copy, path)
    os.rename(folder, aside)
    os.symlink(secret_folder, folder, target_is_directory=True)
    os.unlink(folder)
    os.rename(aside, folder)
    rounds += 1
    if rounds == 1:
        print("started", flush=True)
print(rounds, flush=True)
"""


class Swapper:
    """``with Swapper(...) as swapper:`` runs :data:`SWAP_SCRIPT` in its own process."""

    def __init__(self, root: Path, digest: str, secret_file: Path, secret_folder: Path):
        self.folder = root / digest[:2]
        self.path = self.folder / digest
        self.keep = root.parent / "kept-real-file"
        os.link(self.path, self.keep)  # the real file's inode, to put it back
        self.stop = root.parent / "stop-swapping"
        self.args = [str(a) for a in (self.folder, self.path, root / f".{digest[:2]}-aside",
                                      self.keep, secret_file, secret_folder, self.stop,
                                      MAX_SWAP_ROUNDS)]
        self.rounds = 0

    def __enter__(self) -> "Swapper":
        self.process = subprocess.Popen([sys.executable, "-c", SWAP_SCRIPT, *self.args],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "started"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.touch()
        out, _ = self.process.communicate(timeout=60)
        self.rounds = int(out.split()[-1])
        assert self.path.read_bytes() == REAL  # everything back in place


@pytest.fixture
def racing(store):
    """A real artifact, a secret of the same length outside the store, and a secret
    folder holding the secret under the artifact's name; both secrets watched by the
    kernel, for this process and any other."""
    with mlops.start_run("real"):
        digest = mlops.log_bytes(REAL, "real.bin")
    outside = store.path.parent / "outside"
    secret_file = outside / "canary"
    secret_folder = outside / digest[:2]
    secret_folder.mkdir(parents=True)
    for secret in (secret_file, secret_folder / digest):
        secret.write_bytes(SECRET)
        secret.chmod(0o600)
    with InotifyOpens(secret_file, secret_folder / digest) as watch:
        yield digest, Swapper(store.artifacts.root, digest, secret_file, secret_folder), watch


@linux_only
def test_the_inotify_watch_sees_an_open_through_a_folder_descriptor(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    with InotifyOpens(secret) as watch:
        assert not watch.opened()
        folder = os.open(tmp_path, os.O_RDONLY)
        try:
            os.close(os.open("secret", os.O_RDONLY, dir_fd=folder))
        finally:
            os.close(folder)
        assert watch.opened()


@linux_only
def test_python_reads_racing_a_link_swap_never_open_the_secret(store, racing):
    digest, swapper, watch = racing
    outcomes: dict[str, int] = {}
    with swapper:
        for _ in range(PYTHON_READS):
            try:
                with store.artifacts.open(digest) as handle:
                    data = handle.read()
                outcome = "real" if data == REAL else "SECRET" if data == SECRET else "other"
            except (IntegrityError, NotFoundError) as refused:
                outcome = "SECRET" if SECRET.decode() in str(refused) else "refused"
            except OSError as error:  # a refusal must be one of ours, not a raw OSError
                outcome = f"OSError {error.errno}"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert swapper.rounds > 0
    assert set(outcomes) <= {"real", "refused"}, outcomes
    assert not watch.opened(), f"a read followed a link to the secret ({outcomes})"
    assert store.artifacts.read_verified(digest) == REAL


@linux_only
@pytest.mark.timeout(240)
def test_http_downloads_racing_a_link_swap_never_serve_the_secret(store, racing, tmp_path):
    """The attack review's race: 400 downloads while links are swapped in and out. Each
    answer is the artifact's bytes or a 404; none carries the secret, and the server
    never even opens it."""
    digest, swapper, watch = racing
    outcomes: dict[str, int] = {}
    with live_server(tmp_path / "server", store.path) as server:
        assert server.get(f"artifacts/{digest}").body == REAL
        with swapper:
            for _ in range(RACING_REQUESTS):
                response = server.get(f"artifacts/{digest}")
                outcome = ("SECRET" if SECRET in response.body
                           else "other" if response.status == 200 and response.body != REAL
                           else str(response.status))
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
        after = server.get(f"artifacts/{digest}")
    assert swapper.rounds > 0
    assert set(outcomes) <= {"200", "404"}, outcomes
    assert not watch.opened(), f"the server opened the secret ({outcomes})"
    assert after.status == 200 and after.body == REAL


def test_a_fifo_under_an_artifacts_name_is_refused_without_waiting(store):
    """Opening a FIFO for reading waits for a writer: the open must not."""
    with mlops.start_run():
        digest = mlops.log_bytes(b"fifo victim", "victim.bin")
    path = store.artifacts.path_for(digest)
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(IntegrityError):
        store.artifacts.open(digest)
    with pytest.raises(NotFoundError):
        artifact_info(store, digest)
