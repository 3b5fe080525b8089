"""drift_report: Evidently's default tests and verdicts, column kinds, bad input, storage."""

from __future__ import annotations

import io
import json
import math
import sqlite3
from contextlib import closing

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

import jupyter_mlops as mlops
from jupyter_mlops.drift import (
    DriftProfile,
    DriftReport,
    drift_profile,
    drift_report,
    get_drift_report,
    load_drift_profile,
)
from jupyter_mlops.errors import ValidationError
from jupyter_mlops.tracking.datasets import fingerprint


def make_data(n: int, shifted: bool, seed: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reference and a current set; ``shifted`` moves half of the columns."""
    rng = np.random.default_rng(seed)

    def frame(shift: bool, size: int) -> pd.DataFrame:
        s = 1.0 if shift else 0.0
        return pd.DataFrame({
            "normal": rng.normal(0.6 * s, 1, size),
            "lognormal": rng.lognormal(0.0, 0.5 + 0.4 * s, size),
            "steady": rng.normal(5, 2, size),
            "three_levels": rng.choice([0.5, 1.5, 2.5], size, p=[.2, .3, .5] if not shift
                                       else [.45, .3, .25]),
            "small_ints": rng.integers(0, 6, size),
            "wide_ints": rng.integers(0, 300, size),
            "city": rng.choice(["Lyon", "Oslo", "Pune", "Lima"], size,
                               p=[.4, .3, .2, .1] if not shift else [.1, .2, .3, .4]),
            "plan": rng.choice(["free", "pro"], size, p=[.7, .3]),
            "active": rng.random(size) < (0.5 if not shift else 0.8),
        })

    return frame(False, n), frame(shifted, n)


SHIFTED = {"normal", "lognormal", "three_levels", "city", "active"}


def evidently_kind(cur: pd.Series) -> str:
    """Evidently 0.7's ``infer_column_type`` on the current data."""
    name = cur.dtype.name
    if name.startswith("float"):
        return "numeric"
    if name.startswith("int"):
        return "categorical" if cur.nunique() <= 10 else "numeric"
    return "categorical"


def evidently_test(ref: pd.Series, cur: pd.Series, kind: str) -> str:
    """Evidently's ``_get_default_stattest``."""
    n_values = pd.concat([ref, cur]).nunique()
    if len(ref) <= 1000:
        if kind == "numeric" and n_values > 5:
            return "ks"
        return "chisquare" if n_values > 2 else "ztest"
    if kind == "numeric" and n_values > 5:
        return "wasserstein"
    return "jensenshannon"


def evidently_drifted(test: str, ref: pd.Series, cur: pd.Series, kind: str) -> bool:
    """Evidently's verdict, computed with scipy on the raw columns."""
    if test == "ks":
        return stats.ks_2samp(ref, cur).pvalue <= 0.05
    if test == "wasserstein":
        score = stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001)
        return score >= 0.1
    keys = list(set(ref.unique()) | set(cur.unique()))
    rd = {**dict.fromkeys(keys, 0), **dict(ref.value_counts())}
    cd = {**dict.fromkeys(keys, 0), **dict(cur.value_counts())}
    if test == "chisquare":
        f_exp = [rd[k] * len(cur) / len(ref) for k in keys]
        return stats.chisquare([cd[k] for k in keys], f_exp).pvalue < 0.05
    if test == "ztest":
        first = sorted(keys)[0]
        p1, p2 = (ref != first).mean(), (cur != first).mean()
        pooled = (p1 * len(ref) + p2 * len(cur)) / (len(ref) + len(cur))
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / len(ref) + 1 / len(cur)))
        return 2 * (1 - stats.norm.cdf(abs(z))) < 0.05
    assert test == "jensenshannon"
    if kind == "numeric" and ref.nunique() > 20:
        bins = np.histogram_bin_edges(pd.concat([ref, cur]).to_numpy(), bins="sturges")
        r, c = np.histogram(ref, bins)[0] / len(ref), np.histogram(cur, bins)[0] / len(cur)
    else:
        r = np.array([rd[k] / len(ref) for k in keys])
        c = np.array([cd[k] / len(cur) for k in keys])
    return distance.jensenshannon(r, c) >= 0.1


