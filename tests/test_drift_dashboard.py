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
    rows = re.findall(r"<tr[^>]*><td[^>]*>([^<]*)</td>", html)
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
    assert ax.get_title().startswith("moved\nwasserstein = ") and "DRIFT" in ax.get_title()
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
    banner, controls, table, grid, pick, image = box.children
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
    assert bytes(grid.value) == dash.grid_png(report)  # the grid the static view shows
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


def _shifted(store, moved: list[str], drift_share: float = 0.5):
    ref = pd.DataFrame({name: np.random.default_rng(1).normal(size=800) for name in "abcdefg"})
    cur = ref.copy()
    cur[moved] += 1.0
    return drift_report(ref, cur, drift_share=drift_share)


def _banner_style(report) -> str:
    return re.search(r'class="jp-mlops-drift-banner[^"]*" style="([^"]*)"',
                     dash.banner_html(report)).group(1)


def test_banner_is_green_only_when_no_column_drifted(store):
    calm = _shifted(store, [])
    some = _shifted(store, ["a", "b", "c"])  # 3 of 7: below the dataset threshold
    dataset = _shifted(store, ["a", "b", "c", "d"])
    assert (calm.n_drifted, some.n_drifted, dataset.n_drifted) == (0, 3, 4)
    assert not some.drifted and dataset.drifted
    kinds = [dash.banner_kind(r) for r in (calm, some, dataset)]
    assert kinds == ["jp-mlops-drift-no", "jp-mlops-drift-some", "jp-mlops-drift-yes"]
    green = "#2a5"
    assert green in _banner_style(calm)
    assert green not in _banner_style(some) and green not in _banner_style(dataset)
    assert "rgba(255,170,0" in _banner_style(some)  # amber
    assert "<b>No dataset drift</b>: 3 of 7 columns drifted" in dash.banner_html(some)


def test_static_and_live_views_carry_no_style_sheet(report):
    pytest.importorskip("ipywidgets")
    markup = report._repr_html_()
    assert "<style" not in markup
    box = dash.drift_widget(report)
    assert not any("<style" in child.value for child in box.children
                   if isinstance(getattr(child, "value", None), str))
    drifted = re.search(r'<tr class="jp-mlops-drifted">(<td[^>]*>)', markup).group(1)
    assert "background:rgba(220,50,50" in drifted


def test_the_live_widget_shows_its_images_at_their_figures_size(report):
    """Not stretched to the output's width (a 396×230 PNG was blown up to 1216×706)."""
    pytest.importorskip("ipywidgets")
    from jupyter_mlops.dashboards.png import SCALE, display_size, pixel_size

    box = dash.drift_widget(report)
    grid, image = box.children[3], box.children[5]
    for shown in (grid, image):
        png = bytes(shown.value)
        width, _ = display_size(png)
        assert shown.layout.width == f"{width}px" and shown.layout.max_width == "100%"
        assert pixel_size(png)[0] / width >= SCALE
    assert display_size(bytes(image.value))[0] == 528  # 5.5 inches at 96 CSS px
    assert display_size(bytes(grid.value))[0] == 921  # 3 plots of 3.2 inches, rounded down


def test_grid_and_column_plots_keep_every_text_whole_and_apart(report, store):
    """Titles of two lines fit over their plot; names under the bars stand upright when
    they do not fit side by side; nothing is cut off at the figure's edge."""
    from payloads import NAMES
    from support import layout_defects

    assert layout_defects(dash.drift_figure(report)) == []
    rng = np.random.default_rng(2)
    ref = pd.DataFrame({name: rng.choice(NAMES[i:i + 9], 400) for i, name in
                        enumerate(NAMES[:5])})
    ref["city"] = rng.choice([f"city {k}" for k in range(30)], 400)
    ref["income"] = rng.lognormal(10, 1, 400)
    crowded = drift_report(ref, ref.sample(frac=1, random_state=0))
    assert layout_defects(dash.drift_figure(crowded)) == []
    for column in crowded.distributions:
        figure = dash.drift_figure(crowded, [column], plot_size=dash.COLUMN_PLOT_SIZE)
        assert layout_defects(figure) == [], column
    city = dash.plot_column(crowded, "city")
    assert {t.get_rotation() for t in city.get_xticklabels()} == {90}
