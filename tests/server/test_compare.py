"""``compare``: picked runs, a sweep's trials or a filter, with the params that moved the
metric; and the runs list marks a sweep's parent, its trials folded under it."""

from __future__ import annotations

import math

import jupyter_mlops as mlops


async def test_compare_a_sweep_picked_runs_and_refuse_what_it_cannot_mean(api, seeded):
    swept = mlops.sweep(lambda lr, depth: {"acc": 0.9 - 2 * lr + depth / 100},
                        lr=[0.01, 0.1], depth=[2, 4], maximize="acc", experiment="sweeps",
                        name="tune")
    code, page = await api("runs", params={"experiment": "sweeps"})
    assert code == 200
    assert [(r["name"], r["sweep"], r["children"]) for r in page["runs"]] == [("tune", True, 4)]

    code, answer = await api("compare", params={"parent": swept.run_id})
    assert code == 200
    assert len(answer["runs"]) == 4  # the trials; the parent stands for them
    assert (answer["metric"], answer["direction"]) == ("acc", "maximize")
    assert answer["params"] == ["lr", "depth"]  # lr moved acc most
    assert list(answer["importance"]) == ["lr", "depth"]
    trial = answer["runs"][0]
    assert trial["parent_run_id"] == swept.run_id
    assert len(trial["metrics"]["acc"]) == 3  # latest, min, max

    alpha, beta = seeded.runs["alpha"], seeded.runs["beta"]
    code, answer = await api("compare", params={"runs": f"{alpha},{beta}",
                                                "summary": "min"})
    assert code == 200 and answer["summary"] == "min"
    runs = {r["name"]: r for r in answer["runs"]}
    assert runs["alpha"]["metrics"]["acc"] == [0.9, 0.5, 0.9]  # latest, min, max
    assert runs["alpha"]["metrics"]["ratio"][0] is None  # infinite: null in the JSON
    assert math.isclose(runs["beta"]["metrics"]["acc"][0], 0.95)

    for params, message in (({"runs": alpha, "summary": "median"}, "summary is one of"),
                            ({"runs": "not-a-run"}, "32 lowercase hex"),
                            ({"filter": "metrics.acc >"}, "")):
        code, answer = await api("compare", params=params)
        assert code == 400 and message in answer["message"]
    code, answer = await api("compare")
    assert code == 200 and answer["runs"] == []