@pytest.mark.parametrize("n", [1000, 5000], ids=["small-reference", "large-reference"])
@pytest.mark.parametrize("shifted", [False, True], ids=["unshifted", "shifted"])
def test_default_tests_and_verdicts_are_evidentlys(store, n, shifted):
    ref, cur = make_data(n, shifted)
    report = drift_report(ref, cur)
    frame = report.columns.set_index("column")
    for name in ref.columns:
        kind = evidently_kind(cur[name])
        expected_kind = "boolean" if name == "active" else kind
        row = frame.loc[name]
        assert row["kind"] == expected_kind, name
        test = evidently_test(ref[name], cur[name], kind)
        assert row["test"] == test, name
        assert bool(row["drifted"]) == evidently_drifted(test, ref[name], cur[name], kind), name
    drifted = set(report.drifted_columns)
    if shifted:
        assert drifted == SHIFTED
    else:
        assert drifted == set()
    share = len(drifted) / len(ref.columns)
    assert report.share_drifted == pytest.approx(share)
    assert report.n_drifted == len(drifted) and report.n_columns == len(ref.columns)
    assert report.drifted == (share >= 0.5)


def test_size_switch_is_at_one_thousand_reference_values(store):
    ref, cur = make_data(1001, shifted=False)
    tests = drift_report(ref, cur).columns.set_index("column")["test"]
    assert tests["normal"] == "wasserstein" and tests["city"] == "jensenshannon"
    small = drift_report(ref.iloc[:1000], cur).columns.set_index("column")["test"]
    assert small["normal"] == "ks" and small["city"] == "chisquare" and small["plan"] == "ztest"


def test_dataset_drift_uses_drift_share(store):
    ref, cur = make_data(1000, shifted=True)  # 5 of 9 columns move
    assert drift_report(ref, cur).drifted is True
    assert drift_report(ref, cur, drift_share=0.6).drifted is False
    assert drift_report(ref, cur, drift_share=5 / 9).drifted is True
    with pytest.raises(ValidationError, match="drift_share"):
        drift_report(ref, cur, drift_share=0)


def test_report_frame_has_the_documented_columns(store):
    ref, cur = make_data(300, shifted=True)
    frame = drift_report(ref, cur).columns
    assert list(frame.columns[:7]) == ["column", "kind", "test", "statistic", "p_value",
                                       "threshold", "drifted"]
    assert frame["drifted"].dtype == bool
    assert frame.loc[frame["column"] == "normal", "threshold"].item() == 0.05


def test_chosen_tests_and_thresholds(store):
    ref, cur = make_data(2000, shifted=True)
    report = drift_report(ref, cur, stattest="psi", threshold={"normal": 5.0})
    frame = report.columns.set_index("column")
    assert set(frame["test"]) == {"psi"}  # psi applies to numbers and categories
    assert frame.loc["normal", "threshold"] == 5.0 and not frame.loc["normal", "drifted"]
    assert frame.loc["city", "threshold"] == 0.1
    ks = drift_report(ref, cur, stattest="ks").columns.set_index("column")
    assert ks.loc["normal", "test"] == "ks"
    assert ks.loc["city", "test"] == "jensenshannon"  # ks does not apply: default kept
    assert "default test used" in ks.loc["city", "note"]
    with pytest.raises(ValidationError, match="'ks' does not apply to column 'city'"):
        drift_report(ref, cur, stattest={"city": "ks"})
    with pytest.raises(ValidationError, match="names columns that are not in the report"):
        drift_report(ref, cur, stattest={"nope": "ks"})
    with pytest.raises(ValidationError, match="Unknown stattest"):
        drift_report(ref, cur, stattest="t-test")
    with pytest.raises(ValidationError, match="finite number >= 0"):
        drift_report(ref, cur, threshold=-1)


