"""Helpers for the framework-family tests: the one run a test made, its files by name."""

from __future__ import annotations

import csv
import io

import jupyter_mlops as mlops


def only_run():
    frame = mlops.search_runs()
    assert len(frame) == 1, frame
    return mlops.get_run(frame.loc[0, "run_id"])


def artifacts(run) -> dict:
    return {a.name: a for a in run.artifacts}


def artifact_bytes(store, run, name: str) -> bytes:
    return store.artifacts.read_verified(artifacts(run)[name].sha256)


def table(store, run, name: str) -> list[dict[str, str]]:
    text = artifact_bytes(store, run, name).decode()
    return list(csv.DictReader(io.StringIO(text)))


def history(run, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in run.metric_history(key)]


def assert_signed(store, run, name: str) -> None:
    from jupyter_mlops.store.signing import verify

    sha = artifacts(run)[name].sha256
    assert verify(sha, store.signature(sha)) is None, f"{name} is not signed"
