"""R10: registered models load only through one gate that checks sha256 and this user's
signature before unpickling; a pickle planted in the store together with a matching digest
is refused by every entry point that loads models, and its code never runs."""

import ast
import hashlib
import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import jupyter_mlops as mlops
from jupyter_mlops.store import signing
from jupyter_mlops.store import Store

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(120)]

PACKAGE = Path(mlops.__file__).parent
DESERIALIZERS = {("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"),
                 ("joblib", "load"), ("cloudpickle", "load"), ("cloudpickle", "loads"),
                 ("torch", "load"), ("dill", "load"), ("dill", "loads"), ("marshal", "loads"),
                 ("shelve", "open")}


class Planted:
    """Unpickling this creates ``marker``: proof that the planted code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture
def own_key(tmp_path, monkeypatch):
    """A fresh key file for this test alone."""
    path = tmp_path / "home" / ".jupyter_mlops" / "key"
    monkeypatch.setenv(signing.KEY_FILE_ENV, str(path))
    signing._keys.clear()
    yield path
    signing._keys.clear()


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    return X, (X["a"] - X["c"] > 0).astype(int)


@pytest.fixture
def registered(store, own_key, data):
    X, y = data
    return mlops.register_model(LogisticRegression().fit(X, y), "clf", alias="champion",
                                reference=X)


def plant(store: Store, version, marker: Path, column: str = "sha256") -> str:
    """What an attacker who can write the store does: new bytes, and the row rewritten to
    their digest, so the sha256 check alone would pass."""
    digest, size = store.artifacts.put_bytes(pickle.dumps(Planted(marker)))
    changes = {"sha256": digest, "size": size} if column == "sha256" else {column: digest}
    assignments = ", ".join(f"{name} = ?" for name in changes)
    with store.write() as conn:
        conn.execute(f"UPDATE model_versions SET {assignments} WHERE name = ? AND version = ?",
                     (*changes.values(), version.name, version.version))
    return digest


def test_the_key_is_private_and_outside_the_store(registered, own_key, store):
    mode = own_key.stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(own_key.parent.stat().st_mode) == 0o700
    assert not own_key.resolve().is_relative_to(store.path.resolve())
    key_text = own_key.read_text().strip()
    assert len(bytes.fromhex(key_text)) == 32
    db_bytes = (store.path / "mlops.db").read_bytes()
    assert key_text.encode() not in db_bytes
    (signature,) = store.query("SELECT hmac FROM signatures WHERE sha256 = ?",
                               (registered.sha256,))[0]
    assert signing.verify(registered.sha256, signature) is None


def test_a_flipped_byte_is_refused_naming_both_digests(registered, store, tmp_path):
    path = store.artifacts.path_for(registered.sha256)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(mlops.IntegrityError) as caught:
        mlops.load_model("clf/1")
    message = str(caught.value)
    assert registered.sha256[:12] in message and "changed after it was stored" in message
    assert not isinstance(caught.value, mlops.UntrustedPickleError)


def test_a_planted_pickle_with_a_rewritten_digest_is_refused(registered, store, tmp_path):
    marker = tmp_path / "planted-code-ran"
    digest = plant(store, registered, marker)
    with pytest.raises(mlops.UntrustedPickleError, match="no signature of yours"):
        mlops.load_model("clf@champion")
    # copying the signature row of the genuine bytes, or forging one, does not help
    (genuine,) = store.query("SELECT hmac FROM signatures WHERE sha256 = ?",
                             (registered.sha256,))[0]
    for forged in (genuine, "0" * 64, signing._mac(b"k" * 32, digest)):
        with store.write() as conn:
            conn.execute("INSERT OR REPLACE INTO signatures (sha256, hmac, created) "
                         "VALUES (?, ?, 0)", (digest, forged))
        with pytest.raises(mlops.UntrustedPickleError, match="does not match your key"):
            mlops.load_model("clf/1")
    assert not marker.exists()


def test_a_planted_reference_sample_is_refused(registered, store, tmp_path):
    marker = tmp_path / "planted-code-ran"
    plant(store, registered, marker, column="reference_sha256")
    with pytest.raises(mlops.UntrustedPickleError):
        mlops.reference_sample("clf/1")
    assert not marker.exists()


def test_without_the_key_loading_needs_the_explicit_opt_in(registered, own_key):
    own_key.unlink()
    signing._keys.clear()
    with pytest.raises(mlops.UntrustedPickleError) as caught:
        mlops.load_model("clf/1")
    message = str(caught.value)
    assert "no key" in message and "runs any code" in message and "allow_pickle=True" in message
    assert mlops.load_model("clf/1", allow_pickle=True).coef_.shape == (1, 3)
    assert not own_key.exists()  # loading never makes a key that would vouch for old bytes


def test_a_key_others_can_read_is_not_trusted(registered, own_key):
    own_key.chmod(0o644)
    signing._keys.clear()
    with pytest.raises(mlops.UntrustedPickleError, match="chmod 600"):
        mlops.load_model("clf/1")
    own_key.chmod(0o600)
    signing._keys.clear()
    assert mlops.load_model("clf/1").coef_.shape == (1, 3)


def test_another_users_store_loads_after_trust_model(registered, own_key, store, tmp_path,
                                                     monkeypatch):
    # the store was written with a colleague's key (own_key); now we are another user
    monkeypatch.setenv(signing.KEY_FILE_ENV, str(tmp_path / "me" / "key"))
    signing._keys.clear()
    signing.user_key(create=True)
    with pytest.raises(mlops.UntrustedPickleError, match="does not match your key"):
        mlops.load_model("clf/1")
    with pytest.raises(mlops.UntrustedPickleError):
        mlops.export_mlflow("clf/1", tmp_path / "exported")
    assert not (tmp_path / "exported").exists()
    mlops.trust_model("clf/1")
    assert mlops.load_model("clf/1").coef_.shape == (1, 3)
    pd.testing.assert_frame_equal(mlops.reference_sample("clf/1").iloc[:3],
                                  mlops.reference_sample("clf/1", allow_pickle=True).iloc[:3])


def test_trust_model_never_vouches_for_changed_bytes(registered, store, tmp_path):
    marker = tmp_path / "planted-code-ran"
    path = store.artifacts.path_for(registered.sha256)
    path.write_bytes(pickle.dumps(Planted(marker)))
    with pytest.raises(mlops.IntegrityError, match="changed"):
        mlops.trust_model("clf/1")
    assert not marker.exists()


def test_a_tracked_run_model_is_signed_and_a_planted_one_refused(shell, store, own_key,
                                                                 tmp_path):
    from support import run_cell

    run_cell(shell, "import numpy as np\nfrom sklearn.linear_model import LinearRegression\n"
                    "X = np.arange(40.0).reshape(20, 2); y = X @ [1.0, 2.0]")
    run_cell(shell, "%%track\nmodel = LinearRegression().fit(X, y)")
    run_id = mlops.search_runs().iloc[0]["run_id"]
    marker = tmp_path / "planted-code-ran"
    digest, size = store.artifacts.put_bytes(pickle.dumps(Planted(marker)))
    with store.write() as conn:
        conn.execute("UPDATE artifacts SET sha256 = ?, size = ? WHERE run_id = ? AND kind = "
                     "'model'", (digest, size, run_id))
    with pytest.raises(mlops.UntrustedPickleError):
        mlops.register_model(None, "planted", run_id=run_id)
    assert not marker.exists()
    assert not store.query("SELECT 1 FROM model_versions WHERE name = 'planted'")


# -- every entry point that loads a model goes through the gate ---------------------------


def _entry_points(tmp_path, X, y):
    csv = tmp_path / "batch.csv"
    X.to_csv(csv, index=False)
    return {
        "load_model": lambda: mlops.load_model("clf@champion"),
        "reference_sample": lambda: mlops.reference_sample("clf/1"),
        "evaluate": lambda: mlops.evaluate("clf/1", X, y),
        "drift_report": lambda: mlops.drift_report(current=X, model_uri="clf/1"),
        "score_file": lambda: mlops.score_file("clf/1", csv, tmp_path / "out.csv",
                                               progress=False),
        "serve": lambda: mlops.serve("clf/1", port=0).stop(),
        "monitor": lambda: mlops.monitor("clf/1", batch=X.assign(label=y), labels="label"),
        "export_mlflow": lambda: mlops.export_mlflow("clf/1", tmp_path / "exported"),
    }


@pytest.mark.parametrize("entry", ["load_model", "reference_sample", "evaluate", "drift_report",
                                   "score_file", "serve", "monitor", "export_mlflow"])
def test_every_entry_point_refuses_a_planted_model(registered, store, data, tmp_path, entry):
    X, y = data
    marker = tmp_path / "planted-code-ran"
    plant(store, registered, marker)
    plant(store, registered, marker, column="reference_sha256")
    with pytest.raises(mlops.UntrustedPickleError):
        _entry_points(tmp_path, X, y)[entry]()
    assert not marker.exists()


def test_the_cli_refuses_too(registered, store, tmp_path):
    marker = tmp_path / "planted-code-ran"
    plant(store, registered, marker)
    done = subprocess.run(
        [sys.executable, "-m", "jupyter_mlops.cli", "export", "clf/1", str(tmp_path / "out"),
         "--store", str(store.path)], capture_output=True, text=True, timeout=60,
        env=dict(os.environ))
    assert done.returncode != 0
    assert "not loaded" in done.stderr and "Traceback" not in done.stderr
    assert not marker.exists()


# -- static checks: one gate, and the server never deserializes ----------------------------


def _calls_to_deserializers(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    aliases = {}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for name in node.names:
                if (node.module.split(".")[0], name.name) in DESERIALIZERS:
                    found.append(f"from {node.module} import {name.name}")
        if isinstance(node, ast.Import):
            for name in node.names:
                aliases[name.asname or name.name] = name.name.split(".")[0]
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and (aliases.get(node.value.id, node.value.id), node.attr) in DESERIALIZERS):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_only_serialize_py_deserializes():
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "serialize.py" and path.parent == PACKAGE / "store":
            continue
        calls = _calls_to_deserializers(path)
        if calls:
            offenders[str(path.relative_to(PACKAGE))] = calls
    assert offenders == {}
    assert "pickle.loads" in _calls_to_deserializers(PACKAGE / "store" / "serialize.py")


def test_the_detector_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import pickle as p\nimport joblib\nfrom dill import loads\n"
                      "p.loads(b'')\njoblib.load('x')\n")
    assert sorted(_calls_to_deserializers(sample)) == ["from dill import loads", "joblib.load",
                                                       "p.loads"]


def test_numpy_loads_never_allow_pickles():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "load" and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in ("np", "numpy")):
                flags = {k.arg: k.value for k in node.keywords}
                assert isinstance(flags.get("allow_pickle"), ast.Constant), path.name
                assert flags["allow_pickle"].value is False, f"{path.name}:{node.lineno}"


def test_every_gate_call_passes_the_signature():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "load_verified"):
                keywords = {k.arg for k in node.keywords}
                assert "signature" in keywords, f"{path.name}:{node.lineno}"


def test_the_server_extension_never_loads_models():
    for path in (PACKAGE / "server").rglob("*.py"):
        # Reading kept arrays with pickles refused is not loading a model.
        source = path.read_text().replace("allow_pickle=False", "")
        for name in ("load_model", "reference_sample", "serialize", "load_verified", "pickle"):
            assert name not in source, f"{path.name} mentions {name}"


# -- large models: the checked bytes are the model's memory, read once ----------------------


def _memory_of(array: np.ndarray):
    """What an array's data lives in, past the array views numpy stacks on it."""
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    return base.obj if isinstance(base, memoryview) else base


