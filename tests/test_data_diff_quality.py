"""diff_datasets: rows, schema and summaries between two versions; data_quality: the checks
of Evidently's DataSummaryPreset, compared with Evidently when it is installed, else with
plain pandas computations."""

import importlib.util

import numpy as np
import pandas as pd
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import ValidationError


def customers(rows=50, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": np.arange(rows), "age": rng.integers(18, 90, rows),
                         "spend": rng.normal(100, 20, rows).round(2),
                         "plan": rng.choice(["basic", "pro"], rows)})


def test_rows_added_removed_and_changed_by_key(store):
    a = customers()
    b = a.drop(index=[3, 4]).copy()
    b.loc[10, "spend"] = 1.0
    b.loc[11, "plan"] = "basic" if a.loc[11, "plan"] == "pro" else "pro"
    b = pd.concat([b, customers(3, seed=5).assign(id=[100, 101, 102])], ignore_index=True)
    b["age"] = b["age"].astype("int32")
    b["region"] = "north"
    diff = mlops.diff_datasets(a, b, key="id")
    assert diff.counts == {"rows_a": 50, "rows_b": 51, "added": 3, "removed": 2, "changed": 2}
    assert sorted(diff.added["id"]) == [100, 101, 102] and sorted(diff.removed["id"]) == [3, 4]
    changed = diff.changed.set_index("id")
    assert set(changed.index) == {10, 11}
    assert changed.loc[10, "changed_columns"] == ["spend"]
    assert changed.loc[11, "changed_columns"] == ["plan"]
    assert changed.loc[10, "spend_b"] == pytest.approx(1.0)
    schema = diff.schema.set_index("column")
    assert schema.loc["region", "change"] == "added"
    assert schema.loc["age", "change"] == "dtype" and schema.loc["age", "dtype_b"] == "int32"
    shifts = diff.to_frame().set_index(["column", "stat"])
    assert shifts.loc[("age", "count"), "delta"] == 1
    assert shifts.loc[("plan", "distinct"), "b"] == 2
    html = diff._repr_html_()
    assert "3 added, 2 removed" in html and "Schema" in html


def test_rows_by_content_count_duplicates(store):
    a = pd.DataFrame({"x": [1, 1, 2, 3]})
    b = pd.DataFrame({"x": [1, 2, 2, 4]})
    diff = mlops.diff_datasets(a, b)
    assert sorted(diff.added["x"]) == [2, 4] and sorted(diff.removed["x"]) == [1, 3]
    assert diff.changed is None and not diff.same
    assert mlops.diff_datasets(a, a.copy()).same


def test_a_kept_version_diffs_against_todays_file_and_drift_follows(store, tmp_path):
    old = customers()
    path = tmp_path / "customers.csv"
    old.to_csv(path, index=False)
    with mlops.start_run() as run:
        mlops.log_dataset(old, "customers", role="train")
    new = pd.concat([old, customers(5, seed=2).assign(id=range(50, 55))], ignore_index=True)
    new.to_csv(path, index=False)
    diff = mlops.diff_datasets(f"{run.run_id}:customers", str(path), key="id")
    assert diff.counts["added"] == 5 and diff.counts["removed"] == 0
    assert diff.counts["changed"] == 0
    report = diff.drift()
    assert set(report.columns["column"]) == {"age", "spend", "plan"}
    with pytest.raises(ValidationError, match="not unique"):
        mlops.diff_datasets(old, pd.concat([old, old]), key="id")
    with pytest.raises(ValidationError, match="not in dataset b"):
        mlops.diff_datasets(old, new.drop(columns="id"), key="id")


def messy():
    frame = customers(40)
    frame.loc[:5, "spend"] = np.nan
    frame["same"] = 7
    frame["nothing"] = np.nan
    frame["copy"] = frame["age"]
    return pd.concat([frame, frame.iloc[:2]], ignore_index=True)


def pandas_expectations(frame):
    """The dataset numbers computed plainly with pandas, for comparison."""
    return {
        "missing_share": frame.isna().to_numpy().mean(),
        "duplicated_rows": int(frame.duplicated().sum()),
        "duplicated_columns": int(frame.T.duplicated().sum()),
        "constant_columns": int(sum(frame[c].nunique(dropna=False) == 1 and frame[c].count() > 0
                                    for c in frame.columns)),
        "empty_columns": int(frame.isna().all().sum()),
    }


@pytest.mark.skipif(importlib.util.find_spec("evidently") is not None,
                    reason="compared with Evidently instead")
