"""R17 (serving): what a request cannot mean is a 4xx naming it, never a 500 and never a
wrong answer; batch scoring refuses the same inputs by name; a row of the predictions log
that cannot be read back is skipped and counted, never fatal.

One corpus of hostile bodies against a real server on 127.0.0.1 (``/invocations`` and
``/labels``), one of hostile files against ``score_file``, and a log poisoned the way an
older server poisoned it, read by ``load_traffic``, ``monitor`` and ``compare_versions``.
"""

import codecs
import csv
import gzip

import numpy as np
import pandas as pd
import pytest
from model_server_http import call, records
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import jupyter_mlops as mlops
from jupyter_mlops.cli import main
from jupyter_mlops.serving import compare_versions, score_file, serve
from jupyter_mlops.serving.predictions import load_traffic

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(180)]

HUGE = "1" + "0" * 400  # 10**400: beyond every float
DEEP = 2000


def nested(depth, inner="1"):
    return "[" * depth + inner + "]" * depth


def frame(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n),
                         "n": rng.integers(0, 10, n).astype("int64")})


@pytest.fixture
def models(store):
    """h: gradient boosting over x, y (float64) and n (int64), which scores missing values
    as it scores anything; arr: a ridge over rows of 3 floats; t: a model with a text
    column. h/2 is a challenger for the A/B comparison."""
    X = frame()
    y = (X["x"] + X["n"] / 10 > 0.4).astype(int)
    mlops.register_model(HistGradientBoostingClassifier(max_iter=20).fit(X, y), "h",
                         alias="champion", reference=X)
    mlops.register_model(HistGradientBoostingClassifier(max_iter=5).fit(X, 1 - y), "h",
                         alias="challenger", reference=X)
    A = np.random.default_rng(1).normal(size=(100, 3))
    mlops.register_model(Ridge().fit(A, A.sum(axis=1)), "arr", reference=A)
    T = pd.DataFrame({"city": ["Zürich", "Łódź", "Oslo"] * 20, "x": np.arange(60.0)})
    text = make_pipeline(make_column_transformer((OneHotEncoder(handle_unknown="ignore"),
                                                  ["city"]), remainder="passthrough"),
                         LogisticRegression())
    mlops.register_model(text.fit(T, T["x"] > 30), "t", reference=T)
    return X


@pytest.fixture
def files(tmp_path):
    """A folder of its own for the batch files (the store is in tmp_path too)."""
    folder = tmp_path / "files"
    folder.mkdir()
    return folder


@pytest.fixture
def servers(models):
    started = {name: serve(uri, port=0, watch_interval=None)
               for name, uri in (("h", "h@champion"), ("arr", "arr"), ("t", "t"))}
    yield started
    for server in started.values():
        server.stop()


def _json(text):
    return text.encode("utf-8")


def row(x="0.5", n="3"):
    """One dataframe_records row, its numbers written as given (JSON text)."""
    return _json('{"dataframe_records": [{"x": ' + x + ', "y": -1.0, "n": ' + n + "}]}")


def labels(request_id, text):
    """A /labels body, the labels written as given (JSON text)."""
    return '{"request_id": "' + request_id + '", "labels": ' + text + "}"


ROW = '{"dataframe_records": [{"x": 0.5, "y": -1.0, "n": 3}]}'
CSV = "x,y,n\n0.5,-1.0,3\n"

