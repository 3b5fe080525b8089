"""Every drift statistic against scipy (or Evidently's recipe written out on raw data), to 1e-9.

Our tests read sorted arrays and value counts; the oracles here take the raw, unsorted
samples exactly as Evidently hands them to scipy.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from jupyter_mlops.drift import stattests as st
from jupyter_mlops.drift.kinds import CATEGORICAL, NUMERIC, prepare_categories, prepare_numbers

RTOL = 1e-9


def close(ours: float, theirs: float) -> bool:
    if math.isnan(theirs):
        return math.isnan(ours)
    return math.isclose(ours, theirs, rel_tol=RTOL, abs_tol=1e-12)


def sides(ref, cur, numeric=True):
    ref, cur = pd.Series(ref), pd.Series(cur)
    if numeric:
        integer = pd.api.types.is_integer_dtype(ref) and pd.api.types.is_integer_dtype(cur)
        return (prepare_numbers(ref, "x", "reference", integer),
                prepare_numbers(cur, "x", "current", integer))
    return prepare_categories(ref), prepare_categories(cur)


def _rng(seed=0):
    return np.random.default_rng(seed)


# Numeric samples: equal and unequal sizes, a shift, heavy ties, integers, tiny samples.
NUMERIC_CASES = {
    "normal-equal": lambda r: (r.normal(size=800), r.normal(size=800)),
    "shifted-unequal": lambda r: (r.normal(size=1200), r.normal(0.3, 1.4, size=700)),
    "ties": lambda r: (r.integers(0, 7, 900).astype(float), r.integers(0, 9, 600).astype(float)),
    "integers": lambda r: (r.integers(-50, 50, 1500), r.integers(-40, 60, 1100)),
    "tiny": lambda r: (r.normal(size=5), r.normal(size=8)),
    "coprime-sizes": lambda r: (r.exponential(size=997), r.exponential(size=1009)),
}


@pytest.fixture(params=list(NUMERIC_CASES))
def numeric_case(request):
    ref, cur = NUMERIC_CASES[request.param](_rng(zlib.crc32(request.param.encode())))
    return ref, cur


def test_wasserstein_distance_equals_scipy(numeric_case):
    ref, cur = numeric_case
    a, b = sides(ref, cur)
    assert close(st.wasserstein_sorted(a.values, b.values), stats.wasserstein_distance(ref, cur))
    outcome = st.STATTESTS["wasserstein"].compute(a, b, NUMERIC)
    expected = stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001)
    assert close(outcome.statistic, expected)
    assert outcome.p_value is None


def test_ks_equals_scipy(numeric_case):
    ref, cur = numeric_case
    a, b = sides(ref, cur)
    expected = stats.ks_2samp(ref, cur)
    assert close(st.ks_statistic_sorted(a.values, b.values), expected.statistic)
    outcome = st.STATTESTS["ks"].compute(a, b, NUMERIC)
    assert close(outcome.statistic, expected.statistic)
    assert close(outcome.p_value, expected.pvalue)


def test_ks_large_samples_use_our_statistic_and_scipys_asymptotic_p():
    rng = _rng(3)
    ref, cur = rng.normal(size=12_000), rng.normal(0.03, 1, size=10_500)
    a, b = sides(ref, cur)
    assert max(a.n, b.n) > st.KS_EXACT_LIMIT  # the branch that does not call ks_2samp
    expected = stats.ks_2samp(ref, cur)
    outcome = st.STATTESTS["ks"].compute(a, b, NUMERIC)
    assert close(outcome.statistic, expected.statistic)
    assert close(outcome.p_value, expected.pvalue)
    tied = np.round(ref, 1), np.round(cur, 1)  # ties: the CDFs are read after each run
    a, b = sides(*tied)
    expected = stats.ks_2samp(*tied)
    outcome = st.STATTESTS["ks"].compute(a, b, NUMERIC)
    assert close(outcome.statistic, expected.statistic)
    assert close(outcome.p_value, expected.pvalue)


def test_energy_distance_equals_scipy(numeric_case):
    ref, cur = numeric_case
    a, b = sides(ref, cur)
    outcome = st.STATTESTS["energy"].compute(a, b, NUMERIC)
    assert close(outcome.statistic, stats.energy_distance(ref, cur))


def test_anderson_equals_scipy(numeric_case):
    ref, cur = numeric_case
    a, b = sides(ref, cur)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns about capped p-values
        expected = stats.anderson_ksamp([ref, cur])
    outcome = st.STATTESTS["anderson"].compute(a, b, NUMERIC)
    assert close(outcome.statistic, expected.statistic)
    assert close(outcome.p_value, expected.pvalue)


def test_cramer_von_mises_equals_scipy(numeric_case):
    ref, cur = numeric_case
    a, b = sides(ref, cur)
    expected = stats.cramervonmises_2samp(ref, cur)
    outcome = st.STATTESTS["cramer_von_mises"].compute(a, b, NUMERIC)
    assert close(outcome.statistic, expected.statistic)
    assert close(outcome.p_value, expected.pvalue)


def test_sturges_edges_and_counts_equal_numpy(numeric_case):
    ref, cur = numeric_case
    a, b = sides(ref, cur)
    both = np.concatenate([ref, cur])
    expected = np.histogram_bin_edges(both, bins="sturges")
    edges = st.sturges_edges(both.min(), both.max(), both.size, a.integer)
    np.testing.assert_array_equal(edges, expected)
    np.testing.assert_array_equal(st.bin_counts(a.values, edges), np.histogram(ref, edges)[0])
    np.testing.assert_array_equal(st.bin_counts(b.values, edges), np.histogram(cur, edges)[0])


def test_sturges_edges_of_a_constant_sample_equal_numpy():
    np.testing.assert_array_equal(st.sturges_edges(3.0, 3.0, 50),
                                  np.histogram_bin_edges(np.full(50, 3.0), bins="sturges"))


# -- the binned tests, against Evidently's recipe on raw pandas Series ----------------------


def evidently_binned(ref: pd.Series, cur: pd.Series, numeric: bool, fill: bool):
    """Evidently's ``get_binned_data``, written out."""
    if numeric and ref.nunique() > 20:
        bins = np.histogram_bin_edges(pd.concat([ref, cur]).to_numpy(), bins="sturges")
        r = np.histogram(ref, bins)[0] / len(ref)
        c = np.histogram(cur, bins)[0] / len(cur)
    else:
        keys = list(set(ref.dropna().unique()) | set(cur.dropna().unique()))
        rd = {**dict.fromkeys(keys, 0), **dict(ref.value_counts())}
        cd = {**dict.fromkeys(keys, 0), **dict(cur.value_counts())}
        r = np.array([rd[k] / len(ref) for k in keys])
        c = np.array([cd[k] / len(cur) for k in keys])
    if fill:
        for shares in (r, c):
            smallest = min(shares[shares != 0])
            np.place(shares, shares == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return r, c


def evidently_hellinger(ref: pd.Series, cur: pd.Series, numeric: bool) -> float:
    keys = list(set(ref.unique()) | set(cur.unique()))
    if not numeric:
        dd: defaultdict = defaultdict(int)
        p = (ref.value_counts() / len(ref)).to_dict(into=dd)
        q = (cur.value_counts() / len(cur)).to_dict(into=dd)
        h = sum(math.sqrt(float(p[k]) * float(q[k])) for k in keys)
    else:
        bins = np.histogram_bin_edges(keys, bins="sturges")
        h1 = np.histogram(ref.to_numpy(), bins=bins, density=True)[0]
        h2 = np.histogram(cur.to_numpy(), bins=bins, density=True)[0]
        width = (max(bins) - min(bins)) / (len(bins) - 1)
        h = sum(math.sqrt(float(h1[i]) * float(h2[i])) * width for i in range(len(h1)))
    return math.sqrt(1 - float(np.clip(h, 0, 1)))


CATEGORY_CASES = {
    "same": lambda r: (r.choice(list("abcde"), 1500, p=[.4, .3, .15, .1, .05]),
                       r.choice(list("abcde"), 900, p=[.4, .3, .15, .1, .05])),
    "moved": lambda r: (r.choice(list("abcde"), 1500), r.choice(list("abcdef"), 900)),
    "rare-values": lambda r: (np.r_[r.choice(list("ab"), 20_000), ["z"]],
                              r.choice(list("abc"), 3000, p=[.5, .49, .01])),
}


@pytest.fixture(params=[*NUMERIC_CASES, *CATEGORY_CASES])
def binned_case(request):
    rng = _rng(zlib.crc32(request.param.encode()))
    if request.param in NUMERIC_CASES:
        ref, cur = NUMERIC_CASES[request.param](rng)
        return pd.Series(ref), pd.Series(cur), True
    ref, cur = CATEGORY_CASES[request.param](rng)
    return pd.Series(ref, dtype=object), pd.Series(cur, dtype=object), False


@pytest.mark.parametrize("name", ["psi", "kl_div", "jensenshannon", "hellinger"])
def test_binned_statistics_equal_evidentlys_recipe(binned_case, name):
    ref, cur, numeric = binned_case
    a, b = sides(ref, cur, numeric)
    kind = NUMERIC if numeric else CATEGORICAL
    outcome = st.STATTESTS[name].compute(a, b, kind)
    if name == "hellinger":
        expected = evidently_hellinger(ref, cur, numeric)
    else:
        r, c = evidently_binned(ref, cur, numeric, fill=name != "jensenshannon")
        expected = {
            "psi": lambda: float(np.sum((r - c) * np.log(r / c))),
            "kl_div": lambda: float(stats.entropy(r, c)),
            "jensenshannon": lambda: float(distance.jensenshannon(r, c)),
        }[name]()
    assert close(outcome.statistic, expected)
    assert outcome.binning  # the binning is stated with the result
    if numeric and ref.nunique() > 20 and name != "hellinger":
        assert outcome.binning.startswith("Sturges")


def test_chisquare_equals_scipy_with_evidentlys_expected_counts(binned_case):
    ref, cur, numeric = binned_case
    a, b = sides(ref, cur, numeric)
    keys = list(set(ref.unique()) | set(cur.unique()))
    rd = {**dict.fromkeys(keys, 0), **dict(ref.value_counts())}
    cd = {**dict.fromkeys(keys, 0), **dict(cur.value_counts())}
    f_exp = [rd[k] * len(cur) / len(ref) for k in keys]
    f_obs = [cd[k] for k in keys]
    with np.errstate(all="ignore"):
        expected = stats.chisquare(f_obs, f_exp)
    outcome = st.STATTESTS["chisquare"].compute(a, b, CATEGORICAL)
    assert close(outcome.statistic, float(expected.statistic))
    assert close(outcome.p_value, float(expected.pvalue))


@pytest.mark.parametrize("ref,cur", [
    (["a"] * 60 + ["b"] * 40, ["a"] * 45 + ["b"] * 55),
    ([True] * 30 + [False] * 70, [True] * 31 + [False] * 69),
    (["x"] * 50, ["y"] * 20 + ["x"] * 30),
])
def test_ztest_equals_the_two_proportion_formula(ref, cur):
    a, b = sides(ref, cur, numeric=False)
    first = sorted(set(ref) | set(cur))[0]
    p1 = sum(v != first for v in ref) / len(ref)
    p2 = sum(v != first for v in cur) / len(cur)
    pooled = (p1 * len(ref) + p2 * len(cur)) / (len(ref) + len(cur))
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / len(ref) + 1 / len(cur)))
    outcome = st.STATTESTS["ztest"].compute(a, b, CATEGORICAL)
    assert close(outcome.statistic, z)
    assert close(outcome.p_value, 2 * (1 - stats.norm.cdf(abs(z))))


