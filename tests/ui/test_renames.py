"""A new notebook as every user makes one: Untitled.ipynb, renamed on its first save.
The Timeline still shows its executions, Go to cell finds the cell under the new name, the
sidebar names the store it reads and, when the kernel records elsewhere, that store; a
notebook that is really gone gets a message, not a silent 404."""

from __future__ import annotations

import re

import pytest

from .ui_support import PANEL, open_lab, open_sidebar, screenshot

pytestmark = pytest.mark.slow


def type_cell(page, source: str) -> None:
    """Type ``source`` into the active cell (edit mode) and run it with Shift+Enter."""
    page.keyboard.press("Enter")  # command mode -> edit mode
    for number, line in enumerate(source.split("\n")):
        if number:
            page.keyboard.press("Enter")
            page.keyboard.press("Home")  # no auto-indent carried over
        page.keyboard.type(line)
    page.keyboard.press("Shift+Enter")


def test_a_renamed_new_notebook_keeps_its_timeline_and_go_to_cell(page, lab, tmp_path):
    from playwright.sync_api import expect

    open_lab(page, lab)
    # Our panel in the left area from the start: the file browser, hidden, does not list
    # the folder while the rename runs (a listing racing a rename fails in jupyter_server
    # with "Directory not found", a dialog over the page).
    open_sidebar(page)
    page.locator(".jp-LauncherCard[data-category='Notebook']").first.click()
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    expect(page.locator(".jp-mod-current .lm-TabBar-tabLabel, "
                        ".lm-TabBar-tab.jp-mod-current .lm-TabBar-tabLabel").first
           ).to_have_text(re.compile(r"^Untitled\d*\.ipynb$"))
    page.locator(".jp-StatusBar-Widget").get_by_text(re.compile(r"\|\s*Idle")).wait_for(
        timeout=60_000)
    # Before %load_ext, the kernel says it records nothing: the Timeline asks for it.
    panel = page.locator(PANEL)
    panel.locator(".jp-mlops-tab[data-tab='timeline']").click()
    expect(panel.locator(".jp-mlops-timeline")).to_contain_text(
        "Run %load_ext jupyter_mlops", timeout=15_000)
    notebook.locator(".jp-Cell .jp-InputPrompt").first.click()
    type_cell(page, "%load_ext jupyter_mlops")
    type_cell(page, "%%track -n renamed-run -e renames\nlr = 0.5\nscore = lr * 2")
    tracked = notebook.locator(".jp-Cell").filter(has_text="%%track -n renamed-run")
    expect(tracked.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[2\]"),
                                                            timeout=60_000)

    # The first save asks for a name, as JupyterLab does for every Untitled notebook.
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input[type=text]").fill("trained model.ipynb")
    dialog.locator(".jp-mod-accept").click()
    expect(page.locator(".lm-TabBar-tab.jp-mod-current .lm-TabBar-tabLabel").first
           ).to_have_text("trained model.ipynb")

    panel = page.locator(PANEL)
    expect(panel.locator(".jp-mlops-store-where")).to_have_text("Store: .mlops")
    panel.locator(".jp-mlops-tab[data-tab='timeline']").click()
    executions = panel.locator("li.jp-mlops-exec")
    expect(executions.locator(".jp-mlops-exec-source")).to_have_text(
        ["%load_ext jupyter_mlops", "%%track -n renamed-run -e renames"], timeout=15_000)
    head = panel.locator(".jp-mlops-timeline-head")
    expect(head).to_contain_text("trained model.ipynb")
    expect(head).to_contain_text("this kernel")
    screenshot(page, "ui-renames-01-timeline-after-rename")

    # The run names the new path; Go to cell opens it at the cell, also once closed.
    panel.locator(".jp-mlops-tab[data-tab='runs']").click()
    panel.locator("li.jp-mlops-run", has=page.locator(".jp-mlops-run-name",
                                                      has_text="renamed-run")).click()
    goto = panel.locator("button.jp-mlops-goto")
    expect(goto).to_have_attribute("title", re.compile("trained model.ipynb"))
    page.locator(".lm-TabBar-tab.jp-mod-current .lm-TabBar-tabCloseIcon").first.click()
    expect(page.locator(".jp-NotebookPanel")).to_have_count(0)
    goto.click()
    reopened = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").filter(
        has_text="%%track -n renamed-run")
    expect(reopened).to_have_class(re.compile(r"\bjp-mlops-highlight\b"))
    screenshot(page, "ui-renames-02-go-to-cell-after-rename")

    # The kernel records to another store now: the sidebar names it instead of asking
    # for %load_ext.
    elsewhere = tmp_path / "elsewhere" / ".mlops"
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .jp-InputPrompt").last.click()
    type_cell(page, f"%mlops store {elsewhere}")
    warning = panel.locator(".jp-mlops-store-elsewhere")
    expect(warning).to_contain_text(f"records to {elsewhere}", timeout=20_000)
    expect(warning).to_contain_text("not to the store this sidebar reads (.mlops)")
    panel.locator(".jp-mlops-tab[data-tab='timeline']").click()
    expect(panel.locator(".jp-mlops-timeline")).to_contain_text(
        f"its kernel records to {elsewhere}")
    expect(panel.locator(".jp-mlops-timeline")).not_to_contain_text("%load_ext")
    screenshot(page, "ui-renames-03-kernel-records-elsewhere")

    # The notebook deleted behind JupyterLab's back: Go to cell says so.
    page.locator(".lm-TabBar-tab.jp-mod-current .lm-TabBar-tabCloseIcon").first.click()
    dialog = page.locator(".jp-Dialog")
    if dialog.count():  # unsaved changes: close without saving
        dialog.locator("button", has_text=re.compile("Discard|Don't Save")).click()
    (lab.root / "trained model.ipynb").unlink()
    panel.locator(".jp-mlops-tab[data-tab='runs']").click()  # the run's details still
    panel.locator("button.jp-mlops-goto").click()
    toast = page.locator(".Toastify__toast").filter(has_text="is gone")
    expect(toast).to_contain_text("trained model.ipynb is gone")
    expect(toast).to_be_in_viewport(ratio=1)  # slid in whole, for the screenshot
    screenshot(page, "ui-renames-04-notebook-gone")
    assert page.errors == []
    assert page.dialogs == []
