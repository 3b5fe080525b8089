"""The sidebar at JupyterLab's default width (1400×900 window, the panel as JupyterLab
sizes it): nothing a user reads is clipped (every element's scrollWidth within its
clientWidth, nothing past the panel's right edge), the selects show their whole choice,
an estimator's params have short names with the full key on hover, runs not from today
show their date, runs of different notebooks and kernels are told apart, a run opens in
a main-area tab, and the Models tab shows each version's key metrics, sets, moves and
removes an alias through the server, and inserts load code by @champion, saying so."""

from __future__ import annotations

import re
import time

import pytest

from .ui_support import PANEL, open_lab, open_sidebar, screenshot, write_notebook_cells

pytestmark = pytest.mark.slow

EXPERIMENT = "narrow"
LONG_METRIC = "validation_balanced_accuracy_of_the_held_out_fold_average"
LONG_DATA = "customers_2026_q3_after_dedup_and_region_fix"
LONG_SOURCE = ("score = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression("
               "C=C, max_iter=max_iter)), X_train_scaled_and_filtered, y_train, cv=5).mean()")
MODEL = "narrow-model"
DAY = 24 * 3600

# Elements under `root` whose text is cut: wider inside than their box (scrollWidth vs
# clientWidth), or reaching past the right edge of `root` itself.
CLIPPED_JS = """(root) => {
  const edge = root.getBoundingClientRect().right;
  return [...root.querySelectorAll('*')].filter(e => {
    if (!e.getClientRects().length || e.closest('svg') || e.tagName === 'OPTION') return false;
    const style = getComputedStyle(e);
    const inline = style.display === 'inline';
    const cut = !inline && e.scrollWidth > e.clientWidth + 1
      && ['hidden', 'clip', 'auto', 'scroll'].includes(style.overflowX);
    return cut || e.getBoundingClientRect().right > edge + 1;
  }).map(e => `${e.tagName.toLowerCase()}.${e.className}: ${(e.textContent || '').slice(0, 50)}`
    + ` (${e.scrollWidth} > ${e.clientWidth})`);
}"""
# Each select's chosen text (an input's placeholder) against the room it has: its width
# less its padding, and less the arrow of a select.
SELECTS_JS = """(root) => [...root.querySelectorAll('select, input[placeholder]')].map(e => {
  const style = getComputedStyle(e);
  const context = document.createElement('canvas').getContext('2d');
  context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
  const select = e.tagName === 'SELECT';
  const text = select ? e.selectedOptions[0].textContent : e.placeholder;
  const room = e.clientWidth - parseFloat(style.paddingLeft)
    - parseFloat(style.paddingRight) - (select ? 20 : 0);
  return {label: e.getAttribute('aria-label'), text,
          need: Math.ceil(context.measureText(text).width), room};
})"""


def pipeline_params() -> dict:
    """What a tracked cell logs of ``model = make_pipeline(StandardScaler(),
    LogisticRegression())``: the plain values of get_params(deep=True) under ``model.``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression())
    return {f"model.{key}": value for key, value in model.get_params(deep=True).items()
            if isinstance(value, (int, float, str, bool)) or value is None}


@pytest.fixture(scope="module")
def narrow(lab, seeded_store):
    """Runs of three kernels (train.ipynb two days ago and again today, eval.ipynb today)
    and the model ``narrow-model``: v1 @challenger (made by the old run), v2 @champion."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import jupyter_mlops as mlops
    from jupyter_mlops.tracking import storage

    store = mlops.set_store(lab.root / ".mlops")
    now = time.time()
    ids = {}
    try:
        sessions = {"old": ("train.ipynb", now - 2 * DAY), "eval": ("eval.ipynb", now - 600),
                    "again": ("train.ipynb", now - 300)}
        for key, (notebook, started) in sessions.items():
            storage.start_session(store, f"{key:0<32}", str(lab.root / notebook), "3.11")
            with store.write() as conn:  # as if the kernel had started then
                conn.execute("UPDATE sessions SET started = ? WHERE session_id = ?",
                             (started, f"{key:0<32}"))
        with mlops.start_run("pipeline-fit", EXPERIMENT, session_id="old".ljust(32, "0"),
                             start_time=now - 2 * DAY + 60, source=LONG_SOURCE) as run:
            mlops.log_params({"C": 0.5, "max_iter": 300, **pipeline_params()})
            mlops.log_metrics({"accuracy": 0.95, LONG_METRIC: 0.91})
            mlops.log_dataset(pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]}), LONG_DATA, role="train")
            ids["pipeline-fit"] = run.run_id
        for name, session in (("eval-run", "eval"), ("retrain", "again")):
            with mlops.start_run(name, EXPERIMENT, session_id=session.ljust(32, "0"),
                                 start_time=now - 60) as run:
                mlops.log_metrics({"accuracy": 0.97})
                ids[name] = run.run_id
        fit = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        mlops.register_model(fit, MODEL, run_id=ids["pipeline-fit"], alias="challenger")
        mlops.register_model(LogisticRegression(C=0.3).fit([[0.0], [1.0]], [0, 1]), MODEL,
                             run_id=ids["retrain"], alias="champion")
    finally:
        mlops.reset_store()
    yield ids
    store.close()


