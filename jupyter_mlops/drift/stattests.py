"""The drift tests, computed from prepared columns: sorted arrays and value counts.

Every numeric column is sorted once (see :mod:`.kinds`); the tests below read the sorted
arrays instead of handing raw data to scipy, which would sort again inside every call:

- Wasserstein-1 is the area between the two quantile functions, read straight off the two
  sorted arrays (``mean(|a - b|)`` when both sets have the same size).
- Kolmogorov–Smirnov and the energy distance need both empirical CDFs on the merged
  values; merging two sorted arrays is a linear pass (a stable sort of two sorted runs).
- Histograms are binary searches of the bin edges in the sorted arrays.

The statistics equal scipy's (``ks_2samp``, ``wasserstein_distance``, ``energy_distance``,
``chisquare``, ``jensenshannon``, ``entropy``, ``anderson_ksamp``, ``cramervonmises_2samp``)
to rounding; tests hold them to 1e-9. Verdicts, thresholds and binning follow Evidently's
stattests one for one:

==================  ============  =========  ================================================
test                kinds         threshold  drifted when / binning
==================  ============  =========  ================================================
ks                  numeric       0.05       p-value <= threshold
wasserstein         numeric       0.1        W1 / max(std(reference), 0.001) >= threshold
energy              numeric       0.1        energy distance > threshold
anderson            numeric       0.1        p-value < threshold (scipy caps p in [0.001, 0.25])
cramer_von_mises    numeric       0.1        p-value <= threshold
chisquare           categorical   0.05       p-value < threshold; expected = reference counts
                                             scaled to the current size
ztest               categorical   0.05       p-value < threshold; two-proportion z-test of the
                                             first value (sorted) against all others
psi                 both          0.1        PSI >= threshold; binned, empty bins filled
kl_div              both          0.1        KL(reference || current) >= threshold; binned,
                                             empty bins filled
jensenshannon       both          0.1        JS distance (natural log) >= threshold; binned
hellinger           both          0.1        Hellinger distance >= threshold; own binning
==================  ============  =========  ================================================

Binning of psi, kl_div and jensenshannon (Evidently's ``get_binned_data``): a numeric column
whose reference holds more than 20 distinct values is cut into Sturges bins over the range
of both sets together (``numpy.histogram_bin_edges(reference + current, "sturges")``);
any other column gets one bin per distinct value. "Empty bins filled" means a zero share
becomes 0.0001, or the smallest non-zero share / 10**6 when that is at most 0.0001.
Hellinger on numbers uses Sturges bins over the distinct values of both sets and density
histograms; on categories, the shares of each value.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

from ..errors import ValidationError, shorten
from .kinds import BOOLEAN, CATEGORICAL, NUMERIC, Side

SMALL_REFERENCE = 1000  # Evidently's switch from p-value tests to distances
FEW_VALUES = 5  # at most this many distinct values: tested as categories
BIN_BY_VALUE_LIMIT = 20  # numeric references with at most 20 distinct values bin by value
KS_EXACT_LIMIT = 10_000  # scipy's ks_2samp is exact up to this size (method="auto")


@dataclass(frozen=True)
class Outcome:
    statistic: float
    p_value: float | None = None
    binning: str = ""
    note: str = ""


@dataclass(frozen=True)
class StatTest:
    """A drift test: name, the kinds it applies to, default threshold, verdict rule."""

    name: str
    title: str
    kinds: tuple[str, ...]
    threshold: float
    compare: str  # "p<=", "p<", "s>=" or "s>"
    compute: Callable[[Side, Side, str], Outcome]

    @property
    def uses_p_value(self) -> bool:
        return self.compare.startswith("p")

    def drifted(self, outcome: Outcome, threshold: float) -> bool:
        score = outcome.p_value if self.uses_p_value else outcome.statistic
        if score is None or math.isnan(score):
            return False  # Evidently: a NaN score compares False, so no drift
        op = self.compare[1:]
        if op == "<=":
            return score <= threshold
        if op == "<":
            return score < threshold
        if op == ">=":
            return score >= threshold
        return score > threshold

    def applies_to(self, kind: str) -> bool:
        return (CATEGORICAL if kind == BOOLEAN else kind) in self.kinds


# -- building blocks on sorted arrays ------------------------------------------------------


def _merged_cdfs(a, b):
    """Merged sorted values and, at each, how many of ``a`` lie at or before it."""
    import numpy as np

    both = np.concatenate((a, b))
    # Two sorted runs: the stable sort (timsort) merges them in one linear pass.
    order = np.argsort(both, kind="stable")
    merged = both[order]
    from_a = np.cumsum(order < a.size)
    return merged, from_a


def wasserstein_sorted(a, b) -> float:
    """Wasserstein-1 distance of two sorted samples: the area between quantile functions."""
    import numpy as np

    n1, n2 = a.size, b.size
    if n1 == n2:
        return float(np.mean(np.abs(a - b)))
    # Quantile steps at i/n1 and j/n2, in units of 1/(n1*n2): merge the two progressions
    # by arithmetic (no sort), then sum |a - b| over each step's width.
    i = np.arange(1, n1 + 1, dtype=np.int64)
    j = np.arange(1, n2 + 1, dtype=np.int64)
    steps_a, steps_b = i * n2, j * n1
    steps = np.empty(n1 + n2, dtype=np.int64)
    steps[(i - 1) + (steps_a - 1) // n1] = steps_a
    steps[(j - 1) + steps_b // n2] = steps_b
    widths = np.diff(steps, prepend=0)
    gaps = np.abs(a[(steps - 1) // n2] - b[(steps - 1) // n1])
    return float(np.dot(widths, gaps)) / (n1 * n2)


def ks_statistic_sorted(a, b) -> float:
    """Two-sided Kolmogorov–Smirnov D of two sorted samples, as scipy computes it."""
    import numpy as np

    merged, from_a = _merged_cdfs(a, b)
    # Evaluate the CDFs after the last of each run of equal values (scipy's side="right").
    ends = np.append(merged[1:] != merged[:-1], True)
    count_a = from_a[ends]
    count_b = np.flatnonzero(ends) + 1 - count_a
    diffs = count_a / a.size - count_b / b.size
    return float(max(diffs.max(), min(max(-diffs.min(), 0.0), 1.0)))


def energy_sorted(a, b) -> float:
    """scipy's energy distance, sqrt(2) times the L2 distance of the CDFs, on sorted samples."""
    import numpy as np

    merged, from_a = _merged_cdfs(a, b)
    k = np.arange(1, merged.size, dtype=np.float64)
    cdf_a = from_a[:-1] / a.size
    cdf_b = (k - from_a[:-1]) / b.size
    return float(np.sqrt(2.0) * np.sqrt(np.dot(np.square(cdf_a - cdf_b), np.diff(merged))))


