"""R17 for filters and the REST API: what a request or a filter cannot mean is a 4xx (or a
ValidationError in Python) naming it, never a 500 and never a wrong answer.

A filter has explicit limits (jupyter_mlops.search): 20,000 characters, 100 clauses, 1,000
values in an IN list, 40 characters in a number, 1,000 in a LIKE pattern; past them SQLite
would refuse the query (its expression tree is 1,000 deep at most) or a number would lose
its meaning. Each limit is named in the refusal, and a filter at the limit still answers
right. The REST side runs against a real Jupyter server in its own process.
"""

from __future__ import annotations

import math

import pytest
from server.introspect import implemented
from server.live import live_server

import jupyter_mlops as mlops
from jupyter_mlops.tracking import search
from jupyter_mlops.errors import ValidationError
from jupyter_mlops.server import routes

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

DIGITS_400 = "9" * 400


def seed() -> dict[str, str]:
    """Three runs in the store in use: name → run id."""
    made = {}
    with mlops.start_run("a", experiment="e1") as run:
        mlops.log_metrics({"acc": 0.5, "ratio": math.inf})
        mlops.log_params({"C": 1, "solver": "saga"})
    made["a"] = run.run_id
    with mlops.start_run("b", experiment="e1") as run:
        mlops.log_metrics({"acc": 0.9, "ratio": -math.inf})
        mlops.log_params({"C": 10, "solver": "lbfgs"})
    made["b"] = run.run_id
    with mlops.start_run("c", experiment="e2") as run:
        mlops.log_metric("acc", math.nan)
    made["c"] = run.run_id
    return made


