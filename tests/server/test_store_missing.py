"""R18 for the sidebar: a store deleted or replaced while the server runs is let go, so
the API shows what is on disk now, never what an unlinked file still holds."""

from __future__ import annotations

import shutil

import pytest

from jupyter_mlops.store import Store
from jupyter_mlops.tracking import storage

pytestmark = pytest.mark.reliability


async def test_the_api_lets_go_of_a_deleted_store_and_reads_the_one_made_again(api, seeded):
    code, page = await api("runs")
    assert (code, page["total"]) == (200, 11)
    alpha = seeded.runs["alpha"]
    assert (await api("runs", alpha))[0] == 200
    seeded.store.close()
    shutil.rmtree(seeded.store.path)  # rm -rf .mlops while the server has it open

    code, page = await api("runs")
    assert (code, page["total"], page["runs"]) == (200, 0, [])
    assert (await api("runs", alpha))[0] == 404
    assert not seeded.store.path.exists()  # the server never makes a store

    made_again = Store(seeded.store.path)  # a kernel starts a new store at the same path
    storage.create_run(made_again, "e" * 32, "fresh", "new-store")
    made_again.close()
    code, page = await api("runs")
    assert (code, [run["name"] for run in page["runs"]]) == (200, ["new-store"])
    assert (await api("runs", alpha))[0] == 404