def sturges_edges(low: float, high: float, size: int, integer: bool = False):
    """``numpy.histogram_bin_edges(x, "sturges")`` from min, max and size of ``x``."""
    import numpy as np

    width = (high - low) / (np.log2(size) + 1.0)
    first, last = float(low), float(high)
    if first == last:
        first, last = first - 0.5, last + 0.5
    if width:
        if integer and width < 1:
            width = 1
        n_bins = int(np.ceil((last - first) / width))
    else:
        n_bins = 1
    return np.linspace(first, last, n_bins + 1, endpoint=True)


def bin_counts(sorted_values, edges):
    """``numpy.histogram(values, edges)[0]`` by binary search: bins are [e_i, e_i+1), the
    last one closed."""
    import numpy as np

    cuts = np.searchsorted(sorted_values, edges, side="left")
    cuts[-1] = np.searchsorted(sorted_values, edges[-1], side="right")
    return np.diff(cuts)


def aligned_counts(ref: Side, cur: Side):
    """Union of distinct values with each side's counts: ``(keys, ref_counts, cur_counts)``."""
    import numpy as np

    if ref.values is not None and cur.values is not None:
        ref_keys, ref_counts = ref.value_counts()
        cur_keys, cur_counts = cur.value_counts()
        keys = np.union1d(ref_keys, cur_keys)
        ref_aligned = np.zeros(keys.size, dtype=np.int64)
        cur_aligned = np.zeros(keys.size, dtype=np.int64)
        ref_aligned[np.searchsorted(keys, ref_keys)] = ref_counts
        cur_aligned[np.searchsorted(keys, cur_keys)] = cur_counts
        return keys, ref_aligned, cur_aligned
    ref_keys, ref_counts = _categories(ref)
    cur_keys, cur_counts = _categories(cur)
    index: dict = {}
    for key in list(ref_keys) + list(cur_keys):
        index.setdefault(key, len(index))
    ref_aligned = np.zeros(len(index), dtype=np.int64)
    cur_aligned = np.zeros(len(index), dtype=np.int64)
    ref_aligned[[index[k] for k in ref_keys]] = ref_counts
    cur_aligned[[index[k] for k in cur_keys]] = cur_counts
    keys = np.empty(len(index), dtype=object)
    keys[:] = list(index)
    return keys, ref_aligned, cur_aligned