def assert_not_clipped(locator) -> None:
    assert locator.evaluate(CLIPPED_JS) == []


def panel_width(page) -> float:
    return page.locator(PANEL).evaluate("e => e.getBoundingClientRect().width")


def test_runs_list_at_the_default_width(page, lab, narrow):
    from playwright.sync_api import expect

    open_lab(page, lab)
    open_sidebar(page)
    panel = page.locator(PANEL)
    assert panel_width(page) < 320  # JupyterLab's default, not widened by the test
    # Every select shows its whole choice.
    for select in panel.locator(".jp-mlops-toolbar").evaluate(SELECTS_JS):
        assert select["need"] <= select["room"], select
    panel.locator("select[aria-label='Experiment']").select_option(EXPERIMENT)
    names = panel.locator(".jp-mlops-run-name")
    expect(names).to_have_text(["retrain", "eval-run", "pipeline-fit"])
    for select in panel.locator(".jp-mlops-toolbar").evaluate(SELECTS_JS):
        assert select["need"] <= select["room"], select

    # Newest first: each kernel's runs under a line naming its notebook and start.
    origins = panel.locator("li.jp-mlops-origin")
    expect(origins.locator(".jp-mlops-origin-notebook")).to_have_text(
        ["train.ipynb", "eval.ipynb", "train.ipynb"])
    expect(origins.first).to_contain_text("kernel started")
    # A run of two days ago says its date; today's say the time only.
    old = panel.locator("li.jp-mlops-run[data-run-id='%s']" % narrow["pipeline-fit"])
    expect(old.locator(".jp-mlops-run-start")).to_have_text(
        re.compile(r"^[A-Z][a-z]{2} \d{1,2},? \d"))
    expect(old.locator(".jp-mlops-run-start")).to_have_attribute(
        "title", re.compile(r"\d{4}"))
    today = panel.locator("li.jp-mlops-run[data-run-id='%s']" % narrow["retrain"])
    expect(today.locator(".jp-mlops-run-start")).to_have_text(re.compile(r"^\d{1,2}:\d{2}"))
    assert_not_clipped(panel)
    screenshot(page, "ui-width-01-runs-by-kernel")

    # Sorted by name, each run names its notebook, and the kernel when it had two.
    panel.locator("select[aria-label='Sort']").select_option("name:asc")
    expect(names).to_have_text(["eval-run", "pipeline-fit", "retrain"])
    expect(origins).to_have_count(0)
    marks = panel.locator(".jp-mlops-run-notebook")
    expect(marks).to_have_count(3)
    expect(marks.nth(0)).to_have_text("eval.ipynb")
    expect(marks.nth(1)).to_have_text(re.compile(r"^train\.ipynb · [A-Z][a-z]{2} \d"))
    expect(marks.nth(2)).to_have_text(re.compile(r"^train\.ipynb · \d{1,2}:\d{2}"))
    assert_not_clipped(panel)
    for select in panel.locator(".jp-mlops-toolbar").evaluate(SELECTS_JS):
        assert select["need"] <= select["room"], select
    screenshot(page, "ui-width-02-runs-by-name")
    assert page.errors == []


