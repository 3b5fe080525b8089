"""The marks a run gets when later cells touch what it read: "redefined" when a name is
bound to a new value, "possibly modified" when its object may have changed in place, and
nothing for reading, plotting, calling modules or running an import cell again."""

import re

import jupyter_mlops as mlops
from support import run_cell

IMPORTS = ("import json\nimport numpy as np\nimport pandas as pd\nimport matplotlib\n"
           "matplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
           "from sklearn.linear_model import Ridge")
LOAD = ("def load(n):\n    rng = np.random.default_rng(0)\n"
        "    df = pd.DataFrame({'a': rng.normal(size=n), 'b': rng.normal(size=n)})\n"
        "    df['y'] = 2 * df['a'] - df['b']\n    return df")
TRAIN = ("%%track\nmodel = Ridge(alpha=alpha).fit(df[['a', 'b']], df['y'])\n"
         "score = model.score(df[['a', 'b']], df['y'])")

# (cell id, source, the training run's marks once this cell has run: stale, possibly
# stale); "[params]" stands for the execution count of the latest run of cell "params".
SESSION = [
    ("imports", IMPORTS, None),
    ("load", LOAD, None),
    ("data", "df = load(200)\ndf.head()", None),
    ("explore", "df.describe()\nprint(np.zeros(3).sum())", None),
    ("plot", "plt.figure()\nplt.plot(df['a'], df['y'])\nplt.title('a vs y')", None),
    ("params", "alpha = 0.5", None),
    ("train", TRAIN, (None, None)),
    ("predict", "model.predict(df[['a', 'b']][:5])", (None, None)),
    ("imports", IMPORTS, (None, None)),                 # run again: the same modules
    ("params", "alpha = 0.5", (None, None)),            # run again: the same value
    ("log", "json.dumps({'alpha': alpha, 'rows': len(df)})", (None, None)),
    ("load", LOAD, (None, None)),                       # not an input of the run
    ("rows", "rows = []\nrows.append(len(df))", (None, None)),
    ("feature", "df['c'] = df['a'] * 3", (None, "df possibly modified in [feature]")),
    ("params", "alpha = 2.0", ("alpha redefined in [params]", "df possibly modified in [feature]")),
    ("data", "df = load(100)\ndf.head()",
     ("alpha redefined in [params]; df redefined in [data]", "df possibly modified in [feature]")),
]


def test_marks_of_a_typical_session(shell):
    latest = {}
    for cell_id, source, expected in SESSION:
        result = run_cell(shell, source, cell_id=cell_id)
        assert result.success, result.error_in_exec
        latest[cell_id] = result.execution_count
        if expected is None:
            continue
        history = mlops.cell_history()
        (train,) = history[history["cell_id"] == "train"].itertuples()
        wanted = tuple(None if mark is None else re.sub(
            r"\[(\w+)\]", lambda m: f"[{latest[m.group(1)]}]", mark) for mark in expected)
        assert (train.stale, train.possibly_stale) == wanted, cell_id


def test_stale_inputs_say_which_change_and_where(shell):
    for cell_id, source, _ in SESSION:
        run_cell(shell, source, cell_id=cell_id)
    history = mlops.cell_history()
    (train,) = history[history["cell_id"] == "train"].itertuples()
    assert [(i["name"], i["change"], i["seq"]) for i in train.stale_inputs] == [
        ("df", "possibly modified", history["seq"].iloc[-3]),
        ("alpha", "redefined", history["seq"].iloc[-2]),
        ("df", "redefined", history["seq"].iloc[-1]),
    ]


def test_a_run_without_marks_has_none_not_nan(shell):
    """``stale or "-"`` must read "-" for an unmarked run: a NaN there is truthy."""
    run_cell(shell, "x = 1")
    run_cell(shell, "%%track -n read\ny = x + 1")
    run_cell(shell, "%%track -n other\nz = 2")
    run_cell(shell, "x = 5")
    history = mlops.cell_history()
    tracked = history[history.run_id.notna()]
    assert [stale or "-" for stale in tracked.stale] == [
        f"x redefined in [{history.execution_count.iloc[-1]}]", "-"]
    assert [maybe or "-" for maybe in tracked.possibly_stale] == ["-", "-"]
    assert history.error.iloc[0] is None