def _categories(side: Side):
    keys, counts = side.value_counts()
    if side.values is not None:
        keys = [int(k) if side.integer else float(k) for k in keys.tolist()]
    return list(keys), counts


def _fill_empty(shares):
    """Evidently's ``feel_zeroes``: an empty bin gets a tiny share, so logs stay finite."""
    import numpy as np

    nonzero = shares[shares != 0]
    if nonzero.size == 0:
        return shares
    smallest = nonzero.min()
    np.place(shares, shares == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return shares


def binned_shares(ref: Side, cur: Side, kind: str, fill: bool):
    """Evidently's ``get_binned_data``: shares per bin, and how the bins were made."""
    if kind == NUMERIC and ref.n_unique > BIN_BY_VALUE_LIMIT:
        low = min(ref.values[0], cur.values[0])
        high = max(ref.values[-1], cur.values[-1])
        edges = sturges_edges(low, high, ref.n + cur.n, ref.integer and cur.integer)
        ref_shares = bin_counts(ref.values, edges) / ref.n
        cur_shares = bin_counts(cur.values, edges) / cur.n
        binning = f"Sturges, {edges.size - 1} bins over both sets"
    else:
        keys, ref_counts, cur_counts = aligned_counts(ref, cur)
        ref_shares, cur_shares = ref_counts / ref.n, cur_counts / cur.n
        binning = f"one bin per value ({len(keys)})"
    if fill:
        ref_shares, cur_shares = _fill_empty(ref_shares), _fill_empty(cur_shares)
        binning += ", empty bins filled"
    return ref_shares, cur_shares, binning


# -- the tests --------------------------------------------------------------------------


def _ks(ref: Side, cur: Side, kind: str) -> Outcome:
    import numpy as np
    from scipy import stats

    a, b = ref.values, cur.values
    if max(a.size, b.size) <= KS_EXACT_LIMIT:
        # Small samples: scipy's exact p-value; its re-sort of sorted data is cheap.
        result = stats.ks_2samp(a, b)
        return Outcome(float(result.statistic), float(result.pvalue))
    d = ks_statistic_sorted(a, b)
    m, n = sorted([float(a.size), float(b.size)], reverse=True)
    p = float(np.clip(stats.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))
    return Outcome(d, p)


def _wasserstein(ref: Side, cur: Side, kind: str) -> Outcome:
    import numpy as np

    norm = max(float(np.std(ref.values)), 0.001)
    return Outcome(wasserstein_sorted(ref.values, cur.values) / norm)


def _energy(ref: Side, cur: Side, kind: str) -> Outcome:
    return Outcome(energy_sorted(ref.values, cur.values))


def _anderson(ref: Side, cur: Side, kind: str) -> Outcome:
    from scipy import stats

    samples = [ref.values, cur.values]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns when it caps the p-value
        try:
            try:
                result = stats.anderson_ksamp(samples, variant="midrank")
            except TypeError:  # scipy < 1.17 has no ``variant``; midrank was the default
                result = stats.anderson_ksamp(samples)
        except ValueError:  # a single distinct value across both sets
            return Outcome(math.nan, math.nan, note="anderson needs two distinct values")
    p = getattr(result, "pvalue", None)
    if p is None:
        p = result.significance_level
    return Outcome(float(result.statistic), float(p))


def _cramer_von_mises(ref: Side, cur: Side, kind: str) -> Outcome:
    from scipy import stats

    if ref.n < 2 or cur.n < 2:
        return Outcome(math.nan, math.nan,
                       note="cramer_von_mises needs two values on each side")
    result = stats.cramervonmises_2samp(ref.values, cur.values)
    return Outcome(float(result.statistic), float(result.pvalue))


def _chisquare(ref: Side, cur: Side, kind: str) -> Outcome:
    from scipy import stats

    keys, ref_counts, cur_counts = aligned_counts(ref, cur)
    expected = ref_counts * (cur.n / ref.n)
    with warnings.catch_warnings(), _quiet_numpy():
        warnings.simplefilter("ignore")  # a value absent from the reference: inf, p = 0
        result = stats.chisquare(cur_counts, expected)
    return Outcome(float(result.statistic), float(result.pvalue),
                   f"one bin per value ({len(keys)})")


def _ztest(ref: Side, cur: Side, kind: str) -> Outcome:
    from scipy.stats import norm

    keys, ref_counts, cur_counts = aligned_counts(ref, cur)
    if len(keys) <= 1:  # one and the same value on both sides
        return Outcome(0.0, 1.0, note="one and the same value on both sides")
    first = _sort_keys(list(keys))[0]
    at = list(keys).index(first)
    n1, n2 = ref.n, cur.n
    p1 = float(n1 - ref_counts[at]) / n1
    p2 = float(n2 - cur_counts[at]) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    with _quiet_numpy():
        import numpy as np

        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
        p = 2 * (1 - norm.cdf(np.abs(z)))
    return Outcome(float(z), float(p), f"share of values other than {shorten(first, 40)}")


def _psi(ref: Side, cur: Side, kind: str) -> Outcome:
    import numpy as np

    r, c, binning = binned_shares(ref, cur, kind, fill=True)
    return Outcome(float(np.sum((r - c) * np.log(r / c))), binning=binning)


def _kl_div(ref: Side, cur: Side, kind: str) -> Outcome:
    from scipy import stats

    r, c, binning = binned_shares(ref, cur, kind, fill=True)
    return Outcome(float(stats.entropy(r, c)), binning=binning)


def _jensenshannon(ref: Side, cur: Side, kind: str) -> Outcome:
    from scipy.spatial import distance

    r, c, binning = binned_shares(ref, cur, kind, fill=False)
    return Outcome(float(distance.jensenshannon(r, c)), binning=binning)


def _hellinger(ref: Side, cur: Side, kind: str) -> Outcome:
    import numpy as np

    if kind == NUMERIC:
        keys = np.union1d(ref.value_counts()[0], cur.value_counts()[0])
        edges = sturges_edges(keys[0], keys[-1], keys.size, ref.integer and cur.integer)
        ref_counts, cur_counts = bin_counts(ref.values, edges), bin_counts(cur.values, edges)
        widths = np.diff(edges)
        ref_density = ref_counts / widths / ref_counts.sum()
        cur_density = cur_counts / widths / cur_counts.sum()
        bin_width = (edges.max() - edges.min()) / (edges.size - 1)
        overlap = float(np.sum(np.sqrt(ref_density * cur_density) * bin_width))
        binning = f"Sturges, {edges.size - 1} bins over the distinct values of both sets"
    else:
        keys, ref_counts, cur_counts = aligned_counts(ref, cur)
        overlap = float(np.sum(np.sqrt((ref_counts / ref.n) * (cur_counts / cur.n))))
        binning = f"one bin per value ({len(keys)})"
    return Outcome(math.sqrt(1 - min(max(overlap, 0.0), 1.0)), binning=binning)


def _sort_keys(keys: list) -> list:
    try:
        return sorted(keys)
    except TypeError:
        return sorted(keys, key=lambda k: (type(k).__name__, str(k)))


class _quiet_numpy:
    def __enter__(self):
        import numpy as np

        self._state = np.seterr(all="ignore")

    def __exit__(self, *exc):
        import numpy as np

        np.seterr(**self._state)
        return False


_BOTH = (NUMERIC, CATEGORICAL)
STATTESTS: dict[str, StatTest] = {
    test.name: test
    for test in (
        StatTest("ks", "K-S p-value", (NUMERIC,), 0.05, "p<=", _ks),
        StatTest("wasserstein", "Wasserstein distance (normed)", (NUMERIC,), 0.1, "s>=",
                 _wasserstein),
        StatTest("psi", "PSI", _BOTH, 0.1, "s>=", _psi),
        StatTest("jensenshannon", "Jensen-Shannon distance", _BOTH, 0.1, "s>=",
                 _jensenshannon),
        StatTest("kl_div", "Kullback-Leibler divergence", _BOTH, 0.1, "s>=", _kl_div),
        StatTest("chisquare", "chi-square p-value", (CATEGORICAL,), 0.05, "p<", _chisquare),
        StatTest("ztest", "Z-test p-value", (CATEGORICAL,), 0.05, "p<", _ztest),
        StatTest("anderson", "Anderson-Darling p-value", (NUMERIC,), 0.1, "p<", _anderson),
        StatTest("cramer_von_mises", "Cramér-von Mises p-value", (NUMERIC,), 0.1, "p<=",
                 _cramer_von_mises),
        StatTest("hellinger", "Hellinger distance", _BOTH, 0.1, "s>=", _hellinger),
        StatTest("energy", "energy distance", (NUMERIC,), 0.1, "s>", _energy),
    )
}
ALIASES = {"z": "ztest", "ed": "energy", "chi2": "chisquare", "kl": "kl_div",
           "js": "jensenshannon", "cvm": "cramer_von_mises"}


def get_stattest(name: str) -> StatTest:
    """The test called ``name`` (Evidently's names ``z`` and ``ed`` work too)."""
    if not isinstance(name, str):
        raise ValidationError(
            f"A stattest is given by name, one of {', '.join(STATTESTS)}; got "
            f"{type(name).__name__} {shorten(name)}."
        )
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in STATTESTS:
        raise ValidationError(
            f"Unknown stattest {shorten(name)}; choose one of {', '.join(STATTESTS)}."
        )
    return STATTESTS[key]


def default_stattest(kind: str, ref: Side, cur: Side) -> StatTest:
    """Evidently's choice: p-value tests for a reference of at most 1,000 values, distances
    above; columns with at most 5 distinct values are tested as categories."""
    few = ref.n_unique <= FEW_VALUES and cur.n_unique <= FEW_VALUES
    n_values = len(aligned_counts(ref, cur)[0]) if few else FEW_VALUES + 1
    categorical = kind in (CATEGORICAL, BOOLEAN) or n_values <= FEW_VALUES
    if ref.size <= SMALL_REFERENCE:
        if not categorical:
            return STATTESTS["ks"]
        return STATTESTS["chisquare"] if n_values > 2 else STATTESTS["ztest"]
    return STATTESTS["jensenshannon"] if categorical else STATTESTS["wasserstein"]
