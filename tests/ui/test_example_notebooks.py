"""The four first example notebooks as a user meets them in JupyterLab, after running them.

Each is copied into the server's root and run headless into the server's store by the
project's own runner (a real kernel, told its notebook and each cell's id, as JupyterLab
does), then opened from the file browser. What the user sees is checked: the Runs list
names the notebook above the runs it made, the Timeline shows its executions (from the
earlier kernel, with the failed and stale ones marked, each leading to its cell), the
Models tab lists the models it registered with their lineage, and the saved dashboards of
the evaluation and drift examples render with their figures. One screenshot per notebook
lands in test-artifacts/.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest

from .ui_support import PANEL, open_lab, open_sidebar, screenshot

pytestmark = pytest.mark.slow

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "example_notebooks"
EXAMPLES = ("01_quickstart", "02_registry", "03_evaluation", "04_drift")

# The runs list in order, cut at the line above each kernel's runs: what it says (the
# notebook) and the top-level runs under it, newest first, with their status.
RUN_GROUPS_JS = """list => {
  const groups = [];
  let group = null;
  for (const item of list.children) {
    if (item.classList.contains('jp-mlops-origin')) {
      group = {notebook: item.querySelector('.jp-mlops-origin-notebook').textContent,
               runs: []};
      groups.push(group);
    } else if (group && item.classList.contains('jp-mlops-run')
               && !item.classList.contains('jp-mlops-child')) {
      group.runs.push([item.querySelector('.jp-mlops-run-name').textContent,
                       item.dataset.status]);
    }
  }
  return groups;
}"""
# Every image of an output: decoded, with pixels.
IMAGES_LOADED_JS = """output => [...output.querySelectorAll('img')].map(
  img => img.complete && img.naturalWidth > 0)"""


@pytest.fixture(scope="module")
def examples(lab) -> dict[str, list]:
    """Each example copied into the server's root and run top to bottom, headless, into
    the server's store: name -> the sources of the code cells it ran, in order."""
    from jupyter_mlops.tracking.runner import run_notebook

    ran = {}
    for name in EXAMPLES:
        path = lab.root / f"{name}.ipynb"
        shutil.copy(EXAMPLES_DIR / path.name, path)
        outcomes = run_notebook(path, env={"JUPYTER_MLOPS_STORE": str(lab.root / ".mlops")},
                                timeout=300)
        failed = [(o.index, o.error) for o in outcomes if o.error and not o.expected_error]
        assert failed == [], f"{name} failed headless"
        cells = nbformat.read(path, as_version=4).cells
        ran[name] = [cells[outcome.index].source for outcome in outcomes]
    return ran


def first_line(source: str) -> str:
    """The line the Timeline shows of a cell: its first that is neither blank nor a
    comment (``firstLine`` in the sidebar)."""
    lines = [line.strip() for line in source.split("\n")]
    return next((line for line in lines if line and not line.startswith("#")), lines[0])


def open_example(page, lab, name: str):
    """Open the example from the file browser and our sidebar next to it: the panel."""
    open_lab(page, lab, f"{name}.ipynb")
    open_sidebar(page)
    return page.locator(PANEL)


def assert_runs_of(page, panel, name: str, runs: list[list[str]]) -> None:
    """The Runs list (every experiment, newest first) shows ``runs`` under the line that
    names the notebook, and nothing else under it."""
    from playwright.sync_api import expect

    panel.locator(".jp-mlops-tab[data-tab='runs']").click()
    heading = panel.locator("li.jp-mlops-origin").filter(
        has=page.locator(".jp-mlops-origin-notebook", has_text=f"{name}.ipynb"))
    expect(heading).to_have_count(1, timeout=20_000)
    expect(heading.locator(".jp-mlops-origin-time")).to_contain_text("kernel started")
    groups = panel.locator("ul.jp-mlops-run-list").evaluate(RUN_GROUPS_JS)
    assert [g["runs"] for g in groups if g["notebook"] == f"{name}.ipynb"] == [runs]


def assert_timeline_of(page, panel, name: str, sources: list[str]) -> None:
    """The Timeline of the open notebook shows the headless kernel's executions, one per
    code cell, in the order they ran."""
    from playwright.sync_api import expect

    panel.locator(".jp-mlops-tab[data-tab='timeline']").click()
    timeline = panel.locator(".jp-mlops-timeline")
    executions = timeline.locator("li.jp-mlops-exec")
    expect(executions).to_have_count(len(sources), timeout=20_000)
    expect(timeline).not_to_contain_text("No executions recorded")
    expect(executions.locator(".jp-mlops-exec-source")).to_have_text(
        [first_line(source) for source in sources])
    expect(executions.locator(".jp-mlops-prompt")).to_have_text(
        [f"[{n}]" for n in range(1, len(sources) + 1)])
    head = panel.locator(".jp-mlops-timeline-head")
    expect(head.locator(".jp-mlops-timeline-title")).to_have_text(f"{name}.ipynb")
    expect(head).to_contain_text(f"{len(sources)} executions")
    expect(head).to_contain_text("earlier kernel")


def output_showing(page, text: str):
    """The HTML output of the notebook that shows ``text``, scrolled into view."""
    output = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) "
                          ".jp-OutputArea-output[data-mime-type='text/html']").filter(
                              has_text=text)
    output.scroll_into_view_if_needed()
    return output


def show_top(output) -> None:
    """Scroll the notebook so that ``output`` starts at the top of the window."""
    output.evaluate("element => element.scrollIntoView({block: 'start'})")