# (name, content type, body, words the message must hold)
INVOCATIONS = [
    ("utf-16 with BOM", "application/json", ROW.encode("utf-16"), "UTF-8"),
    ("utf-16 without BOM", "application/json", ROW.encode("utf-16-le"), "UTF-16"),
    ("utf-32", "application/json", ROW.encode("utf-32"), "UTF-8"),
    ("UTF-8 with a BOM", "application/json", codecs.BOM_UTF8 + _json(ROW), "byte order mark"),
    ("latin-1 byte", "application/json", b'{"dataframe_records": [{"x\xe9": 1}]}', "UTF-8"),
    ("NUL byte", "application/json", _json(ROW) + b"\x00", "NUL"),
    ("csv utf-16", "text/csv", CSV.encode("utf-16"), "UTF-8"),
    ("csv with a BOM", "text/csv", codecs.BOM_UTF8 + _json(CSV), "byte order mark"),
    ("csv long first row", "text/csv", b"x,y,n\n0.5,-1.0,3,4\n0.1,0.2,1\n",
     "Line 2 has 4 values; the header names 3"),
    ("csv long later row", "text/csv", b"x,y,n\n0.5,-1.0,3\n0.5,-1.0,3,4\n", "Line 3 has 4"),
    ("csv short row", "text/csv", b"x,y,n\n0.5,-1.0,3\n0.5,-1.0\n", "Line 3 has 2 values"),
    ("csv short quoted row", "text/csv", b'x,y,n\n"0.5","-1.0","3"\n"0.5\n",1\n',
     "Line 3 has 2 values"),
    ("csv quote never closed", "text/csv", b'x,y,n\n"0.5,-1.0,3\n', "never closed"),
    ("csv int beyond int64", "text/csv", b"x,y,n\n0.5,-1.0,99999999999999999999\n",
     "Column 'n' must be int64"),
    ("csv uint64 in int64", "text/csv", b"x,y,n\n0.5,-1.0,18446744073709551615\n0.1,0.2,1\n",
     "Column 'n' must be int64"),
    ("csv int below int64", "text/csv", b"x,y,n\n0.5,-1.0,-9223372036854775809\n",
     "Column 'n' must be int64"),
    ("csv 10**400 in float", "text/csv", _json(f"x,y,n\n{HUGE},-1.0,3\n"), "Column 'x'"),
    ("csv 1e400", "text/csv", b"x,y,n\n1e400,-1.0,3\n", "Column 'x'"),
    ("csv 5000 digits", "text/csv", _json(f"x,y,n\n1{'0' * 5000},-1.0,3\n"), "Column 'x'"),
    ("json 2**63 in int64", "application/json", row(n=str(2**63)), "Column 'n' must be int64"),
    ("json 2**64-1 in int64", "application/json",
     _json('{"dataframe_split": {"columns": ["x", "y", "n"], "data": '
           '[[0.5, -1.0, 18446744073709551615], [0.1, 0.2, 1]]}}'), "Column 'n'"),
    ("json 10**400 in float", "application/json", row(x=HUGE), "Column 'x'"),
    ("json 10**400 in int", "application/json", row(n=HUGE), "Column 'n'"),
    ("json 1e400", "application/json", row(x="1e400"), "infinite"),
    ("json Infinity", "application/json",
     _json('{"inputs": {"x": [Infinity], "y": [1.0], "n": [3]}}'), "infinite"),
    ("json 5000 digits", "application/json", row(x="1" + "0" * 5000), "4,300 digits"),
    ("json nested 2000 deep", "application/json",
     _json('{"dataframe_records": ' + nested(DEEP) + "}"), "too deeply"),
    ("json nested 2000 deep in a cell", "application/json", row(x=nested(DEEP)), "too deeply"),
    ("json nested 900 deep in a cell", "application/json", row(x=nested(900)), "'x'"),
]
ARRAYS = [
    ("10**400", _json('{"instances": [[1.0, 2.0, ' + HUGE + "]]}"), "float64"),
    ("1e400", _json('{"instances": [[1.0, 2.0, 1e400]]}'), "infinite"),
    ("-1e400", _json('{"inputs": [[1.0, 2.0, -1e400]]}'), "infinite"),
    ("nested 2000 deep", _json('{"instances": ' + nested(DEEP) + "}"), "too deeply"),
    ("nested 600 deep", _json('{"instances": [[1.0, 2.0, ' + nested(600) + "]]}"), "float64"),
]


def _refused(status, answer, words, label):
    assert 400 <= status < 500, (label, status, answer)
    assert isinstance(answer, dict) and words in answer["message"], (label, answer)


def test_every_hostile_body_is_a_4xx_naming_it_and_nothing_is_logged(servers, store):
    for label, content_type, body, words in INVOCATIONS:
        status, _, answer = call(servers["h"].url, "POST", "/invocations", body,
                                 content_type=content_type)
        _refused(status, answer, words, label)
    for label, body, words in ARRAYS:
        status, _, answer = call(servers["arr"].url, "POST", "/invocations", body)
        _refused(status, answer, words, label)
    for server in servers.values():
        assert server.flush(30) and server.state.errors == server.state.requests
        assert call(server.url, "GET", "/ping")[0] == 200  # still serving
    assert store.query("SELECT count(*) FROM predictions")[0][0] == 0


def test_what_is_accepted_is_scored_as_sent_and_logged_byte_for_byte(servers, store, models):
    X = models
    server = servers["h"]
    rows = X.head(4)
    expected = server.deployment.champion.model.predict(rows).tolist()
    body = rows.to_csv(index=False).encode()
    status, _, answer = call(server.url, "POST", "/invocations", body, content_type="text/csv")
    assert status == 200 and answer["predictions"] == expected
    status, _, answer = call(server.url, "POST", "/invocations", records(rows))
    assert status == 200 and answer["predictions"] == expected
    # Text beyond ASCII, as raw UTF-8, kept exactly as it came.
    text = '{"dataframe_records": [{"city": "Zürich", "x": 1.5}, {"city": "Łódź", "x": 40}]}'
    status, headers, _ = call(servers["t"].url, "POST", "/invocations", text.encode("utf-8"),
                              content_type="application/json; charset=utf-8")
    assert status == 200
    assert servers["t"].flush(30) and server.flush(30)
    (inputs,) = store.query("SELECT inputs FROM predictions WHERE request_id = ?",
                            (headers["X-Request-Id"],))[0]
    assert inputs.encode("utf-8") == text.encode("utf-8")
    (logged,) = store.query("SELECT inputs FROM predictions WHERE content_type = 'text/csv'")[0]
    assert logged.encode() == body