def test_kinds_follow_evidently_and_go_further(store):
    n = 400
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({
        "floats": rng.normal(size=n),
        "few_ints": rng.integers(0, 4, n),
        "many_ints": rng.integers(0, 1000, n),
        "nullable": pd.array(rng.integers(0, 50, n), dtype="Int64"),
        "flags": rng.random(n) < 0.5,
        "words": rng.choice(["a", "b", "c"], n),
        "ids": [f"id{i}" for i in range(n)],
        "cat": pd.Categorical(rng.choice(["x", "y"], n), categories=["x", "y", "never"]),
        "when": pd.date_range("2024-01-01", periods=n, freq="D"),
        "numbers_as_objects": pd.Series(rng.normal(size=n).tolist(), dtype=object),
        "mixed": pd.Series([1, "one", 2.5, None] * (n // 4), dtype=object),
    })
    ref.loc[::7, "nullable"] = pd.NA
    report = drift_report(ref, ref.copy())
    frame = report.columns.set_index("column")
    assert frame["kind"].to_dict() == {
        "floats": "numeric", "few_ints": "categorical", "many_ints": "numeric",
        "nullable": "numeric", "flags": "boolean", "words": "categorical", "ids": "text",
        "cat": "categorical", "when": "datetime", "numbers_as_objects": "numeric",
        "mixed": "categorical",
    }
    assert set(report.skipped) == {"ids", "when"}
    assert "free text" in frame.loc["ids", "note"]
    assert "mixed types compared as text" in frame.loc["mixed", "note"]
    assert frame.loc["nullable", "missing_reference"] == len(ref.loc[::7])
    assert not frame["drifted"].any()  # identical sets
    forced = drift_report(ref, ref.copy(), columns=["ids"], stattest={"ids": "chisquare"})
    assert forced.columns["kind"].item() == "categorical"
    assert forced.columns["test"].item() == "chisquare"


def test_different_column_sets_name_the_missing_columns(store):
    ref, cur = make_data(100, shifted=False)
    with pytest.raises(ValidationError, match=r"current set lacks \['city', 'plan'\]; the "
                                              r"reference set lacks \['extra'\]"):
        drift_report(ref, cur.drop(columns=["city", "plan"]).assign(extra=1))
    with pytest.raises(ValidationError, match=r"not in the current set: \['city'\]"):
        drift_report(ref, cur.drop(columns=["city"]), columns=["normal", "city"])
    report = drift_report(ref, cur.drop(columns=["city"]), columns=["normal", "plan"])
    assert list(report.columns["column"]) == ["normal", "plan"]


def test_empty_sets_are_refused(store):
    ref, cur = make_data(100, shifted=False)
    with pytest.raises(ValidationError, match="The current set has no rows"):
        drift_report(ref, cur.iloc[:0])
    with pytest.raises(ValidationError, match="The reference set has no rows"):
        drift_report(ref.iloc[:0], cur)
    with pytest.raises(ValidationError, match="needs a current set"):
        drift_report(ref)
    with pytest.raises(ValidationError, match="must be a pandas DataFrame"):
        drift_report([1, 2, 3], cur)


def test_nan_constant_and_all_missing_columns_are_reported(store):
    rng = np.random.default_rng(2)
    n = 500
    ref = pd.DataFrame({"x": rng.normal(size=n), "gone": rng.normal(size=n),
                        "flat": np.full(n, 3.0), "moved_flat": np.full(n, 1.0),
                        "empty": np.full(n, np.nan)})
    cur = ref.copy()
    cur.loc[:99, "x"] = np.nan
    cur.loc[100:104, "x"] = np.inf  # infinities are dropped like NaN, as Evidently does
    cur["gone"] = np.nan
    cur["moved_flat"] = 2.0
    frame = drift_report(ref, cur).columns.set_index("column")
    assert frame.loc["x", "missing_current"] == 105 and frame.loc["x", "n_current"] == 395
    assert frame.loc["x", "missing_reference"] == 0 and frame.loc["x", "test"] == "ks"
    assert pd.isna(frame.loc["gone", "test"])
    assert "no values in the current set" in frame.loc["gone", "note"]
    assert pd.isna(frame.loc["empty", "test"]) and not frame.loc["empty", "drifted"]
    assert "constant in the reference set" in frame.loc["flat", "note"]
    assert not frame.loc["flat", "drifted"]
    assert frame.loc["moved_flat", "drifted"]  # two different constants: drift


def test_text_in_a_numeric_column_names_the_column(store):
    ref = pd.DataFrame({"price": [1.0, 2.0, 3.0] * 20})
    cur = pd.DataFrame({"price": ["1.5", "2", "3"] * 20})
    report = drift_report(ref, cur)  # numbers written as text are converted
    assert "text converted to numbers" in report.column("price")["note"]
    bad = pd.DataFrame({"price": ["1.5", "n/a", "3"] * 20})
    with pytest.raises(ValidationError, match=r"Column 'price' holds numbers, but the current "
                                              r"data also hold 'n/a'"):
        drift_report(ref, bad)


def test_report_is_stored_with_both_fingerprints(store):
    ref, cur = make_data(400, shifted=True)
    report = drift_report(ref, cur, model="models:/churn/3")
    row = store.query("SELECT reference_fingerprint, current_fingerprint, model_uri, n_columns, "
                      "n_drifted, dataset_drift, columns, distributions FROM drift_reports "
                      "WHERE report_id = ?", (report.report_id,))[0]
    assert row[0] == fingerprint(ref)["fingerprint"]
    assert row[1] == fingerprint(cur)["fingerprint"]
    assert row[2:6] == ("models:/churn/3", 9, report.n_drifted, int(report.drifted))

    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))

    assert len(strict(row[6])) == 9 and set(strict(row[7])) == set(ref.columns)
    shapes = dict(store.query("SELECT fingerprint, shape FROM datasets"))
    assert json.loads(shapes[row[0]]) == [400, 9]
    again = get_drift_report(report.report_id[:10])
    pd.testing.assert_frame_equal(again.columns, report.columns)
    assert (again.drifted, again.share_drifted, again.model_uri) == \
        (report.drifted, report.share_drifted, "models:/churn/3")
    assert again.distributions == report.distributions