def assert_images_load(page, output, count: int) -> None:
    output.locator("img").first.wait_for()
    page.wait_for_function(
        f"output => ({IMAGES_LOADED_JS})(output).filter(Boolean).length === {count}",
        arg=output.element_handle())
    assert output.evaluate(IMAGES_LOADED_JS) == [True] * count


def test_quickstart(page, lab, examples):
    from playwright.sync_api import expect

    panel = open_example(page, lab, "01_quickstart")
    assert_runs_of(page, panel, "01_quickstart",
                   [["broken", "FAILED"], ["stronger", "FINISHED"], ["baseline", "FINISHED"]])
    # The fits inside "stronger" fold under it.
    stronger = panel.locator("li.jp-mlops-run").filter(
        has=page.locator(".jp-mlops-run-name", has_text=re.compile("^stronger$")))
    expect(stronger.locator("button.jp-mlops-toggle")).to_have_text("▸ 5")

    assert_timeline_of(page, panel, "01_quickstart", examples["01_quickstart"])
    timeline = panel.locator(".jp-mlops-timeline")
    failed = timeline.locator("li.jp-mlops-exec[data-status='error']")
    expect(failed.locator(".jp-mlops-exec-source")).to_have_text(["%%track -n broken -e cancer"])
    # The training data changed after the baseline was trained: its run is stale.
    baseline = timeline.locator("li.jp-mlops-exec").filter(
        has=page.locator(".jp-mlops-exec-source", has_text="%%track -n baseline"))
    expect(baseline.locator(".jp-mlops-mark-stale")).to_have_attribute(
        "title", re.compile(r"\bX\b"))
    # An execution leads to its cell in the open notebook.
    baseline.click()
    cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").filter(
        has=page.locator(".jp-InputArea-editor", has_text="%%track -n baseline -e cancer"))
    expect(cell).to_have_class(re.compile(r"\bjp-mlops-highlight\b"))
    expect(cell).to_be_in_viewport()
    screenshot(page, "ui-examples-01-quickstart-timeline")
    assert page.errors == []
    assert page.dialogs == []


def test_registry(page, lab, examples):
    from playwright.sync_api import expect

    panel = open_example(page, lab, "02_registry")
    assert_runs_of(page, panel, "02_registry", [["deeper", "FINISHED"], ["forest", "FINISHED"]])
    assert_timeline_of(page, panel, "02_registry", examples["02_registry"])

    panel.locator(".jp-mlops-tab[data-tab='models']").click()
    wine = panel.locator("li.jp-mlops-model[data-model='wine']")
    expect(wine).to_contain_text("v2 · 2 versions")
    expect(wine.locator(".jp-mlops-alias")).to_have_text(
        ["@challenger → v2", "@champion → v2"])
    wine.click()
    versions = panel.locator("li.jp-mlops-version")
    expect(versions).to_have_count(2)
    # Each version's lineage: the run that made it and the notebook it ran in.
    for version, run in zip(versions.all(), ("deeper", "forest"), strict=True):
        facts = version.locator(".jp-mlops-facts")
        expect(facts).to_contain_text(f"{run} (wine)")
        expect(facts).to_contain_text("02_registry.ipynb")
    screenshot(page, "ui-examples-02-registry-models")
    assert page.errors == []
    assert page.dialogs == []


def test_evaluation(page, lab, examples):
    from playwright.sync_api import expect

    panel = open_example(page, lab, "03_evaluation")
    assert_runs_of(page, panel, "03_evaluation",
                   [["cancer-v2", "FINISHED"], ["cancer-v1", "FINISHED"]])
    assert_timeline_of(page, panel, "03_evaluation", examples["03_evaluation"])
    panel.locator(".jp-mlops-tab[data-tab='models']").click()
    cancer = panel.locator("li.jp-mlops-model[data-model='cancer']")
    expect(cancer).to_contain_text("v2 · 2 versions")

    # The saved dashboard (the notebook opens untrusted: its static HTML, sanitized).
    dashboard = output_showing(page, "holdout · binary · 171 rows")
    expect(dashboard.locator("h4")).to_have_text(
        ["Metrics", "Per class", "Curves", "Confusion", "Importance"])
    expect(dashboard.locator("td", has_text=re.compile("^roc_auc$"))).to_have_count(1)
    assert_images_load(page, dashboard, 6)
    regression = output_showing(page, "diabetes-ridge · regression")
    expect(regression.locator("h4")).to_have_text(
        ["Metrics", "Curves", "Residuals", "Importance"])
    assert_images_load(page, regression, 4)
    show_top(dashboard)
    screenshot(page, "ui-examples-03-evaluation-dashboard")
    assert page.errors == []
    assert page.dialogs == []


def test_drift(page, lab, examples):
    from playwright.sync_api import expect

    panel = open_example(page, lab, "04_drift")
    # No run of its own: drift reports are stored, not tracked as runs.
    panel.locator(".jp-mlops-tab[data-tab='runs']").click()
    expect(panel.locator("li.jp-mlops-run").first).to_be_visible(timeout=20_000)
    expect(panel.locator(".jp-mlops-origin-notebook", has_text="04_drift.ipynb")
           ).to_have_count(0)
    assert_timeline_of(page, panel, "04_drift", examples["04_drift"])

    dashboard = output_showing(page, "3 of 7 columns drifted")
    expect(dashboard.locator(".jp-mlops-drift-banner")).to_contain_text("No dataset drift")
    expect(dashboard.locator("tr.jp-mlops-drifted td:first-child")).to_have_text(
        ["age", "income", "region"])
    assert_images_load(page, dashboard, 1)
    show_top(dashboard)
    screenshot(page, "ui-examples-04-drift-dashboard")
    assert page.errors == []
    assert page.dialogs == []
