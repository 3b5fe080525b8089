"""Schedules and triggers: notebooks that run by themselves, gated, told to a webhook."""

import http.server
import json
import os
import threading
import time

import pytest
from support import write_notebook

import jupyter_mlops as mlops
from jupyter_mlops.monitoring.scheduler import Scheduler
from jupyter_mlops.monitoring.triggers import get_trigger
from jupyter_mlops.tracking import storage

pytestmark = pytest.mark.timeout(300)

TRAIN = ("%%track -n train\n"
         "import glob\n"
         "import pandas as pd\n"
         "from sklearn.linear_model import LogisticRegression\n"
         "frame = pd.concat([pd.read_csv(p) for p in sorted(glob.glob('data/*.csv'))])\n"
         "X, y = frame.drop(columns=['target']), frame['target']\n"
         "model = LogisticRegression(C=C, max_iter=5000).fit(X, y)")


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    _Hook.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Hook.received
    server.shutdown()
    server.server_close()


def _firings(store, name):
    return store.query("SELECT status, reason, run_id, version, promoted, message FROM firings "
                       "WHERE trigger = ? ORDER BY started", (name,))


def test_a_new_file_in_a_watched_folder_retrains_gates_promotes_and_tells_the_webhook(
        store, tmp_path, webhook):
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    url, received = webhook
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    (tmp_path / "data").mkdir()
    X_train.iloc[:200].assign(target=y_train.iloc[:200]).to_csv(tmp_path / "data/a.csv",
                                                                 index=False)
    X_test.assign(target=y_test).to_csv(tmp_path / "holdout.csv", index=False)
    weak = LogisticRegression(C=1e-6, max_iter=200).fit(X_train.iloc[:50], y_train.iloc[:50])
    mlops.register_model(weak, "cancer", alias="champion", store=store)
    notebook = write_notebook(tmp_path / "train.ipynb", "%load_ext jupyter_mlops",
                         ("C = 1.0", ["parameters"]), TRAIN,
                         "%mlops register cancer --var model")
    mlops.schedule("retrain", notebook, watch=tmp_path / "data", parameters={"C": 0.5},
                   model="cancer@champion", webhook=url,
                   gate={"data": tmp_path / "holdout.csv", "target": "target"}, store=store)
    scheduler = Scheduler(store)
    assert scheduler.tick(wait=True) == []  # the first look only takes note of the folder
    assert scheduler.tick(wait=True) == []  # nothing new
    X_train.iloc[200:].assign(target=y_train.iloc[200:]).to_csv(tmp_path / "data/b.csv",
                                                                index=False)
    (fired,) = scheduler.tick(wait=True)
    ((status, reason, run_id, version, promoted, message),) = _firings(store, "retrain")
    assert status == "finished", message
    assert reason.startswith("1 new or changed file(s)") and "b.csv" in reason
    assert version == 2 and promoted == 1, message
    assert "replay pass" in message and "metric f1_macro pass" in message
    assert mlops.get_model_version("cancer@champion", store=store).version == 2
    run = storage.get_run(store, run_id)
    assert run.tags["jupyter_mlops.trigger"] == "retrain" and run.params == {"C": 0.5}
    assert [hook["status"] for hook in received] == ["finished"]
    assert received[0]["promoted"] is True and received[0]["version"] == 2
    assert scheduler.tick(wait=True) == []  # the same files again: nothing fires


def test_missed_periods_are_reported_once_and_one_firing_at_a_time(store, tmp_path):
    notebook = write_notebook(tmp_path / "tick.ipynb", "x = 1")
    trigger = mlops.schedule("tick", notebook, every="60s", store=store)
    scheduler = Scheduler(store)
    assert scheduler.tick(now=trigger.created + 30, wait=True) == []
    # Five periods later (the scheduler was down): one missed row and one firing.
    (fired,) = scheduler.tick(now=trigger.created + 5 * 60 + 1, wait=True)
    (missed, done) = _firings(store, "tick")
    assert missed[0] == "missed" and missed[5].startswith("4 due time(s) passed")
    assert done[0] == "finished" and done[1] == "every 1m"
    # A firing of a live process under way: nothing fires beside it.
    store_path = store.path
    from jupyter_mlops.store.process import current_process

    pid, host, start = current_process()
    with store.write() as conn:
        conn.execute("INSERT INTO firings (firing_id, trigger, started, status, reason, pid, "
                     "host, proc_start) VALUES ('x', 'tick', 0, 'running', 'test', ?, ?, ?)",
                     (pid, host, start))
    assert scheduler.tick(now=trigger.created + 10 * 60, wait=True) == []
    # The same row left by a process that is gone is released, and the trigger fires.
    with store.write() as conn:
        conn.execute("UPDATE firings SET pid = 2147483646 WHERE firing_id = 'x'")
    assert len(scheduler.tick(now=trigger.created + 11 * 60, wait=True)) == 1
    assert store.query("SELECT status FROM firings WHERE firing_id = 'x'")[0][0] == "failed"
    assert str(store_path) == str(store.path)


