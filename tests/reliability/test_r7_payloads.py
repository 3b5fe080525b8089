"""R7: a hostile name is shown as the text it is in every HTML view, widget and plot.

Each string of tests/payloads.py becomes every kind of name the store keeps: run name,
experiment, tag key and value, param key and value, metric key, dataset and artifact name,
cell source, error message, column, feature and class label. The store and the views are
built once for the module; the tests then check them payload by payload.
"""

from __future__ import annotations

import ast
import functools
import html
import inspect
import re
import shlex
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
from payloads import LONG_TEXT, MATH_TRAPS, NAMES, label
from support import run_cell

import jupyter_mlops as mlops
from jupyter_mlops.tracking import runs as tracking
from jupyter_mlops.errors import ValidationError

pytestmark = [
    pytest.mark.reliability,
    # DejaVu Sans has no emoji or CJK glyphs: matplotlib says so, and draws boxes.
    pytest.mark.filterwarnings("ignore:Glyph .* missing from font"),
]

PACKAGE = Path(mlops.__file__).parent
ALL = pytest.mark.parametrize("payload", NAMES, ids=label)
COLUMNS = pytest.mark.parametrize("payload", [*NAMES, LONG_TEXT], ids=label)

# -- what inert HTML is ---------------------------------------------------------------

# Every tag our views (and pandas' DataFrame view) write; anything else came from data.
ALLOWED_TAGS = {"style", "div", "p", "b", "span", "br", "h4", "pre", "ul", "li", "img",
                "table", "thead", "tbody", "tr", "th", "td", "details", "summary", "code", "h3",
                # the sweep's and interact's inline charts
                "svg", "polyline", "circle", "line", "text", "title", "g"}
ALLOWED_ATTRIBUTES = {"class", "alt", "src", "border", "style", "scoped", "title", "width",
                      "height", "viewbox", "points", "cx", "cy", "r", "x", "y", "x1", "y1",
                      "x2", "y2", "fill", "stroke", "stroke-width", "font-size", "text-anchor",
                      "role", "aria-label", "xmlns", "preserveaspectratio"}
# Our inline styles: properties and plain values only (no quotes, url() or markup).
SAFE_STYLE = re.compile(r"[-\w\s:;.,()#%]*")


@functools.cache
def known_styles() -> frozenset[str]:
    """The stylesheets we (and pandas) emit: a <style> holding anything else came from data."""
    import pandas as pd

    sources = [pd.DataFrame({"a": [1]})._repr_html_()]  # ours are inline, never a sheet
    return frozenset(sheet for source in sources for sheet in _Markup.of(source).styles)


