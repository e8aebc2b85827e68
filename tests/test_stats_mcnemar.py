import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from halluc_stats import mcnemar, mcnemar_counts
from ucli.errors import BadInput

RNG = np.random.default_rng(2024)
TABLES = [tuple(int(x) for x in RNG.integers(0, 60, size=4)) for _ in range(200)] + [
    (5, 0, 0, 7),
    (3, 1, 0, 2),
]


@pytest.mark.parametrize(
    ("method", "exact", "correction"),
    [("exact", True, False), ("chi2", False, False), ("chi2-cc", False, True)],
)
def test_matches_statsmodels_on_many_random_tables(method, exact, correction):
    for both_right, b, c, both_wrong in TABLES:
        ours = mcnemar_counts(b, c, method, both_right, both_wrong)
        if b + c == 0:
            assert ours.p_value == 1.0 and ours.statistic == 0.0
            continue
        ref = sm_mcnemar([[both_right, b], [c, both_wrong]], exact=exact, correction=correction)
        if method == "chi2-cc" and b == c:
            assert ours.p_value == 1.0  # Edwards' correction clamped at 0 (statsmodels does not clamp)
            continue
        assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12, abs=1e-12)
        assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)


def test_exact_is_scipys_two_sided_binomial_test():
    for _, b, c, _ in TABLES:
        if b + c:
            assert mcnemar_counts(b, c, "exact").p_value == pytest.approx(
                binomtest(min(b, c), b + c, 0.5).pvalue, rel=1e-9
            )


def test_auto_uses_exact_below_25_discordant_pairs():
    assert mcnemar_counts(12, 12, "auto").method == "exact"
    assert mcnemar_counts(20, 4, "auto").method == "exact"
    assert mcnemar_counts(20, 5, "auto").method == "chi2-cc"


@pytest.mark.parametrize("method", ["auto", "exact", "chi2", "chi2-cc"])
def test_no_discordant_pairs_gives_p_one_not_nan(method):
    r = mcnemar([1, 0, 1], [1, 0, 1], method=method)
    assert (r.b, r.c, r.p_value, r.diff) == (0, 0, 1.0, 0.0)
    assert r.ci_low < 0 < r.ci_high  # Agresti-Min keeps a real width at b = c = 0


def test_table_and_accuracies_by_hand():
    a = [1, 1, 1, 0, 0, 1, 0, 1]
    b = [1, 0, 1, 1, 1, 1, 0, 0]
    r = mcnemar(a, b)
    assert (r.both_right, r.b, r.c, r.both_wrong, r.n) == (3, 2, 2, 1, 8)
    assert (r.acc_a, r.acc_b, r.diff) == (5 / 8, 5 / 8, 0.0)
    # Agresti-Min by hand: n~ = 10, b~ = c~ = 2.5 -> centre 0, se = sqrt(5) / 10.
    assert r.ci_high == pytest.approx(1.959963984540054 * 5**0.5 / 10) and r.ci_low == pytest.approx(
        -r.ci_high
    )


def test_difference_ci_has_nominal_coverage():
    rng = np.random.default_rng(7)
    cells = np.array([0.45, 0.10, 0.20, 0.25])  # both right, A only, B only, both wrong
    true_diff = cells[2] - cells[1]
    hits = 0
    for _ in range(2000):
        both_right, b, c, both_wrong = rng.multinomial(150, cells)
        r = mcnemar_counts(b, c, "chi2", both_right, both_wrong)
        hits += r.ci_low <= true_diff <= r.ci_high
    assert 0.93 <= hits / 2000 <= 0.97


def test_non_binary_values_are_refused():
    with pytest.raises(BadInput, match=r"McNemar needs binary values .* found 0.5"):
        mcnemar([1, 0.5], [1, 0])
    with pytest.raises(BadInput, match="unknown McNemar method"):
        mcnemar_counts(1, 2, "fisher")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=80),
    st.sampled_from(["auto", "exact", "chi2", "chi2-cc"]),
)
def test_swapping_a_and_b_mirrors_the_result(pairs, method):
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    ab, ba = mcnemar(a, b, method), mcnemar(b, a, method)
    assert (ab.b, ab.c) == (ba.c, ba.b)
    assert ab.p_value == ba.p_value and ab.statistic == ba.statistic
    assert ab.diff == -ba.diff
    assert ab.ci_low == pytest.approx(-ba.ci_high) and ab.ci_high == pytest.approx(-ba.ci_low)