def test_run_details_wrap_and_name_params_short(page, lab, narrow):
    from playwright.sync_api import expect

    open_lab(page, lab)
    open_sidebar(page)
    panel = page.locator(PANEL)
    panel.locator("select[aria-label='Experiment']").select_option(EXPERIMENT)
    panel.locator(".jp-mlops-run-name", has_text="pipeline-fit").click()
    detail = panel.locator(".jp-mlops-runs .jp-mlops-detail")
    expect(detail.locator(".jp-mlops-detail-title")).to_have_text("pipeline-fit")

    own = detail.locator(".jp-mlops-params").first.locator("th")
    expect(own).to_have_text(["C", "max_iter"])
    group = detail.locator("details.jp-mlops-nested[data-owner='model']")
    expected = pipeline_params()
    expect(group.locator("summary")).to_have_text(
        f"model: estimator params ({len(expected)})")
    group.locator("summary").click()
    keys = group.locator("th")
    expect(keys).to_have_count(len(expected))
    shown = keys.evaluate_all("all => all.map(th => [th.textContent, th.title])")
    assert sorted(title for _, title in shown) == sorted(expected)
    by_key = {title: text for text, title in shown}
    assert by_key["model.logisticregression__C"] == "C"
    assert by_key["model.standardscaler__with_mean"] == "with_mean"
    # Only a name two keys share keeps more of its path, never 'model.logis…' forty times.
    assert by_key["model.logisticregression__verbose"] == "logisticregression__verbose"
    assert sum(text.startswith("model.") for text, _ in shown) <= 2
    assert len(set(by_key.values())) == len(by_key)

    # Long names, data and code wrap instead of being cut.
    metric = detail.locator(f".jp-mlops-metric[data-key='{LONG_METRIC}'] th")
    expect(metric).to_have_text(LONG_METRIC)
    # On more than one line: taller than two of its letters.
    assert metric.evaluate("e => e.getBoundingClientRect().height > "
                           "2 * parseFloat(getComputedStyle(e).fontSize)")
    expect(detail.locator(".jp-mlops-input summary", has_text=LONG_DATA)).to_be_visible()
    expect(detail.locator(".jp-mlops-source")).to_have_text(LONG_SOURCE)
    assert_not_clipped(panel)
    assert detail.evaluate("e => e.scrollWidth <= e.clientWidth")
    detail.locator(".jp-mlops-source").scroll_into_view_if_needed()
    screenshot(page, "ui-width-03-run-detail")

    # The same run in a main-area tab, with room: the metric's name on one line.
    detail.locator("button.jp-mlops-open-tab").click()
    tab = page.locator(f"#jp-mlops-run-{narrow['pipeline-fit']}")
    expect(tab).to_be_visible()
    expect(page.locator(".lm-DockPanel .lm-TabBar-tab.lm-mod-current")).to_contain_text(
        "Run pipeline-fit")
    expect(tab.locator(".jp-mlops-detail-title")).to_have_text("pipeline-fit")
    expect(tab.locator(".jp-mlops-back")).to_have_count(0)
    wide = tab.locator(f".jp-mlops-metric[data-key='{LONG_METRIC}'] th")
    assert wide.evaluate("e => e.getBoundingClientRect().height < "
                         "2 * parseFloat(getComputedStyle(e).fontSize)")
    assert_not_clipped(tab)
    screenshot(page, "ui-width-04-run-in-a-tab")
    # Opening it again brings the same tab forward rather than a second one.
    detail.locator("button.jp-mlops-open-tab").click()
    expect(page.locator(f"#jp-mlops-run-{narrow['pipeline-fit']}")).to_have_count(1)
    assert page.errors == []


def test_timeline_lines_wrap(page, lab):
    from playwright.sync_api import expect

    write_notebook_cells(lab.root / "long-lines.ipynb", [
        "%load_ext jupyter_mlops",
        "a_rather_long_variable_name_for_the_training_frame = list(range(1000)); "
        "another_long_name = sum(a_rather_long_variable_name_for_the_training_frame)",
        "raise ValueError('a failure whose first line is long enough to wrap twice over')",
    ])
    open_lab(page, lab, "long-lines.ipynb")
    open_sidebar(page)
    panel = page.locator(PANEL)
    page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputPrompt").click()
    for _ in range(3):
        page.keyboard.press("Shift+Enter")
    panel.locator(".jp-mlops-tab[data-tab='timeline']").click()
    executions = panel.locator("li.jp-mlops-exec")
    expect(executions).to_have_count(3, timeout=60_000)
    expect(executions.nth(1).locator(".jp-mlops-exec-source")).to_have_text(
        re.compile(r"another_long_name = sum\(a_rather_long_variable_name_for_the_training"
                   r"_frame\)$"))
    expect(executions.nth(2).locator(".jp-mlops-mark-failed")).to_be_visible()
    assert_not_clipped(panel.locator(".jp-mlops-timeline"))
    screenshot(page, "ui-width-05-timeline")
    assert page.errors == []


