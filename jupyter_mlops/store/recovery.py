"""Recovery from writers that died: a kernel killed mid-run leaves its run RUNNING and its
cell "running" for ever. Whoever opens the store next marks them, as SQLite itself rolls
back a dead writer's journal; a process is alive by pid, host and start time (``process``).
"""

from __future__ import annotations

from .process import is_alive


def reap_dead_runs(store) -> list[str]:
    """Mark KILLED the RUNNING runs of ``store`` (a ``Store``, which calls this when it
    opens) whose process is gone, and the cells their sessions left running; returns the
    runs' ids."""
    rows = store.query(
        "SELECT run_id, pid, host, proc_start FROM runs WHERE status = 'RUNNING'"
    )
    dead = [run_id for run_id, pid, host, start in rows if not is_alive(pid, host, start)]
    sessions = store.query(
        "SELECT DISTINCT s.session_id, s.pid, s.host, s.proc_start FROM sessions s "
        "JOIN cells c ON c.session_id = s.session_id WHERE c.status = 'running'"
    )
    dead_sessions = [s for s, pid, host, start in sessions if not is_alive(pid, host, start)]
    if not dead and not dead_sessions:
        return []
    with store.write() as conn:
        conn.executemany(
            "UPDATE runs SET status = 'KILLED', end_time = heartbeat, "
            "error_type = 'ProcessDied', error = 'The process running this run ended "
            "before the run did (killed or crashed).' "
            "WHERE run_id = ? AND status = 'RUNNING'",
            [(run_id,) for run_id in dead],
        )
        conn.executemany(
            "UPDATE cells SET status = 'killed' WHERE session_id = ? AND status = 'running'",
            [(session,) for session in dead_sessions],
        )
    return dead
