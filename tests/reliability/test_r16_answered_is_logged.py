"""R16: every answered prediction is logged exactly once, even when the store stays locked
far past the busy timeout, and even when the server is killed (SIGKILL) after answering.

The server is a real ``jupyter-mlops serve`` process on 127.0.0.1; clients in threads of
this process record the request id of every 200 they receive; the lock is another
process inside ``BEGIN IMMEDIATE``. After the run (and, for a kill, a restart that
replays the journal) the store must hold each answered request id exactly once.
"""

import collections
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
from model_server_http import call
from sklearn.linear_model import LogisticRegression
from support import hold_lock, release

import jupyter_mlops as mlops
from jupyter_mlops.serving import journal
from jupyter_mlops.serving.predictions import (
    PredictionRecord,
    replay_journals,
    store_records,
)

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(240)]

BUSY_TIMEOUT_S = 0.5
# Held 12x the busy timeout: longer than the retries the log once made before it gave up
# (5 tries of a busy timeout each, 2 s of pauses), so a log that gives up loses requests.
LOCK_S = 12 * BUSY_TIMEOUT_S
CLIENTS = 3
MAX_REQUESTS = 40_000  # every client loop is bounded, far past what the lock lets through


@pytest.fixture
def model_store(store):
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    mlops.register_model(LogisticRegression().fit(X, X["a"] > 0), "m", reference=X)
    return store