def test_infinite_and_nan_statistics_survive_the_store(store):
    ref = pd.DataFrame({"c": ["a", "b"] * 300})
    cur = pd.DataFrame({"c": ["a", "b", "new"] * 200})
    report = drift_report(ref, cur, stattest="chisquare")
    assert math.isinf(report.column("c")["statistic"]) and report.column("c")["drifted"]
    stored = store.query("SELECT columns FROM drift_reports WHERE report_id = ?",
                         (report.report_id,))[0][0]
    assert json.loads(stored)[0]["statistic"] == {"$float": "inf"}  # the codec's one form
    assert math.isinf(get_drift_report(report.report_id).column("c")["statistic"])


# A row as drift_reports held it before the one JSON codec: plain JSON, a non-finite
# statistic null and named in the record's "nonfinite" map.
OLD_COLUMNS = ('[{"column":"c","kind":"categorical","test":"chisquare","statistic":null,'
               '"p_value":0.0,"threshold":0.05,"drifted":true,"role":"feature",'
               '"nonfinite":{"statistic":"inf"}},{"column":"s","kind":"categorical",'
               '"test":null,"statistic":null,"p_value":null,"threshold":null,"drifted":false}]')
OLD_DISTRIBUTIONS = '{"$set":{"labels":["a"],"reference":[1.0],"current":[1.0]}}'
OLD_OPTIONS = '{"columns":null,"registered_profile":false,"profile_sampled":{"$date":3}}'