def test_hostile_labels_are_a_4xx_and_store_nothing(servers, store, models):
    server = servers["h"]
    status, headers, _ = call(server.url, "POST", "/invocations", records(models.head(1)))
    assert status == 200 and server.flush(30)
    rid = headers["X-Request-Id"]
    corpus = [
        ("nested 2000 deep", _json(labels(rid, nested(DEEP))),
         "too deeply"),
        ("nested 100 deep", _json(labels(rid, f"[{nested(100)}]")),
         "more than 32 deep"),
        ("10**400", _json(labels(rid, f"[{HUGE}]")), "64-bit"),
        ("-2**63-1", _json(labels(rid, "[-9223372036854775809]")),
         "64-bit"),
        ("5000 digits", _json(labels(rid, "[1" + "0" * 5000 + "]")),
         "4,300 digits"),
        ("utf-16", labels(rid, "[1]").encode("utf-16"), "UTF-8"),
        ("BOM", codecs.BOM_UTF8 + _json(labels(rid, "[1]")),
         "byte order mark"),
        ("not an object", b"[1, 2]", "request_id"),
    ]
    for label, body, words in corpus:
        status, _, answer = call(server.url, "POST", "/labels", body, headers=server.headers)
        _refused(status, answer, words, label)
    assert store.query("SELECT count(*) FROM prediction_labels")[0][0] == 0
    status, _, _ = call(server.url, "POST", "/labels", {"request_id": rid, "labels": [1]},
                        headers=server.headers)
    assert status == 200


# -- the predictions log, poisoned: every reader skips and counts ---------------------------

def _plant(store, request_id, content_type, inputs, outputs="[1]", created=None):
    import time

    with store.write() as conn:
        conn.execute(
            "INSERT INTO predictions (request_id, created, name, version, role, answered, "
            "n_rows, content_type, inputs, outputs, latency_ms) "
            "VALUES (?, ?, 'h', 1, 'champion', 1, 1, ?, ?, ?, 1.0)",
            (request_id, created or time.time(), content_type, inputs, outputs))


def test_a_poisoned_log_is_skipped_and_counted_by_every_reader(servers, store, models,
                                                              capsys):
    server = servers["h"]
    for start in range(0, 60, 20):
        status, _, _ = call(server.url, "POST", "/invocations",
                            records(models.iloc[start:start + 20]))
        assert status == 200
    assert server.flush(30)
    # What an older server stored for a UTF-16 body and for a BOM, and rows broken otherwise.
    _plant(store, "p-utf16", "application/json",
           ROW.encode("utf-16").decode("utf-8", "replace"))
    _plant(store, "p-bom", "application/json", "\ufeff" + ROW)
    _plant(store, "p-outputs", "application/json", ROW, outputs="not json")
    _plant(store, "p-ragged", "text/csv", "x,y,n\n0.5,-1.0\n")
    _plant(store, "p-columns", "application/json", '{"dataframe_records": [{"q": 1}]}')
    _plant(store, "p-range", "application/json",
           '{"dataframe_records": [{"x": 0.5, "y": -1.0, "n": 99999999999999999999}]}')
    status, headers, _ = call(server.url, "POST", "/invocations", records(models.tail(5)))
    assert status == 200 and server.flush(30)
    with store.write() as conn:
        conn.execute("INSERT INTO prediction_labels (request_id, row, label, created) "
                     "VALUES (?, 0, 'not json', 0)", (headers["X-Request-Id"],))

    spec = server.deployment.champion.spec
    traffic = load_traffic("h", 1, store=store, spec=spec)
    assert len(traffic) == 65 and traffic.skipped == 6 and traffic.skipped_labels == 1
    assert traffic.inputs["n"].dtype == "int64"

    result = mlops.monitor("h@champion", since="1h", store=store)
    assert result.n_rows == 65 and result.skipped == 6
    assert any(s["step"] == "traffic" and "6 logged request(s)" in s["message"]
               for s in result.steps)
    ab = compare_versions("h@champion", "h@challenger", since="1h", store=store)
    assert ab.n_rows == 65 and any("6 logged request(s) of h/1" in n for n in ab.notes)
    assert main(["monitor", "h@champion", "--since", "1h"]) in (0, 1)
    assert main(["ab", "h@champion", "h@challenger", "--since", "1h"]) == 0
    out = capsys.readouterr().out
    assert "could not be read back" in out


