"""The sidebar in a real JupyterLab and a real browser: a tracked cell's run appears by
itself, its details show, Go to cell lands on the cell, the timeline marks failed and
out-of-order executions, models insert their load code, and hostile names (R7's corpus)
stay text in the sidebar and in notebook outputs."""

from __future__ import annotations

import re

import pytest
from payloads import PWNED

from .ui_support import (
    HOSTILE,
    HOSTILE_MODEL,
    INJECTED_JS,
    PANEL,
    XSS_NAME,
    open_lab,
    open_sidebar,
    screenshot,
    write_hostile_notebook,
    write_lineage_notebook,
    write_notebook,
)

pytestmark = pytest.mark.slow
FILLERS = 40


def cell(page, text: str):
    return page.locator(".jp-Notebook .jp-Cell").filter(has_text=text).first


def run_cell(page, text: str) -> None:
    """Select the cell showing ``text`` (command mode) and run it with Shift+Enter."""
    target = cell(page, text)
    target.locator(".jp-InputPrompt").click()
    page.keyboard.press("Shift+Enter")


def test_run_appears_live_details_and_go_to_cell(page, lab):
    from playwright.sync_api import expect

    write_notebook(lab.root / "work.ipynb", fillers=FILLERS)
    open_lab(page, lab, "work.ipynb")
    open_sidebar(page)
    panel = page.locator(PANEL)
    expect(panel.locator(".jp-mlops-tab[aria-selected='true']")).to_have_text("Runs")

    run_cell(page, "%load_ext jupyter_mlops")
    page.keyboard.press("Shift+Enter")  # a = 2
    page.keyboard.press("Shift+Enter")  # the %%track cell
    train = cell(page, "%%track -n ui-run")
    expect(train.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[3\]"), timeout=60_000)

    # The run shows up by itself (the panel polls), without a reload.
    row = panel.locator("li.jp-mlops-run", has=page.locator(".jp-mlops-run-name",
                                                              has_text="ui-run"))
    expect(row).to_be_visible(timeout=30_000)
    expect(row).to_have_attribute("data-status", "FINISHED")
    expect(row.locator(".jp-mlops-run-experiment")).to_have_text("ui-test")
    expect(row.locator(".jp-mlops-chip")).to_contain_text(["score 1"])
    screenshot(page, "ui-01-runs-live")

    # Run the rest: fillers, then the failing cell at the end of the notebook.
    run_cell(page, "Filler paragraph 0.")
    for _ in range(FILLERS):
        page.keyboard.press("Shift+Enter")
    expect(cell(page, "1 / 0").locator(".jp-OutputArea-output")).to_contain_text(
        "ZeroDivisionError", timeout=30_000)

    row.click()
    detail = panel.locator(".jp-mlops-detail")
    expect(detail.locator(".jp-mlops-detail-title")).to_have_text("ui-run")
    params = detail.locator(".jp-mlops-params tr")
    expect(params.filter(has_text="lr")).to_contain_text("0.5")
    expect(detail.locator(".jp-mlops-metric[data-key='score']")).to_contain_text("1")
    expect(detail.locator(".jp-mlops-source")).to_contain_text("score = lr * a")
    screenshot(page, "ui-02-run-detail")

    # The tracked cell is far above the view now; Go to cell scrolls to it and marks it.
    expect(train).not_to_be_in_viewport()
    detail.locator("button.jp-mlops-goto").click()
    expect(train).to_have_class(re.compile(r"\bjp-mlops-highlight\b"))
    expect(train).to_have_class(re.compile(r"\bjp-mod-active\b"))
    expect(train).to_be_in_viewport()
    screenshot(page, "ui-03-go-to-cell")

    # Back up to a = 2 and run it again: out of order. Then the timeline.
    run_cell(page, "a = 2")
    expect(cell(page, "a = 2").locator(".jp-InputPrompt")).to_have_text(
        re.compile(r"\[5\]"), timeout=30_000)
    panel.locator(".jp-mlops-tab[data-tab='timeline']").click()
    executions = panel.locator("li.jp-mlops-exec")
    # Capture starts with the cell that loads the extension.
    expect(executions).to_have_count(5, timeout=5_000)
    expect(executions.locator(".jp-mlops-exec-source")).to_have_text(
        ["%load_ext jupyter_mlops", "a = 2", "%%track -n ui-run -e ui-test", "1 / 0", "a = 2"])
    expect(executions.locator(".jp-mlops-prompt")).to_have_text(
        ["[1]", "[2]", "[3]", "[4]", "[5]"])
    expect(panel.locator("li.jp-mlops-exec[data-status='error']")).to_have_count(1)
    expect(panel.locator("li.jp-mlops-exec[data-status='error'] .jp-mlops-mark-failed")
           ).to_have_text("failed")
    out_of_order = panel.locator("li.jp-mlops-exec[data-out-of-order='true']")
    expect(out_of_order).to_have_count(1)
    expect(out_of_order.locator(".jp-mlops-mark-order")).to_have_text("out of order")
    expect(panel.locator(".jp-mlops-timeline-head")).to_contain_text("this kernel")
    screenshot(page, "ui-04-timeline")

    # From the timeline back to the run it made.
    panel.locator("li.jp-mlops-exec .jp-mlops-link").first.click()
    expect(panel.locator(".jp-mlops-detail-title")).to_have_text("ui-run")

    assert page.errors == []
    assert page.dialogs == []


def test_timeline_tells_possibly_modified_from_stale_and_shows_files(page, lab):
    from playwright.sync_api import expect

    write_lineage_notebook(lab.root / "lineage.ipynb")
    open_lab(page, lab, "lineage.ipynb")
    open_sidebar(page)
    panel = page.locator(PANEL)
    run_cell(page, "%load_ext jupyter_mlops")
    for _ in range(4):
        page.keyboard.press("Shift+Enter")
    expect(cell(page, "pickle.dump").locator(".jp-InputPrompt")).to_have_text(
        re.compile(r"\[5\]"), timeout=60_000)
    panel.locator(".jp-mlops-tab[data-tab='timeline']").click()
    executions = panel.locator("li.jp-mlops-exec")
    expect(executions).to_have_count(5, timeout=10_000)
    tracked = executions.nth(2)
    expect(tracked.locator(".jp-mlops-mark-maybe")).to_have_text("modified?")
    expect(tracked.locator(".jp-mlops-mark-maybe")).to_have_attribute(
        "title", re.compile(r"^Possibly modified: .*\(data possibly modified in \[4\]\)"))
    expect(tracked.locator(".jp-mlops-mark-stale")).to_have_count(0)
    wrote = executions.nth(4).locator(".jp-mlops-mark-files")
    expect(wrote).to_have_text("wrote")
    expect(wrote).to_have_attribute("title", "Wrote data.pkl")
    screenshot(page, "ui-05-timeline-lineage")
    assert page.errors == []


def assert_nothing_injected(page, root, allow_style: bool = False) -> None:
    """No element or attribute under ``root`` came from data, and nothing ran."""
    assert root.evaluate(INJECTED_JS, allow_style) == []
    assert page.evaluate(f"() => {PWNED}") is None
    assert page.errors == []
    assert page.dialogs == []


def text_of(locator) -> str:
    """The textContent of every element ``locator`` matches (what the user reads)."""
    return "\n".join(locator.evaluate_all("all => all.map(element => element.textContent)"))


def test_hostile_names_are_text(page, lab, seeded_store):
    from playwright.sync_api import expect

    open_lab(page, lab)
    open_sidebar(page)
    panel = page.locator(PANEL)
    panel.locator(".jp-mlops-filter").fill("")
    panel.locator("select[aria-label='Experiment']").select_option("hostile")
    names = panel.locator(".jp-mlops-run-name")
    expect(names).to_have_count(len(HOSTILE))
    expect(names).to_have_text(list(reversed(HOSTILE)), use_inner_text=False)
    screenshot(page, "ui-05-hostile-names")

    # Each run's own page: the title is the name as typed.
    detail = panel.locator(".jp-mlops-runs .jp-mlops-detail")
    for name in HOSTILE:
        panel.locator("li.jp-mlops-run").nth(len(HOSTILE) - 1 - HOSTILE.index(name)).click()
        expect(detail.locator(".jp-mlops-detail-title")).to_have_text(name,
                                                                     use_inner_text=False)
        assert name in text_of(detail.locator(".jp-mlops-detail-body"))
        detail.locator("button.jp-mlops-back").click()
        assert_nothing_injected(page, panel)

    panel.locator("select[aria-label='Experiment']").select_option(XSS_NAME)
    panel.locator(".jp-mlops-run-name", has_text="hostile details").click()
    expect(detail.locator(".jp-mlops-params").first).to_contain_text("<b>not bold</b>")
    expect(detail.locator(".jp-mlops-artifacts")).to_contain_text(f"{XSS_NAME}.txt")
    expect(detail.locator(".jp-mlops-metric")).to_have_count(len(HOSTILE))
    expect(detail.locator(".jp-mlops-facts")).to_contain_text(XSS_NAME)  # the experiment
    for part in (".jp-mlops-params", ".jp-mlops-metric", ".jp-mlops-artifacts",
                 ".jp-mlops-detail-body"):
        shown = text_of(detail.locator(part))
        assert [name for name in HOSTILE if name not in shown] == [], part
    screenshot(page, "ui-06-hostile-detail")

    # Nothing from the data became markup.
    for selector in ("img", "script", "iframe", "style", "b", "a", "math"):
        assert panel.locator(selector).count() == 0, selector
    assert_nothing_injected(page, panel)


def test_model_lineage_with_hostile_names_is_text(page, lab, seeded_store):
    from playwright.sync_api import expect

    open_lab(page, lab)
    open_sidebar(page)
    panel = page.locator(PANEL)
    panel.locator(".jp-mlops-tab[data-tab='models']").click()
    model = panel.locator(f"li.jp-mlops-model[data-model='{HOSTILE_MODEL}']")
    expect(model).to_contain_text(f"{len(HOSTILE)} versions")
    model.click()
    versions = panel.locator("li.jp-mlops-version")
    expect(versions).to_have_count(len(HOSTILE))
    # Newest first; each version's lineage names its run, experiment and data.
    for version, name in zip(versions.all(), reversed(HOSTILE), strict=True):
        facts = text_of(version.locator(".jp-mlops-facts"))
        assert f"{name} (hostile)" in facts
        assert f"{name} (train)" in facts
    screenshot(page, "ui-10-hostile-lineage")
    assert_nothing_injected(page, panel)


def test_hostile_names_in_notebook_outputs_and_timeline_are_text(page, lab, seeded_store):
    """Our HTML in a notebook's (trusted) outputs, and the timeline's cell sources."""
    from playwright.sync_api import expect

    pwn = next(name for name in HOSTILE if name.startswith("<img") and PWNED in name)
    write_hostile_notebook(lab.root / "hostile.ipynb", pwn)
    open_lab(page, lab, "hostile.ipynb")
    run_cell(page, "%load_ext jupyter_mlops")
    for _ in range(3):
        page.keyboard.press("Shift+Enter")
    listing = cell(page, "%mlops runs").locator(".jp-OutputArea-output")
    expect(listing).to_contain_text(f"{len(HOSTILE)} runs", timeout=60_000)
    details = cell(page, "hostile details").locator(".jp-OutputArea-output")
    expect(details).to_contain_text("hostile details", timeout=60_000)
    for output in (listing, details):
        shown = text_of(output)
        assert [name for name in HOSTILE if name not in shown] == []
        assert_nothing_injected(page, output)  # our views style inline: no <style>
    screenshot(page, "ui-11-hostile-outputs")

    open_sidebar(page)
    panel = page.locator(PANEL)
    panel.locator("select[aria-label='Experiment']").select_option("r7-notebook")
    panel.locator(".jp-mlops-run-name").first.click()
    expect(panel.locator(".jp-mlops-runs .jp-mlops-detail-title")).to_have_text(pwn)
    expect(panel.locator(".jp-mlops-source")).to_contain_text(f"# {pwn}")
    panel.locator(".jp-mlops-tab[data-tab='timeline']").click()
    sources = panel.locator("li.jp-mlops-exec .jp-mlops-exec-source")
    expect(sources.filter(has_text=pwn)).to_have_count(1, timeout=5_000)
    assert_nothing_injected(page, panel)


def test_metric_history_chart_and_image_preview(page, lab, seeded_store):
    from playwright.sync_api import expect

    open_lab(page, lab)
    open_sidebar(page)
    panel = page.locator(PANEL)
    names = panel.locator(".jp-mlops-run-name")
    search = panel.locator(".jp-mlops-filter")
    # Plain text matches names; the filter syntax of search_runs works too.
    search.fill("iris")
    expect(names).to_have_text(["iris-train"])
    search.fill("metrics.acc > 0.8")
    expect(names).to_have_text(["charts"])
    search.fill("metrics.acc >")
    expect(panel.locator(".jp-mlops-filter-hint")).to_contain_text("value")
    search.fill("")
    panel.locator("select[aria-label='Experiment']").select_option("charts")
    panel.locator(".jp-mlops-run-name", has_text="charts").click()
    detail = panel.locator(".jp-mlops-detail")
    acc = detail.locator(".jp-mlops-metric[data-key='acc']")
    expect(acc.locator(".jp-mlops-num")).to_have_text("0.88")
    expect(acc.locator("svg.jp-mlops-sparkline polyline")).to_have_count(1)
    expect(acc.locator(".jp-mlops-steps")).to_have_text("20 steps")
    # The NaN at step 5 breaks the loss line in two.
    loss = detail.locator(".jp-mlops-metric[data-key='loss']")
    expect(loss.locator("svg.jp-mlops-sparkline polyline")).to_have_count(2)
    preview = detail.locator("img.jp-mlops-preview")
    expect(preview).to_have_attribute("src", re.compile(r"^blob:"))
    page.wait_for_function(
        "() => document.querySelector('img.jp-mlops-preview')?.naturalWidth > 0")
    screenshot(page, "ui-09-history-and-preview")
    assert page.errors == []


def test_child_runs_fold_under_their_parent(page, lab, seeded_store):
    from playwright.sync_api import expect

    open_lab(page, lab)
    open_sidebar(page)
    panel = page.locator(PANEL)
    panel.locator("select[aria-label='Experiment']").select_option("searches")
    names = panel.locator(".jp-mlops-run-name")
    expect(names).to_have_text(["grid-search"])  # its children are folded
    toggle = panel.locator("button.jp-mlops-toggle")
    expect(toggle).to_have_text("▸ 7")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    children = panel.locator("li.jp-mlops-child")
    expect(children).to_have_count(7)
    expect(children.locator(".jp-mlops-run-name")).to_have_text(
        [f"grid[{i}]" for i in range(7)])  # in the order the search tried them
    expect(panel.locator("button.jp-mlops-toggle")).to_have_attribute("aria-expanded", "true")
    screenshot(page, "ui-10-child-runs")
    # The list polls: the children stay open, then fold again on a second click.
    page.wait_for_timeout(2500)
    expect(children).to_have_count(7)
    panel.locator("button.jp-mlops-toggle").click()
    expect(children).to_have_count(0)
    # A search over every run finds the children, each marked as one.
    panel.locator(".jp-mlops-filter").fill("grid[3")
    expect(names).to_have_text(["grid[3]"])
    expect(panel.locator(".jp-mlops-child-mark")).to_have_count(1)
    names.first.click()
    expect(panel.locator(".jp-mlops-detail-title")).to_have_text("grid[3]")
    expect(panel.locator(".jp-mlops-facts")).to_contain_text(
        f"Child of{seeded_store['grid-search']}")
    assert page.errors == []


def test_models_and_insert_load_code(page, lab, seeded_store):
    from playwright.sync_api import expect

    write_notebook(lab.root / "models.ipynb", fillers=0)
    open_lab(page, lab, "models.ipynb")
    expect(page.locator(".jp-Notebook .jp-Cell")).to_have_count(4)
    open_sidebar(page)
    panel = page.locator(PANEL)
    panel.locator(".jp-mlops-tab[data-tab='models']").click()
    iris = panel.locator("li.jp-mlops-model[data-model='iris']")
    expect(iris).to_contain_text("v2 · 2 versions")
    expect(iris.locator(".jp-mlops-alias")).to_have_text(["@champion → v2"])
    iris.click()
    versions = panel.locator("li.jp-mlops-version")
    expect(versions).to_have_count(2)
    expect(versions.first.locator(".jp-mlops-alias")).to_have_text(["@champion"])
    expect(versions.first.locator(".jp-mlops-facts")).to_contain_text("iris-train (models)")
    screenshot(page, "ui-07-models")

    cell(page, "a = 2").locator(".jp-InputPrompt").click()
    panel.locator(".jp-mlops-detail-head button.jp-mlops-insert").click()
    expect(page.locator(".jp-Notebook .jp-Cell")).to_have_count(5)
    inserted = page.locator(".jp-Notebook .jp-Cell").nth(2)
    expect(inserted).to_contain_text('model = jupyter_mlops.load_model("iris@champion")')

    # The lineage leads to the run.
    versions.first.locator(".jp-mlops-facts .jp-mlops-link").click()
    expect(panel.locator(".jp-mlops-runs .jp-mlops-detail-title")).to_have_text("iris-train")
    assert page.errors == []


def test_dark_theme(page, lab, seeded_store):
    from playwright.sync_api import expect

    lab.set_theme("JupyterLab Dark")
    try:
        open_lab(page, lab)
        expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false",
                                                       timeout=20_000)
        open_sidebar(page)
        panel = page.locator(PANEL)
        panel.locator("select[aria-label='Experiment']").select_option("models")
        panel.locator(".jp-mlops-run-name", has_text="iris-train").click()
        expect(panel.locator(".jp-mlops-runs .jp-mlops-detail-title")).to_have_text(
            "iris-train")
        background = page.evaluate(
            "() => getComputedStyle(document.querySelector('#jupyter-mlops-panel'))"
            ".backgroundColor")
        red, green, blue = (int(x) for x in re.findall(r"\d+", background)[:3])
        assert red + green + blue < 3 * 128, background  # the panel follows the theme
        screenshot(page, "ui-08-dark-theme")
        assert page.errors == []
    finally:
        lab.set_theme("JupyterLab Light")