def test_a_row_written_before_the_codec_still_reads(store):
    with closing(sqlite3.connect(store.path / "mlops.db")) as raw, raw:
        raw.execute(
            "INSERT INTO drift_reports (report_id, run_id, model_uri, created, "
            "reference_fingerprint, current_fingerprint, reference_rows, current_rows, "
            "n_columns, n_drifted, share_drifted, drift_share, dataset_drift, columns, "
            "options, distributions, reference_profile) VALUES (?, NULL, NULL, 1.0, NULL, "
            "NULL, 600, 600, 1, 1, 1.0, 0.5, 1, ?, ?, ?, NULL)",
            ("cd" * 16, OLD_COLUMNS, OLD_OPTIONS, OLD_DISTRIBUTIONS))
    report = get_drift_report("cdcd")
    assert report.column("c")["statistic"] == math.inf and report.column("c")["drifted"]
    assert "nonfinite" not in report.column("c")
    skipped = report.column("s")
    assert all(math.isnan(skipped[k]) for k in ("statistic", "p_value", "threshold"))
    # A column named like a tag, in JSON that never held tags, reads as it was written.
    assert report.distributions == json.loads(OLD_DISTRIBUTIONS)
    assert report.options == json.loads(OLD_OPTIONS)


def test_a_profile_written_before_the_codec_still_reads(store):
    ref = pd.DataFrame({"level": pd.Categorical([0.5, 1.5, math.inf] * 50),
                        "city": ["Lyon", "Oslo"] * 75})
    profile = drift_profile(ref)
    archive = np.load(io.BytesIO(profile.to_bytes()))
    arrays = {name: archive[name] for name in archive.files}
    header = json.loads(arrays["header"].tobytes())
    assert header["format"] == 2
    header["format"] = 1  # format 1 spelled float keys {"float": repr}, others {"text": ...}
    for entry in header["columns"]:
        entry["keys"] = [{"float": repr(float(k["$float"]))} if isinstance(k, dict) else
                         {"float": repr(k)} if isinstance(k, float) else k
                         for k in entry.get("keys", [])]
    assert {"float": "inf"} in header["columns"][0]["keys"]
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    old = DriftProfile.from_bytes(buffer.getvalue())
    for name in ("level", "city"):
        assert old.columns[name].side.keys.tolist() == profile.columns[name].side.keys.tolist()
    pd.testing.assert_frame_equal(drift_report(old, ref).columns,
                                  drift_report(profile, ref).columns)


def test_report_inside_a_run_is_linked_to_it(store):
    ref, cur = make_data(200, shifted=False)
    with mlops.start_run("drift check") as run:
        report = drift_report(ref, cur)
    assert report.run_id == run.run_id
    roles = dict(store.query("SELECT role, fingerprint FROM run_datasets WHERE run_id = ?",
                             (run.run_id,)))
    assert roles == {"drift_reference": report.reference_fingerprint,
                     "drift_current": report.current_fingerprint}


def test_a_registered_model_brings_its_reference_sample(store):
    from sklearn.linear_model import LogisticRegression

    from jupyter_mlops.registry.versions import register_model, set_alias

    ref, cur = make_data(1200, shifted=True)
    features = ["normal", "steady"]
    model = LogisticRegression().fit(ref[features], ref["active"])
    register_model(model, "churn", reference=ref[features])
    set_alias("churn", 1, "prod")
    report = drift_report(current=cur[features], model="churn@prod")
    assert report.model_uri == "models:/churn/1"  # the alias resolved to its version
    assert report.reference_fingerprint == fingerprint(ref[features])["fingerprint"]
    assert report.drifted_columns == ["normal"]
    assert report.reference_profile is not None  # the sample, sorted once, kept
    assert not report.options["reference_is_profile"]
    later = drift_report(current=cur[features], model="models:/churn/1")
    assert later.options["reference_is_profile"]  # read from the kept profile
    pd.testing.assert_frame_equal(later.columns, report.columns)
    assert later.reference_fingerprint == report.reference_fingerprint
    with_model = drift_report(current=cur[features], model=model, model_uri="churn@prod")
    assert not with_model.options["reference_is_profile"]  # predictions need raw rows
    assert with_model.column("prediction")["role"] == "prediction"
    register_model(LogisticRegression().fit(ref[["steady"]], ref["active"]), "bare")
    with pytest.raises(ValidationError, match="registered without the reference sample"):
        drift_report(current=cur, model="models:/bare/1")
    with pytest.raises(mlops.NotFoundError, match="No model named 'nope'"):
        drift_report(current=cur, model="nope")
    with pytest.raises(ValidationError, match="needs a reference set"):
        drift_report(current=cur)


