"""Batch scoring: CSV and Parquet in chunks, predictions equal model.predict, errors named."""

import importlib.util
import io

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import jupyter_mlops as mlops
from jupyter_mlops.cli import main
from jupyter_mlops.serving import score_file


@pytest.fixture
def frame_model(store):
    rng = np.random.default_rng(11)
    X = pd.DataFrame({"tenure": rng.integers(0, 60, 2500).astype("int64"),
                      "spend": rng.gamma(2.0, 30.0, 2500),
                      "plan": rng.choice(["basic", "pro"], 2500)})
    y = ((X["spend"] > 60) | (X["plan"] == "pro")).astype(int)
    numeric = X[["tenure", "spend"]].assign(pro=(X["plan"] == "pro").astype(int))

    model = PlanModel(LogisticRegression(max_iter=1000).fit(numeric, y))
    mlops.register_model(model, "churn", alias="champion", reference=X)
    return model, X.assign(customer_id=np.arange(len(X)))


class PlanModel:
    """A model over a DataFrame with a text column (encodes it itself)."""

    def __init__(self, inner):
        self.inner = inner

    def predict(self, X):
        numeric = X[["tenure", "spend"]].assign(pro=(X["plan"] == "pro").astype(int))
        return self.inner.predict(numeric)


def test_csv_in_chunks_equals_predict_and_keeps_other_columns(frame_model, tmp_path):
    model, data = frame_model
    source = tmp_path / "customers.csv"
    data.to_csv(source, index=False)
    result = score_file("churn@champion", source, tmp_path / "scored.csv", chunk_size=700,
                        progress=False)
    assert result.rows == 2500 and result.chunks == 4 and result.model == "churn/1"
    scored = pd.read_csv(tmp_path / "scored.csv")
    assert list(scored.columns) == ["tenure", "spend", "plan", "customer_id", "prediction"]
    np.testing.assert_array_equal(scored["prediction"], model.predict(data))
    assert scored["customer_id"].tolist() == list(range(2500))
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_parquet_in_and_out(frame_model, tmp_path):
    pytest.importorskip("pyarrow")
    model, data = frame_model
    data.to_parquet(tmp_path / "in.parquet")
    result = score_file("churn@champion", tmp_path / "in.parquet", tmp_path / "out.parquet",
                        chunk_size=1000, keep_columns=False, progress=False)
    assert result.chunks == 3
    scored = pd.read_parquet(tmp_path / "out.parquet")
    assert list(scored.columns) == ["prediction"]
    np.testing.assert_array_equal(scored["prediction"], model.predict(data))
    # CSV in, Parquet out
    data.to_csv(tmp_path / "in.csv", index=False)
    score_file("churn@champion", tmp_path / "in.csv", tmp_path / "mixed.parquet", progress=False)
    assert len(pd.read_parquet(tmp_path / "mixed.parquet")) == 2500


def test_parquet_without_pyarrow_is_one_line(frame_model, tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyarrow" else real(name, *a))
    with pytest.raises(mlops.ValidationError) as caught:
        score_file("churn@champion", tmp_path / "in.parquet", tmp_path / "out.csv")
    assert str(caught.value) == ("Parquet files need pyarrow, which is not installed: "
                                 "pip install pyarrow")
    # CSV needs no pyarrow: pandas writes it.
    model, data = frame_model
    data.to_csv(tmp_path / "in.csv", index=False)
    score_file("churn@champion", tmp_path / "in.csv", tmp_path / "out.csv", chunk_size=1000,
               progress=False)
    scored = pd.read_csv(tmp_path / "out.csv")
    np.testing.assert_array_equal(scored["prediction"], model.predict(data))
    pd.testing.assert_frame_equal(scored.drop(columns="prediction"), data)


def test_a_bad_value_names_its_row_in_the_file(frame_model, tmp_path):
    model, data = frame_model
    bad = data.astype({"spend": object})
    bad.loc[1234, "spend"] = "lots"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(mlops.ValidationError,
                       match=r"bad.csv: Column 'spend' must be float64; got str 'lots' in "
                             r"row 1234"):
        score_file("churn@champion", tmp_path / "bad.csv", tmp_path / "out.csv", chunk_size=500,
                   progress=False)
    assert not (tmp_path / "out.csv").exists()
    data.drop(columns="plan").to_csv(tmp_path / "noplan.csv", index=False)
    with pytest.raises(mlops.ValidationError, match="Missing column 'plan'"):
        score_file("churn@champion", tmp_path / "noplan.csv", tmp_path / "out.csv")
    with pytest.raises(mlops.ValidationError, match="neither CSV"):
        score_file("churn@champion", tmp_path / "bad.csv", tmp_path / "out.xlsx")


def test_cli_score_with_a_progress_bar(frame_model, tmp_path, capsys):
    model, data = frame_model
    data.to_csv(tmp_path / "in.csv", index=False)
    code = main(["score", "churn@champion", str(tmp_path / "in.csv"), "-o",
                 str(tmp_path / "out.csv"), "--chunk-size", "1000"])
    out = capsys.readouterr().out
    assert code == 0 and "Scored 2,500 rows with churn/1" in out and "3 chunk(s)" in out
    from jupyter_mlops.serving.batch import Progress

    stream = io.StringIO()
    bar = Progress(100, "bytes", enabled=True, stream=stream)
    bar.update(50, 5000, final=True)
    assert "50.0%" in stream.getvalue() and "5,000 rows" in stream.getvalue()
    assert main(["score", "churn@champion", str(tmp_path / "missing.csv"), "-o",
                 str(tmp_path / "o.csv")]) == 2
    assert "No input file" in capsys.readouterr().err
