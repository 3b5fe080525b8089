"""Evaluation dashboards: escaped HTML with PNGs, the tabbed widget, lazy figures, the
``%mlops evaluate`` magic, and what a real kernel sends to the frontend."""

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge

from payloads import NAMES
from support import HOSTILE, assert_inert, layout_defects, parse, run_cell, stream_text
from jupyter_mlops.evaluation import EvaluationResult, compare_evaluations, evaluate


@pytest.fixture
def hostile_multiclass(store):
    X, y = make_classification(300, 4, n_informative=3, n_redundant=0, n_classes=3,
                               random_state=0)
    X = pd.DataFrame(X, columns=["a", "b", HOSTILE, "d"])
    y = pd.Series(np.array(["x", HOSTILE, "z"], dtype=object)[y])
    model = LogisticRegression(max_iter=500).fit(X, y)
    return evaluate(model, X, y, name=HOSTILE, n_repeats=1)


def test_html_fallback_is_escaped_and_shows_every_figure(hostile_multiclass):
    result = hostile_multiclass
    markup = result._repr_html_()
    assert_inert(markup)
    images = [attrs["alt"] for tag, attrs in parse(markup).tags if tag == "img"]
    assert images == ["ROC curve", "Precision-recall curve", "Calibration curve",
                      "Confusion matrix", "Confusion matrix, normalised by true class",
                      "Permutation importance"]
    text = "".join(parse(markup).text)
    for metric in result.metrics:
        assert metric in text
    assert sorted(result.figures.drawn) == sorted(result.figures)
    # Outside a kernel the display bundle is that HTML (figures already drawn) and text.
    bundle = result._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert bundle["text/html"] == markup
    assert bundle["text/plain"].startswith("<EvaluationResult")


def test_figures_are_drawn_one_at_a_time_on_real_axes(hostile_multiclass):
    result = hostile_multiclass
    assert result.figures.drawn == []
    roc = result.figures["roc_curve"].axes[0]
    assert result.figures.drawn == ["roc_curve"]
    assert len(roc.lines) == 1 + 3  # the chance diagonal and one curve per class
    labels = [t.get_text() for t in roc.get_legend().get_texts()]
    assert any(label.startswith(HOSTILE[:20]) for label in labels)
    matrix = result.figures["confusion_matrix"].axes[0]
    np.testing.assert_array_equal(matrix.images[0].get_array(), result.confusion_matrix)
    bars = result.figures["permutation_importance"].axes[0]
    assert len(bars.patches) == 4
    with pytest.raises(KeyError, match="residual_histogram"):
        result.figures["residual_histogram"]


def test_widget_tabs_fill_when_selected(hostile_multiclass):
    import ipywidgets as widgets

    result = hostile_multiclass
    tab = result.to_widget()
    assert isinstance(tab, widgets.Tab)
    assert tab.titles == ("Metrics", "Curves", "Confusion", "Importance")
    metrics_page = tab.children[0].value
    assert_inert(metrics_page)
    assert "f1_macro" in metrics_page and "Per class" in metrics_page
    assert result.figures.drawn == []
    assert "<img" not in tab.children[2].value
    tab.selected_index = 2
    page = tab.children[2].value
    assert [a["alt"] for t, a in parse(page).tags if t == "img"] == [
        "Confusion matrix", "Confusion matrix, normalised by true class"]
    assert sorted(result.figures.drawn) == ["confusion_matrix", "confusion_matrix_normalized"]
    tab.selected_index = 3
    assert_inert(tab.children[3].value)


def test_regression_dashboard(store):
    X, y = make_regression(500, 3, noise=5, random_state=1)
    result = evaluate(Ridge().fit(X, y), X, y, n_repeats=1)
    tab = result.to_widget()
    assert tab.titles == ("Metrics", "Curves", "Residuals", "Importance")
    assert list(result.figures) == ["predicted_vs_actual", "residuals_vs_predicted",
                                    "residual_histogram", "permutation_importance"]
    scatter = result.figures["predicted_vs_actual"].axes[0]
    assert len(scatter.collections[0].get_offsets()) == 500
    histogram = result.figures["residual_histogram"].axes[0]
    assert histogram.patches
    assert "explained_variance" in result._repr_html_()


def test_dashboard_says_why_probability_metrics_are_missing(store):
    from sklearn.svm import LinearSVC

    X, y = make_classification(200, 4, random_state=2)
    result = evaluate(LinearSVC().fit(X, y), X, y, importance=False)
    tab = result.to_widget()
    tab.selected_index = 1
    assert "has no predict_proba" in tab.children[1].value
    assert "CalibratedClassifierCV" in tab.children[0].value
    assert "importance=False" in result._repr_html_()


