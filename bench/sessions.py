"""How much following renames costs the sidebar over a store of many sessions.

Every sessions, cells and run request brings the running kernels' sessions to the
notebook each serves now (``renames.follow_kernels``), and the Timeline then looks the
notebook up by path and kernel process (``queries.list_sessions``); a rename in JupyterLab
moves the sessions of a file or folder (``renames.follow_rename``). Builds a store of
``--sessions`` sessions over 500 notebooks and times each, with nothing to change (the
case of every poll) for ``follow_kernels``. Nothing here asserts.

    python bench/sessions.py [--sessions 10000] [--repeat 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import median, scratch_dir, time_each  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    from jupyter_mlops.server.queries import list_sessions
    from jupyter_mlops.server.renames import LiveKernel, follow_kernels, follow_rename
    from jupyter_mlops.store import Store
    from jupyter_mlops.store.process import process_start
    from jupyter_mlops.tracking import storage

    with scratch_dir() as tmp:
        store = Store(Path(tmp) / ".mlops")
        with store.write() as conn:
            conn.executemany(
                "INSERT INTO sessions (session_id, pid, host, proc_start, started, notebook, "
                "python, cwd) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(uuid.uuid4().hex, 100_000 + i, "elsewhere", "1", time.time(),
                  f"/root/dir{i % 50}/nb{i % 500}.ipynb", "3", "/")
                 for i in range(args.sessions)])
        storage.start_session(store, uuid.uuid4().hex, "/root/Untitled.ipynb", "3")
        pid = os.getpid()
        kernels = [LiveKernel("k0", pid, process_start(pid), "/root/Trained.ipynb")]
        kernels += [LiveKernel(f"k{i}", 200_000 + i, None, f"/root/other{i}.ipynb")
                    for i in range(1, 5)]
        follow_kernels(store, kernels)  # the one change; every later call finds none

        def rename(i: int) -> None:
            follow_rename(store, f"/root/dir{i % 50}/nb{i % 500}.ipynb", f"/root/r{i}.ipynb")

        def rename_folder(i: int) -> None:
            follow_rename(store, f"/root/dir{i % 50}", f"/root/moved{i}")

        timings = {
            "follow_kernels (5 kernels, nothing to change)":
                time_each(lambda _: follow_kernels(store, kernels), args.repeat),
            "list_sessions (notebook and kernel process)":
                time_each(lambda _: list_sessions(store, lambda p: p,
                                                  notebook="/root/Trained.ipynb", pid=pid,
                                                  limit=5), args.repeat),
            "follow_rename of a notebook": time_each(rename, 50),
            "follow_rename of a folder": time_each(rename_folder, 50),
        }
        store.close()
    print(f"{args.sessions:,} sessions")
    for name, times in timings.items():
        print(f"  {name:48} {median(times) * 1e3:8.2f} ms (median)")


if __name__ == "__main__":
    main()
