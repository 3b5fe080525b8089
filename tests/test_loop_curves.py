"""Loop curves: the numbers a tracked cell's top-level loops rebind, one point an iteration."""

import math

import numpy as np
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.tracking.curves import MAX_POINTS, Curve
from jupyter_mlops.tracking.loops import _NOT_A_NUMBER, as_number
from support import run_cell


def only_run():
    frame = mlops.search_runs()
    assert len(frame) == 1
    return mlops.get_run(frame.loc[0, "run_id"])


def history(run, key):
    return [(m.step, m.value) for m in run.metric_history(key)]


# -- the bounded curve ------------------------------------------------------------------------

def test_a_curve_keeps_every_point_up_to_its_bound():
    curve = Curve(limit=100)
    curve.extend([(s, float(s)) for s in range(60)])
    curve.extend([(s, float(s)) for s in range(60, 100)])
    assert curve.points() == [(s, float(s)) for s in range(100)]


def test_past_its_bound_a_curve_thins_evenly_and_keeps_first_last_min_and_max():
    values = [math.sin(s / 50) + (9.0 if s == 4321 else 0) - (9.0 if s == 777 else 0)
              for s in range(25_000)]
    values[100] = float("nan")
    curve = Curve(limit=1000)
    for start in range(0, 25_000, 1000):  # handed over in chunks, as a loop does
        curve.extend([(s, values[s]) for s in range(start, start + 1000)])
    points = curve.points()
    steps = [s for s, _ in points]
    assert len(points) <= 1000 and steps == sorted(set(steps))
    assert {0, 24_999, 4321, 777} <= set(steps)  # first, last, max, min
    regular = [s for s in steps if s not in (24_999, 4321, 777)]
    gaps = {b - a for a, b in zip(regular, regular[1:])}
    assert len(gaps) == 1  # evenly spaced
    assert all(values[s] == v or (math.isnan(v) and math.isnan(values[s])) for s, v in points)


def test_the_default_bound_is_ten_thousand_points():
    assert MAX_POINTS == 10_000


# -- what counts as a number ------------------------------------------------------------------

class TorchLikeScalar:
    """Stands in for a 0-d torch tensor (torch is not installed here): its dtype is named
    ``torch.float32`` and has no numpy ``kind``, its shape is an empty tuple subclass."""

    class Size(tuple):
        pass

    def __init__(self, value, dtype="torch.float32"):
        self.value, self.shape, self.dtype = value, self.Size(), dtype

    def __float__(self):
        return float(self.value)


def test_numbers_are_real_numbers_and_0d_numeric_arrays():
    assert as_number(0.5) == 0.5 and as_number(3) == 3.0
    assert as_number(np.float32(0.25)) == 0.25 and as_number(np.int64(7)) == 7.0
    assert as_number(np.array(1.5)) == 1.5
    assert as_number(TorchLikeScalar(2.5)) == 2.5
    assert as_number(None) is None  # a point to skip
    assert as_number(10 ** 400) is None  # past a float: skipped, not a failure
    for other in (True, np.bool_(True), "0.5", [1.0], np.array([1.0, 2.0]), np.array(True),
                  TorchLikeScalar(1, "torch.bool"), np.array("x")):
        assert as_number(other) is _NOT_A_NUMBER, other


def test_jax_scalars_are_numbers():
    jnp = pytest.importorskip("jax.numpy")
    assert as_number(jnp.float32(0.5) * 2) == 1.0
    assert as_number(jnp.zeros(3)) is _NOT_A_NUMBER


# -- in a tracked cell ------------------------------------------------------------------------

LOOP = """%%track -n loop
import numpy as np
lr = 0.1
for epoch in range(5):
    loss = 1.0 / (epoch + 1)
    acc = np.float64(1 - loss)
    lr *= 0.5
    patience = 3
    label = f"epoch {epoch}"
"""


def test_each_iteration_is_a_step_of_the_numbers_the_loop_rebinds(shell):
    result = run_cell(shell, LOOP)
    assert result.success
    run = only_run()
    assert history(run, "loss") == [(s, 1.0 / (s + 1)) for s in range(5)]
    assert history(run, "acc") == [(s, 1 - 1.0 / (s + 1)) for s in range(5)]
    assert history(run, "lr") == [(s, 0.1 * 0.5 ** (s + 1)) for s in range(5)]
    assert "epoch" not in run.metrics  # the loop's counter, not a metric
    assert "label" not in run.metrics  # never a number
    assert run.params["patience"] == 3 and "patience" not in run.metrics  # a literal: a param
    times = [m.timestamp for m in run.metric_history("loss")]
    assert times == sorted(times) and times[0] >= run.start_time


