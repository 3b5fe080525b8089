"""R3: a failing tracked cell ends its run FAILED or KILLED with what went wrong, and the
user's own exception still reaches the kernel unchanged; a locked store never changes
what the cell did.

The plain rows of the R3 table (ValueError, KeyboardInterrupt, SystemExit, SyntaxError,
nested %%track) are in ``tests/test_magic_track.py`` and ``tests/test_kernel.py``; this
file holds the rest: the 64 KB cap, messages SQLite cannot store, the held lock and the
replies a real kernel sends.
"""

import io
import sys

import pytest
from support import hold_lock, release, run_cell

import jupyter_mlops as mlops
from jupyter_mlops.store import Store
from jupyter_mlops.tracking import storage

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(120)]

CAP = 64 * 1024


def only_run():
    frame = mlops.search_runs()
    assert len(frame) == 1
    return mlops.get_run(frame.loc[0, "run_id"])


def jupyter_mlops_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("jupyter_mlops:")]


# -- what is stored about the failure ------------------------------------------------

# 120 distinct frames of ~600 bytes each: a traceback of ~72 KB.
LONG = "f" * 250
DEEP_FRAMES = "\n".join(f"def {LONG}{i}():\n    {LONG}{i + 1}()" for i in range(120))


@pytest.fixture
def plain_tracebacks(shell):
    """IPython's plain traceback mode: rendering 120 frames verbosely takes seconds."""
    mode = shell.InteractiveTB.mode
    shell.InteractiveTB.set_mode("Plain")
    yield shell
    shell.InteractiveTB.set_mode(mode)


@pytest.mark.parametrize(("body", "raising_line"), [
    ("raise ValueError('x' * 300_000)", "raise ValueError('x' * 300_000)"),
    # Three bytes a character: a cap counted in characters would keep 192 KB.
    ("raise ValueError('漢' * 100_000)", "raise ValueError('漢' * 100_000)"),
    # A long stack of distinct frames rather than a long message.
    (DEEP_FRAMES + f"\ndef {LONG}120():\n    raise ValueError('deep')\n{LONG}0()",
     f"{LONG}0()"),
], ids=["long-message", "long-cjk-message", "long-stack"])
def test_traceback_is_capped_at_64_kb_and_keeps_the_cell_line(plain_tracebacks, body,
                                                              raising_line):
    result = run_cell(plain_tracebacks, "%%track\n" + body)
    assert isinstance(result.error_in_exec, ValueError)
    run = only_run()
    assert run.status == "FAILED" and run.error_type == "ValueError"
    # Booleans, not the strings: a failure here should not print 64 KB.
    assert len(run.traceback.encode()) <= CAP, len(run.traceback.encode())
    assert len(run.error.encode()) <= CAP, len(run.error.encode())
    assert "bytes cut" in run.traceback, "the traceback was short enough to keep whole"
    assert run.traceback.startswith("Traceback (most recent call last)"), run.traceback[:80]
    assert raising_line in run.traceback, "the cell's line was cut"
    assert run.traceback.rstrip().endswith(("x", "漢", "ValueError: deep")), \
        run.traceback[-80:]


def test_a_short_traceback_is_kept_whole(shell):
    run_cell(shell, "%%track\nraise ValueError('x')")
    run = only_run()
    assert run.error == "x"
    assert run.traceback.rstrip().endswith("ValueError: x")
    assert "bytes cut" not in run.traceback


# File names that are not valid UTF-8 come back from the OS with lone surrogates, and so
# does any message made from them; SQLite cannot store those as text.
UNDECODABLE = "name = b'data-\\xff.csv'.decode(errors='surrogateescape')\n" \
              "raise ValueError(f'cannot parse {name}')"


def test_an_error_message_sqlite_cannot_store_still_fails_the_run(shell, capsys,
                                                                  monkeypatch):
    # IPython prints the message; a text stream that takes any str lets it.
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    result = run_cell(shell, "%%track\n" + UNDECODABLE)
    assert isinstance(result.error_in_exec, ValueError)
    assert "\udcff" in str(result.error_in_exec)  # the user's exception, unchanged
    run = only_run()
    assert run.status == "FAILED" and run.error_type == "ValueError"
    assert run.error == "cannot parse data-\\udcff.csv"
    assert mlops.active_run() is None
    assert jupyter_mlops_lines(capsys.readouterr().err) == []


def test_the_python_api_reraises_the_users_exception_unchanged(store):
    name = b"data-\xff.csv".decode(errors="surrogateescape")
    with pytest.raises(ValueError, match="cannot parse") as caught:
        with mlops.start_run("undecodable") as run:
            raise ValueError(f"cannot parse {name}")
    got = mlops.get_run(run.run_id)
    assert got.status == "FAILED" and got.error == "cannot parse data-\\udcff.csv"
    assert type(caught.value) is ValueError and str(caught.value) == f"cannot parse {name}"


