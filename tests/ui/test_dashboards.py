"""The dashboards as a user sees them in JupyterLab, on screens of device pixel ratio 1
and 2: a saved notebook opened untrusted (its outputs sanitized, ``<style>`` dropped) and
the live widgets of a kernel. What is measured is what the browser computes: the
alignment, font and colour of table cells, the hover text of rounded numbers, the banner's
colour, and each image's pixels against the CSS pixels it takes on the page."""

from __future__ import annotations

import re
import shutil

import pytest

from .ui_support import (
    ARTIFACTS,
    CELL_JS,
    IMAGES_JS,
    NAN_METRIC,
    TINY,
    open_lab,
    screenshot,
    write_live_dashboards,
    write_static_dashboards,
)

pytestmark = pytest.mark.slow
SCALES = pytest.mark.parametrize("page", [1, 2], indirect=True, ids=["1x", "2x"])
AMBER = "rgba(255, 170, 0"
SENTINEL = '<style>.jp-mlops-sentinel{color:red}</style><b class="jp-mlops-sentinel">s</b>'


@pytest.fixture(scope="module")
def saved_notebook(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    write_static_dashboards(folder / "saved.ipynb", folder / ".mlops", extra=SENTINEL)
    return folder / "saved.ipynb"


def _scale(page) -> int:
    return page.evaluate("devicePixelRatio")


def _assert_sharp(images: list[dict], scale: int) -> None:
    """Each image has at least ``scale`` pixels per CSS pixel it is shown at, and is never
    shown larger than the size of its figure."""
    assert images
    for image in images:
        assert image["complete"] and image["natural"] > 0, image
        assert image["natural"] / image["shown"] >= scale, image
        if image["attribute"]:
            assert image["shown"] <= image["attribute"] + 0.5, image


def _save_shots(page, outputs: dict, scale: int, kind: str) -> None:
    """One screenshot per output, whole: the window is made taller than the tallest."""
    ARTIFACTS.mkdir(exist_ok=True)
    tallest = max(locator.bounding_box()["height"] for locator in outputs.values())
    page.set_viewport_size({"width": 1400, "height": int(tallest) + 400})
    for name, locator in outputs.items():
        locator.scroll_into_view_if_needed()
        locator.screenshot(path=str(ARTIFACTS / f"ui-dash-{kind}-{name}-{scale}x.png"))


@SCALES
def test_saved_dashboards_read_right_untrusted(page, lab, saved_notebook):
    from playwright.sync_api import expect

    scale = _scale(page)
    name = f"saved-{scale}x.ipynb"
    shutil.copy(saved_notebook, lab.root / name)
    open_lab(page, lab, name)
    outputs = page.locator(".jp-OutputArea-output")
    expect(outputs).to_have_count(4, timeout=60_000)
    drift, evaluation, run, sentinel = (outputs.nth(i) for i in range(4))
    # Untrusted: the sanitizer dropped the <style> of the last output (and would drop ours).
    expect(sentinel.locator("b")).to_have_count(1)
    assert page.locator(".jp-OutputArea-output style").count() == 0

    # Numbers right-aligned, rounded, the full value on hover; NaN as MLflow shows it.
    row = run.locator("tr", has=page.locator("td", has_text=re.compile("^tiny$")))
    name_cell, value_cell = (row.locator("td").nth(i).evaluate(CELL_JS) for i in (0, 1))
    assert name_cell["align"] == "left"
    assert (value_cell["text"], value_cell["title"], value_cell["align"]) == (
        "0.007155", repr(TINY), "right")
    missing = run.locator("tr", has_text=NAN_METRIC).locator("td").nth(1).evaluate(CELL_JS)
    assert (missing["text"], missing["title"], missing["align"]) == ("–", "NaN", "right")
    metric = evaluation.locator("tr", has_text="accuracy").first.locator("td")
    assert metric.nth(0).evaluate(CELL_JS)["align"] == "left"
    assert metric.nth(1).evaluate(CELL_JS)["align"] == "right"

    # Colours survive: 3 of 7 columns drifted is amber, and the drifted rows are tinted.
    banner = drift.locator(".jp-mlops-drift-banner")
    expect(banner).to_contain_text("3 of 7 columns drifted")
    assert AMBER in banner.evaluate("e => getComputedStyle(e).backgroundColor")
    tinted = drift.locator("tr.jp-mlops-drifted td").first.evaluate(CELL_JS)
    assert tinted["background"] not in ("", "rgba(0, 0, 0, 0)")

    images = evaluation.evaluate(IMAGES_JS)
    assert len(images) == 6
    _assert_sharp(images + drift.evaluate(IMAGES_JS), scale)
    screenshot(page, f"ui-dash-saved-{scale}x")
    _save_shots(page, {"drift": drift, "evaluation": evaluation, "run": run}, scale, "saved")
    assert page.errors == []


@SCALES
def test_live_dashboards_are_sharp_and_aligned(page, lab):
    from playwright.sync_api import expect

    scale = _scale(page)
    name = f"live-{scale}x.ipynb"
    write_live_dashboards(lab.root / name)
    open_lab(page, lab, name)
    page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputPrompt").click()
    for _ in range(4):
        page.keyboard.press("Shift+Enter")

    # The drift widget: the grid of every plotted column, and one column, each at its
    # figure's size (not stretched to the output's width) with enough pixels.
    widget = page.locator(".jp-mlops-drift-widget")
    expect(widget).to_be_visible(timeout=120_000)
    grid = widget.locator("img.jp-mlops-drift-grid")
    column = widget.locator("img.jp-mlops-drift-column")
    expect(grid).to_be_visible()
    expect(column).to_be_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-mlops-drift-widget img')]"
        ".every(i => i.complete && i.naturalWidth > 0)")
    shown = widget.evaluate(IMAGES_JS)
    _assert_sharp(shown, scale)
    widths = {round(image["shown"]) for image in shown}
    assert widths == {921, 528}, shown  # 3 × 3.2 and 5.5 inches at 96 CSS px per inch
    banner = widget.locator(".jp-mlops-drift-banner")
    assert AMBER in banner.evaluate("e => getComputedStyle(e).backgroundColor")
    statistic = widget.locator("td[title]").first.evaluate(CELL_JS)
    assert statistic["align"] == "right" and len(statistic["text"]) < len(statistic["title"])

    # The evaluation widget: numbers right-aligned; the importance figure sharp.
    tabs = page.locator(".jupyter-widgets.widget-tab")
    expect(tabs).to_be_visible(timeout=120_000)
    accuracy = tabs.locator("tr", has_text="balanced_accuracy").locator("td")
    assert accuracy.nth(0).evaluate(CELL_JS)["align"] == "left"
    assert accuracy.nth(1).evaluate(CELL_JS)["align"] == "right"
    tabs.locator(".lm-TabBar-tab", has_text="Importance").click()
    importance = tabs.locator("img[alt='Permutation importance']")
    expect(importance).to_be_visible(timeout=60_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll(\"img[alt='Permutation importance']\")]"
        ".every(i => i.complete && i.naturalWidth > 0)")
    _assert_sharp(tabs.evaluate(IMAGES_JS), scale)

    # %mlops history: cell sources left-aligned in a code font (a trusted output).
    history = page.locator(".jp-OutputArea-output").filter(has_text="%load_ext jupyter_mlops")
    expect(history).to_have_count(1, timeout=60_000)
    source = history.locator("td", has_text="%load_ext jupyter_mlops").evaluate(CELL_JS)
    assert source["align"] == "left" and "monospace" in source["font"]

    screenshot(page, f"ui-dash-live-{scale}x")
    _save_shots(page, {"drift": widget, "evaluation": tabs, "history": history}, scale, "live")
    assert page.errors == []