def test_the_cell_namespace_is_left_as_it_would_be(shell):
    run_cell(shell, LOOP)
    reserved = [name for name in shell.user_ns if not name.isidentifier()]
    assert reserved == []
    assert shell.user_ns["epoch"] == 4 and shell.user_ns["label"] == "epoch 4"


BREAK_CONTINUE_ELSE = """
seen = []
for i in range(10):
    if i == 2:
        continue
    score = i * 1.5
    seen.append(i)
    if i == 5:
        break
else:
    seen.append("else")
total = 0
n = 0
while n < 4:
    n += 1
    if n == 2:
        continue
    total += n
else:
    seen.append("while-else")
"""


def test_break_continue_and_else_are_unchanged(shell):
    run_cell(shell, BREAK_CONTINUE_ELSE)
    plain = {k: shell.user_ns[k] for k in ("seen", "score", "total", "n", "i")}
    result = run_cell(shell, "%%track -n control" + BREAK_CONTINUE_ELSE)
    assert result.success
    assert {k: shell.user_ns[k] for k in plain} == plain
    run = only_run()
    # Iteration 2 continued before binding score; iteration 5 broke after binding it.
    assert history(run, "score") == [(0, 0.0), (1, 1.5), (3, 4.5), (4, 6.0), (5, 7.5)]
    assert history(run, "n") == [(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0)]
    assert history(run, "total") == [(0, 1.0), (2, 4.0), (3, 8.0)]


def test_nested_loops_give_one_point_per_outer_iteration(shell):
    result = run_cell(shell, """%%track -n nested
for epoch in range(3):
    running = 0.0
    for batch in range(4):
        batch_loss = (epoch + 1) * 10 + batch
        running += batch_loss
    epoch_loss = running / 4
""")
    assert result.success
    run = only_run()
    assert history(run, "epoch_loss") == [(0, 11.5), (1, 21.5), (2, 31.5)]
    assert history(run, "batch_loss") == [(0, 13.0), (1, 23.0), (2, 33.0)]  # its last value
    assert history(run, "running") == [(0, 46.0), (1, 86.0), (2, 126.0)]
    assert "batch" not in run.metrics and "epoch" not in run.metrics


def test_a_while_loop_and_a_walrus_in_its_test(shell):
    result = run_cell(shell, """%%track -n while
values = iter([0.5, 0.25, 0.125, 0.0])
step = 0
while (delta := next(values)) > 0:
    step += 1
    half = delta / 2
""")
    assert result.success
    run = only_run()
    assert history(run, "delta") == [(0, 0.5), (1, 0.25), (2, 0.125)]
    assert history(run, "half") == [(0, 0.25), (1, 0.125), (2, 0.0625)]
    assert history(run, "step") == [(0, 1.0), (1, 2.0), (2, 3.0)]


def test_a_value_bound_only_some_iterations_gets_only_those_steps(shell):
    run_cell(shell, """%%track
for epoch in range(7):
    loss = 1.0 / (epoch + 1)
    if epoch % 3 == 0:
        val_loss = loss * 2
""")
    assert history(only_run(), "val_loss") == [(0, 2.0), (3, 0.5), (6, 2 / 7)]


def test_loops_in_top_level_blocks_count_and_functions_do_not(shell):
    result = run_cell(shell, """%%track
import contextlib
def helper():
    for k in range(3):
        inside = k * 1.0
    return inside
with contextlib.nullcontext():
    for k in range(2):
        in_with = helper() + k
try:
    for k in range(2):
        in_try = k + 0.5
finally:
    pass
""")
    assert result.success
    run = only_run()
    assert history(run, "in_with") == [(0, 2.0), (1, 3.0)]
    assert history(run, "in_try") == [(0, 0.5), (1, 1.5)]
    assert "inside" not in run.metrics