class Server:
    """``jupyter-mlops serve m`` in a process of its own."""

    def __init__(self, store, tmp_path):
        env = dict(os.environ, JUPYTER_MLOPS_BUSY_TIMEOUT=str(BUSY_TIMEOUT_S),
                   PYTHONUNBUFFERED="1")
        self.log = open(tmp_path / f"server-{time.monotonic_ns()}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_mlops.cli", "serve", "m", "--port", "0",
             "--store", str(store.path), "--watch", "0"],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        line = self.proc.stdout.readline()
        assert " at http://127.0.0.1:" in line, line
        self.url = line.split(" at ")[1].split("/invocations")[0]

    def health(self):
        return call(self.url, "GET", "/health")[2]["predictions_log"]

    def stop(self):
        """SIGTERM: the server stops accepting and drains its log before it exits."""
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=120) == 0
        self.log.close()

    def kill(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()


class Burst:
    """CLIENTS threads posting one-row requests until told to stop (or MAX_REQUESTS);
    ``answered`` holds the request id of every 200 that arrived."""

    def __init__(self, url):
        self.url = url
        self.answered, self.errors = [], []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(CLIENTS)]
        for thread in self.threads:
            thread.start()

    def _run(self, index):
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        body = json.dumps({"dataframe_records": [{"a": index * 0.1, "b": -0.2}]})
        while not self.stopping.is_set() and len(self.answered) < MAX_REQUESTS:
            try:
                conn.request("POST", "/invocations", body=body,
                             headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(exc)  # the server was killed under this request
                return
            if response.status == 200:
                with self.lock:
                    self.answered.append(response.getheader("X-Request-Id"))
            else:
                self.errors.append(response.status)
        conn.close()

    def wait_for(self, count, timeout=120):
        deadline = time.monotonic() + timeout
        while len(self.answered) < count and time.monotonic() < deadline and \
                any(t.is_alive() for t in self.threads):
            time.sleep(0.01)
        assert len(self.answered) >= count, (len(self.answered), self.errors[:3])

    def finish(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(60)
        return list(self.answered)


def logged_ids(store):
    return collections.Counter(r for (r,) in store.query(
        "SELECT request_id FROM predictions WHERE name = 'm'"))


def journals(store):
    folder = journal.journal_folder(store)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_lock_held_far_past_the_busy_timeout_loses_no_answered_request(model_store,
                                                                        tmp_path):
    server = Server(model_store, tmp_path)
    holder = hold_lock(model_store.db_path, seconds=LOCK_S)
    burst = Burst(server.url)
    spilled_while_locked = pending_while_locked = 0
    try:
        burst.wait_for(50)
        while holder.poll() is None:
            stats = server.health()
            spilled_while_locked = max(spilled_while_locked, stats["spilled"])
            pending_while_locked = max(pending_while_locked, stats["pending"])
            time.sleep(0.2)
    finally:
        release(holder)
    answered_under_lock = len(burst.answered)
    burst.wait_for(answered_under_lock + 50)  # and on after the lock freed
    answered = burst.finish()
    assert not burst.errors
    # While locked, the requests were answered, waited in the journal and were counted.
    assert answered_under_lock >= 50
    assert spilled_while_locked > 0 and pending_while_locked > 0
    server.stop()
    logged = logged_ids(model_store)
    assert set(logged) == set(answered)
    assert max(logged.values()) == 1 and len(answered) == len(set(answered))
    assert journals(model_store) == []  # all stored: nothing left behind


@pytest.mark.parametrize("locked", [True, False], ids=["store-locked", "store-free"])
def test_kill_9_mid_burst_then_restart_logs_every_answered_request_once(model_store,
                                                                        tmp_path, locked):
    server = Server(model_store, tmp_path)
    holder = hold_lock(model_store.db_path) if locked else None
    burst = Burst(server.url)
    try:
        burst.wait_for(300)
        server.kill()  # while the clients are still sending
    finally:
        if holder is not None:
            release(holder)
    answered = burst.finish()
    assert len(burst.errors) >= 1  # the kill cut at least one client off mid-request
    left = journals(model_store)
    assert left, "the killed server left its journal behind"
    if locked:
        assert logged_ids(model_store) == {}  # nothing reached the store before the kill

    Server(model_store, tmp_path).stop()  # a new server on the store replays the journal
    logged = logged_ids(model_store)
    assert set(answered) <= set(logged)
    assert max(logged.values()) == 1
    # Requests journaled but cut off before their answer: at most one per client.
    assert len(set(logged) - set(answered)) <= CLIENTS
    assert journals(model_store) == []


# -- the journal alone: replays that must not duplicate -----------------------------------

def _dead_pid():
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def _records(n, prefix="r"):
    now = time.time()
    return [PredictionRecord(f"{prefix}{i}", now + i * 1e-3, "m", 1, "champion", True,
                             "application/json", b'{"inputs": [[%d, 2]]}' % i, "[1]", 1, 0.5)
            for i in range(n)]


def _orphan(store, data):
    folder = journal.journal_folder(store)
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"predictions-{journal._host()}-{_dead_pid()}-x-{os.urandom(4).hex()}.journal"
    path.write_bytes(data)
    return path


def test_a_journal_whose_records_were_partly_stored_is_replayed_once(store):
    records = _records(40)
    store_records(store, records[:25])  # stored before the crash; the journal not emptied
    frames = journal.encode(records)
    torn = journal.encode(_records(1, prefix="torn"))[:-7]  # cut short by the kill
    _orphan(store, frames + torn)
    assert replay_journals(store) == 40
    assert replay_journals(store) == 0  # taken once
    logged = logged_ids(store)
    assert set(logged) == {r.request_id for r in records} and max(logged.values()) == 1
    assert journals(store) == []
    (inputs,) = store.query("SELECT inputs FROM predictions WHERE request_id = 'r7'")[0]
    assert inputs == '{"inputs": [[7, 2]]}'


@pytest.mark.parametrize("where", [6, 30], ids=["a length", "the payload"])
def test_a_damaged_journal_is_kept_never_deleted(store, where):
    good, bad = _records(3, prefix="good"), _records(3, prefix="bad")
    data = bytearray(journal.encode(good) + journal.encode(bad))
    data[len(journal.encode(good)) + where] ^= 0xFF  # in the first "bad" frame
    path = _orphan(store, bytes(data))
    assert replay_journals(store) == 3
    assert set(logged_ids(store)) == {r.request_id for r in good}
    kept = [name for name in journals(store) if name.endswith(".unreadable")]
    assert len(kept) == 1 and not path.exists()
    assert (journal.journal_folder(store) / kept[0]).read_bytes() == bytes(data)


def test_a_live_servers_journal_is_never_taken_by_another(model_store, tmp_path):
    server = Server(model_store, tmp_path)
    holder = hold_lock(model_store.db_path)
    try:
        for _ in range(5):
            assert call(server.url, "POST", "/invocations",
                        {"dataframe_records": [{"a": 1.0, "b": 2.0}]})[0] == 200
        assert journals(model_store)
    finally:
        release(holder)
    assert replay_journals(model_store) == 0  # its writer is alive: it stores them itself
    server.stop()
    assert len(logged_ids(model_store)) == 5


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_request_that_cannot_be_journaled_is_not_answered(model_store):
    """The journal's file swapped for /dev/full (every write: ENOSPC): the request gets a
    503 and no prediction; once the file is back, requests are answered and logged."""
    from jupyter_mlops.serving import serve

    payload = {"dataframe_records": [{"a": 1.0, "b": 2.0}]}
    with serve("m", port=0, watch_interval=None) as server:
        live = server.state.log.journal
        saved, full = os.dup(live._fd), os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, live._fd)
        try:
            for _ in range(3):
                status, headers, answer = call(server.url, "POST", "/invocations", payload)
                assert status == 503 and answer["error_code"] == "NOT_LOGGED"
                assert "predictions" not in answer
        finally:
            os.dup2(saved, live._fd)
            os.close(saved)
            os.close(full)
        status, headers, _ = call(server.url, "POST", "/invocations", payload)
        assert status == 200 and server.flush(30)
        assert set(logged_ids(model_store)) == {headers["X-Request-Id"]}
