"""The Compare tab: runs picked in the Runs list (check boxes and Ctrl-click) side by side,
and a sweep shown as one row, its trials folded under it, compared in one click."""

from __future__ import annotations

import pytest

from .ui_support import INJECTED_JS, PANEL, open_lab, open_sidebar, screenshot

EXPERIMENT = "compare-ui"


@pytest.fixture(scope="module")
def compared(lab):
    """Three runs that differ in C and kernel (seed equal), then a sweep of four trials,
    written into the store the server reads."""
    import jupyter_mlops as mlops

    store = mlops.set_store(lab.root / ".mlops")
    ids = {}
    try:
        for i, (c, kernel) in enumerate([(0.1, "rbf"), (1.0, "linear"), (10.0, "rbf")]):
            with mlops.start_run(name=f"pick-{i}", experiment=EXPERIMENT) as run:
                mlops.log_params({"C": c, "kernel": kernel, "seed": 0})
                mlops.log_metrics({"accuracy": 0.7 + i / 10})
            ids[f"pick-{i}"] = run.run_id
        result = mlops.sweep(lambda depth, lr: {"accuracy": 0.5 + depth / 100 - 2 * lr},
                             depth=[2, 4], lr=[0.01, 0.1], maximize="accuracy",
                             experiment=EXPERIMENT, name="ui-sweep")
        ids["ui-sweep"] = result.run_id
    finally:
        mlops.reset_store()
        store.close()
    return ids


def test_pick_runs_and_compare_them_then_a_sweep(page, lab, compared):
    from playwright.sync_api import expect

    # The refresh interval is a JupyterLab setting of the sidebar's plugin.
    setting = lab.get("lab/api/settings/jupyter-mlops:sidebar")
    assert setting["schema"]["properties"]["refreshInterval"]["default"] == 1

    open_lab(page, lab)
    open_sidebar(page)
    panel = page.locator(PANEL)
    panel.locator("select[aria-label='Experiment']").select_option(EXPERIMENT)
    names = panel.locator("li.jp-mlops-run .jp-mlops-run-name")
    expect(names).to_have_text(["ui-sweep", "pick-2", "pick-1", "pick-0"])
    # The sweep is one row, marked as one, its four trials folded.
    sweep = panel.locator(f"li.jp-mlops-run[data-run-id='{compared['ui-sweep']}']")
    expect(sweep.locator(".jp-mlops-sweep-badge")).to_have_text("sweep")
    expect(sweep.locator("button.jp-mlops-toggle")).to_have_attribute("aria-label",
                                                                     "Show 4 trials")
    expect(panel.locator("li.jp-mlops-child")).to_have_count(0)

    # Two check boxes and a Ctrl-click pick three runs.
    def row(name):
        return panel.locator(f"li.jp-mlops-run[data-run-id='{compared[name]}']")

    row("pick-0").locator("input.jp-mlops-pick").check()
    row("pick-1").locator("input.jp-mlops-pick").check()
    row("pick-2").locator(".jp-mlops-run-name").click(modifiers=["Control"])
    expect(row("pick-2").locator("input.jp-mlops-pick")).to_be_checked()
    expect(panel.locator(".jp-mlops-runs .jp-mlops-detail")).to_be_hidden()  # no details
    panel.locator("button.jp-mlops-compare-picked").click()

    expect(panel.locator(".jp-mlops-tab[aria-selected='true']")).to_have_text("Compare")
    view = panel.locator(".jp-mlops-compare")
    expect(view.locator(".jp-mlops-compare-head")).to_contain_text("3 runs")
    expect(view.locator(".jp-mlops-compare-head")).to_contain_text("ranked by accuracy")
    table = view.locator("table.jp-mlops-compare-table")
    # The params that differ (not seed, equal in all three), then the metric; best first.
    expect(table.locator("th")).to_have_text(["run", "C", "kernel", "accuracy"])
    expect(table.locator("tbody tr td:first-child")).to_have_text(["pick-2", "pick-1",
                                                                   "pick-0"])
    expect(table.locator("tbody tr").first).to_have_class("jp-mlops-compare-best-row")
    expect(table.locator("tbody tr").nth(1).locator("td.jp-mlops-differs")).to_have_count(2)
    expect(table.locator("tbody tr").nth(2).locator("td")).to_have_text(
        ["pick-0", "0.1", "rbf", "0.7"])
    expect(view.locator("svg.jp-mlops-compare-parallel polyline")).to_have_count(3)
    expect(view.locator("svg.jp-mlops-compare-scatter circle")).to_have_count(3)
    screenshot(page, "ui-compare-picked")

    # A sweep: Compare on its row charts its trials, the params ranked by what they moved.
    panel.locator(".jp-mlops-tab[data-tab='runs']").click()
    sweep.locator("button.jp-mlops-compare-sweep").click()
    expect(view.locator(".jp-mlops-compare-head")).to_contain_text("4 runs of sweep ui-sweep")
    expect(table.locator("tbody tr")).to_have_count(4)
    expect(view.locator(".jp-mlops-importance-row code")).to_have_text(["lr", "depth"])
    expect(view.locator("svg.jp-mlops-compare-parallel polyline")).to_have_count(4)
    screenshot(page, "ui-compare-sweep")

    # A filter: Compare beside the count charts every run it finds in the experiment.
    panel.locator(".jp-mlops-tab[data-tab='runs']").click()
    panel.locator(".jp-mlops-filter").fill("metrics.accuracy > 0.75")
    expect(names).to_have_text(["pick-2", "pick-1"])
    panel.locator("button.jp-mlops-compare-filter").click()
    expect(view.locator(".jp-mlops-compare-head")).to_contain_text(
        "2 runs of metrics.accuracy > 0.75")
    assert panel.evaluate(INJECTED_JS, False) == []
    assert page.errors == []