def _knn(rows: int):
    from sklearn.neighbors import KNeighborsClassifier

    X = np.random.default_rng(3).normal(size=(rows, 20))
    return KNeighborsClassifier(n_neighbors=3, algorithm="brute").fit(X, X[:, 0] > 0), X[:50]


@pytest.mark.parametrize("rows", [5_000, 150_000])  # 0.8 MB; 24 MB, hashed by a helper thread
def test_a_large_models_arrays_are_slices_of_the_checked_bytes(store, own_key, rows):
    from jupyter_mlops.store import serialize

    model, sample = _knn(rows)
    version = mlops.register_model(model, "knn")
    assert (version.size > serialize._OVERLAP_FROM) == (rows > 100_000)
    loaded = mlops.load_model("knn/1")
    np.testing.assert_array_equal(loaded.predict(sample), model.predict(sample))
    np.testing.assert_array_equal(loaded._fit_X, model._fit_X)
    # not a bytearray the unpickler copied the array into: the very buffer the file was
    # read into and hashed, and still writable and aligned like an array of its own
    memory = _memory_of(loaded._fit_X)
    assert hashlib.sha256(memory).hexdigest() == version.sha256
    assert loaded._fit_X.flags.writeable and loaded._fit_X.flags.aligned
    loaded._fit_X[0, 0] = 42.0  # the user's own copy: the next load is unchanged
    assert mlops.load_model("knn/1")._fit_X[0, 0] == model._fit_X[0, 0]


