"""Data and helpers for the browser tests: a seeded store with hostile names, the
notebook the test runs, and Playwright shortcuts."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from payloads import NAMES, XSS_NAME

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SIDEBAR_TAB = '.jp-SideBar.jp-mod-left li[data-id="jupyter-mlops-panel"]'
PANEL = "#jupyter-mlops-panel"

# Every one of these is shown as the text it is, and none of them runs.
HOSTILE = NAMES
HOSTILE_MODEL = "hostile-lineage"
# Anything the sidebar or an output holds that did not come from our own code: handler
# attributes, script-like elements, images that are not our previews, javascript: links.
INJECTED_JS = """(root, allowStyle) => [...root.querySelectorAll('*')].filter(e => {
  const tag = e.tagName.toLowerCase();
  const src = e.getAttribute('src') || '';
  return [...e.attributes].some(a => a.name.toLowerCase().startsWith('on'))
    || ['script', 'iframe', 'object', 'embed', 'math', 'frame'].includes(tag)
    || (tag === 'style' && !allowStyle)
    || (tag === 'svg' && !['jp-mlops-sparkline', 'jp-mlops-compare-parallel',
                           'jp-mlops-compare-scatter'].some(c => e.classList.contains(c)))
    || (tag === 'img' && !/^(blob:|data:image\\/png;base64,)/.test(src))
    || /^\\s*javascript:/i.test(e.getAttribute('href') || '');
}).map(e => e.outerHTML.slice(0, 160))"""


def seed_store(path: Path) -> dict[str, str]:
    """A run named after each hostile string (each with a dataset of that name, and a
    version of the model ``hostile-lineage``), one run with every hostile string as a
    param, tag, metric and artifact name, a run whose artifacts are images and script
    (``preview_artifacts``), a search with seven child runs, and a registered model
    ``iris`` with the alias ``champion``."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import jupyter_mlops as mlops

    store = mlops.set_store(path)
    ids: dict[str, str] = {}
    try:
        for i, name in enumerate(HOSTILE):
            with mlops.start_run(name=name, experiment="hostile") as run:
                data = pd.DataFrame({name: [0.0, 1.0, 2.0, 3.0]})
                mlops.log_dataset(data, name, role="train")
                ids[name] = run.run_id
            model = LogisticRegression(C=i + 1.0).fit(data, [0, 0, 1, 1])
            mlops.register_model(model, HOSTILE_MODEL, run_id=run.run_id)
        with mlops.start_run(name="hostile details", experiment=XSS_NAME,
                             tags={name: name for name in HOSTILE}) as run:
            mlops.log_params({**{name: name for name in HOSTILE}, "plain": "<b>not bold</b>"})
            mlops.log_metrics({name: 1.0 for name in HOSTILE})
            for name in HOSTILE:
                mlops.log_bytes(b"text", name)
            mlops.log_bytes(b"text", f"{XSS_NAME}.txt")
            ids["hostile details"] = run.run_id
        with mlops.start_run(name="charts", experiment="charts") as run:
            for step in range(20):
                mlops.log_metric("acc", 0.5 + 0.02 * step, step=step)
                mlops.log_metric("loss", float("nan") if step == 5 else 1.0 / (step + 1),
                                 step=step)
            mlops.log_figure(_figure(), "learning-curve")
            ids["charts"] = run.run_id

        with mlops.start_run(name="previews", experiment="previews") as run:
            for name, data, media_type in preview_artifacts():
                mlops.log_bytes(data, name, media_type=media_type)
            ids["previews"] = run.run_id

        with mlops.start_run(name="grid-search", experiment="searches") as run:
            from jupyter_mlops.tracking.children import log_child_run

            mlops.log_metric("best_cv_score", 0.9)
            for i in range(7):
                log_child_run(run.run_id, name=f"grid[{i}]", params={"C": 10.0 ** (i - 3)},
                              metrics={"mean_test_score": 0.5 + i / 20})
            ids["grid-search"] = run.run_id

        with mlops.start_run(name="iris-train", experiment="models") as run:
            model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
            ids["iris-train"] = run.run_id
        mlops.register_model(model, "iris", run_id=run.run_id)
        mlops.register_model(LogisticRegression(C=0.5).fit([[0.0], [1.0]], [0, 1]), "iris",
                             run_id=run.run_id, alias="champion")
    finally:
        mlops.reset_store()
        store.close()
    return ids


