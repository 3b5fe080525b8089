"""``%mlops`` subcommands: results are objects, displays are escaped HTML."""

import pandas as pd
import pytest
from IPython.core.error import UsageError

import jupyter_mlops as mlops
from jupyter_mlops.dashboards.frames import TextFrame
from support import HOSTILE, assert_inert, run_cell

@pytest.fixture
def two_runs(shell):
    run_cell(shell, "import jupyter_mlops as mlops")
    run_cell(shell, f"%%track -n {HOSTILE!r}\nC = 1.0\nfor i in range(3):\n"
                    "    mlops.log_metric('loss', 1.0 / (i + 1))\nacc = 0.4 * 2")
    run_cell(shell, "%%track -n second\nC = 2.0\nfor i in range(3):\n"
                    "    mlops.log_metric('loss', 0.5 / (i + 1))\nacc = 0.4 * 2")
    return mlops.search_runs()


def test_runs_returns_a_dataframe_with_escaped_html(shell, two_runs):
    listing = shell.run_line_magic("mlops", "runs")
    assert isinstance(listing, pd.DataFrame)
    assert list(listing["name"]) == ["second", HOSTILE]
    assert_inert(listing._repr_html_())
    filtered = shell.run_line_magic("mlops", "runs -f \"params.C > 1.5\"")
    assert list(filtered["name"]) == ["second"]
    assert type(filtered.head(1)) is TextFrame  # derived frames: the API's table again


def test_show_and_compare(shell, two_runs):
    first, second = two_runs["run_id"]
    shown = shell.run_line_magic("mlops", f"show {second[:8]}")
    assert shown.run_id == second and shown.params["C"] == 1.0
    assert_inert(shown._repr_html_())
    comparison = shell.run_line_magic("mlops", f"compare {first[:8]} {second[:8]}")
    assert comparison.params.loc["C"].tolist() == [2.0, 1.0]
    assert comparison.differs(comparison.params) == [True]
    assert comparison.differs(comparison.metrics) == [False, True]  # acc equal, loss differs
    html = comparison._repr_html_()
    assert_inert(html)
    assert "Metric histories" in html and 'class="diff"' in html


def test_history_marks_and_escapes(shell, two_runs):
    run_cell(shell, "C = 5")
    history = shell.run_line_magic("mlops", "history")
    assert isinstance(history, pd.DataFrame) and len(history) == 4
    html = history._repr_html_()
    assert_inert(html)


def test_store_switches(shell, tmp_path, capsys):
    shell.run_line_magic("mlops", f"store {tmp_path / 'other'}")
    assert mlops.get_store().path == (tmp_path / "other").resolve()
    run_cell(shell, "%%track\nk = 1")
    assert len(mlops.search_runs()) == 1
    shell.run_line_magic("mlops", "store")
    assert str(tmp_path / "other") in capsys.readouterr().out


def test_usage_errors_are_one_line(shell):
    with pytest.raises(UsageError, match="invalid choice"):
        shell.run_line_magic("mlops", "bogus")
    with pytest.raises(UsageError, match="No run"):
        shell.run_line_magic("mlops", "show abcdef12")
    with mlops.start_run("alone") as alone:
        pass
    with pytest.raises(UsageError, match="at least two runs"):
        shell.run_line_magic("mlops", f"compare {alone.run_id[:8]}")  # and no child runs


def test_help_lists_subcommands(shell, capsys):
    assert shell.run_line_magic("mlops", "--help") is None
    out = capsys.readouterr().out
    for word in ("runs", "show", "compare", "history", "store"):
        assert word in out


def test_compare_two_evaluations(shell):
    run_cell(shell, "from sklearn.datasets import load_breast_cancer\n"
                    "from sklearn.linear_model import LogisticRegression\n"
                    "X, y = load_breast_cancer(return_X_y=True)\n"
                    "import jupyter_mlops as mlops")
    for C in (0.01, 1.0):
        run_cell(shell, f"%%track\nmodel = LogisticRegression(C={C}, max_iter=3000).fit(X, y)\n"
                        "result = mlops.evaluate(model, X, y, importance=False)")
    first, second = mlops.search_runs(order_by="start_time")["run_id"]
    comparison = shell.run_line_magic("mlops", f"compare --evaluations {first[:8]} {second[:8]}")
    table = comparison.table
    assert table.loc["accuracy", "delta"] == pytest.approx(
        table.loc["accuracy", "b"] - table.loc["accuracy", "a"])
    assert_inert(comparison._repr_html_(), payload="accuracy")


def test_compare_shows_the_cells_params_first_and_only_differences(shell):
    from support import parse

    run_cell(shell, "from sklearn.datasets import load_iris\n"
                    "from sklearn.tree import DecisionTreeClassifier\n"
                    "X, y = load_iris(return_X_y=True)")
    for depth in (2, 3):
        run_cell(shell, f"%%track -n d{depth}\ndepth = {depth}\nseed = 0\n"
                        "clf = DecisionTreeClassifier(max_depth=depth, random_state=seed)"
                        ".fit(X, y)\nacc = clf.score(X, y)")
    first, second = mlops.search_runs().run_id
    comparison = shell.run_line_magic("mlops", f"compare {first[:8]} {second[:8]}")
    keys = list(comparison.params.index)
    assert keys[:2] == ["depth", "seed"] and all(k.startswith("clf.") for k in keys[2:])
    assert comparison.model_params["clf.max_depth"] == "clf" and "depth" not in \
        comparison.model_params
    html = comparison._repr_html_()
    text = parse(html).text
    assert "depth" in text and "seed" not in text  # equal in both runs: hidden
    assert "max_depth" in text and "criterion" not in text
    assert html.index(">depth<") < html.index("<details>") < html.index("Metrics")
    assert "%mlops compare --all" in html
    shown = parse(shell.run_line_magic("mlops", f"show {first[:8]}")._repr_html_()).text
    assert shown.index("depth") < shown.index("seed") < shown.index("clf.ccp_alpha")
    everything = shell.run_line_magic("mlops", f"compare {first[:8]} {second[:8]} --all")
    text = parse(everything._repr_html_()).text
    assert "seed" in text and "criterion" in text
    assert "--all" not in everything._repr_html_()