def test_ztest_of_one_shared_value_is_p_one():
    a, b = sides(["k"] * 10, ["k"] * 12, numeric=False)
    assert st.STATTESTS["ztest"].compute(a, b, CATEGORICAL).p_value == 1.0


def test_verdict_rules_follow_evidentlys_comparisons():
    ks, chi, wd, energy = (st.STATTESTS[n] for n in ("ks", "chisquare", "wasserstein", "energy"))
    assert ks.drifted(st.Outcome(0.5, 0.05), 0.05)  # p <= threshold
    assert not chi.drifted(st.Outcome(3.0, 0.05), 0.05)  # p < threshold
    assert wd.drifted(st.Outcome(0.1), 0.1)  # distance >= threshold
    assert not energy.drifted(st.Outcome(0.1), 0.1)  # energy: distance > threshold
    assert not chi.drifted(st.Outcome(math.nan, math.nan), 0.05)  # NaN is no drift


def test_stattest_names_and_aliases():
    assert set(st.STATTESTS) == {"ks", "wasserstein", "psi", "jensenshannon", "kl_div",
                                 "chisquare", "ztest", "anderson", "cramer_von_mises",
                                 "hellinger", "energy"}
    assert st.get_stattest("z").name == "ztest"
    assert st.get_stattest(" ED ").name == "energy"
    with pytest.raises(ValueError, match="Unknown stattest 'nope'; choose one of ks"):
        st.get_stattest("nope")