class _Markup(HTMLParser):
    """Tags, attributes, text and stylesheets of a piece of HTML, plus anything odd in it.

    Character references are decoded here rather than by the parser, so that a raw '<' left
    in the text (markup the parser gave up on, such as an unclosed comment swallowing the
    rest of the page) can be told from an escaped one.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.styles: list[str] = []
        self.odd: list[str] = []
        self.outer_classes: list[str] = []  # of each outermost <div>
        self.outside: list[str] = []  # text outside every <div>
        self._in_style = False
        self._divs = 0

    @classmethod
    def of(cls, markup: str) -> _Markup:
        parser = cls()
        parser.feed(markup)
        parser.close()
        return parser

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.text.append("\x00")  # text in two elements never reads as one string
        self._in_style = tag == "style"
        if tag == "div":
            if not self._divs:
                self.outer_classes.append(dict(attrs).get("class") or "")
            self._divs += 1

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.text.append("\x00")

    def handle_endtag(self, tag):
        self.text.append("\x00")
        self._in_style = False
        if tag == "div":
            self._divs -= 1

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)
            return
        if "<" in data:
            self.odd.append(data[:80])
        if not self._divs and data.strip():
            self.outside.append(data)
        self.text.append(data)

    def handle_entityref(self, name):
        self.text.append(html.unescape(f"&{name};"))

    def handle_charref(self, name):
        self.text.append(html.unescape(f"&#{name};"))

    def handle_comment(self, data):
        self.odd.append(f"<!--{data}")

    def handle_decl(self, decl):
        self.odd.append(f"<!{decl}>")

    def handle_pi(self, data):
        self.odd.append(f"<?{data}>")

    def unknown_decl(self, data):
        self.odd.append(f"<![{data}]>")


def assert_inert(markup: str) -> str:
    """No markup in ``markup`` came from data; returns the text it shows."""
    parsed = _Markup.of(markup)
    assert parsed.odd == []
    for tag, attrs in parsed.tags:
        assert tag in ALLOWED_TAGS, (tag, attrs)
        assert set(attrs) <= ALLOWED_ATTRIBUTES, (tag, attrs)
        for value in attrs.values():
            assert "javascript:" not in (value or "").lower().replace(" ", ""), (tag, attrs)
        style = attrs.get("style") or ""
        assert SAFE_STYLE.fullmatch(style) and "url(" not in style, (tag, attrs)
        if tag == "img":
            assert attrs["src"].startswith("data:image/png;base64,"), attrs
    assert set(parsed.styles) <= known_styles(), parsed.styles
    return "".join(parsed.text)


def assert_not_raw(markup: str, payload: str) -> None:
    """A payload that escaping changes never appears unescaped in the markup."""
    if html.escape(payload, quote=False) != payload:
        assert payload not in markup


def assert_part_shows_text(markup: str, payload: str) -> None:
    """A piece of a view is inert and shows ``payload`` exactly as typed."""
    assert_not_raw(markup, payload)
    assert payload in assert_inert(markup)


def assert_not_typeset(markup: str) -> None:
    """All text sits in a <div> that MathJax skips: "lr $x^$ run" stays text in JupyterLab."""
    parsed = _Markup.of(markup)
    assert parsed.outside == []
    assert parsed.outer_classes
    assert all("mathjax_ignore" in classes.split() for classes in parsed.outer_classes)


def assert_shown_as_text(markup: str, payload: str) -> None:
    """A whole view (a notebook output) is inert, never typeset, and shows ``payload``."""
    assert_part_shows_text(markup, payload)
    assert_not_typeset(markup)


# -- the store, built once -------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Every payload as every kind of name, and the objects that show them."""
    from IPython.testing.globalipapp import get_ipython, start_ipython

    path = tmp_path_factory.mktemp("r7") / ".mlops"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_MLOPS_STORE", str(path))
        store = mlops.set_store(path)
        ip = start_ipython() or get_ipython()
        ip.reset(new_session=True)
        ip.run_line_magic("load_ext", "jupyter_mlops")
        try:
            yield _build(ip)
        finally:
            ip.run_line_magic("unload_ext", "jupyter_mlops")
            ip.reset(new_session=True)
            while (run := tracking.active_run()) is not None:
                tracking._end(run, "KILLED")
            mlops.reset_store()
            store.close()


TRACKED_CELL = """%%track -n {name} -e {name}
# {comment}
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
X = pd.DataFrame({{P: np.arange(8.0), "plain": np.arange(8.0) % 3}})
model = LogisticRegression(C={c}).fit(X, np.arange(8) % 2)
mlops.set_tag(P, P)
mlops.log_params({{P: P}})
for step in range(3):
    mlops.log_metric(P, 0.5 + step / 10, step=step)
mlops.log_bytes(b"bytes", P)
mlops.log_dataset(X, P, role="train")
"""


def _latest_run_id() -> str:
    return str(mlops.search_runs(max_results=1)["run_id"].iloc[0])


def _build(ip) -> dict:
    run_cell(ip, "import jupyter_mlops as mlops")
    run_cell(ip, "%%track -n baseline\nfor step in range(3):\n"
                 "    mlops.log_metric('loss', 1 / (step + 1), step=step)")
    baseline = _latest_run_id()
    per_payload = {}
    for i, payload in enumerate(NAMES):
        ip.user_ns["P"] = payload
        quoted = shlex.quote(payload)
        assert run_cell(ip, TRACKED_CELL.format(name=quoted, comment=payload, c=i + 1)).success
        run_id = _latest_run_id()
        run_cell(ip, f"%%track -e failures\n# {payload}\nraise ValueError(P)")
        failed = _latest_run_id()
        run_cell(ip, f"# {payload}\nnote = P")  # a plain cell, for the history
        version = mlops.register_model(None, f"model-{i}", run_id=run_id,
                                       reference=ip.user_ns["X"])
        per_payload[payload] = SimpleNamespace(
            run=mlops.get_run(run_id), failed=mlops.get_run(failed),
            comparison=mlops.compare_runs([run_id, baseline]),
            version=version, versions=mlops.model_versions(version.name),
            replay=mlops.replay(version.uri))
    run_cell(ip, f"%%track -n long-source\n# {LONG_TEXT}\nshort = 1")
    return {
        "payloads": per_payload,
        "long": mlops.get_run(_latest_run_id()),
        "runs": ip.run_line_magic("mlops", "runs"),
        "history": ip.run_line_magic("mlops", "history"),
        "models": ip.run_line_magic("mlops", "models"),
        "search": mlops.search_runs(),
        "cells": mlops.cell_history(),
    }


