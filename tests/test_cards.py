"""Model cards: gathered from the store, described by their owner, escaped everywhere."""

import pytest
from support import HOSTILE, assert_inert

import jupyter_mlops as mlops
from jupyter_mlops.cli import main
from jupyter_mlops.dashboards.cards import SECTION_TITLES

pytestmark = pytest.mark.timeout(240)


def test_a_card_gathers_data_evaluation_drift_lineage_environment_and_gates(
        shell, store, tmp_path, capsys):
    shell.run_cell("from sklearn.datasets import load_breast_cancer\n"
                   "from sklearn.linear_model import LogisticRegression\n"
                   "from sklearn.model_selection import train_test_split\n"
                   "X, y = load_breast_cancer(return_X_y=True, as_frame=True)\n"
                   "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)",
                   store_history=True)
    assert shell.run_cell("%%track -n cancer-lr\n"
                          "model = LogisticRegression(max_iter=5000).fit(X_train, y_train)",
                          store_history=True).success
    shell.run_line_magic("mlops", "register cancer --var model --alias champion")
    ns = shell.user_ns
    mlops.evaluate(ns["model"], ns["X_test"], ns["y_test"], name="holdout",
                   model_uri="models:/cancer/1", importance=False)
    holdout = ns["X_test"].assign(target=ns["y_test"])
    mlops.check("cancer/1", data=holdout, target="target", thresholds={"accuracy": 0.9},
                verify_replay=False, store=store)
    mlops.monitor("cancer@champion", batch=holdout, labels="target", store=store)
    notes = mlops.describe("cancer@champion", description=f"Flags tumours {HOSTILE}",
                           intended_use="Second reader for $x^2$ | not a diagnosis",
                           owner="ml-team", tags={"stage": "pilot"}, store=store)
    assert notes["owner"] == "ml-team" and notes["tag.stage"] == "pilot"

    card = mlops.model_card("cancer@champion", store=store)
    text = card.markdown()
    for title in SECTION_TITLES:
        assert f"## {title}" in text
    assert text.startswith("---\nmodel_name: cancer\nversion: 1\nlibrary_name: sklearn")
    assert "- stage=pilot" in text and "| Owner | ml-team |" in text
    assert "**holdout** (binary" in text and "| accuracy |" in text
    assert "columns drifted" in text and "dataset drift" in text
    assert "cancer-lr" in text and "model = LogisticRegression(max\\_iter=5000)" in text
    assert "- passed " in text and "Python 3." in text
    # Strings from the store are text, in Markdown as in HTML.
    assert "&lt;img src=x onerror=\"alert(1)\"&gt;" in text and "<img" not in text
    assert "\\$x^2\\$ \\| not a diagnosis" in text
    assert_inert(card.html())
    assert_inert(card._repr_html_())
    page = card.save(tmp_path / "card.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "default-src 'none'" in page
    assert 'src="data:image/png;base64,' in page  # the evaluation's figures, inside the page
    assert card.save(tmp_path / "card.md").read_text() == text
    with pytest.raises(mlops.ValidationError, match=".md or .html"):
        card.save(tmp_path / "card.pdf")

    mlops.describe("cancer/1", owner="", store=store)  # "" clears a field
    assert "Owner" not in mlops.model_card("cancer/1", store=store).markdown()
    capsys.readouterr()
    assert main(["card", "cancer@champion", "--store", str(store.path)]) == 0
    assert "# cancer version 1" in capsys.readouterr().out
    assert shell.run_line_magic("mlops", "card cancer/1").version.version == 1


def test_a_scripted_version_has_a_card_that_says_what_is_missing(store):
    from sklearn.linear_model import LinearRegression

    mlops.register_model(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), "lin", store=store)
    text = mlops.model_card("lin/1", store=store).markdown()
    assert "Registered without a producing run (from a script)." in text
    assert "Not evaluated yet" in text and "Not monitored yet" in text
    assert "No check recorded" in text and "Not stated (describe(uri" in text
    with pytest.raises(mlops.NotFoundError):
        mlops.model_card("lin/2", store=store)