# -- batch scoring: the same inputs, refused by name ---------------------------------------

BATCH = [
    ("long-first.csv", b"x,y,n\n0.5,-1.0,3,4\n0.1,0.2,1\n", "long-first.csv: Line 2 has 4"),
    ("long-later.csv", b"x,y,n\n0.5,-1.0,3\n0.5,-1.0,3,4\n", "Line 3 has 4 values"),
    ("short.csv", b"x,y,n\n0.5,-1.0,3\n0.5,-1.0\n", "short.csv: Line 3 has 2 values"),
    ("short.tsv", b"x\ty\tn\n0.5\t-1.0\t3\n0.5\t-1.0\n", "Line 3 has 2 values"),
    ("utf16.csv", "x,y,n\n0.5,-1.0,3\n".encode("utf-16"), "not UTF-8"),
    ("latin1.csv", b"x,y,n,note\n0.5,-1.0,3,caf\xe9\n", "Line 2 is not UTF-8"),
    ("int64.csv", b"x,y,n\n0.5,-1.0,3\n0.5,-1.0,99999999999999999999\n",
     "Column 'n' must be int64"),
    ("uint64.csv", b"x,y,n\n0.5,-1.0,18446744073709551615\n", "Column 'n' must be int64"),
    ("huge.csv", _json(f"x,y,n\n{HUGE},-1.0,3\n"), "Column 'x'"),
    ("ragged.csv.gz", gzip.compress(b"x,y,n\n0.5,-1.0,3\n0.5,-1.0\n"), "Line 3 has 2 values"),
]


@pytest.mark.parametrize("name,data,words", BATCH, ids=[b[0] for b in BATCH])
def test_batch_scoring_refuses_the_same_inputs_by_name(models, files, name, data, words):
    source = files / name
    source.write_bytes(data)
    for output in ("scored.csv", "scored.parquet"):
        if output.endswith(".parquet"):
            pytest.importorskip("pyarrow")
        with pytest.raises(mlops.ValidationError) as caught:
            score_file("h@champion", source, files / output, progress=False)
        assert words in str(caught.value), str(caught.value)
    assert sorted(p.name for p in files.iterdir()) == [name]  # no output, no partial


def test_a_ragged_row_deep_in_a_big_file_is_refused_after_earlier_chunks(models, files):
    rows = frame(5000, seed=3)
    text = rows.to_csv(index=False).splitlines()
    text[3500] += ",7"  # line 3501 of the file (the header is line 1)
    source = files / "big.csv"
    source.write_text("\n".join(text) + "\n")
    with pytest.raises(mlops.ValidationError, match="big.csv: Line 3501 has 4 values"):
        score_file("h@champion", source, files / "out.csv", chunk_size=1000, progress=False)
    assert sorted(p.name for p in files.iterdir()) == ["big.csv"]


def test_batch_keeps_wide_integers_it_does_not_score_as_exact_text(models, files):
    X = models.head(3).assign(account=[12345678901234567890123, 7, 2**64])
    source = files / "accounts.csv"
    X.to_csv(source, index=False)
    result = score_file("h@champion", source, files / "out.csv", progress=False)
    assert result.rows == 3
    with open(files / "out.csv", newline="") as handle:
        out = list(csv.DictReader(handle))
    assert [row["account"] for row in out] == ["12345678901234567890123", "7", str(2**64)]


def test_a_column_whose_type_changes_between_chunks_is_named_not_a_writer_crash(models, files):
    pytest.importorskip("pyarrow")
    rows = frame(3000, seed=4).assign(k=range(3000)).astype({"k": object})
    rows.loc[2500, "k"] = "not a number"
    source = files / "mixed.csv"
    rows.to_csv(source, index=False)
    with pytest.raises(mlops.ValidationError, match=r"Cannot write column 'k' of rows "
                                                    r"2,000 to 2,999 to out.parquet"):
        score_file("h@champion", source, files / "out.parquet", chunk_size=1000,
                   progress=False)
    assert sorted(p.name for p in files.iterdir()) == ["mixed.csv"]


def test_a_parquet_input_beyond_int64_is_refused_by_column(models, files):
    pytest.importorskip("pyarrow")
    source = files / "in.parquet"
    models.head(3).astype({"n": "uint64"}).assign(
        n=np.array([1, 2, 2**64 - 1], dtype="uint64")).to_parquet(source)
    with pytest.raises(mlops.ValidationError, match="Column 'n' must be int64; got "
                                                    "18446744073709551615"):
        score_file("h@champion", source, files / "out.csv", progress=False)
    assert sorted(p.name for p in files.iterdir()) == ["in.parquet"]