def test_cron_counts_the_due_times_between_two_looks(store, tmp_path):
    pytest.importorskip("apscheduler")
    notebook = write_notebook(tmp_path / "cron.ipynb", "x = 1")
    trigger = mlops.schedule("five", notebook, cron="*/5 * * * *", store=store)
    scheduler = Scheduler(store)
    later = trigger.created + 16 * 60
    (fired,) = scheduler.tick(now=later, wait=True)
    expected = int(later // 300) - int(trigger.created // 300)  # minutes 0, 5, 10, ... UTC
    rows = _firings(store, "five")
    assert [r[0] for r in rows] == ["missed", "finished"]
    assert rows[0][5].startswith(f"{expected - 1} due time(s)")
    with pytest.raises(mlops.ValidationError, match="five fields"):
        mlops.schedule("bad", notebook, cron="every day", store=store)


def test_a_trigger_changed_in_the_store_by_someone_else_never_fires(store, tmp_path):
    good = write_notebook(tmp_path / "good.ipynb", "x = 1")
    evil = write_notebook(tmp_path / "evil.ipynb", "open('pwned', 'w').write('ran')")
    trigger = mlops.schedule("nightly", good, every="1m", store=store)
    with store.write() as conn:  # a store writer points the signed trigger elsewhere
        conn.execute("UPDATE triggers SET notebook = ? WHERE name = 'nightly'", (str(evil),))
    assert get_trigger("nightly", store=store).untrusted() == \
        "its signature does not match your key"
    Scheduler(store).tick(now=trigger.created + 61, wait=True)
    ((status, _, run_id, _, _, message),) = _firings(store, "nightly")
    assert status == "refused" and run_id is None
    assert "schedule it again yourself" in message
    assert not (tmp_path / "pwned").exists()
    assert store.query("SELECT count(*) FROM runs")[0][0] == 0


def test_alerts_and_code_changes_fire_and_bad_schedules_say_what_to_do(store, tmp_path):
    notebook = write_notebook(tmp_path / "nb.ipynb", "x = 1")
    mlops.schedule("on-alert", notebook, on_alert="churn", store=store)
    mlops.schedule("on-code", notebook, on_code_change=True, store=store)
    scheduler = Scheduler(store)
    assert scheduler.tick(wait=True) == []
    with store.write() as conn:
        conn.execute("INSERT INTO alerts (alert_id, created, name, version, model_uri, kind, "
                     "message) VALUES ('a1', ?, 'churn', 1, 'models:/churn/1', 'drift', 'x')",
                     (time.time(),))
    write_notebook(notebook, "x = 2")  # the code changed
    fired = scheduler.tick(wait=True)
    assert sorted(f.trigger for f in fired) == ["on-alert", "on-code"]
    assert _firings(store, "on-alert")[0][1] == "1 new monitoring alert(s) of churn"
    assert _firings(store, "on-code")[0][1] == "the code of nb.ipynb changed"
    listed = mlops.list_schedules(store=store)
    assert list(listed["name"]) == ["on-alert", "on-code"] and listed["trusted"].all()
    assert list(listed["last_status"]) == ["finished", "finished"]
    for kwargs, message in [({}, "exactly one of"), ({"every": "1x"}, "number and a unit"),
                            ({"every": "1m", "model": "churn"}, "name@champion"),
                            ({"every": "1m", "gate": {"data": "h.csv"}}, "give model= too"),
                            ({"watch": tmp_path / "missing"}, "takes a folder")]:
        with pytest.raises(mlops.ValidationError, match=message):
            mlops.schedule("bad", notebook, store=store, **kwargs)
    mlops.unschedule("on-code", store=store)
    assert list(mlops.list_schedules(store=store)["name"]) == ["on-alert"]


def test_the_jupyter_server_fires_triggers_by_itself(tmp_path, monkeypatch, store):
    from server.live import live_server

    notebook = write_notebook(tmp_path / "nb.ipynb", "open('fired.txt', 'w').write('yes')")
    (tmp_path / "watched").mkdir()
    mlops.schedule("watcher", notebook, watch=tmp_path / "watched", store=store)
    monkeypatch.setenv("JUPYTER_MLOPS_SCHEDULER_INTERVAL", "0.5")
    with live_server(tmp_path / "server", store.path) as server:
        deadline = time.monotonic() + 60
        while not store.query("SELECT last_checked FROM triggers")[0][0]:
            assert time.monotonic() < deadline, server.log_text()[-2000:]
            time.sleep(0.2)
        (tmp_path / "watched" / "new.csv").write_text("a\n1\n")
        while not (tmp_path / "fired.txt").exists():
            assert time.monotonic() < deadline, server.log_text()[-2000:]
            time.sleep(0.2)
        while _firings(store, "watcher")[0][0] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert _firings(store, "watcher")[0][0] == "finished"
    assert os.path.exists(tmp_path / "fired.txt")