@pytest.mark.parametrize("where", ["array", "index", "mark", "pickle head", "cut", "longer"])
def test_a_changed_byte_anywhere_in_an_indexed_file_is_refused(store, own_key, tmp_path, where):
    model, _ = _knn(5_000)
    version = mlops.register_model({"model": model, "code": Planted(tmp_path / "ran")}, "knn")
    path = store.artifacts.path_for(version.sha256)
    raw = bytearray(path.read_bytes())
    assert raw.endswith(b"MLOPSIDX")  # the file carries an index of its buffers
    flip = {"array": len(raw) // 2, "index": -20, "mark": -1, "pickle head": 3}
    if where in flip:
        raw[flip[where]] ^= 0x01
    changed = {"cut": raw[:-1], "longer": raw + b"\0"}.get(where, raw)
    path.write_bytes(bytes(changed))
    with pytest.raises(mlops.IntegrityError, match="changed after it was stored"):
        mlops.load_model("knn/1")
    assert not (tmp_path / "ran").exists()


def test_a_planted_file_with_an_index_is_refused_before_it_is_read(store, own_key, tmp_path):
    from jupyter_mlops.store import serialize

    model, _ = _knn(5_000)
    version = mlops.register_model(model, "knn")
    marker = tmp_path / "planted-code-ran"
    payload = serialize.dump({"model": model, "code": Planted(marker)})
    digest, size = store.artifacts.put_bytes(payload)
    with store.write() as conn:
        conn.execute("UPDATE model_versions SET sha256 = ?, size = ? WHERE version = ?",
                     (digest, size, version.version))
    with pytest.raises(mlops.UntrustedPickleError):
        mlops.load_model("knn/1")
    assert not marker.exists()


def test_a_model_stored_as_one_plain_pickle_still_loads(store, own_key, monkeypatch):
    """Files an older jupyter_mlops wrote have no index: they load by copying, as before."""
    from jupyter_mlops.registry import versions

    model, sample = _knn(5_000)
    with monkeypatch.context() as patched:
        patched.setattr(versions, "dump", lambda obj, what="Model": pickle.dumps(obj, 5))
        version = mlops.register_model(model, "knn")
    assert store.artifacts.path_for(version.sha256).read_bytes()[-1:] == b"."
    loaded = mlops.load_model("knn/1")
    np.testing.assert_array_equal(loaded.predict(sample), model.predict(sample))
    assert isinstance(_memory_of(loaded._fit_X), bytearray)


def test_an_index_that_does_not_describe_its_pickle_is_never_followed():
    from jupyter_mlops.store import serialize

    value = {"a": np.arange(20_000.0), "b": b"x" * 100}
    plain = pickle.dumps(value, 5)
    # entries pointing into the middle of the pickle, past its end, or overlapping
    for entries in ([(10, 8)], [(len(plain) - 4, 100)], [(200, 80_000), (250, 10)]):
        tail = b"".join(serialize._ENTRY.pack(*e) for e in entries)
        tail += serialize._TAIL.pack(len(entries), serialize._INDEX_MARK)
        loaded = serialize._unpickle(bytearray(plain + tail))
        np.testing.assert_array_equal(loaded["a"], value["a"])
        assert loaded["b"] == value["b"]


def test_a_load_opens_and_reads_the_model_file_once(store, own_key, monkeypatch):
    """Counted by the kernel (bytes this process read, all threads) and by a spy on the
    one place artifact files are opened, on the second load (the first imports modules)."""
    from jupyter_mlops.store.artifacts import ArtifactStore

    io_file = Path("/proc/self/io")
    if not io_file.exists():
        pytest.skip("needs Linux's per-process I/O counters")

    def bytes_read() -> int:
        return int(dict(line.split(": ") for line in io_file.read_text().splitlines())["rchar"])

    model, _ = _knn(150_000)
    version = mlops.register_model(model, "knn")
    mlops.load_model("knn/1")
    opened = []
    real_open = ArtifactStore.open
    monkeypatch.setattr(ArtifactStore, "open",
                        lambda self, sha256: opened.append(sha256) or real_open(self, sha256))
    before = bytes_read()
    mlops.load_model("knn/1")
    read = bytes_read() - before
    assert opened == [version.sha256]
    assert version.size <= read < 1.5 * version.size, (read, version.size)


# -- large models: checked chunk by chunk, against digests signed with the bytes -----------


def _signed_chunks(store, version):
    from jupyter_mlops.store import chunks

    signed = chunks.stored(store, version.sha256)
    assert signed is not None and signed.verify(version.sha256) is None
    return signed


def _flip_in_a_buffer(raw: bytearray, start: int, stop: int) -> None:
    """Change a byte of an array's buffer between ``start`` and ``stop``: bytes that would
    unpickle without complaint (and run the rest of the file) were they not checked."""
    from jupyter_mlops.store import serialize

    _, buffers = serialize._buffer_index(memoryview(raw))
    raw[next(max(start, offset) for offset, length in buffers
             if offset < stop and offset + length > start)] ^= 0x01


def test_a_large_models_chunk_digests_are_signed_with_its_bytes(store, own_key):
    model, sample = _knn(150_000)
    version = mlops.register_model(model, "knn")
    raw = store.artifacts.path_for(version.sha256).read_bytes()
    signed = _signed_chunks(store, version)
    assert signed.count == -(-len(raw) // signed.size) >= 3
    assert bytes.fromhex(signed.digests) == b"".join(
        hashlib.sha256(raw[start:start + signed.size]).digest()
        for start in range(0, len(raw), signed.size))
    other = mlops.register_model(LogisticRegression().fit(model._fit_X[:50], sample[:50, 0] > 0),
                                 "small")
    assert signed.verify(other.sha256) is not None  # bound to the bytes they were made from
    assert store.query("SELECT chunks FROM signatures WHERE sha256 = ?", (other.sha256,)) == [
        (None,)]  # a small file is checked whole
    np.testing.assert_array_equal(mlops.load_model("knn/1").predict(sample),
                                  model.predict(sample))


@pytest.mark.parametrize("chunk", ["first", "middle", "last"])
def test_a_flipped_byte_in_any_chunk_is_refused_before_unpickling(store, own_key, tmp_path,
                                                                  chunk):
    from jupyter_mlops.store import serialize

    marker = tmp_path / "planted-code-ran"
    model, _ = _knn(150_000)
    version = mlops.register_model({"model": model, "code": Planted(marker)}, "knn")
    signed = _signed_chunks(store, version)
    index = {"first": 0, "middle": signed.count // 2, "last": signed.count - 1}[chunk]
    path = store.artifacts.path_for(version.sha256)
    raw = bytearray(path.read_bytes())
    _flip_in_a_buffer(raw, index * signed.size, min((index + 1) * signed.size, len(raw)))
    path.write_bytes(bytes(raw))
    with pytest.raises(mlops.IntegrityError,
                       match=f"its chunk {index + 1} of {signed.count} .* does not match"):
        mlops.load_model("knn/1")
    assert not marker.exists()
    serialize._unpickle(raw)  # the control: these bytes, unchecked, run the planted code
    assert marker.exists()


def test_chunk_digests_changed_in_the_store_are_refused(store, own_key, tmp_path):
    from jupyter_mlops.store import chunks

    marker = tmp_path / "planted-code-ran"
    model, _ = _knn(150_000)
    version = mlops.register_model({"model": model, "code": Planted(marker)}, "knn")
    other = mlops.register_model(_knn(150_001)[0], "other")
    signed, theirs = _signed_chunks(store, version), _signed_chunks(store, other)
    # what a store writer does: change the bytes of a chunk, and write its digest in the list
    path = store.artifacts.path_for(version.sha256)
    raw = bytearray(path.read_bytes())
    _flip_in_a_buffer(raw, 0, signed.size)
    path.write_bytes(bytes(raw))
    digests = chunks.chunk_digests(bytes(raw)).digests
    assert digests != signed.digests
    forgeries = {
        "a digest rewritten": (signed.size, digests, signed.signature),
        "the list of other bytes": (theirs.size, theirs.digests, theirs.signature),
        "signed with another key": (signed.size, digests, signing._statement_mac(
            b"k" * 32, "chunk digests", [version.sha256, signed.size, digests])),
        "no signature": (signed.size, digests, None),
        "another chunk size": (signed.size // 2, digests, signed.signature),
    }
    for how, forged in forgeries.items():
        with store.write() as conn:
            conn.execute("UPDATE signatures SET chunk_size = ?, chunks = ?, chunks_hmac = ? "
                         "WHERE sha256 = ?", (*forged, version.sha256))
        with pytest.raises(mlops.UntrustedPickleError, match="digests of their chunks"):
            mlops.load_model("knn/1")
        # trusting the store as a whole checks the whole file, which was changed
        with pytest.raises(mlops.IntegrityError, match="its sha256 is"):
            mlops.load_model("knn/1", allow_pickle=True)
        assert not marker.exists(), how


def test_a_large_model_stored_without_chunk_digests_still_loads(store, own_key, monkeypatch):
    """Files signed by an older jupyter_mlops carry no chunk digests: checked whole."""
    from jupyter_mlops.store import serialize

    model, sample = _knn(150_000)
    version = mlops.register_model(model, "knn")
    with store.write() as conn:
        conn.execute("UPDATE signatures SET chunk_size = NULL, chunks = NULL, "
                     "chunks_hmac = NULL")
    monkeypatch.setattr(serialize, "read_checked", None)  # never reached
    loaded = mlops.load_model("knn/1")
    np.testing.assert_array_equal(loaded.predict(sample), model.predict(sample))
    path = store.artifacts.path_for(version.sha256)
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(mlops.IntegrityError, match="its sha256 is"):
        mlops.load_model("knn/1")


def test_chunk_digests_follow_a_tracked_model_and_a_vouched_one(shell, store, own_key,
                                                                tmp_path, monkeypatch):
    """A model a tracked cell saved is registered with its chunk digests; signing its bytes
    again keeps them, and trusting a colleague's version signs them anew with your key."""
    from support import run_cell

    run_cell(shell, "import numpy as np\nfrom sklearn.neighbors import KNeighborsClassifier\n"
                    "X = np.random.default_rng(3).normal(size=(150_000, 20))")
    run_cell(shell, "%%track\nmodel = KNeighborsClassifier(algorithm='brute')"
                    ".fit(X, X[:, 0] > 0)")
    run_id = mlops.search_runs().iloc[0]["run_id"]
    version = mlops.register_model(None, "knn", run_id=run_id)
    signed = _signed_chunks(store, version)
    assert mlops.load_model("knn/1").predict(shell.user_ns["X"][:5]).shape == (5,)
    # now another user, who trusts this store
    monkeypatch.setenv(signing.KEY_FILE_ENV, str(tmp_path / "me" / "key"))
    signing._keys.clear()
    assert signed.verify(version.sha256) is not None
    mlops.trust_model("knn/1")
    assert _signed_chunks(store, version).digests == signed.digests
    assert mlops.load_model("knn/1").predict(shell.user_ns["X"][:5]).shape == (5,)
