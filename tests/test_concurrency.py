"""Several processes log to one store at once: nothing lost, nothing locked."""

import multiprocessing
import sqlite3

import pytest

pytestmark = pytest.mark.timeout(300)

RUNS_PER_WORKER = 200
WORKERS = 4


def _worker(path: str, worker: int, queue) -> None:
    import jupyter_mlops as mlops

    mlops.set_store(path)
    done, errors = [], []
    for i in range(RUNS_PER_WORKER):
        try:
            with mlops.start_run(f"w{worker}-{i}", experiment=f"exp-{i % 3}") as run:
                mlops.log_params({f"p{k}": k * worker for k in range(5)})
                for step in range(3):
                    mlops.log_metrics({f"m{k}": float(step + k) for k in range(5)})
            done.append(run.run_id)
        except Exception as exc:  # noqa: BLE001 - every error is a test failure
            errors.append(f"{type(exc).__name__}: {exc}")
    queue.put((done, errors))


def test_four_processes_two_hundred_runs_each(tmp_path):
    path = str(tmp_path / ".mlops")
    import jupyter_mlops as mlops

    mlops.Store(path).close()  # the store exists, as in a notebook that already ran
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_worker, args=(path, w, queue)) for w in range(WORKERS)]
    for process in workers:
        process.start()
    results = [queue.get(timeout=240) for _ in workers]
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    acknowledged = [run_id for done, _ in results for run_id in done]
    errors = [error for _, errs in results for error in errs]
    assert errors == []
    assert len(acknowledged) == len(set(acknowledged)) == WORKERS * RUNS_PER_WORKER

    conn = sqlite3.connect(tmp_path / ".mlops" / "mlops.db")
    finished = {r for (r,) in conn.execute("SELECT run_id FROM runs WHERE status = 'FINISHED'")}
    assert finished == set(acknowledged)
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 800
    assert conn.execute("SELECT count(*) FROM params").fetchone()[0] == 800 * 5
    assert conn.execute("SELECT count(*) FROM metrics").fetchone()[0] == 800 * 15
    per_run = conn.execute("SELECT count(*) FROM latest_metrics GROUP BY run_id").fetchall()
    assert {n for (n,) in per_run} == {5}
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()


def _thread_worker(worker: int, acknowledged: list, errors: list) -> None:
    import jupyter_mlops as mlops

    for i in range(50):
        try:
            with mlops.start_run(f"t{worker}-{i}") as run:
                mlops.log_metrics({"a": 1.0, "b": 2.0})
                mlops.log_param("worker", worker)
            acknowledged.append(run.run_id)
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))


def test_threads_share_one_store(store):
    import threading

    import jupyter_mlops as mlops

    acknowledged, errors = [], []
    threads = [threading.Thread(target=_thread_worker, args=(w, acknowledged, errors))
               for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    frame = mlops.search_runs()
    assert set(frame["run_id"]) == set(acknowledged) and len(acknowledged) == 400
    assert (frame["status"] == "FINISHED").all()
    assert frame["metrics.a"].eq(1.0).all()