# -- names are kept as given, or refused in one clean error -----------------------------

def test_every_name_is_kept_exactly(world):
    for payload, made in world["payloads"].items():
        run = made.run
        assert (run.name, run.experiment) == (payload, payload)
        assert run.tags[payload] == payload and run.params[payload] == payload
        assert payload in run.metrics
        assert payload in {a.name for a in run.artifacts}
        assert payload in {d.name for d in run.inputs}
        assert f"# {payload}\n" in run.source
        assert made.failed.error == payload


@ALL
def test_model_names_and_aliases_refuse_what_they_cannot_hold(world, payload):
    from jupyter_mlops.registry.versions import MODEL_NAME_RE

    made = world["payloads"][payload]
    assert not MODEL_NAME_RE.match(payload)  # else it would be registered under it below
    with pytest.raises(ValidationError, match="Model names may hold"):
        mlops.register_model(None, payload, run_id=made.run.run_id)
    with pytest.raises(ValidationError, match="An alias starts with"):
        mlops.set_alias(made.version.name, made.version.version, payload)


def test_text_beyond_the_limits_is_refused_before_any_write(world):
    runs_before = len(mlops.search_runs())
    with pytest.raises(ValidationError, match="limit is 250"):
        mlops.start_run(LONG_TEXT)
    with pytest.raises(ValidationError, match="limit is 8000"):
        mlops.start_run("long tag", tags={"key": LONG_TEXT})
    with mlops.start_run("long values") as run:
        with pytest.raises(ValidationError, match="limit is 6000"):
            mlops.log_param("key", LONG_TEXT)
        with pytest.raises(ValidationError, match="limit is 250"):
            mlops.log_metric(LONG_TEXT, 1.0)
    assert mlops.get_run(run.run_id).params == {}
    assert len(mlops.search_runs()) == runs_before + 1


def test_text_of_any_length_is_shown_where_it_is_kept(world):
    assert_shown_as_text(world["long"]._repr_html_(), LONG_TEXT)  # the cell source


# -- HTML views ---------------------------------------------------------------------------

@ALL
def test_run_views_show_names_as_text(world, payload):
    made = world["payloads"][payload]
    assert_shown_as_text(made.run._repr_html_(), payload)
    assert_shown_as_text(made.failed._repr_html_(), payload)
    comparison = made.comparison._repr_html_()
    assert_shown_as_text(comparison, payload)
    assert "Metric histories" in comparison  # the plot of the payload's metric, as a PNG


@ALL
def test_registry_views_show_names_as_text(world, payload):
    made = world["payloads"][payload]
    assert_shown_as_text(made.version._repr_html_(), payload)
    versions = made.versions._repr_html_()  # model_versions(): model names hold no payload
    assert_inert(versions)
    assert_not_typeset(versions)
    assert_shown_as_text(made.replay._repr_html_(), payload)


@ALL
def test_environment_view_shows_names_as_text(payload):
    """A session's environment: the notebook's path and a git branch are the user's names."""
    from jupyter_mlops.entities import Environment

    environment = Environment(
        session_id="5" * 32, started=0.0, notebook=f"/notebooks/{payload}.ipynb", cwd="/",
        python="3.11.7", implementation="cpython", platform=payload, machine="x86_64",
        packages={payload: "1.0", "numpy": payload}, git_commit="0" * 40, git_branch=payload,
        git_dirty=True)
    assert_shown_as_text(environment._repr_html_(), payload)


