"""Payload parsing and signature checks, without a server: every refusal names its cause."""

import json

import numpy as np
import pandas as pd
import pytest

from jupyter_mlops.serving.formats import (
    BadRequest,
    InputSpec,
    UnsupportedMediaType,
    dumps,
    jsonable,
    parse_payload,
)

SPEC = InputSpec.from_signature({"kind": "dataframe", "columns": [
    {"name": "age", "dtype": "int64"}, {"name": "income", "dtype": "float64"},
    {"name": "city", "dtype": "str"}, {"name": "member", "dtype": "bool"}]})
ARRAY = InputSpec.from_signature({"kind": "ndarray", "dtype": "float64", "shape": [-1, 3]})
ROWS = pd.DataFrame({"age": [30, 41], "income": [52.5, 61.0], "city": ["Oslo", "Lyon"],
                     "member": [True, False]})


def parse(payload, spec=SPEC, content_type="application/json"):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return spec.conform(parse_payload(body, content_type, spec))


@pytest.mark.parametrize("payload", [
    {"dataframe_split": ROWS.to_dict(orient="split")},
    {"dataframe_split": {"columns": ["city", "member", "income", "age"],
                         "data": ROWS[["city", "member", "income", "age"]].values.tolist()}},
    {"dataframe_records": ROWS.to_dict(orient="records")},
    {"instances": ROWS.to_dict(orient="records")},
    {"instances": ROWS.values.tolist()},
    {"inputs": ROWS.to_dict(orient="list")},
    {"dataframe_records": ROWS.to_dict(orient="records"), "params": {}},
])
def test_every_json_format_gives_the_same_frame(payload):
    frame = parse(payload)
    assert list(frame.columns) == ["age", "income", "city", "member"]
    assert frame["age"].dtype == "int64" and frame["member"].dtype == bool
    assert frame["age"].tolist() == [30, 41] and frame["city"].tolist() == ["Oslo", "Lyon"]


def test_csv_with_a_header_row():
    body = ROWS.to_csv(index=False).encode()
    frame = parse(body, content_type="text/csv; charset=utf-8")
    assert frame["income"].tolist() == [52.5, 61.0] and frame["city"].tolist() == ["Oslo", "Lyon"]


def test_single_row_as_an_object_of_scalars():
    frame = parse({"inputs": {"age": 30, "income": 1.0, "city": "Oslo", "member": True}})
    assert len(frame) == 1


@pytest.mark.parametrize("payload, status, message", [
    ({"dataframe_records": [{"age": 1, "city": "x", "member": True}]}, 400,
     "Missing column 'income'; the model takes age, income, city, member."),
    ({"dataframe_records": [{"age": 1, "income": 2.0, "city": "x", "member": True, "zip": 1}]},
     400, "Unexpected column 'zip'; the model takes age, income, city, member."),
    ({"dataframe_records": [{"age": 1, "income": "high", "city": "x", "member": True}]}, 400,
     "Column 'income' must be float64; got str 'high' in row 0."),
    ({"dataframe_records": [{"age": 1, "income": 2.0, "city": "x", "member": True},
                            {"age": 2.5, "income": 2.0, "city": "x", "member": True}]}, 400,
     "Column 'age' must be int64; got 2.5 in row 1."),
    ({"dataframe_records": [{"age": None, "income": 2.0, "city": "x", "member": True}]}, 400,
     "Column 'age' must be int64; got a missing value in row 0."),
    ({"dataframe_records": [{"age": 1, "income": 2.0, "city": 7, "member": True}]}, 400,
     "Column 'city' must be str (text); got int 7 in row 0."),
    ({"dataframe_records": [{"age": 1, "income": 2.0, "city": "x", "member": "yes"}]}, 400,
     "Column 'member' must be bool (true or false); got str 'yes' in row 0."),
    ({"dataframe_records": [{"age": True, "income": 2.0, "city": "x", "member": True}]}, 400,
     "Column 'age' must be int64; got bool True in row 0."),
    ({"dataframe_records": [{"age": 1, "income": 2.0, "city": "x", "member": True},
                            {"age": 1, "city": "x", "member": True}]}, 400,
     "Row 1 of 'dataframe_records' has no column 'income'"),
    ({"instances": [[1, 2.0, "x"]]}, 400, "Row 0 has 3 values; the model takes 4 columns"),
    ({"dataframe_split": {"columns": ["age"], "data": [[1, 2]]}}, 400,
     "Row 0 of 'dataframe_split' has 2 values; 'columns' names 1."),
    ({"rows": []}, 400, "The body has none of the keys dataframe_split"),
    ({"instances": [], "inputs": []}, 400, "The body names several formats"),
    ({"instances": []}, 400, "'instances' is empty"),
    ([1, 2], 400, "The body must be a JSON object; got a list."),
    ({"inputs": [[1]], "params": {"k": 1}}, 400, "this model takes no params"),
])
def test_bad_inputs_are_named(payload, status, message):
    with pytest.raises(BadRequest) as caught:
        parse(payload)
    assert caught.value.status == status
    assert message in str(caught.value)


