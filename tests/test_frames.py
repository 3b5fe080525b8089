"""``TextFrame``: the API's tables are DataFrames in every respect, and their notebook view
is never typeset as math (R7), whatever the user's pandas options."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import jupyter_mlops as mlops
from jupyter_mlops.dashboards.html import NO_MATH
from jupyter_mlops.frames import TextFrame
from support import run_cell

MATH = "cost $x^2$"
WRAPPED = f'<div class="{NO_MATH}">'


@pytest.fixture
def frame() -> TextFrame:
    return TextFrame({"name": [MATH, "plain", "third"], "score": [0.5, 1.5, 2.5],
                      "group": ["a", "b", "a"]})


DERIVED = {
    "head": lambda f: f.head(1),
    "filter": lambda f: f[f.score > 1],
    "columns": lambda f: f[["name", "score"]],
    "iloc": lambda f: f.iloc[:2],
    "loc": lambda f: f.loc[f.group == "a", ["name"]],
    "sort": lambda f: f.sort_values("score", ascending=False),
    "assign": lambda f: f.assign(double=f.score * 2),
    "copy": lambda f: f.copy(),
    "concat": lambda f: pd.concat([f, f], ignore_index=True),
    "merge": lambda f: f.merge(f, on="name"),
    "groupby": lambda f: f.groupby("group").sum(),
    "groupby_agg": lambda f: f.groupby("name").agg("max"),
    "pivot_table": lambda f: f.pivot_table(index="name", values="score"),
    "melt": lambda f: f.melt(id_vars="name"),
    "set_index": lambda f: f.set_index("name"),
    "nlargest": lambda f: f.nlargest(1, "score"),
    "reset_index": lambda f: f.set_index("name").reset_index(),
    "transpose": lambda f: f.T,
    "dropna": lambda f: f.dropna(),
    "query": lambda f: f.query("score < 2"),
    "rename": lambda f: f.rename(columns={"name": "run"}),
}


@pytest.mark.parametrize("derive", DERIVED.values(), ids=DERIVED.keys())
def test_derived_frames_stay_text_frames(frame, derive):
    derived = derive(frame)
    assert type(derived) is TextFrame
    assert derived._repr_html_().startswith(WRAPPED)


def test_a_column_is_a_plain_series_which_has_no_html_view(frame):
    assert type(frame["name"]) is pd.Series
    assert not hasattr(frame["name"], "_repr_html_")


def test_equal_to_the_plain_frame_it_was_made_from(frame):
    plain = pd.DataFrame(frame)
    pd.testing.assert_frame_equal(frame, plain)
    pd.testing.assert_frame_equal(plain, frame, check_frame_type=False)
    assert frame.equals(plain)


def test_pickles_as_a_plain_frame_that_loads_without_jupyter_mlops(frame):
    data = pickle.dumps(frame)
    assert b"jupyter_mlops" not in data
    loaded = pickle.loads(data)
    assert type(loaded) is pd.DataFrame
    pd.testing.assert_frame_equal(loaded, pd.DataFrame(frame))


def test_parquet_round_trip(frame):
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(buffer.getvalue())),
                                  pd.DataFrame(frame))


def test_html_is_pandas_own_view_inside_the_classes_mathjax_skips(frame):
    view = frame._repr_html_()
    assert view == f"{WRAPPED}{pd.DataFrame(frame)._repr_html_()}</div>"
    assert MATH in view


def test_the_users_pandas_options_are_untouched_and_obeyed(frame):
    # Every option, with its current value.
    before = pd.describe_option(_print_desc=False)
    frame._repr_html_()
    frame.head()._repr_html_()
    assert pd.describe_option(_print_desc=False) == before
    with pd.option_context("display.max_rows", 2, "display.min_rows", 2):
        assert "3 rows × 3 columns" in frame._repr_html_()
    with pd.option_context("display.notebook_repr_html", False):
        assert frame._repr_html_() is None


def test_the_info_view_escapes_column_names():
    hostile = "<img src=x onerror=alert(1)>"
    wide = TextFrame({hostile: range(5)})
    with pd.option_context("display.large_repr", "info", "display.max_rows", 2):
        view = wide._repr_html_()
        assert hostile in pd.DataFrame(wide)._repr_html_()  # pandas' own view: raw
    assert view.startswith(f"{WRAPPED}<pre>")
    assert hostile not in view and "&lt;img src=x onerror=alert(1)&gt;" in view


def test_the_api_returns_text_frames(shell):
    run_cell(shell, f"%%track -n {MATH!r} -e math\nscore = 1")
    runs = mlops.search_runs("math")
    history = mlops.cell_history()
    for table in (runs, history):
        assert type(table) is TextFrame
        view = table._repr_html_()
        assert view.startswith(WRAPPED) and MATH in view

    rng = np.random.default_rng(0)
    reference = pd.DataFrame({MATH: rng.normal(size=300), "other": rng.normal(size=300)})
    model = LogisticRegression().fit(reference, reference[MATH] > 0)
    mlops.register_model(model, "math-model", reference=reference)
    shifted = reference + 3
    result = mlops.monitor("math-model/1", batch=shifted)
    assert result.alert
    alerts = mlops.list_alerts("math-model")
    assert MATH in alerts["message"].iloc[0]
    for table in (mlops.list_models(), mlops.model_versions("math-model"), alerts):
        assert type(table) is TextFrame
        assert table._repr_html_().startswith(WRAPPED)
