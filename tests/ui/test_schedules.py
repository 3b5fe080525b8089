"""The Schedules tab: each trigger with what fires it, when it is next due and how its last
firing went, names rendered as text (R7)."""

from __future__ import annotations

import re
import time

import pytest

from .ui_support import PANEL, open_lab, open_sidebar, screenshot

pytestmark = pytest.mark.slow

HOSTILE = '<img src=x onerror="window.__pwned=1">'


def test_the_schedules_tab_lists_triggers_with_next_due_and_last_verdict(page, lab):
    from playwright.sync_api import expect
    from support import write_notebook

    import jupyter_mlops as mlops
    from jupyter_mlops.store import Store

    store = Store(lab.root / ".mlops")
    notebook = write_notebook(lab.root / "retrain.ipynb", "x = 1")
    (lab.root / "incoming").mkdir(exist_ok=True)
    mlops.schedule("nightly", notebook, every="30d", model="cancer@champion",
                   store=store)
    mlops.schedule(HOSTILE, notebook, watch=lab.root / "incoming", store=store)
    with store.write() as conn:  # a firing as the scheduler records one
        conn.execute(
            "INSERT INTO firings (firing_id, trigger, started, finished, status, reason, "
            "version, promoted, message) VALUES ('f1', 'nightly', ?, ?, 'finished', "
            "'every 30d', 2, 1, 'cancer/2: metric f1_macro pass; moved @champion to 2')",
            (time.time() - 60, time.time() - 50))
    store.close()
    try:
        open_lab(page, lab)
        open_sidebar(page)
        panel = page.locator(PANEL)
        panel.locator(".jp-mlops-tab[data-tab='schedules']").click()
        rows = panel.locator("li.jp-mlops-schedule")
        expect(rows).to_have_count(2, timeout=15_000)
        row = panel.locator("li[data-schedule='nightly']")
        expect(row).to_contain_text("every 30d")
        expect(row).to_contain_text("notebook retrain.ipynb")
        expect(row).to_contain_text("→ cancer@champion")
        expect(row.locator(".jp-mlops-schedule-next")).to_have_attribute(
            "title", re.compile(r"\d"))
        expect(row.locator(".jp-mlops-schedule-last")).to_contain_text("promoted v2")
        expect(row.locator(".jp-mlops-schedule-last")).to_have_attribute(
            "title", re.compile("moved @champion to 2"))
        watched = panel.locator("li.jp-mlops-schedule").nth(0)
        expect(watched.locator(".jp-mlops-model-name")).to_have_text(HOSTILE)
        expect(watched).to_contain_text("watches incoming")
        expect(watched).to_contain_text("on change")
        expect(watched).to_contain_text("never fired")
        assert panel.locator(".jp-mlops-schedules img").count() == 0
        assert page.evaluate("window.__pwned") is None
        screenshot(page, "ui-schedules-01-tab")
    finally:
        store = Store(lab.root / ".mlops")
        for name in ("nightly", HOSTILE):
            mlops.unschedule(name, store=store)
        store.close()
    assert page.errors == [] and page.dialogs == []
