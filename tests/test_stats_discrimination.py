import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score

from halluc_stats import auroc
from halluc_stats.discrimination import curve_areas
from ucli.errors import BadInput


def test_vectorised_curves_equal_sklearn_on_random_inputs_with_ties():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(400):
        n = int(rng.integers(2, 60))
        s = rng.integers(0, int(rng.integers(2, 8)), size=n).astype(float)  # many ties
        y = rng.integers(0, 2, size=n)
        if y.min() == y.max():
            continue
        order = np.argsort(-s, kind="stable")
        roc, ap = curve_areas(s[order][None], y[order][None])
        assert roc[0] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert ap[0] == pytest.approx(average_precision_score(y, s), abs=1e-12)
        checked += 1
    assert checked > 300


def test_point_estimates_are_sklearns_and_direction_flips_explicitly():
    rng = np.random.default_rng(1)
    s = rng.normal(size=200)
    y = (s + rng.normal(size=200) > 0.3).astype(int)
    r = auroc(s, y, n_resamples=200, n_permutations=200)
    assert r.auroc == roc_auc_score(y, s) and r.auprc == average_precision_score(y, s)
    flipped = auroc(s, y, higher_is_positive=False, n_resamples=200, n_permutations=200)
    assert flipped.auroc == pytest.approx(1 - r.auroc) and flipped.auprc == average_precision_score(y, -s)
    assert (r.n, r.n_positive) == (200, int(y.sum()))


def test_bootstrap_ci_matches_scipy_with_sklearn_as_the_statistic():
    rng = np.random.default_rng(2)
    s = rng.normal(size=120)
    y = (s + rng.normal(scale=1.5, size=120) > 0).astype(int)
    ours = auroc(s, y, n_resamples=4000, n_permutations=10, seed=1)

    def stat(yy, ss):
        return roc_auc_score(yy, ss) if 0 < yy.sum() < yy.size else np.nan

    ref = stats.bootstrap(
        (y, s), stat, paired=True, vectorized=False, method="percentile", n_resamples=4000, random_state=2
    )
    assert ours.auroc_ci_low == pytest.approx(ref.confidence_interval.low, abs=0.2 * ref.standard_error)
    assert ours.auroc_ci_high == pytest.approx(ref.confidence_interval.high, abs=0.2 * ref.standard_error)
    assert (
        ours.auroc_ci_low < ours.auroc < ours.auroc_ci_high
        and ours.auprc_ci_low < ours.auprc < ours.auprc_ci_high
    )


@pytest.mark.parametrize("strength", [0.0, 0.6, 1.2])
def test_permutation_p_value_matches_the_exact_mann_whitney_test(strength):
    rng = np.random.default_rng(int(strength * 10))
    y = np.array([1] * 9 + [0] * 11)
    s = rng.normal(size=20) + strength * y
    ours = auroc(s, y, n_resamples=10, n_permutations=20_000, seed=0)
    exact = stats.mannwhitneyu(s[y == 1], s[y == 0], alternative="two-sided", method="exact").pvalue
    assert ours.p_value == pytest.approx(exact, abs=0.015)


def test_resamples_with_one_class_are_left_out():
    y = np.array([1] + [0] * 9)
    r = auroc(np.arange(10.0), y, n_resamples=300, n_permutations=50)
    assert 0 < r.n_resamples_used < 300


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([0.1, 0.2], [1, 1], "needs both classes"),
        ([0.1, 0.2], [1, 2], "labels must be binary"),
        ([0.1, float("nan")], [1, 0], "NaN"),
        ([0.1], [1, 0], "one length"),
    ],
)
def test_bad_input(scores, labels, message):
    with pytest.raises(BadInput, match=message):
        auroc(scores, labels)


def test_paired_areas_equal_sorting_every_resample():
    """Counting draws per item and sorting each score once gives what sorting each resample gives,
    ties included, for every score on the same resamples."""
    import numpy as np

    from halluc_stats.discrimination import _sorted_rows, curve_areas, paired_areas
    from halluc_stats.resampling import index_batches

    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.4).astype(float)
    scores = np.round(rng.normal(size=(3, 300)) + y, 1)  # rounded: many ties
    roc, ap = paired_areas(scores, y, 50, seed=4)
    idx = next(index_batches(np.random.default_rng(4), 300, 50, row_cost=4))
    for e in range(3):
        r, a = curve_areas(*_sorted_rows(scores[e][idx], y[idx]))
        assert np.allclose(r, roc[e], atol=1e-12) and np.allclose(a, ap[e], atol=1e-12)