# Script in an artifact: it would leave this mark in the Jupyter origin's localStorage
# and ask the Jupyter server for a path containing it.
PWN_MARK = "jupyter-mlops-pwned"
_SCRIPT = (f"localStorage.setItem('{PWN_MARK}', "
           f"(localStorage.getItem('{PWN_MARK}') || '') + document.title + ' ');"
           f"fetch('/{PWN_MARK}?' + document.title)")
SVG_SCRIPT = (f'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" '
              f'onload="{_SCRIPT}"><title>svg</title><script>{_SCRIPT}</script>'
              '<rect width="40" height="40" fill="red"/></svg>').encode()
HTML_SCRIPT = f"<html><head><title>html</title></head><script>{_SCRIPT}</script>".encode()
RASTERS = {"raster.png": "PNG", "raster.jpeg": "JPEG", "raster.gif": "GIF",
           "raster.webp": "WEBP"}


def preview_artifacts() -> list[tuple[str, bytes, str]]:
    """(name, bytes, media type) of the previews run: one image of each raster type, and
    script that must never run: an SVG, SVG bytes labelled PNG, HTML, and a GIF header
    followed by HTML."""
    import io

    from PIL import Image

    artifacts = []
    for name, kind in RASTERS.items():
        buffer = io.BytesIO()
        Image.new("RGB", (24, 16), (30, 120, 200)).save(buffer, format=kind)
        artifacts.append((name, buffer.getvalue(), f"image/{kind.lower()}"))
    return artifacts + [
        ("script.svg", SVG_SCRIPT, "image/svg+xml"),
        ("svg-labelled.png", SVG_SCRIPT, "image/png"),
        ("page.html", HTML_SCRIPT, "text/html"),
        ("polyglot.gif", b"GIF89a" + HTML_SCRIPT, "image/gif"),
    ]


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4, 3))
    axes = figure.add_subplot()
    axes.plot([0, 1, 2, 3], [0.5, 0.7, 0.8, 0.85])
    axes.set_title("learning curve")
    return figure


def _save_notebook(path: Path, cells: list) -> None:
    """Write ``cells`` as a notebook with the Python 3 kernel."""
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)


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
    _save_notebook(path, cells)


def write_lineage_notebook(path: Path) -> None:
    """A run whose input a later cell changes in place, and a cell that writes a file."""
    sources = [
        "%load_ext jupyter_mlops",
        "import pickle\ndata = [1, 2]",
        "%%track -n lineage-run\ntotal = sum(data)",
        "data.append(3)",
        "with open('data.pkl', 'wb') as f:\n    pickle.dump(data, f)",
    ]
    _save_notebook(path, [nbformat.v4.new_code_cell(source, id=f"lineage-{i}")
                          for i, source in enumerate(sources)])


def write_hostile_notebook(path: Path, name: str) -> None:
    """Shows our HTML of the hostile runs as notebook outputs, and tracks a cell whose
    run name and source hold ``name``."""
    import shlex

    sources = [
        "%load_ext jupyter_mlops",
        f"%%track -e r7-notebook -n {shlex.quote(name)}\n# {name}\nscore = 1",
        "%mlops runs -e hostile",
        "import jupyter_mlops as mlops\nruns = mlops.search_runs()\n"
        "mlops.get_run(runs.loc[runs['name'] == 'hostile details', 'run_id'].iloc[0])",
    ]
    _save_notebook(path, [nbformat.v4.new_code_cell(source, id=f"cell-{i}")
                          for i, source in enumerate(sources)])


MATH_NAME = "cost $x^2$"


def write_math_notebook(path: Path) -> None:
    """A run named ``MATH_NAME`` shown by the API's tables, then a plain DataFrame holding
    the same text, which JupyterLab does typeset (the control)."""
    sources = [
        "%load_ext jupyter_mlops",
        (f"# {MATH_NAME}\nimport jupyter_mlops as mlops\n"
         f"with mlops.start_run(name={MATH_NAME!r}, experiment='math'):\n    pass\n"
         "mlops.search_runs('math')"),
        "mlops.cell_history()",
        f"import pandas as pd\npd.DataFrame({{'control': [{MATH_NAME!r}]}})",
    ]
    _save_notebook(path, [nbformat.v4.new_code_cell(source, id=f"math-{i}")
                          for i, source in enumerate(sources)])


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