def test_malformed_json_and_media_types():
    with pytest.raises(BadRequest, match=r"^Malformed JSON: Expecting"):
        parse(b'{"instances": [1, 2')
    with pytest.raises(BadRequest, match="request body is empty"):
        parse(b"  ")
    with pytest.raises(UnsupportedMediaType, match="text/plain"):
        parse(b"1", content_type="text/plain")
    with pytest.raises(UnsupportedMediaType, match="No Content-Type"):
        parse(b"1", content_type=None)
    with pytest.raises(UnsupportedMediaType, match="latin-1"):
        parse(b"{}", content_type="application/json; charset=latin-1")
    with pytest.raises(BadRequest, match="Malformed CSV"):
        parse(b'a,b\n1,"2\n', content_type="text/csv")


def test_array_signature():
    array = parse({"instances": [[1, 2, 3], [4, 5, 6.5]]}, ARRAY)
    assert array.dtype == np.float64 and array.shape == (2, 3)
    assert parse({"inputs": [[1, 2, 3]]}, ARRAY).shape == (1, 3)
    with pytest.raises(BadRequest, match="Each row must have 3 values; got 2"):
        parse({"instances": [[1, 2]]}, ARRAY)
    with pytest.raises(BadRequest, match="got str 'a' at"):
        parse({"instances": [[1, 2, "a"]]}, ARRAY)
    with pytest.raises(BadRequest, match="Rows differ in length"):
        parse({"instances": [[1, 2, 3], [1]]}, ARRAY)


def test_batch_chunks_may_carry_extra_columns():
    frame = SPEC.conform(ROWS.assign(customer_id=[7, 8]), extra="drop")
    assert list(frame.columns) == ["age", "income", "city", "member"]


def test_predictions_are_strict_json():
    assert jsonable(np.array([1.5, np.nan, np.inf])) == [1.5, None, None]
    assert jsonable(pd.Series(["a", None])) == ["a", None]
    assert jsonable(np.array([[1, 2]], dtype=np.int32)) == [[1, 2]]
    assert json.loads(dumps({"predictions": jsonable(np.array([np.nan]))})) == {
        "predictions": [None]}
    with pytest.raises(ValueError):
        dumps(float("nan"))


def test_odd_predictions_are_plain_json_any_client_reads():
    when = pd.Timestamp("2024-05-01 12:00:00")
    assert jsonable(np.array(["2024-05-01T12:00:00.000000001"], dtype="datetime64[ns]")) == [
        "2024-05-01T12:00:00"]  # not the nanoseconds since 1970 as text
    assert jsonable(np.array([{"p": np.float32(0.5)}, (1, np.nan), None], dtype=object)) == [
        {"p": 0.5}, [1, None], None]
    frame = pd.DataFrame({"when": [when], "score": [np.inf], "label": ["a"]})
    assert jsonable(frame) == [{"when": "2024-05-01T12:00:00", "score": None, "label": "a"}]
    text = dumps({"predictions": jsonable(frame)})
    json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name}"))
