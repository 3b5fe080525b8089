"""A run's inputs preview their first rows from the kept bytes, and a version's model card
shows in the Models tab inside a frame sandboxed with no permission; hostile column and
dataset names (R7's corpus) stay text in both."""

from __future__ import annotations

import pytest
from payloads import PWNED

from .ui_support import HOSTILE, HOSTILE_MODEL, INJECTED_JS, PANEL, open_lab, open_sidebar, screenshot

pytestmark = pytest.mark.slow


def test_inputs_preview_their_rows_and_the_card_is_sandboxed(page, lab, seeded_store):
    from playwright.sync_api import expect

    open_lab(page, lab)
    open_sidebar(page)
    panel = page.locator(PANEL)
    panel.locator("select[aria-label='Experiment']").select_option("hostile")
    name = HOSTILE[-1]  # newest first
    panel.locator("li.jp-mlops-run").first.click()
    detail = panel.locator(".jp-mlops-runs .jp-mlops-detail")
    expect(detail.locator(".jp-mlops-detail-title")).to_have_text(name, use_inner_text=False)
    item = detail.locator("details.jp-mlops-input").first
    item.locator("summary").click()
    expect(item).to_have_attribute("data-preview", "loaded")
    expect(item.locator(".jp-mlops-preview-rows tbody tr")).to_have_count(4)
    expect(item.locator(".jp-mlops-preview-rows th")).to_have_text([name],
                                                                   use_inner_text=False)
    expect(item.locator(".jp-mlops-preview-rows td")).to_have_text(["0.0", "1.0", "2.0",
                                                                    "3.0"])
    expect(item).to_contain_text("First 4 of 4 rows")
    screenshot(page, "ui-data-preview")
    assert panel.evaluate(INJECTED_JS, False) == []

    panel.locator(".jp-mlops-tab[data-tab='models']").click()
    panel.locator(f"li.jp-mlops-model[data-model='{HOSTILE_MODEL}']").click()
    version = panel.locator("li.jp-mlops-version").first
    version.locator("button.jp-mlops-card-button").click()
    frame = version.locator("iframe.jp-mlops-card-frame")
    expect(frame).to_have_attribute("sandbox", "")
    card = version.frame_locator("iframe.jp-mlops-card-frame")
    expect(card.locator("h3")).to_have_text(f"{HOSTILE_MODEL} version {len(HOSTILE)}")
    expect(card.locator("body")).to_contain_text(f"{name}")
    expect(card.locator("body")).to_contain_text("Training data")
    screenshot(page, "ui-model-card")
    assert card.locator("body").evaluate(INJECTED_JS, True) == []
    assert page.evaluate(f"() => {PWNED}") is None
    assert page.errors == [] and page.dialogs == []