@ALL
def test_listings_show_names_as_text(world, payload):
    import pandas as pd

    assert_shown_as_text(world["runs"]._repr_html_(), payload)
    assert_shown_as_text(world["history"]._repr_html_(), payload)
    models = world["models"]._repr_html_()  # model names cannot hold the payloads
    assert_inert(models)
    assert_not_typeset(models)
    # search_runs() and cell_history(): pandas' own view, never typeset.
    assert_shown_as_text(world["search"]._repr_html_(), payload)
    cells = world["cells"]  # more rows than pandas shows: the payload's cells, uncut
    with pd.option_context("display.max_colwidth", None):
        mine = cells[cells.source.str.contains(payload, regex=False)]._repr_html_()
    assert_shown_as_text(mine, payload)


@COLUMNS
def test_tables_show_names_as_text(payload):
    """The API's tables, whatever a user derives from them, with the payload as column,
    index and value, in pandas' table view and in its info view."""
    import pandas as pd

    from jupyter_mlops.dashboards.frames import TextFrame

    table = TextFrame({payload: [payload, "x"], "n": [1, 2]}, index=[payload, "y"])
    for view in (table, table[table.n > 0], table.set_index(payload)):
        assert_shown_as_text(view._repr_html_(), payload)
    with pd.option_context("display.large_repr", "info", "display.max_rows", 1):
        assert_shown_as_text(table._repr_html_(), payload)


@pytest.fixture(scope="module")
def evaluations(world):
    """One evaluation whose classes and features are the whole corpus, shown with all its
    figures; and per payload a small one where it is the name, a class and a feature."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame({name: rng.normal(size=240) for name in NAMES})
    y = np.array(NAMES, dtype=object)[np.arange(240) % len(NAMES)]
    model = LogisticRegression(max_iter=300).fit(X, y)
    corpus = mlops.evaluate(model, X, y, name=NAMES[0], n_repeats=1, importance_rows=120,
                            progress=False)

    def small(payload):
        frame = pd.DataFrame({payload: rng.normal(size=60), "plain": rng.normal(size=60)})
        labels = np.where(frame[payload] > 0, payload, "plain")
        fitted = LogisticRegression().fit(frame, labels)
        return mlops.evaluate(fitted, frame, labels, name=payload if payload in NAMES else None,
                              n_repeats=1, progress=False)

    return SimpleNamespace(corpus=corpus, corpus_html=corpus._repr_html_(),
                           small={payload: small(payload) for payload in [*NAMES, LONG_TEXT]})


@ALL
def test_evaluation_dashboard_shows_class_labels_as_text(evaluations, payload):
    assert_shown_as_text(evaluations.corpus_html, payload)


@COLUMNS
def test_evaluation_views_show_names_features_and_labels_as_text(evaluations, payload):
    from jupyter_mlops.dashboards.evaluation import _importance_table, metrics_html

    result = evaluations.small[payload]
    assert result.labels == sorted([payload, "plain"])
    assert_part_shows_text(metrics_html(result), payload)
    assert_part_shows_text(_importance_table(result), payload)
    comparison = mlops.compare_evaluations(result, evaluations.small[NAMES[-1]])._repr_html_()
    assert_inert(comparison)
    if result.name is not None:  # the long text is no valid name
        assert_shown_as_text(comparison, payload)


@pytest.fixture(scope="module")
def drift_reports(world):
    """Per payload (and the long text): a report where it names a drifting number column and
    is a value of a category column; under "corpus", one report with a column of each."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)

    def frames(name, shift):
        return pd.DataFrame({name: rng.normal(shift, 1, 300),
                             "category": rng.choice([name, "plain"], 300,
                                                    p=[0.8 - shift / 2, 0.2 + shift / 2])})

    reports = {payload: mlops.drift_report(frames(payload, 0), frames(payload, 1))
               for payload in [*NAMES, LONG_TEXT]}
    corpus = {name: rng.normal(size=100) for name in NAMES}
    reports["corpus"] = mlops.drift_report(pd.DataFrame(corpus), pd.DataFrame(corpus) + 1)
    return reports


