"""The line a tracked cell prints, in a real kernel: what the run holds, and how to turn it off."""

import re

import pytest

from support import stream_text

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]

TRAIN = """%%track{flags}
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
X, y = load_iris(return_X_y=True)
n_estimators = 20
max_depth = 3
clf = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth,
                             random_state=0).fit(X, y)
accuracy = clf.score(X, y)
fig, ax = plt.subplots()
ax.set_title("Feature importance")
ax.bar(range(4), clf.feature_importances_)
"""


def test_a_tracked_cell_says_what_it_logged_unless_told_not_to(kernel):
    reply, outputs = kernel.execute("%load_ext jupyter_mlops")
    assert reply["status"] == "ok"
    store_line = stream_text(outputs)
    assert store_line.startswith("jupyter_mlops: recording to ") and store_line.count("\n") == 1

    reply, outputs = kernel.execute(TRAIN.format(flags=" -n iris-rf"))
    assert reply["status"] == "ok"
    line = stream_text(outputs).strip().splitlines()[-1]
    assert re.fullmatch(r"logged run iris-rf \([0-9a-f]{8}\): 2 params, 1 metric, "
                        r"model \(\d+ params, \d+ training metrics\), 1 figure", line), line

    reply, outputs = kernel.execute("%%track -n broken\nalpha = 0.5\nraise ValueError('x')")
    assert reply["status"] == "error"
    assert re.fullmatch(r"logged failed run broken \([0-9a-f]{8}\): 1 param, 0 metrics\n",
                        stream_text(outputs))

    reply, outputs = kernel.execute(TRAIN.format(flags=" -q -n quiet"))
    assert reply["status"] == "ok" and stream_text(outputs) == ""

    kernel.execute("import os\nos.environ['JUPYTER_MLOPS_SUMMARY'] = 'off'")
    reply, outputs = kernel.execute(TRAIN.format(flags=" -n silent"))
    assert reply["status"] == "ok" and stream_text(outputs) == ""