def test_models_key_metrics_aliases_and_load_code(page, lab, narrow):
    from playwright.sync_api import expect

    import jupyter_mlops as mlops

    write_notebook_cells(lab.root / "load.ipynb", ["x = 1"])
    open_lab(page, lab, "load.ipynb")
    open_sidebar(page)
    panel = page.locator(PANEL)
    panel.locator(".jp-mlops-tab[data-tab='models']").click()
    panel.locator(f"li.jp-mlops-model[data-model='{MODEL}']").click()
    versions = panel.locator("li.jp-mlops-version")
    expect(versions).to_have_count(2)
    v2, v1 = versions.nth(0), versions.nth(1)

    # Each version shows its run's key metrics.
    expect(v2.locator(".jp-mlops-version-metrics .jp-mlops-chip")).to_have_text(
        ["accuracy 0.97"])
    expect(v1.locator(".jp-mlops-version-metrics .jp-mlops-chip")).to_have_text(
        ["accuracy 0.95", f"{LONG_METRIC} 0.91"])

    # Insert load code: @champion (not @challenger, which sorts first), and says so.
    head = panel.locator(".jp-mlops-detail-head")
    expect(head.locator("button.jp-mlops-insert")).to_have_text(
        "Insert load code (@champion)")
    line = f'model = jupyter_mlops.load_model("{MODEL}@champion")'
    expect(head.locator(".jp-mlops-load-code")).to_have_text(line)
    assert_not_clipped(panel)
    screenshot(page, "ui-width-06-models")
    page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputPrompt").click()
    head.locator("button.jp-mlops-insert").click()
    expect(page.locator(".jp-Notebook .jp-Cell").nth(1)).to_contain_text(line)
    expect(page.locator(".jp-Notification-Toast-info, .Toastify__toast").filter(
        has_text=f"Inserted {line} into load.ipynb")).to_be_visible()

    # Move @champion to v1 from the sidebar: signed as set_alias signs it.
    v1.locator("input.jp-mlops-alias-input").fill("champion")
    v1.locator(".jp-mlops-alias-form button").click()
    status = panel.locator(".jp-mlops-alias-status")
    expect(status).to_have_text("Moved @champion from v2 to v1.")
    expect(v1.locator(".jp-mlops-alias")).to_have_text(["@challenger", "@champion"])
    expect(v2.locator(".jp-mlops-alias")).to_have_count(0)
    expect(head.locator(".jp-mlops-load-code")).to_have_text(line)
    assert lab.get(f"jupyter-mlops/api/models/{MODEL}")["aliases"] == {
        "challenger": 1, "champion": 1}
    store = mlops.Store(lab.root / ".mlops")
    try:  # followed only when this user signed where it points
        assert mlops.get_model_version(f"{MODEL}@champion", store=store).version == 1
    finally:
        store.close()
    screenshot(page, "ui-width-07-alias-moved")

    # A name the registry refuses: its one line, and nothing changes.
    v2.locator("input.jp-mlops-alias-input").fill("1st")
    v2.locator(".jp-mlops-alias-form button").click()
    expect(status).to_have_text(re.compile(r"^An alias starts with a letter"))
    expect(status).to_have_class(re.compile(r"jp-mlops-notice-error"))
    expect(v2.locator("input.jp-mlops-alias-input")).to_have_value("1st")

    # Remove @challenger: the version stays.
    v1.locator(".jp-mlops-alias-chip[data-alias='challenger'] button").click()
    expect(status).to_have_text("Removed @challenger (it pointed to v1).")
    expect(v1.locator(".jp-mlops-alias")).to_have_text(["@champion"])
    assert lab.get(f"jupyter-mlops/api/models/{MODEL}")["aliases"] == {"champion": 1}
    assert page.errors == []