@COLUMNS
def test_drift_views_show_columns_as_text(drift_reports, payload):
    from jupyter_mlops.dashboards.drift import banner_html, table_html

    report = drift_reports[payload]
    assert {r["column"] for r in report.records} == {payload, "category"}
    assert_shown_as_text(report._repr_html_(), payload)
    assert_part_shows_text(table_html(report), payload)
    assert_inert(banner_html(report))


# -- widgets ------------------------------------------------------------------------------

# Where a widget shows its trait as text (never as markup): (widget class, trait).
TEXT_TRAITS = {("Label", "value"), ("Text", "value"), ("Textarea", "value"),
               ("Dropdown", "_options_labels"), ("Select", "_options_labels"),
               ("Tab", "titles"), ("Accordion", "titles")}


def _tree(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _tree(child)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def assert_widget_shows_text(root, payload: str) -> None:
    """Raw user text only in text traits; every HTML value inert; the payload shown."""
    import ipywidgets as widgets

    shown = []
    for widget in _tree(root):
        kind = type(widget).__name__
        assert not isinstance(widget, widgets.HTMLMath), "math typesetting of user text"
        assert not getattr(widget, "description_allow_html", False), kind
        state = widget.get_state()
        if isinstance(widget, widgets.HTML):
            assert_not_raw(widget.value, payload)
            shown.append(assert_inert(widget.value))
            state.pop("value")
        for trait, value in state.items():
            for text in _strings(value):
                if payload in text:
                    assert (kind, trait) in TEXT_TRAITS, (kind, trait)
                    shown.append(text)
    assert any(payload in text for text in shown)


@ALL
def test_evaluation_widget_keeps_names_as_text(evaluations, payload):
    tab = evaluations.corpus.to_widget()
    for index in range(1, len(tab.children)):
        tab.selected_index = index  # fills the figure tabs
    assert_widget_shows_text(tab, payload)
    assert_widget_shows_text(evaluations.small[payload].to_widget(), payload)


@COLUMNS
def test_drift_widget_keeps_columns_as_text(drift_reports, payload):
    box = drift_reports[payload].widget()
    assert_widget_shows_text(box, payload)
    sort = next(w for w in _tree(box) if getattr(w, "description", "") == "Sort by")
    sort.value = "column"  # the table is rebuilt: still inert
    assert_widget_shows_text(box, payload)


# -- plots --------------------------------------------------------------------------------

def _metric_points(key):
    from jupyter_mlops.entities import Metric

    return [Metric(key, 0.5 + step / 10, step, 0.0) for step in range(3)]


def _curve(name, **numbers):
    return {"label": name, **numbers}


def _roc(name):
    return _curve(name, fpr=[0, 0.4, 1], tpr=[0, 0.8, 1], auc=0.8)


def _pr(name):
    return _curve(name, recall=[0, 0.5, 1], precision=[1, 0.7, 0.5], average_precision=0.7,
                  prevalence=0.5)


def _calibration(name):
    return _curve(name, prob_pred=[0.1, 0.5, 0.9], prob_true=[0.2, 0.5, 0.8])


def _bars(name):
    return {"type": "bars", "labels": [name, "plain"], "reference": [5, 5],
            "current": [8, 2], "other": [0, 0], "n_reference": 10, "n_current": 10}


def _untested_report(name):
    """A report whose only column has no distribution (the 'nothing to plot' branch)."""
    record = {"column": name, "test": None, "drifted": False}
    return SimpleNamespace(column=lambda column: record, distributions={})


def _plots():
    """Plot name → draw(payload, its drift report, ax): the payload drawn as user text."""
    from jupyter_mlops.dashboards import drift, evaluation, plots

    matrix = [[3, 1], [0, 2]]
    return {
        "plot_metric_histories": lambda p, report, ax: plots.plot_metric_histories(
            {p: {p: _metric_points(p), "other run": _metric_points(p)}}, ax=ax),
        "plot_confusion_matrix": lambda p, report, ax: evaluation.plot_confusion_matrix(
            matrix, [p, "other"], ax=ax),
        "plot_roc_curves": lambda p, report, ax: evaluation.plot_roc_curves(
            [_roc(p), _roc("x")], ax=ax),
        "plot_pr_curves": lambda p, report, ax: evaluation.plot_pr_curves(
            [_pr(p), _pr("x")], ax=ax),
        "plot_calibration_curves": lambda p, report, ax: evaluation.plot_calibration_curves(
            [_calibration(p), _calibration("x")], ax=ax),
        "plot_importance": lambda p, report, ax: evaluation.plot_importance(
            [p, "other"], [0.2, 0.1], [0.01, 0.02], "accuracy", ax=ax),
        "plot_distribution bars": lambda p, report, ax: drift.plot_distribution(
            _bars(p), title=p, ax=ax),
        "plot_column": lambda p, report, ax: drift.plot_column(report, p, ax=ax),
        "plot_column untested": lambda p, report, ax: drift.plot_column(
            _untested_report(p), p, ax=ax),
    }


# Plot functions that draw numbers only: no user text reaches them.
NUMBERS_ONLY = {"plot_predicted_vs_actual", "plot_residuals", "plot_residual_histogram"}
PLOTS = _plots()


def _draw(figure):
    """Render on Agg (where a mathtext error would surface); returns every Text drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    FigureCanvasAgg(figure).draw()
    return [text for text in figure.findobj(Text) if text.get_visible() and text.get_text()]


def assert_drawn_verbatim(figure, payloads) -> None:
    """Every payload drawn (as far as the plot shows it before cutting a long name with
    '…'), and no text holding a '$' drawn as math."""
    texts = _draw(figure)
    shown = [text.get_text() for text in texts]
    assert [p for p in payloads if not any(p[:11] in text for text in shown)] == []
    assert [text.get_text() for text in texts
            if "$" in text.get_text() and text.get_parse_math()] == []


@pytest.mark.parametrize("plot", sorted(PLOTS))
def test_plots_draw_names_verbatim(drift_reports, plot):
    """One figure per plot function, one Axes per payload: one Agg rendering draws all."""
    from matplotlib.figure import Figure

    rows = -(-len(NAMES) // 3)
    figure = Figure(figsize=(12, 2.3 * rows))
    for payload, ax in zip(NAMES, figure.subplots(rows, 3).flat, strict=False):
        PLOTS[plot](payload, drift_reports[payload], ax)
    assert_drawn_verbatim(figure, NAMES)


def test_drift_grid_draws_every_column_title(drift_reports):
    from jupyter_mlops.dashboards.drift import drift_figure

    report = drift_reports["corpus"]
    assert_drawn_verbatim(drift_figure(report, columns=NAMES), NAMES)


@pytest.mark.parametrize("trap", MATH_TRAPS)
def test_math_traps_are_traps(trap):
    """The corpus' mathtext probes do raise when math parsing is on (so the test can fail)."""
    from matplotlib.figure import Figure

    figure = Figure()
    figure.add_subplot().set_title(trap)
    with pytest.raises(ValueError):
        _draw(figure)


# -- coverage: no view, widget or plot escapes the lists above -----------------------------

def _defined_functions(module) -> set[str]:
    return {name for name, value in inspect.getmembers(module, inspect.isfunction)
            if value.__module__ == module.__name__}


def test_every_plot_function_is_checked():
    from jupyter_mlops.dashboards import drift, evaluation, plots

    found = {name for module in (plots, evaluation, drift) for name in _defined_functions(module)
             if name.startswith("plot_") or name.endswith("_figure")}
    checked = {name.split()[0] for name in PLOTS} | {"drift_figure"}
    assert found == checked | NUMBERS_ONLY


def _html(view) -> str:
    """What a notebook shows of ``view``: its HTML, or the HTML of its MIME bundle."""
    if hasattr(view, "_repr_html_"):
        return view._repr_html_()
    return view._repr_mimebundle_()["text/html"]


@ALL
def test_second_wave_views_show_names_as_text(store, payload):
    """Model cards, dataset diffs and quality, sweeps and interact panels: the user's
    names and values as text."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    X = pd.DataFrame({payload: np.arange(6.0), "plain": np.arange(6.0) % 2})
    mlops.register_model(LinearRegression().fit(X, np.arange(6.0)), "card-model", reference=X)
    mlops.describe("card-model/1", description=payload, intended_use=payload, owner=payload,
                   limitations=payload, tags={"team": payload})
    assert_shown_as_text(_html(mlops.model_card("card-model/1")), payload)

    before = pd.DataFrame({payload: [payload, "b", "c"], "n": [1, 2, 3]})
    after = pd.DataFrame({payload: [payload, "b", "d"], "n": [1, 2, 4]})
    assert_shown_as_text(_html(mlops.diff_datasets(before, after)), payload)
    assert_shown_as_text(_html(mlops.data_quality(after, reference=before)), payload)

    swept = mlops.sweep(lambda C: {payload: C}, C=[0.1, 0.2], maximize=payload)
    assert_shown_as_text(_html(swept), payload)
    panel = mlops.interact(lambda C=0.5: C, C=(0.1, 1.0), metric=payload)
    panel.run(C=0.3)
    assert_shown_as_text(_html(panel), payload)


@ALL
def test_many_run_comparison_shows_names_as_text(store, payload):
    """compare_runs over a parent and its children: parallel coordinates, the scatter, the
    importance bars, the histories and the tables, static and in the widget, with the
    payload as run name, param key and value, and metric key."""
    from jupyter_mlops.dashboards.compare import compare_html, compare_widget

    with mlops.start_run(payload, experiment=payload) as parent:
        for i in range(3):
            with mlops.start_run(payload, experiment=payload, nested=True):
                mlops.log_params({payload: i, "choice": payload if i else "plain"})
                for step in range(2):
                    mlops.log_metric(payload, i + step / 10, step=step)
    comparison = mlops.compare_runs(parent.run_id)
    assert comparison.metric == payload and len(comparison.trials) == 3
    assert_shown_as_text(compare_html(comparison), payload)
    for summary in ("min", "max"):
        assert_shown_as_text(compare_html(comparison, summary, payload, "choice"), payload)
    assert_widget_shows_text(compare_widget(comparison), payload)


# Classes with an HTML view, and the test above that renders them with every payload.
HTML_VIEWS = {
    "Run": test_run_views_show_names_as_text,
    "RunComparison": test_run_views_show_names_as_text,
    "ModelVersion": test_registry_views_show_names_as_text,
    "ReplayScript": test_registry_views_show_names_as_text,
    "Listing": test_listings_show_names_as_text,
    "TextFrame": test_tables_show_names_as_text,
    "EvaluationResult": test_evaluation_dashboard_shows_class_labels_as_text,
    "EvaluationComparison": test_evaluation_views_show_names_features_and_labels_as_text,
    "DriftReport": test_drift_views_show_columns_as_text,
    "Environment": test_environment_view_shows_names_as_text,
    "ModelCard": test_second_wave_views_show_names_as_text,
    "DataDiff": test_second_wave_views_show_names_as_text,
    "DataQuality": test_second_wave_views_show_names_as_text,
    "SweepResult": test_second_wave_views_show_names_as_text,
    "InteractiveRuns": test_second_wave_views_show_names_as_text,
}


def test_every_html_view_is_checked():
    found = set()
    for source in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(item, ast.FunctionDef)
                    and item.name in ("_repr_html_", "_repr_mimebundle_")
                    for item in node.body):
                found.add(node.name)
    assert found == set(HTML_VIEWS)


def test_emoji_and_cjk_names_print_no_missing_glyph_warnings(store):
    """Matplotlib's default font has no emoji or CJK glyphs and warns once per glyph; our
    views show those names as text beside the figure, so the warnings would be noise in
    the user's output."""
    import warnings

    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    names = [n for n in NAMES if any(ord(c) > 0x2E80 for c in n)]
    assert len(names) >= 2
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({name: rng.normal(size=200) for name in names})
    labels = np.where(frame[names[0]] > 0, names[0], names[1])
    model = LogisticRegression().fit(frame, labels)
    runs = []
    for name in names:
        with mlops.start_run(name) as run:
            for step in range(3):
                mlops.log_metric(name, float(step))
        runs.append(run.run_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mlops.drift_report(frame, frame + 1)._repr_html_()
        mlops.evaluate(model, frame, labels, n_repeats=1, progress=False)._repr_html_()
        mlops.compare_runs(runs)._repr_html_()
    assert [str(w.message) for w in caught if "Glyph" in str(w.message)] == []