def test_system_exit_records_its_type_and_code(shell):
    result = run_cell(shell, "%%track\nraise SystemExit(3)")
    assert isinstance(result.error_in_exec, SystemExit)
    run = only_run()
    assert (run.status, run.error_type, run.error) == ("FAILED", "SystemExit", "3")


# -- a store held by another process -------------------------------------------------

def use_busy_timeout(store, seconds: float) -> None:
    store.close()  # reopened on next use with the new timeout
    store.busy_timeout_s = seconds


TRACKED = "%%track -n locked\nanswer = 6 * 7\nanswer"


def test_lock_outlasting_the_busy_timeout_leaves_the_result_and_warns_once(shell, store,
                                                                             capsys):
    run_cell(shell, "%%track -n before\nfirst = 1")  # the session is recorded
    use_busy_timeout(store, 1)
    holder = hold_lock(store.db_path)
    try:
        result = run_cell(shell, TRACKED)
        assert result.success and result.result == 42 and shell.user_ns["answer"] == 42
        assert holder.poll() is None  # the lock was held all along
    finally:
        release(holder)
    lines = jupyter_mlops_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert "could not start a run" in lines[0] and "locked" in lines[0]
    assert "The cell itself ran normally" in lines[0]
    # Once the lock frees: no run left RUNNING, the cell is in the log, runs record again.
    history = mlops.cell_history()
    assert TRACKED in list(history["source"])
    run_cell(shell, "%%track -n after\nlater = 1")
    statuses = dict(zip(mlops.search_runs()["name"], mlops.search_runs()["status"]))
    assert statuses == {"before": "FINISHED", "after": "FINISHED"}


def test_lock_freed_within_the_busy_timeout_records_the_run(shell, store, capsys):
    run_cell(shell, "%%track -n before\nfirst = 1")
    holder = hold_lock(store.db_path, seconds=1.5)
    try:
        result = run_cell(shell, TRACKED)
    finally:
        holder.wait(timeout=30)
    assert result.success and result.result == 42
    statuses = dict(zip(mlops.search_runs()["name"], mlops.search_runs()["status"]))
    assert statuses == {"before": "FINISHED", "locked": "FINISHED"}
    assert jupyter_mlops_lines(capsys.readouterr().err) == []


def test_lock_on_the_first_tracked_cell_still_logs_the_cell(shell, store, capsys):
    use_busy_timeout(store, 1)
    holder = hold_lock(store.db_path)
    try:
        result = run_cell(shell, TRACKED)
    finally:
        release(holder)
    assert result.result == 42
    assert len(jupyter_mlops_lines(capsys.readouterr().err)) == 1
    assert TRACKED in list(mlops.cell_history()["source"])


# -- what a real kernel answers ------------------------------------------------------

@pytest.mark.kernel
def test_kernel_replies_error_and_run_all_stops(kernel, tmp_path):
    from jupyter_mlops.tracking.runner import collect, execute_request

    reply, _ = kernel.execute("%load_ext jupyter_mlops")
    assert reply["status"] == "ok"
    failing = execute_request(kernel.client, "%%track -n bad\nx = 1\nraise ValueError('x')")
    queued = execute_request(kernel.client, "after_failure = 1")  # as Run All queues it
    reply, outputs = collect(kernel.client, failing, 60)
    assert reply["status"] == "error" and reply["ename"] == "ValueError"
    assert any(m["msg_type"] == "error" for m in outputs)
    reply, _ = collect(kernel.client, queued, 60)
    assert reply["status"] == "aborted"

    reply, _ = kernel.execute("%%track -n syntax\nx = = 1")
    assert reply["status"] == "error" and reply["ename"] == "SyntaxError"
    reply, _ = kernel.execute("%%track -n exit\nraise SystemExit(3)")
    assert reply["status"] == "error" and reply["ename"] == "SystemExit"
    reply, _ = kernel.execute("alive = 1")  # IPython's own SystemExit handling: no exit
    assert reply["status"] == "ok"

    store = Store(tmp_path / ".mlops", read_only=True)
    try:
        runs = {storage.get_run(store, i).name: storage.get_run(store, i)
                for (i,) in store.query("SELECT run_id FROM runs")}
        assert store.query("SELECT count(*) FROM runs WHERE status = 'RUNNING'")[0][0] == 0
    finally:
        store.close()
    assert runs["bad"].status == "FAILED" and runs["bad"].error_type == "ValueError"
    assert "raise ValueError('x')" in runs["bad"].traceback
    assert (runs["syntax"].status, runs["syntax"].error_type) == ("FAILED", "SyntaxError")
    assert (runs["exit"].status, runs["exit"].error_type) == ("FAILED", "SystemExit")
