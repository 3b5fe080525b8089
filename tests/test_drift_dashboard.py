"""The drift dashboard: banner, table, plots and widget, tested by their content and trees."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from jupyter_mlops.dashboards import drift as dash
from jupyter_mlops.drift import drift_report, get_drift_report

HOSTILE = "<script>alert('x')</script> $\\alpha$"


@pytest.fixture
def report(store):
    rng = np.random.default_rng(0)
    n = 1500
    ref = pd.DataFrame({
        "calm": rng.normal(size=n),
        "moved": rng.normal(size=n),
        HOSTILE: rng.choice(["<b>bold</b>", "plain", "a&b"], n),
        "when": pd.date_range("2024-01-01", periods=n, freq="h"),
    })
    cur = ref.copy()
    cur["moved"] = rng.normal(1.0, 1, size=n)
    cur[HOSTILE] = rng.choice(["<b>bold</b>", "plain", "a&b"], n, p=[.7, .2, .1])
    return drift_report(ref, cur, model="models:/<m>/1")


def test_html_has_banner_table_and_plots_with_every_string_escaped(report):
    html = report._repr_html_()
    assert "Dataset drift detected" in html  # 2 of 3 tested columns moved
    assert "<b>Dataset drift detected</b>: 2 of 3 columns drifted" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "models:/&lt;m&gt;/1" in html
    assert "Not tested: when (datetime column: reported, not tested)" in html
    png = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(png).startswith(b"\x89PNG")
    rows = re.findall(r"<tr[^>]*><td>([^<]*)</td>", html)
    assert rows[:2] == ["moved", dash.escape(HOSTILE)] or rows[:2] == [dash.escape(HOSTILE),
                                                                       "moved"]
    assert rows[2:] == ["calm", "when"]  # drifted first, untested last


def test_table_sorts_by_any_column(report):
    by_stat = dash._sort_records(report.records, "statistic", descending=True)
    stats = [r["statistic"] for r in by_stat if r["test"]]
    assert stats == sorted(stats, reverse=True)
    assert by_stat[-1]["column"] == "when"  # no statistic: last
    by_name = dash._sort_records(report.records, "column", descending=False)
    assert [r["column"] for r in by_name] == sorted((r["column"] for r in report.records),
                                                    key=str.lower)
    only = dash.table_html(report, drifted_only=True)
    assert "calm" not in only and "moved" in only


def test_plots_are_axes_of_reference_against_current(report):
    ax = dash.plot_column(report, "moved")
    assert ax.get_title().startswith("moved: wasserstein = ") and "DRIFT" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["reference", "current"]
    hist = report.distributions["moved"]
    assert hist["type"] == "hist" and sum(hist["reference"]) == 1500
    bars = dash.plot_column(report, HOSTILE)
    assert len(bars.patches) == 2 * 3  # three values, reference and current
    assert sorted(t.get_text() for t in bars.get_xticklabels()) == ["<b>bold</b>", "a&b",
                                                                     "plain"]
    assert dash.plot_column(report, "when").texts[0].get_text() == "when: nothing to plot"
    figure = dash.drift_figure(report)
    assert len([a for a in figure.axes if a.axison]) == 3


def test_widget_tree_sorts_and_switches_plots(report):
    pytest.importorskip("ipywidgets")
    import ipywidgets as widgets

    box = dash.drift_widget(report)
    banner, controls, table, pick, image = box.children
    assert isinstance(banner, widgets.HTML) and "2 of 3 columns drifted" in banner.value
    sort, descending, only = controls.children
    assert sort.value == "drifted" and descending.value is True
    assert "&lt;script&gt;" in table.value and "<script>" not in table.value
    first = table.value
    sort.value = "column"
    assert table.value != first and table.value.index("when") < table.value.index("calm")
    only.value = True
    assert "calm" not in table.value
    assert isinstance(image, widgets.Image) and bytes(image.value).startswith(b"\x89PNG")
    assert pick.options[0] in ("moved", HOSTILE) and "when" not in pick.options
    before = bytes(image.value)
    pick.value = "calm"
    assert bytes(image.value) != before


def test_outside_a_kernel_the_display_is_static_html(report):
    assert dash.widget_bundle(report) == {}


def test_a_report_read_back_from_the_store_renders_the_same(report):
    again = get_drift_report(report.report_id)
    assert dash.table_html(again) == dash.table_html(report)
    assert dash.grid_png(again) == dash.grid_png(report)
