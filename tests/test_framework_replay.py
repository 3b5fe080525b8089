"""Native Boosters trained in a real kernel's ``%%track`` cell: logged, registered with
``%mlops register``, and rebuilt by ``replay(verify=True)`` in a fresh interpreter."""

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.store import Store
from jupyter_mlops.tracking import storage

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(300)]

DATA = ("from sklearn.datasets import load_breast_cancer\n"
        "X, y = load_breast_cancer(return_X_y=True, as_frame=True)\n"
        "X.columns = [c.replace(' ', '_') for c in X.columns]")

SESSIONS = {
    "xgboost": [
        ("imports", "import xgboost as xgb"),
        ("data", DATA),
        ("dmatrix", "dtrain = xgb.DMatrix(X, label=y)"),
        ("train", "%%track -n native\nevals = {}\n"
                  "bst = xgb.train({'objective': 'binary:logistic', 'max_depth': 3, 'seed': 1},\n"
                  "                dtrain, num_boost_round=15, evals=[(dtrain, 'train')],\n"
                  "                evals_result=evals, verbose_eval=False)"),
    ],
    "lightgbm": [
        ("imports", "import lightgbm as lgb"),
        ("data", DATA),
        ("dataset", "dtrain = lgb.Dataset(X, label=y)"),
        ("train", "%%track -n native\nevals = {}\n"
                  "bst = lgb.train({'objective': 'binary', 'num_leaves': 7, 'verbose': -1},\n"
                  "                dtrain, num_boost_round=15, valid_sets=[dtrain],\n"
                  "                valid_names=['train'],\n"
                  "                callbacks=[lgb.record_evaluation(evals)])"),
    ],
}
METRIC = {"xgboost": "train-logloss", "lightgbm": "train-binary_logloss"}


@pytest.mark.parametrize("framework", SESSIONS)
def test_native_booster_tracked_registered_and_replayed(framework, kernel, tmp_path):
    kernel.execute("%load_ext jupyter_mlops", cell_id="load")
    for cell_id, source in SESSIONS[framework]:
        reply, outputs = kernel.execute(source, cell_id=cell_id, timeout=120)
        assert reply["status"] == "ok", outputs
    reply, outputs = kernel.execute("v = %mlops register native-booster\nprint(v.framework)",
                                    cell_id="register")
    assert reply["status"] == "ok", outputs

    store = Store(tmp_path / ".mlops")
    try:
        version = mlops.get_model_version("native-booster/1", store=store)
        assert version.framework == framework and version.variable == "bst"
        run = storage.get_run(store, version.run_id)
        assert len(storage.metric_history(store, run.run_id, METRIC[framework])) == 15
        assert {"model/bst.pkl", "model/bst.importance.csv"} <= {a.name for a in run.artifacts}
        roles = {d.name: d.role for d in run.inputs}
        assert roles["dtrain"] == "train"
        verified = mlops.replay("native-booster/1", verify=True, store=store).verification
        assert verified.ok, verified.message
        assert "569 rows of" in verified.message
    finally:
        store.close()