def test_prediction_and_target_drift(store):
    from sklearn.linear_model import LinearRegression, LogisticRegression

    rng = np.random.default_rng(4)
    n = 1500
    ref = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    ref["y"] = (ref["a"] + 0.3 * rng.normal(size=n) > 0).astype(int)
    cur = pd.DataFrame({"a": rng.normal(1.0, 1, size=n), "b": rng.normal(size=n)})
    cur["y"] = (cur["a"] + 0.3 * rng.normal(size=n) > 0).astype(int)
    model = LogisticRegression().fit(ref[["a", "b"]], ref["y"])
    report = drift_report(ref, cur, model=model, target="y", model_uri="models:/clf/1")
    frame = report.columns.set_index("column")
    assert frame.loc["prediction", "role"] == "prediction"
    assert frame.loc["prediction", "kind"] == "categorical"
    assert frame.loc["y", "role"] == "target" and frame.loc["y", "drifted"]
    assert frame.loc["prediction", "drifted"]
    expected = model.predict(cur[["a", "b"]])
    assert frame.loc["prediction", "n_current"] == len(expected)
    assert report.model_uri == "models:/clf/1" and report.options["model_class"] == \
        "LogisticRegression"
    regressor = LinearRegression().fit(ref[["a", "b"]], ref["y"])
    frame = drift_report(ref, cur, model=regressor, columns=["a"]).columns.set_index("column")
    assert frame.loc["prediction", "kind"] == "numeric"
    assert frame.loc["prediction", "test"] == "wasserstein"
    with pytest.raises(ValidationError, match="model must be a model URI"):
        drift_report(ref, cur, model=42)


def test_a_profile_gives_the_same_report_and_round_trips(store):
    ref, cur = make_data(3000, shifted=True)
    direct = drift_report(ref, cur, save_profile=True)
    assert direct.reference_profile is not None
    stored = load_drift_profile(direct.reference_profile)
    profile = drift_profile(ref)
    assert isinstance(stored, DriftProfile) and stored.n_rows == 3000
    for reference in (profile, stored, DriftProfile.from_bytes(profile.to_bytes())):
        via = drift_report(reference, cur)
        pd.testing.assert_frame_equal(via.columns, direct.columns)
        assert via.reference_fingerprint == direct.reference_fingerprint
        assert via.distributions == direct.distributions
    sketch = drift_profile(ref, max_values=500)
    approx = drift_report(sketch, cur).columns.set_index("column")
    assert approx.loc["normal", "n_reference"] == 500
    assert "500 of 3,000" in approx.loc["normal", "note"]
    # Tests are chosen by the size of the reference the sketch stands for.
    assert approx["test"].tolist() == direct.columns["test"].tolist()


def test_threads_give_the_same_report(store, monkeypatch):
    from jupyter_mlops.drift import report as report_module

    ref, cur = make_data(2000, shifted=True)
    serial = drift_report(ref, cur)
    monkeypatch.setattr(report_module, "PARALLEL_MIN_VALUES", 0)
    threaded = drift_report(ref, cur)
    pd.testing.assert_frame_equal(serial.columns, threaded.columns)


def test_importing_the_package_loads_no_heavy_library():
    import subprocess
    import sys

    code = ("import sys, jupyter_mlops.drift, jupyter_mlops.dashboards.drift, "
            "jupyter_mlops.magics.drift_command; "
            "print(sorted(m for m in ('pandas', 'scipy', 'matplotlib', 'ipywidgets') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_report_repr(store):
    ref, cur = make_data(100, shifted=False)
    report = drift_report(ref, cur)
    assert isinstance(report, DriftReport)
    assert repr(report).startswith(f"<DriftReport {report.report_id[:8]}: 0 of 9 columns")
