"""The maturity of each model, read off the store: tracked, lineage, gated, served,
monitored, retrained automatically."""

import json
import urllib.request

import pytest
from support import write_notebook

import jupyter_mlops as mlops
from jupyter_mlops.cli import main

pytestmark = pytest.mark.timeout(240)


def _levels(store):
    frame = mlops.maturity(store=store).set_index("model")
    return {name: int(frame.loc[name, "level"]) for name in frame.index}, frame


def test_each_level_is_reached_by_doing_it(shell, store, tmp_path, capsys):
    from sklearn.linear_model import LogisticRegression

    shell.run_cell("from sklearn.datasets import load_iris\n"
                   "from sklearn.linear_model import LogisticRegression\n"
                   "X, y = load_iris(return_X_y=True, as_frame=True)", store_history=True)
    scripted = LogisticRegression(max_iter=500).fit(*shell.user_ns["X"].pipe(
        lambda X: (X, shell.user_ns["y"])))
    mlops.register_model(scripted, "scripted", reference=shell.user_ns["X"], store=store)
    assert shell.run_cell("%%track -n fit\nmodel = LogisticRegression(max_iter=500).fit(X, y)",
                          store_history=True).success
    shell.run_line_magic("mlops", "register iris --var model --alias champion")
    levels, frame = _levels(store)
    assert levels == {"iris": 2, "scripted": 0}
    assert frame.loc["scripted", "next"].startswith("train it in a %%track cell")
    assert frame.loc["iris", "next"] == ("check a version on a holdout (jupyter-mlops check "
                                         "iris/N --against iris@ALIAS)")

    holdout = shell.user_ns["X"].assign(target=shell.user_ns["y"])
    assert mlops.check("iris/1", data=holdout, target="target", thresholds={"accuracy": 0.5},
                       verify_replay=False, store=store).passed
    assert _levels(store)[0]["iris"] == 3

    with mlops.serve("iris@champion", port=0, watch_interval=None, store=store) as running:
        rows = shell.user_ns["X"].head(3).to_dict(orient="records")
        request = urllib.request.Request(
            running.url + "/invocations", data=json.dumps({"dataframe_records": rows}).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        running.flush()
    assert _levels(store)[0]["iris"] == 4

    mlops.monitor("iris@champion", batch=holdout, labels="target", store=store)
    assert _levels(store)[0]["iris"] == 5

    notebook = write_notebook(tmp_path / "train.ipynb", "x = 1")
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    mlops.schedule("retrain", notebook, every="1d", model="iris@champion",
                   gate={"data": tmp_path / "holdout.csv", "target": "target"}, store=store)
    levels, frame = _levels(store)
    assert levels == {"iris": 6, "scripted": 0} and frame.loc["iris", "next"] == ""
    assert frame.loc["scripted", ["served", "monitored"]].tolist() == [False, False]

    shell.run_line_magic("mlops", "status")  # the same in the notebook
    capsys.readouterr()
    assert main(["status", "--store", str(store.path)]) == 0
    out = capsys.readouterr().out
    assert "iris                     level 6/6" in out
    assert "scripted                 level 0/6  tracked:no" in out