def test_comparison_renders_escaped_html(store):
    X, y = make_classification(200, 4, random_state=3)
    a = evaluate(LogisticRegression(C=1e-3).fit(X, y), X, y, name=HOSTILE, importance=False)
    b = evaluate(LogisticRegression().fit(X, y), X, y, name="b <v2>", importance=False)
    markup = compare_evaluations(a, b)._repr_html_()
    assert_inert(markup)
    assert "b &lt;v2&gt;" in markup
    rows = [attrs.get("class") for tag, attrs in parse(markup).tags if tag == "tr"]
    assert "jp-mlops-better-b" in rows


def test_figures_keep_every_text_whole_and_apart(store):
    """The breast-cancer example: 30 features with long names. The importance figure shows
    the top 20 bars with the whole title over them and x ticks that do not run together;
    no figure cuts off or overlaps a text."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    X, y = data.data, data.target.map({0: "malignant", 1: "benign"})
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    result = evaluate(model, X.iloc[:150], y.iloc[:150], n_repeats=1)
    importance = result.figures["permutation_importance"].axes[0]
    assert importance.get_title() == "Permutation importance (top 20 of 30)"
    assert len(importance.patches) == 20
    for name in result.figures:
        assert layout_defects(result.figures[name]) == [], name


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
def test_figures_fit_hostile_and_many_labels():
    from jupyter_mlops.dashboards import evaluation as dash

    for labels in (["no", "yes"], [f"class {i}" for i in range(12)], NAMES,
                   [str(i) for i in range(40)]):
        matrix = np.arange(len(labels) ** 2).reshape(len(labels), -1)
        for normalize in (False, True):
            figure = dash.plot_confusion_matrix(matrix, labels, normalize).figure
            assert layout_defects(figure) == [], (len(labels), normalize)
    features = [f"{name} {i}" for i, name in enumerate(NAMES * 2)]
    means = list(np.linspace(-0.01, 0.03, len(features)))
    for scale in (1, 1e5):  # a drop in accuracy, in squared error
        figure = dash.plot_importance(features, [m * scale for m in means],
                                      [0.004 * scale] * len(features), "score").figure
        assert layout_defects(figure) == [], scale


def test_magic_looks_names_up_and_returns_the_result(shell):
    run_cell(shell, "from sklearn.datasets import make_classification\n"
                    "from sklearn.linear_model import LogisticRegression\n"
                    "X, y = make_classification(200, 4, random_state=0)\n"
                    "clf = LogisticRegression().fit(X, y)")
    result = shell.run_line_magic("mlops", "evaluate clf X y --name holdout --no-importance")
    assert isinstance(result, EvaluationResult)
    assert result.name == "holdout" and "importance" not in result.details
    assert result.metrics["accuracy"] == pytest.approx(
        (shell.user_ns["clf"].predict(shell.user_ns["X"]) == shell.user_ns["y"]).mean(),
        rel=1e-12)
    with pytest.raises(UsageError, match="no variable 'X_test'"):
        shell.run_line_magic("mlops", "evaluate clf X_test y")
    with pytest.raises(UsageError, match="not one"):
        shell.run_line_magic("mlops", "evaluate clf X[:10] y")
    with pytest.raises(UsageError, match="X has 200 rows but y has 3"):
        run_cell(shell, "y3 = y[:3]")
        shell.run_line_magic("mlops", "evaluate clf X y3")


def test_magic_inside_a_tracked_cell_links_the_run(shell):
    run_cell(shell, "from sklearn.datasets import make_regression\n"
                    "from sklearn.linear_model import Ridge\n"
                    "X, y = make_regression(100, 3, random_state=0)\n"
                    "reg = Ridge().fit(X, y)")
    outcome = run_cell(shell, "%%track -n evaluated\n"
                              "result = %mlops evaluate reg X y --no-importance")
    assert outcome.success, outcome.error_in_exec
    result = shell.user_ns["result"]
    import jupyter_mlops as mlops

    run = mlops.get_run(result.run_id)
    assert run.name == "evaluated" and run.metrics["eval.r2"] == result.metrics["r2"]


def test_help_lists_evaluate(shell, capsys):
    shell.run_line_magic("mlops", "--help")
    assert "evaluate" in capsys.readouterr().out


@pytest.mark.kernel
def test_a_kernel_sends_the_widget_and_the_html_copy(kernel):
    kernel.execute("%load_ext jupyter_mlops")
    reply, outputs = kernel.execute(
        "from sklearn.datasets import make_classification\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from jupyter_mlops.evaluation import evaluate\n"
        "X, y = make_classification(200, 4, random_state=0)\n"
        "evaluate(LogisticRegression().fit(X, y), X, y, n_repeats=1)", timeout=120)
    assert reply["status"] == "ok", stream_text(outputs, "stderr")
    (data,) = [m["content"]["data"] for m in outputs if m["msg_type"] == "execute_result"]
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["text/html"].count("<img") == 6
