"""``sync``: runs and registered versions pushed to a real ``mlflow server``, checked through
MLflow's own client."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import SyncError

pytest.importorskip("mlflow")


@pytest.fixture
def client(mlflow_server):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)


def _remote(client, experiment: str) -> dict:
    """{our run id: the MLflow run} of one experiment on the server."""
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], max_results=1000) if found else []
    return {r.data.tags["jupyter_mlops.run_id"]: r for r in runs}


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    return fig


def test_runs_arrive_with_histories_tags_artifacts_and_datasets(store, mlflow_server, client,
                                                                  monkeypatch):
    monkeypatch.setenv("JUPYTER_MLOPS_USER", "ann")
    experiment = f"exp-{uuid.uuid4().hex[:8]}"
    frame = pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10)})
    with mlops.start_run("first", experiment=experiment, tags={"team": "blue"}) as run:
        mlops.log_params({"C": 0.5, "kernel": "rbf"})
        for step in range(5):
            mlops.log_metric("loss", 1.0 / (step + 1), step=step)
        mlops.log_metric("odd", float("nan"))
        mlops.log_figure(_figure(), "curve.png")
        mlops.log_bytes(b"x" * 100, "notes/readme.txt")
        fingerprint = mlops.log_dataset(frame, "train", role="training")

    result = mlops.sync(mlflow_server.uri, experiment)

    assert result.runs_created == 1 and result.metrics == 6, result
    remote = _remote(client, experiment)[run.run_id]
    assert remote.info.run_name == "first" and remote.info.status == "FINISHED"
    stored = mlops.get_run(run.run_id)
    assert remote.info.start_time == round(stored.start_time * 1000)
    assert remote.info.end_time == round(stored.end_time * 1000)
    assert remote.data.params == {"C": "0.5", "kernel": "rbf"}
    assert remote.data.tags["team"] == "blue"
    assert remote.data.tags["mlflow.user"] == "ann"
    history = client.get_metric_history(remote.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(5)]
    assert [m.timestamp for m in history] == [
        round(m.timestamp * 1000) for m in stored.metric_history("loss")]
    assert np.isnan(client.get_metric_history(remote.info.run_id, "odd")[0].value)
    names = {a.path for a in client.list_artifacts(remote.info.run_id)}
    assert {"curve.png", "notes"} <= names
    png = client.download_artifacts(remote.info.run_id, "curve.png")
    assert open(png, "rb").read()[:4] == b"\x89PNG"
    (dataset,) = remote.inputs.dataset_inputs
    assert dataset.dataset.digest == fingerprint and dataset.dataset.name == "train"
    assert {t.key: t.value for t in dataset.tags}["mlflow.data.context"] == "training"


def test_a_second_sync_sends_only_what_changed(store, mlflow_server, client):
    experiment = f"exp-{uuid.uuid4().hex[:8]}"
    with mlops.start_run("a", experiment=experiment) as first:
        mlops.log_metrics({"acc": 0.5, "f1": 0.4})
    assert mlops.sync(mlflow_server.uri, experiment).runs_created == 1

    again = mlops.sync(mlflow_server.uri, experiment)
    assert (again.runs_created, again.runs_updated, again.metrics) == (0, 0, 0)

    with mlops.start_run("b", experiment=experiment) as second:
        for step in range(3):
            mlops.log_metric("acc", 0.6 + step / 10, step=step)
    third = mlops.sync(mlflow_server.uri, experiment)
    assert (third.runs_created, third.metrics) == (1, 3)

    remote = _remote(client, experiment)
    assert set(remote) == {first.run_id, second.run_id}
    assert len(client.get_metric_history(remote[first.run_id].info.run_id, "acc")) == 1


def test_a_server_that_is_down_is_one_line_and_nothing_is_recorded(store):
    with mlops.start_run("a", experiment="down"):
        mlops.log_metric("acc", 0.5)
    from support import free_port

    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SyncError) as caught:
        mlops.sync(uri, timeout=5)
    message = str(caught.value)
    assert "\n" not in message and uri in message and "0 new run(s)" in message
    assert store.query("SELECT count(*) FROM synced WHERE state != 'creating'") == [(0,)]


def test_bad_uri_says_what_a_tracking_uri_is(store):
    with pytest.raises(mlops.ValidationError, match="http"):
        mlops.sync("mlflow:5000")


def test_registered_versions_load_from_the_server_and_aliases_never_overwrite(
        store, mlflow_server, client, monkeypatch):
    import mlflow
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    mlflow.set_tracking_uri(mlflow_server.uri)
    mlflow.set_registry_uri(mlflow_server.uri)
    X, y = load_iris(return_X_y=True, as_frame=True)
    name = f"iris-{uuid.uuid4().hex[:6]}"
    experiment = f"exp-{uuid.uuid4().hex[:8]}"
    with mlops.start_run("fit", experiment=experiment) as run:
        model = LogisticRegression(max_iter=300).fit(X, y)
    mlops.register_model(model, name, run_id=run.run_id, alias="champion")

    first = mlops.sync(mlflow_server.uri, experiment)

    assert (first.versions, first.aliases, first.conflicts) == (1, 1, [])
    remote = client.get_model_version_by_alias(name, "champion")
    assert remote.tags["jupyter_mlops.version"] == "1"
    assert remote.run_id == _remote(client, experiment)[run.run_id].info.run_id
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert (loaded.predict(X) == model.predict(X)).all()
    files = {f.path for f in client.list_artifacts(remote.run_id, f"models/{name}/v1")}
    assert f"models/{name}/v1/replay.py" in files or f"models/{name}/v1/MLmodel" in files

    with mlops.start_run("refit", experiment=experiment) as run2:
        model2 = LogisticRegression(max_iter=300, C=0.1).fit(X, y)
    mlops.register_model(model2, name, run_id=run2.run_id)
    mlops.set_alias(name, 2, "champion")
    moved = mlops.sync(mlflow_server.uri, experiment)
    assert (moved.versions, moved.aliases, moved.conflicts) == (1, 1, [])
    assert client.get_model_version_by_alias(name, "champion").tags[
        "jupyter_mlops.version"] == "2"

    # Someone moves the alias on the server; moving it here too is a conflict, not a push.
    client.set_registered_model_alias(name, "champion", remote.version)
    mlops.set_alias(name, 1, "champion")
    mlops.set_alias(name, 2, "champion")
    again = mlops.sync(mlflow_server.uri, experiment)
    assert again.aliases == 0 and len(again.conflicts) == 1
    assert f"{name}@champion" in again.conflicts[0]
    assert client.get_model_version_by_alias(name, "champion").version == remote.version
    assert len(client.search_model_versions(f"name='{name}'")) == 2


def test_two_people_sync_to_one_server_and_pull_each_other(tmp_path, mlflow_server,
                                                            monkeypatch):
    from jupyter_mlops.store import current

    experiment = f"team-{uuid.uuid4().hex[:8]}"
    people = {}
    for person in ("ann", "bob"):
        monkeypatch.setenv("JUPYTER_MLOPS_USER", person)
        store = current.set_store(tmp_path / person / ".mlops")
        with mlops.start_run(f"{person}-run", experiment=experiment) as run:
            mlops.log_param("who", person)
            for step in range(4):
                mlops.log_metric("acc", 0.5 + step / 10 + (person == "bob") / 100, step=step)
        if person == "bob":
            from sklearn.dummy import DummyClassifier

            mlops.register_model(DummyClassifier().fit([[0], [1]], [0, 1]), f"{experiment}-m",
                                 run_id=run.run_id, alias="champion")
        people[person] = (store, run.run_id)
        mlops.sync(mlflow_server.uri, experiment)
    try:
        ann_store, ann_run = people["ann"]
        current.set_store(ann_store.path)
        pulled = mlops.pull(mlflow_server.uri, experiment)
        assert (pulled.new, pulled.metrics, pulled.versions) == (1, 4, 1), pulled
        (version,) = mlops.pulled_versions().to_dict(orient="records")
        assert (version["name"], version["version"], version["aliases"], version["user"],
                version["origin"]) == (f"{experiment}-m", "1", ["champion"], "bob",
                                       mlflow_server.uri)
        assert mlops.list_models().empty  # read-only: not in this store's registry
        runs = mlops.search_runs(experiment)
        assert sorted(runs["user"]) == ["ann", "bob"]
        theirs = runs[runs["user"] == "bob"].iloc[0]
        assert theirs["origin"] == mlflow_server.uri and theirs["params.who"] == "bob"
        assert theirs["tags.jupyter_mlops.run_id"] == people["bob"][1]
        history = mlops.get_run(theirs["run_id"]).metric_history("acc")
        assert [m.step for m in history] == [0, 1, 2, 3]
        assert history[-1].value == pytest.approx(0.81)
        mlops.compare_runs([ann_run, theirs["run_id"]])
        # Who and where, in %mlops runs and in the sidebar's queries.
        from jupyter_mlops.dashboards.runs import runs_html
        from jupyter_mlops.server.queries.runs import list_runs, run_detail

        html = runs_html(runs)
        assert ">bob<" in html and mlflow_server.uri in html
        listed = {r["user"]: r["origin"] for r in list_runs(ann_store)["runs"]}
        assert listed == {"ann": None, "bob": mlflow_server.uri}
        detail = run_detail(ann_store, theirs["run_id"], lambda path: path)
        assert (detail["user"], detail["origin"]) == ("bob", mlflow_server.uri)

        again = mlops.pull(mlflow_server.uri, experiment)
        assert (again.new, again.refreshed, again.unchanged) == (0, 0, 1)
        # A pulled run is never pushed back.
        assert mlops.sync(mlflow_server.uri, experiment).runs_created == 0
    finally:
        current.reset_store()
        for store, _ in people.values():
            store.close()


def test_the_magic_and_the_terminal_sync_a_tracked_cell_with_its_source(shell, store,
                                                                         mlflow_server, client,
                                                                         capsys):
    from support import run_cell

    from jupyter_mlops import cli

    experiment = f"cells-{uuid.uuid4().hex[:6]}"
    source = f"%%track -e {experiment}\nalpha = 0.3\nscore = alpha * 2"
    assert run_cell(shell, source, cell_id="cell-abc").success
    result = shell.run_line_magic("mlops", f"sync {mlflow_server.uri} -e {experiment}")
    assert result.runs_created == 1

    (remote,) = _remote(client, experiment).values()
    assert remote.data.tags["jupyter_mlops.cell_id"] == "cell-abc"
    assert remote.data.tags["jupyter_mlops.execution_count"] == "1"
    assert remote.data.metrics["score"] == pytest.approx(0.6)
    cell = client.download_artifacts(remote.info.run_id, "jupyter_mlops/cell.py")
    assert "score = alpha * 2" in open(cell).read()

    assert cli.main(["sync", mlflow_server.uri, "-e", experiment, "--store",
                     str(store.path)]) == 0
    assert "0 new run(s), 0 updated" in capsys.readouterr().out


def test_a_version_with_no_run_goes_up_as_a_logged_model_once(store, mlflow_server, client,
                                                              monkeypatch):
    import mlflow
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from jupyter_mlops.teamsync.rest import Client

    mlflow.set_tracking_uri(mlflow_server.uri)
    mlflow.set_registry_uri(mlflow_server.uri)
    X, y = load_iris(return_X_y=True, as_frame=True)
    name = f"norun-{uuid.uuid4().hex[:6]}"
    model = LogisticRegression(max_iter=300).fit(X, y)
    mlops.register_model(model, name, alias="champion")  # outside any run

    # The first sync stops after the logged model is made, before the version is.
    real_call = Client.call

    def stop_at_the_version(self, method, endpoint, payload=None):
        if endpoint == "model-versions/create":
            raise SyncError("the server went away")
        return real_call(self, method, endpoint, payload)

    monkeypatch.setattr(Client, "call", stop_at_the_version)
    with pytest.raises(SyncError):
        mlops.sync(mlflow_server.uri)
    monkeypatch.setattr(Client, "call", real_call)
    done = mlops.sync(mlflow_server.uri)

    assert (done.versions, done.aliases, done.skipped) == (1, 1, [])
    remote = client.get_model_version_by_alias(name, "champion")
    assert remote.run_id in (None, "")
    assert remote.tags["jupyter_mlops.sha256"] == mlops.model_versions(name)["sha256"][0]
    experiment = client.get_experiment_by_name("jupyter_mlops models")
    made = client.search_logged_models([experiment.experiment_id],
                                       filter_string=f"name = '{name}'")
    assert [m.artifact_location for m in made] == [remote.source]  # resumed: made no second
    assert str(made[0].status) == "READY"
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert (loaded.predict(X) == model.predict(X)).all()
    assert mlops.sync(mlflow_server.uri).versions == 0
