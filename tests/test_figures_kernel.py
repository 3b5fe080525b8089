"""Figures in a real ipykernel: shown by the inline backend or drawn inside ``interact``."""

import pytest

from jupyter_mlops.store import Store
from jupyter_mlops.tracking import storage

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]


def figure_artifacts(tmp_path, name):
    store = Store(tmp_path / ".mlops")
    try:
        (run_id,) = store.query("SELECT run_id FROM runs WHERE name = ?", (name,))[0]
        return sorted((a.name, store.artifacts.read_verified(a.sha256)[:4])
                      for a in storage.get_run(store, run_id).artifacts if a.kind == "figure")
    finally:
        store.close()


def test_figures_shown_and_drawn_inside_interact_are_saved(kernel, tmp_path):
    pytest.importorskip("ipywidgets")
    reply, _ = kernel.execute("%load_ext jupyter_mlops\n%matplotlib inline\n"
                              "import matplotlib.pyplot as plt\nfrom ipywidgets import interact")
    assert reply["status"] == "ok"
    reply, outputs = kernel.execute("""%%track -n shown
plt.plot([1, 3, 2])
plt.title("Learning curve")
plt.show()

def draw(depth=3):
    plt.figure()
    plt.bar(range(depth), range(depth))
    plt.title(f"Tree depth {depth}")
    plt.show()

widget = interact(draw, depth=(1, 6))
""")
    assert reply["status"] == "ok"
    assert any(m["msg_type"] == "display_data" for m in outputs)  # the cell still shows it
    assert figure_artifacts(tmp_path, "shown") == [
        ("figures/Learning curve.png", b"\x89PNG"), ("figures/Tree depth 3.png", b"\x89PNG")]


def test_a_cell_that_imports_matplotlib_itself_keeps_its_shown_figure(kernel, tmp_path):
    reply, outputs = kernel.execute("%load_ext jupyter_mlops\nimport sys\n"
                                    "print('matplotlib' in sys.modules)")
    assert "False" in "".join(m["content"].get("text", "") for m in outputs)
    reply, _ = kernel.execute("%%track -n first\nimport matplotlib.pyplot as plt\n"
                              "fig, ax = plt.subplots()\nax.plot([1, 2])\nplt.show()")
    assert reply["status"] == "ok"
    assert figure_artifacts(tmp_path, "first") == [("figures/fig.png", b"\x89PNG")]


def test_boosting_libraries_own_plots_are_saved_by_their_titles(kernel, tmp_path):
    """``lgb.plot_importance`` and ``lgb.plot_metric`` import matplotlib themselves, in a
    cell that never names it, and ``xgb.plot_importance`` draws a second one."""
    pytest.importorskip("lightgbm")
    pytest.importorskip("xgboost")
    reply, _ = kernel.execute("""%load_ext jupyter_mlops
import sys
import lightgbm as lgb
import xgboost as xgb
from sklearn.datasets import load_diabetes
X, y = load_diabetes(return_X_y=True)
assert "matplotlib.pyplot" not in sys.modules
""")
    assert reply["status"] == "ok"
    reply, outputs = kernel.execute("""%%track -n plots
evals = {}
gbm = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(X, label=y),
                num_boost_round=5, valid_sets=[lgb.Dataset(X, label=y)], valid_names=["fit"],
                callbacks=[lgb.record_evaluation(evals)])
lgb.plot_importance(gbm, title="LightGBM importance")
lgb.plot_metric(evals, title="LightGBM l2")
bst = xgb.train({"max_depth": 2}, xgb.DMatrix(X, label=y), num_boost_round=5)
xgb.plot_importance(bst, title="XGBoost importance")
""")
    assert reply["status"] == "ok", outputs
    assert figure_artifacts(tmp_path, "plots") == [
        ("figures/LightGBM importance.png", b"\x89PNG"), ("figures/LightGBM l2.png", b"\x89PNG"),
        ("figures/XGBoost importance.png", b"\x89PNG")]