def test_names_bound_in_blocks_of_the_body_count(shell):
    result = run_cell(shell, """%%track
import contextlib
for i in range(4):
    try:
        ratio = 1 / (i - 2)
    except ZeroDivisionError:
        fallback = -float(i)
    with contextlib.nullcontext():
        scaled = i * 10.0
    match i:
        case 1:
            matched = i * 1.5
        case _:
            pass
    if i > 1:
        late = i + 0.5
    elif (early := i * 3.0) > 0:
        pass
    squares = [q * q for q in range(i)]
    _private = 1.0
""")
    assert result.success
    run = only_run()
    assert history(run, "ratio") == [(0, -0.5), (1, -1.0), (3, 1.0)]
    assert history(run, "fallback") == [(2, -2.0)]
    assert history(run, "scaled") == [(i, i * 10.0) for i in range(4)]
    assert history(run, "matched") == [(1, 1.5)]
    assert history(run, "late") == [(2, 2.5), (3, 3.5)]
    assert history(run, "early") == [(0, 0.0), (1, 3.0)]
    assert "squares" not in run.metrics and "q" not in run.metrics
    assert "_private" not in run.metrics


def test_two_loops_binding_one_name_continue_its_steps(shell):
    run_cell(shell, "%%track\nfor i in range(3):\n    loss = float(i)\n"
                    "for i in range(2):\n    loss = 10.0 + i\n")
    assert history(only_run(), "loss") == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 10.0), (4, 11.0)]


def test_explicit_log_metric_wins_over_the_loop(shell):
    run_cell(shell, "import jupyter_mlops as mlops")
    run_cell(shell, """%%track
for epoch in range(4):
    loss = 1.0 / (epoch + 1)
    mlops.log_metric("loss", loss * 100, step=epoch * 10)
    other = epoch * 2.0
""")
    run = only_run()
    assert history(run, "loss") == [(s * 10, 1.0 / (s + 1) * 100) for s in range(4)]
    assert history(run, "other") == [(s, s * 2.0) for s in range(4)]


def test_a_name_that_stops_being_a_number_warns_once_and_keeps_its_points(shell, capsys):
    result = run_cell(shell, """%%track -n turned
for i in range(6):
    metric = i * 1.0 if i < 3 else "n/a"
    if i == 5:
        metric = 5.0
    ok = i * 2.0
""")
    assert result.success
    err = capsys.readouterr().err
    assert err.count("jupyter_mlops:") == 1
    assert "'metric' became str at step 3" in err
    run = only_run()
    assert run.status == "FINISHED"
    assert history(run, "metric") == [(0, 0.0), (1, 1.0), (2, 2.0)]
    assert len(history(run, "ok")) == 6


def test_a_failing_loop_keeps_its_points_and_fails_the_run(shell):
    result = run_cell(shell, """%%track -n crash
for epoch in range(10):
    loss = 1.0 / (3 - epoch)
""")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    run = only_run()
    assert run.status == "FAILED"
    assert history(run, "loss") == [(0, 1 / 3), (1, 0.5), (2, 1.0)]


def test_a_long_loop_is_bounded_and_keeps_first_last_min_and_max(shell):
    run_cell(shell, """%%track
import math
for i in range(25_000):
    wave = math.sin(i / 300) + (5.0 if i == 12_345 else 0.0)
""")
    points = history(only_run(), "wave")
    assert len(points) <= 10_000
    steps = [s for s, _ in points]
    assert {0, 24_999, 12_345} <= set(steps)
    assert min(points, key=lambda p: p[1])[1] == min(
        __import__("math").sin(i / 300) for i in range(25_000))


def test_no_autolog_records_no_loop_curves(shell):
    run_cell(shell, "%%track --no-autolog\nfor i in range(3):\n    loss = i * 1.0\n")
    assert only_run().metrics == {}


def test_an_untracked_cell_is_not_rewritten(shell):
    run_cell(shell, "for i in range(3):\n    loss = i * 1.0\n")
    assert mlops.search_runs().empty
    assert all(name.isidentifier() for name in shell.user_ns)
    assert not any(type(t).__name__ == "LoopRewriter" for t in shell.ast_transformers)


def test_a_direct_call_of_the_magic_records_loop_curves(shell):
    shell.run_cell_magic("track", "-n direct", "for i in range(3):\n    loss = i / 2\n")
    assert history(only_run(), "loss") == [(0, 0.0), (1, 0.5), (2, 1.0)]
    assert all(name.isidentifier() for name in shell.user_ns)