def test_quality_numbers_match_pandas(store):
    frame = messy()
    result = mlops.data_quality(frame)
    values = dict(zip(result.checks["check"], result.checks["value"]))
    expected = pandas_expectations(frame)
    assert values == pytest.approx(expected)
    assert not result.ok and set(result.failures["check"]) == set(expected)
    summary = result.columns.set_index("column")
    spend = frame["spend"].dropna()
    assert summary.loc["spend", "missing"] == 8  # 6, and 2 in the duplicated rows
    assert summary.loc["spend", "q50"] == pytest.approx(spend.quantile(0.5))
    assert summary.loc["spend", "std"] == pytest.approx(spend.std())
    assert summary.loc["plan", "distinct"] == 2 and bool(summary.loc["nothing", "empty"])
    assert "checks fail" in result._repr_html_()


@pytest.mark.skipif(importlib.util.find_spec("evidently") is None, reason="needs Evidently")
def test_quality_numbers_match_evidently(store):  # pragma: no cover - where it is installed
    from evidently import Dataset, Report
    from evidently.presets import DataSummaryPreset

    frame = messy()
    snapshot = Report([DataSummaryPreset()]).run(Dataset.from_pandas(frame))
    text = str(snapshot.dict())
    result = mlops.data_quality(frame)
    values = dict(zip(result.checks["check"], result.checks["value"]))
    assert values["duplicated_rows"] == 2 and str(values["empty_columns"]) in text


def test_against_a_reference_new_categories_and_ranges_fail(store):
    reference = customers(200)
    clean = mlops.data_quality(customers(190, seed=1).assign(
        age=lambda f: f["age"].clip(reference["age"].min(), reference["age"].max()),
        spend=lambda f: f["spend"].clip(reference["spend"].min(), reference["spend"].max())),
        reference=reference)
    assert clean.ok, clean.failures
    bad = customers(100, seed=3)
    bad.loc[0, "plan"] = "gold"
    bad.loc[1, "age"] = 130
    result = mlops.data_quality(bad, reference=reference)
    failed = set(zip(result.failures["check"], result.failures["column"]))
    assert failed == {("new_categories", "plan"), ("out_of_range", "age"), ("row_count", "")}
    assert "gold" in result.failures.set_index("column").loc["plan", "condition"]


def test_in_a_run_the_verdicts_are_logged_with_the_fingerprints(store):
    with mlops.start_run() as run:
        result = mlops.data_quality(customers(), reference=customers(60, seed=1))
    stored = mlops.get_run(run.run_id)
    assert [a.kind for a in stored.artifacts] == ["data_quality"]
    assert {i.fingerprint for i in stored.inputs} == set(result.fingerprints.values())
    with pytest.raises(ValidationError, match="pd.DataFrame"):
        mlops.data_quality(np.zeros((3, 2)))


def test_registering_checks_the_kept_training_data_and_its_lineage_shows_it(store):
    from sklearn.linear_model import LinearRegression

    from jupyter_mlops.registry.cards import model_card

    train = messy().drop(columns=["nothing", "plan"]).fillna(0)
    with mlops.start_run() as run:
        mlops.log_dataset(train, "X_train", role="input")  # no sample: only the kept bytes
        model = LinearRegression().fit(train, train["spend"])
    # Registered from a script: the run's input is read back from its kept bytes, checked.
    version = mlops.register_model(model, "spend", run_id=run.run_id)
    verdict = mlops.registry.versions.lineage(version.uri)["quality"]
    fp = version.datasets[0]["fingerprint"]
    assert verdict[fp]["checked"] and not verdict[fp]["ok"]
    assert "constant_columns" in ",".join(verdict[fp]["failures"])
    assert "duplicated_rows" in ",".join(verdict[fp]["failures"])
    card = model_card(version.uri).markdown()
    assert f"checks fail ({len(train)} rows): " in card
    assert "data quality" in version._repr_html_()
    # Data that was not kept (nor in hand: an input without a sample) is not checked, and
    # its lineage says so.
    mlops.set_data_policy(keep=False)
    other = train.assign(age=train["age"] + 1)
    with mlops.start_run() as run:
        mlops.log_dataset(other, "X_train", role="input")
    version = mlops.register_model(LinearRegression().fit(other, other["spend"]), "spend2",
                                   run_id=run.run_id)
    verdict = mlops.registry.versions.lineage(version.uri)["quality"]
    assert list(verdict.values()) == [{"checked": False, "reason": "its data was not kept"}]
    assert "not checked: its data was not kept" in model_card(version.uri).markdown()