@pytest.fixture
def runs(store):
    return seed()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A Jupyter server in its own process over a store seeded with :func:`seed`."""
    workdir = tmp_path_factory.mktemp("r17")
    store = mlops.set_store(workdir / ".mlops")
    try:
        made = seed()
    finally:
        mlops.reset_store()
        store.close()
    with live_server(workdir, workdir / ".mlops") as live:
        live.runs = made
        yield live


# -- the corpus: (filter, words the refusal must contain) ------------------------------

BAD_FILTERS = [
    (f"metrics.acc > {DIGITS_400}", "at most 40 characters"),
    (f"metrics.acc > -{DIGITS_400}.5", "at most 40 characters"),
    ("metrics.acc > " + "9" * 5000, "at most 40 characters"),
    (f"params.C IN (1, {DIGITS_400})", "at most 40 characters"),
    ("metrics.acc > 1e400", "beyond the range of a float"),
    ("metrics.acc < -1e400", "beyond the range of a float"),
    ("metrics.acc != nan", "equals nothing"),
    ("metrics.acc = nan", "not even nan"),
    (" and ".join(["metrics.acc > 0"] * 1000), "at most 100 clauses"),
    (" and ".join(["name = 'a'"] * 101), "at most 100 clauses"),
    ("name IN (" + ", ".join(["'a'"] * 1001) + ")", "at most 1,000 values"),
    ("name = '" + "x" * 20_000 + "'", "at most 20,000 characters"),
    ("name LIKE '" + "%x" * 501 + "'", "at most 1,000 characters"),
    ("name IN ('a'", "close the list"),
    ("name IN ('a',", "close the list"),
    ("name IN ('a' 'b')", "commas"),
    ("name IN ('a',, 'b')", "expected a number or a quoted string"),
    ("name IN ()", "empty"),
    ("name IN 'a'", "parenthesised list"),
    ("name = 'a' and", "ends with and"),
    ("name = 'a' and and name = 'b'", "unknown column 'and'"),
    ("metrics. = 1", "names no key"),
    ("params.`` = 1", "cannot read the filter"),
    ("name ILIKE 1", "quoted pattern"),
    ("name LIKE 1", "quoted pattern"),
    ("metrics.acc > 0.5 or 1 = 1", "joined with and"),
    ("(" * 2000 + "name = 'a'" + ")" * 2000, "starts with a column"),
]


@pytest.mark.parametrize(("text", "named"), BAD_FILTERS, ids=lambda v: str(v)[:40])
def test_search_runs_refuses_a_filter_it_cannot_mean(runs, text, named):
    with pytest.raises(ValidationError) as refused:
        mlops.search_runs(filter=text)
    message = str(refused.value)
    assert named in message.lower(), message
    assert len(message) < 400 and "\n" not in message  # one line, the value cut short


@pytest.mark.parametrize(("text", "named"), BAD_FILTERS, ids=lambda v: str(v)[:40])
def test_the_rest_filter_refuses_it_with_a_400(server, text, named):
    response = server.get("runs", params={"filter": text})
    assert response.status == 400, response
    body = response.json()
    assert body["error"] == "invalid"
    assert named in body["message"].lower(), body["message"]


@pytest.mark.parametrize(("arguments", "named"), [
    ({"filter": 5}, "a filter is a string"),
    ({"filter": b"name = 'a'"}, "a filter is a string"),
    ({"order_by": [f"metrics.m{i}" for i in range(21)]}, "at most 20 terms"),
    ({"order_by": [5]}, "order_by is a string or a list of strings"),
    ({"order_by": "metrics."}, "names no key"),
    ({"experiment": [1]}, "experiment is a string or a list of strings"),
    ({"experiment": 3}, "experiment is a string or a list of strings"),
    ({"max_results": -1}, "max_results"),
    ({"max_results": 2.5}, "max_results"),
])
def test_search_runs_refuses_other_arguments_it_cannot_mean(runs, arguments, named):
    with pytest.raises(ValidationError) as refused:
        mlops.search_runs(**arguments)
    assert named in str(refused.value).lower(), str(refused.value)


# -- at the limits, the right answer ---------------------------------------------------

def at_the_limits(made: dict[str, str]) -> list[tuple[str, set[str]]]:
    """Filters at each limit, and the runs each must find."""
    many_names = ", ".join(["'a'"] * 999 + ["'b'"])
    forty = "0." + "0" * 37 + "1"  # 40 characters
    assert len(forty) == search.MAX_NUMBER_CHARS
    return [
        (" and ".join(["metrics.acc > 0.6"] * search.MAX_CLAUSES), {"b"}),
        (f"name IN ({many_names})", {"a", "b"}),
        (f"metrics.acc > {forty}", {"a", "b"}),
        ("metrics.acc < 99999999999999999999999999999999999999", {"a", "b"}),
        ("metrics.ratio = inf", {"a"}),
        ("metrics.ratio = -inf", {"b"}),
        ("metrics.ratio > 1e308", {"a"}),
        ("metrics.ratio IS NULL", {"c"}),  # no such metric
        ("metrics.acc IS NOT NULL", {"a", "b", "c"}),  # c's is NaN
        ("params.C = '1e999'", set()),  # text, not the infinity it would overflow to
        ("name LIKE '" + "%" * search.MAX_PATTERN_CHARS + "'", {"a", "b", "c"}),
        ("name = 'a' and experiment IN ('e1', 'e2') and params.solver != 'lbfgs'", {"a"}),
    ]


def test_filters_at_the_limits_answer_right_in_python(runs):
    for text, expected in at_the_limits(runs):
        found = set(mlops.search_runs(filter=text)["run_id"])
        assert found == {runs[name] for name in expected}, text[:80]


def test_filters_at_the_limits_answer_right_over_rest(server):
    for text, expected in at_the_limits(server.runs):
        response = server.get("runs", params={"filter": text, "limit": 500})
        assert response.status == 200, (text[:80], response)
        found = {run["run_id"] for run in response.json()["runs"]}
        assert found == {server.runs[name] for name in expected}, text[:80]


def test_other_arguments_at_scale_answer_right(runs):
    # 300,000 experiment names: one JSON parameter, not 300,000 SQL variables.
    names = [f"x{i}" for i in range(300_000)] + ["e2"]
    assert list(mlops.search_runs(experiment=names)["run_id"]) == [runs["c"]]
    assert len(mlops.search_runs(experiment=iter(["e1"]))) == 2
    # A limit beyond SQLite's integers still means "every run".
    assert len(mlops.search_runs(max_results=10**30)) == 3
    ordered = mlops.search_runs(order_by=["metrics.acc DESC"] * search.MAX_ORDER_TERMS)
    assert list(ordered["name"][:2]) == ["b", "a"]


# -- the rest of the REST API: a corpus of what no request can mean ----------------------

RUN_ID = "0" * 32
BAD_REQUESTS = [
    ("runs", {"q": "x" * 1001}, "at most 1,000"),
    ("runs", {"q": "x" * 60_000}, "at most 1,000"),
    ("runs", {"limit": "5" * 5000}, "limit"),
    ("runs", {"limit": "0"}, "limit"),
    ("runs", {"limit": "501"}, "limit"),
    ("runs", {"limit": "\u0661\u0660"}, "limit"),  # Arabic-Indic 10: int() reads it
    ("runs", {"limit": "5_0"}, "limit"),  # int() reads it as 50
    ("sessions", {"offset": "1_0"}, "offset"),
    ("runs", {"limit": "1e3"}, "limit"),
    ("runs", {"limit": "10" + "0" * 400}, "limit"),
    ("runs", {"offset": "-1"}, "offset"),
    ("runs", {"offset": "9" * 30}, "offset"),
    ("runs", {"offset": "NaN"}, "offset"),
    ("runs", {"sort": "metrics."}, "metrics.<key>"),
    ("runs", {"sort": "secret"}, "sort"),
    ("runs", {"sort": "metrics.acc", "offset": "9" * 30}, "offset"),
    ("runs", {"order": "sideways"}, "order"),
    ("runs", {"status": "DONE"}, "status"),
    ("runs", {"status": ",".join(["FINISHED"] * 2000 + ["X"])}, "status"),
    ("runs/" + "0" * 31, None, "run id"),
    ("runs/" + "0" * 33, None, "run id"),
    ("models/" + "m" * 300, None, "250"),
    ("models/%01", None, "control"),
    ("sessions", {"limit": "0"}, "limit"),
    ("sessions", {"limit": "9" * 30}, "limit"),
    ("sessions", {"offset": "-5"}, "offset"),
    ("sessions", {"kernel": "../../etc"}, "kernel"),
    ("sessions", {"kernel": "0" * 65}, "kernel"),
    ("cells", {}, "session"),
    ("cells", {"session": "../x"}, "session"),
    ("cells", {"session": RUN_ID, "limit": "0"}, "limit"),
    ("cells", {"session": RUN_ID, "limit": "5001"}, "limit"),
    ("artifacts/" + "0" * 63, None, "64 lowercase hex"),
    ("artifacts/" + "0" * 64 + "0", None, "64 lowercase hex"),
]


@pytest.mark.parametrize(("path", "params", "named"), BAD_REQUESTS,
                         ids=lambda v: str(v)[:40])
def test_a_request_no_one_can_mean_is_a_400_naming_it(server, path, params, named):
    response = server.get(path, params=params)
    assert response.status == 400, response
    body = response.json()
    assert body["error"] == "invalid"
    assert named.lower() in body["message"].lower(), body["message"]
    assert "Traceback" not in body["message"]


@pytest.mark.parametrize(("path", "params"), [
    ("runs", {"experiment": [f"x{i}" for i in range(500)] + ["e2"]}),
    ("runs", {"status": ",".join(["FINISHED"] * 2000)}),
    ("runs", {"offset": str(2**53), "limit": "500"}),
    ("runs", {"offset": str(2**53), "sort": "metrics.acc"}),
    ("runs", {"q": "%_\\" * 333}),
    ("sessions", {"notebook": "../" * 1000 + "x.ipynb"}),
    ("sessions", {"offset": str(2**53), "limit": "500"}),
])
def test_requests_at_the_edges_answer(server, path, params):
    response = server.get(path, params=params)
    assert response.status == 200, response
    response.json()


# JSON bodies: only setting an alias reads one; any body (nested 2,000 deep, a 400-digit
# number) on any route and method is refused by method or answered 400/404, never a 500.
BODIES = {
    "nested 2,000 deep": b"[" * 2000 + b"]" * 2000,
    "objects nested 2,000 deep": b'{"a":' * 2000 + b"1" + b"}" * 2000,
    "10**400": b'{"value": 1' + b"0" * 400 + b"}",
    "utf-16": '{"a": 1}'.encode("utf-16"),
}
EXAMPLES = [(example.partition("?")[0], handler) for _, handler, example in routes.ROUTES]


@pytest.mark.parametrize("body", BODIES, ids=str)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_no_json_body_on_any_route_is_a_500(server, body, method):
    for example, handler in EXAMPLES:
        served = method in implemented(handler)
        for token in (True, False):
            response = server.request(method, example, body=BODIES[body], token=token,
                                      headers={"Content-Type": "application/json"})
            expected = ({400, 404} if served else {405}) if token else {403}
            assert response.status in expected, (example, method, response)
            assert b"Traceback" not in response.body
