"""Data and helpers for the browser tests: a seeded store with hostile names, the
notebook the test runs, and Playwright shortcuts."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SIDEBAR_TAB = '.jp-SideBar.jp-mod-left li[data-id="jupyter-mlops-panel"]'
PANEL = "#jupyter-mlops-panel"

XSS_NAME = "<img src=x onerror=alert(1)>"
# Every one of these is shown as the text it is, and none of them runs.
HOSTILE = [
    XSS_NAME,
    "<script>alert(1)</script>",
    "<svg onload=alert(1)>",
    '"><b>bold</b>',
    "'><a href=\"javascript:alert(1)\">link</a>",
    "</script><script>window.__pwned=1</script>",
    "<img src=x onerror=\"window.__pwned=1\">",
    "<iframe src=\"javascript:window.__pwned=1\"></iframe>",
    "<!--",
    "<style>*{display:none}</style>",
    "{{7*7}}",
    "${alert(1)}",
    "lr $x^$ run",
    "a $\\foo$ b",
    "\u202eevil-rtl",
    "zero\u200dwidth\u200bjoin",
    "&lt;b&gt;entity&lt;/b&gt;",
    "<math><mi xlink:href=\"javascript:alert(1)\">m</mi></math>",
    "emoji 🚀 run",
    "実験 CJK",
    "x" * 240,
]


def seed_store(path: Path) -> dict[str, str]:
    """Runs with hostile names (one with hostile params, tags, metric and artifact
    names too) and a registered model ``iris`` with the alias ``champion``."""
    import jupyter_mlops as mlops
    from jupyter_mlops import tracking

    store = mlops.set_store(path)
    ids: dict[str, str] = {}
    try:
        for name in HOSTILE:
            with mlops.start_run(name=name, experiment="hostile") as run:
                ids[name] = run.run_id
        with mlops.start_run(name="hostile details", experiment=XSS_NAME,
                             tags={XSS_NAME: XSS_NAME}) as run:
            mlops.log_params({XSS_NAME: XSS_NAME, "plain": "<b>not bold</b>"})
            mlops.log_metric(XSS_NAME, 1.0)
            mlops.log_bytes(b"text", f"{XSS_NAME}.txt")
            ids["hostile details"] = run.run_id
        with mlops.start_run(name="charts", experiment="charts") as run:
            for step in range(20):
                mlops.log_metric("acc", 0.5 + 0.02 * step, step=step)
                mlops.log_metric("loss", float("nan") if step == 5 else 1.0 / (step + 1),
                                 step=step)
            mlops.log_figure(_figure(), "learning-curve")
            ids["charts"] = run.run_id
        from sklearn.linear_model import LogisticRegression

        with mlops.start_run(name="iris-train", experiment="models") as run:
            model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
            ids["iris-train"] = run.run_id
        mlops.register_model(model, "iris", run_id=run.run_id)
        mlops.register_model(LogisticRegression(C=0.5).fit([[0.0], [1.0]], [0, 1]), "iris",
                             run_id=run.run_id, alias="champion")
    finally:
        tracking._store = None
        store.close()
    return ids


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4, 3))
    axes = figure.add_subplot()
    axes.plot([0, 1, 2, 3], [0.5, 0.7, 0.8, 0.85])
    axes.set_title("learning curve")
    return figure


def write_notebook(path: Path, fillers: int = 30) -> None:
    """The notebook the workflow test runs: load, data, a tracked cell, fillers, a failure."""
    cells = [
        nbformat.v4.new_code_cell("%load_ext jupyter_mlops", id="cell-load"),
        nbformat.v4.new_code_cell("a = 2", id="cell-data"),
        nbformat.v4.new_code_cell(
            "%%track -n ui-run -e ui-test\nlr = 0.5\nscore = lr * a", id="cell-train"),
    ]
    cells += [nbformat.v4.new_markdown_cell(f"Filler paragraph {i}.", id=f"filler-{i}")
              for i in range(fillers)]
    cells.append(nbformat.v4.new_code_cell("1 / 0", id="cell-fail"))
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)


def screenshot(page, name: str) -> Path:
    """Save a screenshot into test-artifacts/ (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def open_lab(page, lab, notebook: str | None = None) -> None:
    """Open JupyterLab, and ``notebook`` from the file browser as a user would."""
    # ?reset: a clean workspace, whatever the previous test left open.
    page.goto(lab.url("lab") + "&reset")
    page.locator(SIDEBAR_TAB).wait_for(timeout=60_000)
    if notebook:
        page.locator(".jp-DirListing-item", has_text=notebook).dblclick()
        # The status bar says "Python 3 (ipykernel) | Idle" once the kernel is connected;
        # cells run before that are not sent.
        page.locator(".jp-StatusBar-Widget").get_by_text(re.compile(r"\|\s*Idle")).wait_for(
            timeout=60_000)


def open_sidebar(page) -> None:
    page.locator(SIDEBAR_TAB).click()
    page.locator(PANEL).wait_for(state="visible")
