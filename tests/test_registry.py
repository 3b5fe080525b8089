"""The registry: versions, aliases, integrity, lineage and bad input."""

import hashlib
import multiprocessing
import threading

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import jupyter_mlops as mlops
from support import run_cell


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    y = (X["a"] + X["b"] > 0).astype(int)
    return X, y


def test_versions_aliases_and_uris(store, data):
    X, y = data
    first = mlops.register_model(LogisticRegression().fit(X, y), "clf", alias="champion",
                                 reference=X)
    second = mlops.register_model(LogisticRegression(C=0.1).fit(X, y), "clf")
    assert (first.version, second.version) == (1, 2)
    assert first.aliases == ["champion"] and first.uri == "models:/clf/1"
    assert first.signature == {"kind": "dataframe", "columns": [
        {"name": "a", "dtype": "float64"}, {"name": "b", "dtype": "float64"},
        {"name": "c", "dtype": "float64"}]}
    assert first.reference_rows == 200
    for uri in ("clf@champion", "clf/1", "models:/clf/1", "models:/clf@champion"):
        model = mlops.load_model(uri)
        assert model.C == 1.0
    assert mlops.load_model("clf").C == 0.1  # a bare name is the latest version
    mlops.set_alias("clf", 2, "champion")
    assert mlops.load_model("clf@champion").C == 0.1
    mlops.delete_alias("clf", "champion")
    with pytest.raises(mlops.NotFoundError, match="none"):
        mlops.load_model("clf@champion")
    versions = mlops.model_versions("clf")
    assert list(versions["version"]) == [2, 1]
    models = mlops.list_models()
    assert models.loc[0, "name"] == "clf" and models.loc[0, "latest_version"] == 2
    pd.testing.assert_frame_equal(mlops.reference_sample("clf/1"), X)


def test_same_bytes_return_the_existing_version(store, data):
    X, y = data
    model = LogisticRegression().fit(X, y)
    assert mlops.register_model(model, "clf").version == 1
    assert mlops.register_model(model, "clf", alias="again").version == 1
    assert mlops.get_model_version("clf@again").version == 1
    assert mlops.register_model(model, "other").version == 1


def test_unknown_names_list_what_exists(store, data):
    X, y = data
    mlops.register_model(LogisticRegression().fit(X, y), "clf", alias="prod")
    with pytest.raises(mlops.NotFoundError, match="Registered models: clf"):
        mlops.load_model("nope")
    with pytest.raises(mlops.NotFoundError, match="Its versions: 1"):
        mlops.load_model("clf/7")
    with pytest.raises(mlops.NotFoundError, match="@prod -> 1"):
        mlops.load_model("clf@staging")


@pytest.mark.parametrize("name", ["has space", "a/b", "", "ü", "x" * 201, "<b>", "clf\n", "clf\r\n"])
def test_bad_model_names_say_what_is_allowed(store, name):
    with pytest.raises(mlops.ValidationError, match="letters, digits"):
        mlops.register_model(LogisticRegression(), name)


def test_unpicklable_model_is_refused_and_nothing_is_written(store):
    files_before = sorted(p for p in store.path.rglob("*") if p.is_file() and "artifacts" in p.parts)
    with pytest.raises(mlops.ModelSerializationError, match="_thread.lock"):
        mlops.register_model(threading.Lock(), "lock")
    with pytest.raises(mlops.ModelSerializationError, match="function"):
        mlops.register_model(lambda x: x, "lam")
    assert store.query("SELECT count(*) FROM model_versions")[0][0] == 0
    assert store.query("SELECT count(*) FROM models")[0][0] == 0
    files_after = sorted(p for p in store.path.rglob("*") if p.is_file() and "artifacts" in p.parts)
    assert files_after == files_before


def test_changed_or_missing_model_file_is_refused_before_unpickling(store, data, tmp_path):
    X, y = data
    version = mlops.register_model(LogisticRegression().fit(X, y), "clf")
    path = store.artifacts.path_for(version.sha256)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    import pickle

    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(mlops.IntegrityError, match="changed after it was stored"):
        mlops.load_model("clf/1")
    assert not marker.exists()
    path.unlink()
    with pytest.raises(mlops.NotFoundError, match="missing"):
        mlops.load_model("clf/1")


def _register_many(path, worker, queue):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import jupyter_mlops as mlops

    mlops.set_store(path)
    X = np.random.default_rng(worker).normal(size=(50, 2))
    y = (X[:, 0] > 0).astype(int)
    versions = []
    for i in range(10):
        model = LogisticRegression(C=worker * 100 + i + 1).fit(X, y)
        versions.append(mlops.register_model(model, "shared").version)
    queue.put(versions)


