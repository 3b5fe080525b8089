"""R7 in a real JupyterLab: the tables the API returns show ``$...$`` in names as the text
it is, while a plain DataFrame's view in the same notebook is typeset by MathJax."""

from __future__ import annotations

import pytest

from .ui_support import MATH_NAME, open_lab, screenshot, write_math_notebook

pytestmark = pytest.mark.slow
TYPESET = "mjx-container, .MathJax, .MathJax_Preview, math"


def output(page, text: str):
    cell = page.locator(".jp-Notebook .jp-Cell").filter(has_text=text).first
    return cell.locator(".jp-OutputArea-output")


def test_api_tables_are_not_typeset(page, lab):
    from playwright.sync_api import expect

    write_math_notebook(lab.root / "math.ipynb")
    open_lab(page, lab, "math.ipynb")
    page.locator(".jp-Notebook .jp-Cell").first.locator(".jp-InputPrompt").click()
    for _ in range(4):
        page.keyboard.press("Shift+Enter")

    # The control: MathJax is on, and typesets a plain DataFrame's "$x^2$".
    control = output(page, "pd.DataFrame({'control'")
    expect(control.locator("mjx-container")).to_have_count(1, timeout=60_000)
    # MathJax typesets outputs in the order they were shown: the tables came first.
    runs = output(page, "mlops.search_runs('math')")
    history = output(page, "mlops.cell_history()")
    for table in (runs, history):
        expect(table.locator("table")).to_have_count(1)
        expect(table.locator(TYPESET)).to_have_count(0)
        expect(table).to_contain_text(MATH_NAME)
    expect(runs.locator("td", has_text=MATH_NAME)).to_have_text([MATH_NAME])
    screenshot(page, "ui-13-tables-not-typeset")
    assert page.errors == []