def customers(n, moved, seed):
    """The drift example's customers: age, income and region move when ``moved``."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.normal(41 + 4 * moved, 11, n).round(),
        "income": rng.lognormal(10.4 + 0.15 * moved, 0.45, n),
        "tenure_months": rng.exponential(30, n),
        "support_calls": rng.poisson(1.2, n),
        "region": rng.choice(["north", "south", "east", "west"], n,
                             p=[.3, .2 + .15 * moved, .25, .25 - .15 * moved]),
        "plan": rng.choice(["basic", "plus", "premium"], n, p=[.5, .35, .15]),
        "autopay": rng.random(n) < 0.6,
    })


def cancer_model(rows=120):
    """The evaluation example, 30 features with long names: (model, X, y) of ``rows``."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cancer = load_breast_cancer(as_frame=True)
    labels = cancer.target.map({0: "malignant", 1: "benign"})
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(cancer.data, labels)
    return model, cancer.data.iloc[:rows], labels.iloc[:rows]


TINY, NAN_METRIC = 0.00715545, "not a number"


def write_static_dashboards(path: Path, store: Path, extra: str = "") -> None:
    """A notebook holding, as saved outputs (so it opens untrusted, sanitized), our static
    views: the drift dashboard with 3 of 7 columns drifted, an evaluation of the breast
    cancer example with its 30 features, a run with a tiny and a NaN metric, and ``extra``
    HTML last."""
    import contextlib
    import io

    import jupyter_mlops as mlops
    from jupyter_mlops.drift import drift_report
    from jupyter_mlops.evaluation import evaluate

    mlops.set_store(store)
    try:
        report = drift_report(customers(4000, 0, 1), customers(3000, 1, 3))
        with contextlib.redirect_stderr(io.StringIO()):  # the progress line
            result = evaluate(*cancer_model(), name="holdout", n_repeats=1)
        with mlops.start_run(name="numbers") as run:
            mlops.log_params({"source": "x = 1"})
            mlops.log_metrics({"tiny": TINY, NAN_METRIC: float("nan")})
        views = [report._repr_html_(), result._repr_html_(),
                 mlops.get_run(run.run_id)._repr_html_()] + ([extra] if extra else [])
    finally:
        mlops.reset_store()
    cells = [nbformat.v4.new_code_cell(
        f"# view {i}", id=f"view-{i}", execution_count=i + 1,
        outputs=[nbformat.v4.new_output("display_data", data={"text/html": view,
                                                             "text/plain": f"view {i}"})])
        for i, view in enumerate(views)]
    _save_notebook(path, cells)


def write_live_dashboards(path: Path) -> None:
    """The same views from a kernel: the drift widget, the evaluation widget and
    ``%mlops history`` (cell sources in a table)."""
    import inspect

    sources = [
        "%load_ext jupyter_mlops",
        inspect.getsource(customers) + "\nfrom jupyter_mlops.drift import drift_report\n"
        "drift_report(customers(4000, 0, 1), customers(3000, 1, 3))",
        inspect.getsource(cancer_model) + "\nfrom jupyter_mlops.evaluation import evaluate\n"
        "evaluate(*cancer_model(), name='holdout', n_repeats=1)",
        "%mlops history",
    ]
    _save_notebook(path, [nbformat.v4.new_code_cell(source, id=f"live-{i}")
                          for i, source in enumerate(sources)])


# What a user sees of each image: its pixels, and the CSS pixels it takes on the page.
IMAGES_JS = """root => [...root.querySelectorAll('img')].map(img => {
  const box = img.getBoundingClientRect();
  return {alt: img.alt, natural: img.naturalWidth, shown: box.width,
          attribute: Number(img.getAttribute('width') || 0), complete: img.complete};
})"""
CELL_JS = """cell => {
  const style = getComputedStyle(cell);
  return {align: style.textAlign, font: style.fontFamily, background: style.backgroundColor,
          title: cell.getAttribute('title'), text: cell.textContent};
}"""


def write_notebook_cells(path: Path, sources: list[str]) -> None:
    """A notebook of code cells with these sources, ids cell-0, cell-1, …"""
    _save_notebook(path, [nbformat.v4.new_code_cell(source, id=f"cell-{i}")
                          for i, source in enumerate(sources)])