def test_two_processes_registering_one_name_get_consecutive_versions(tmp_path):
    path = str(tmp_path / ".mlops")
    mlops.Store(path).close()
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_register_many, args=(path, w, queue)) for w in (1, 2)]
    for worker in workers:
        worker.start()
    # Generous: on a loaded 2-core machine two fresh interpreters importing scikit-learn
    # can take a while; the assertion is about versions, not speed.
    got = queue.get(timeout=400) + queue.get(timeout=400)
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(got) == list(range(1, 21))
    store = mlops.Store(path)
    assert [v for (v,) in store.query("SELECT version FROM model_versions ORDER BY version")] \
        == list(range(1, 21))
    store.close()


def test_register_from_a_tracked_run_keeps_lineage(shell, store):
    run_cell(shell, "import numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
                    "X = np.random.default_rng(0).normal(size=(120, 4))\n"
                    "y = (X[:, 0] > 0).astype(int)")
    run_cell(shell, "%%track -n train\nC = 0.3\nclf = LogisticRegression(C=C).fit(X, y)")
    version = shell.run_line_magic("mlops", "register iris --alias candidate")
    run = mlops.search_runs().loc[0]
    assert version.run_id == run.run_id and version.variable == "clf"
    assert version.aliases == ["candidate"]
    assert {d["name"]: d["role"] for d in version.datasets} == {"X": "train", "y": "target"}
    assert version.signature == {"kind": "ndarray", "dtype": "float64", "shape": [-1, 4]}
    assert version.reference_rows == 120
    lineage = mlops.registry.versions.lineage("iris@candidate")
    assert lineage["cells"][0].source.startswith("%%track -n train")
    html = shell.run_line_magic("mlops", "show iris@candidate")._repr_html_()
    assert "Lineage" in html and "fingerprint" in html
    # --var registers the live object; the same bytes as the run's artifact keep its run.
    again = shell.run_line_magic("mlops", "register iris --var clf")
    assert again.version == 1
    models = shell.run_line_magic("mlops", "models")
    assert list(models["name"]) == ["iris"]
    moved = shell.run_line_magic("mlops", "alias iris 1 prod")
    assert moved.aliases == ["candidate", "prod"]


def test_register_without_a_model_explains(shell):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="No finished run has saved a model"):
        shell.run_line_magic("mlops", "register nothing")


def test_log_dataset_train_sample_becomes_the_reference(store, data):
    X, y = data
    with mlops.start_run() as run:
        mlops.log_dataset(X, "X_train", role="train")
        model = LogisticRegression().fit(X, y)
    version = mlops.register_model(model, "clf", run_id=run.run_id)
    pd.testing.assert_frame_equal(mlops.reference_sample(version.uri), X)
    digest = hashlib.sha256(mlops.store.serialize.dump(model)).hexdigest()
    assert version.sha256 == digest


def test_evaluate_a_registered_model_by_uri(store, data):
    X, y = data
    model = LogisticRegression().fit(X, y)
    mlops.register_model(model, "clf", alias="champion")
    result = mlops.evaluate("clf@champion", X, y, importance=False)
    assert result.metrics["accuracy"] == model.score(X, y)
    stored = store.query("SELECT model_uri FROM evaluations")
    assert stored == [("models:/clf/1",)]


@pytest.mark.parametrize("name", ["..", "a/b", "a@b", " x", "x" * 201])
def test_one_model_name_rule_for_the_registry_and_the_rest_api(store, name):
    from jupyter_mlops.server.queries import check_model_name as rest_rule

    with pytest.raises(mlops.ValidationError):
        mlops.register_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), name)
    with pytest.raises(mlops.ValidationError):
        rest_rule(name)
    assert mlops.list_models().empty


def test_a_tuple_of_fitted_objects_is_one_pipeline(store):
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LinearRegression

    records = [{"route": r, "km": k} for r, k in [("a", 1.0), ("b", 2.5), ("a", 4.0), ("c", 3.0)]]
    dv = DictVectorizer()
    lr = LinearRegression().fit(dv.fit_transform(records), [3.0, 7.0, 11.0, 9.0])
    version = mlops.register_model((dv, lr), "routes", variable="dv,lr")
    assert version.class_name == "sklearn.pipeline.Pipeline" and version.variable == "dv,lr"
    model = mlops.load_model("routes/1")
    assert [name for name, _ in model.steps] == ["dv", "lr"]
    assert list(model.predict(records)) == list(lr.predict(dv.transform(records)))

    with pytest.raises(mlops.ValidationError, match=r"tuple \(DictVectorizer, str\) is registered"):
        mlops.register_model((dv, "not a model"), "broken")
    with pytest.raises(mlops.ValidationError, match="is not fitted"):
        mlops.register_model((DictVectorizer(), lr), "unfitted")
