import numpy as np
import pytest
from scipy import stats

from halluc_stats import bootstrap, paired_bootstrap
from halluc_stats.resampling import BATCH_ELEMENTS, resample_means
from ucli.errors import BadInput

DATASETS = {
    "normal": np.random.default_rng(1).normal(2.0, 1.0, 150),
    "skewed": np.random.default_rng(2).exponential(1.0, 120) ** 2,
    "binary": (np.random.default_rng(3).random(200) < 0.3).astype(float),
}


@pytest.mark.parametrize("name", list(DATASETS))
@pytest.mark.parametrize(("method", "scipy_method"), [("percentile", "percentile"), ("bca", "BCa")])
def test_mean_ci_matches_scipy_within_monte_carlo_error(name, method, scipy_method):
    x = DATASETS[name]
    ours = bootstrap(x, method=method, n_resamples=20_000, seed=11)
    ref = stats.bootstrap((x,), np.mean, method=scipy_method, n_resamples=20_000, random_state=12)
    tol = 0.2 * ref.standard_error
    assert ours.method == method and ours.estimate == pytest.approx(x.mean())
    assert ours.ci_low == pytest.approx(ref.confidence_interval.low, abs=tol)
    assert ours.ci_high == pytest.approx(ref.confidence_interval.high, abs=tol)
    assert ours.std_error == pytest.approx(ref.standard_error, rel=0.05)


def test_confidence_level_is_honoured():
    x = DATASETS["normal"]
    narrow, wide = bootstrap(x, confidence=0.5), bootstrap(x, confidence=0.99)
    assert wide.ci_low < narrow.ci_low < narrow.ci_high < wide.ci_high
    ref = stats.bootstrap(
        (x,), np.mean, confidence_level=0.99, method="percentile", n_resamples=10_000, random_state=0
    )
    assert wide.ci_low == pytest.approx(ref.confidence_interval.low, abs=0.25 * ref.standard_error)


def test_bca_on_degenerate_data_falls_back_to_percentile_with_a_warning():
    with pytest.warns(RuntimeWarning, match="BCa is undefined"):
        r = bootstrap(np.full(30, 0.7), method="bca")
    assert r.method == "percentile" and r.note and (r.ci_low, r.ci_high) == pytest.approx((0.7, 0.7))


@pytest.mark.parametrize(("method", "scipy_method"), [("percentile", "percentile"), ("bca", "BCa")])
def test_paired_bootstrap_matches_scipy_paired(method, scipy_method):
    rng = np.random.default_rng(5)
    a = rng.random(300)
    b = np.clip(a + rng.normal(0.03, 0.1, 300), 0, 1)
    ours = paired_bootstrap(a, b, method=method, n_resamples=20_000, seed=3)
    ref = stats.bootstrap(
        (a, b), lambda x, y, axis: y.mean(axis=axis) - x.mean(axis=axis),
        paired=True, vectorized=True, method=scipy_method, n_resamples=20_000, random_state=4,
    )  # fmt: skip
    tol = 0.2 * ref.standard_error
    assert ours.estimate == pytest.approx(b.mean() - a.mean())
    assert (ours.mean_a, ours.mean_b) == pytest.approx((a.mean(), b.mean()))
    assert ours.ci_low == pytest.approx(ref.confidence_interval.low, abs=tol)
    assert ours.ci_high == pytest.approx(ref.confidence_interval.high, abs=tol)
    d = b - a
    assert ours.effect_size == pytest.approx(d.mean() / d.std(ddof=1))


def test_paired_p_value_agrees_with_the_paired_t_test_on_normal_data():
    rng = np.random.default_rng(9)
    for shift in (0.0, 0.1, 0.25):
        a = rng.normal(0, 1, 250)
        b = a + rng.normal(shift, 1, 250)
        ours = paired_bootstrap(a, b, n_resamples=20_000, seed=1).p_value
        assert ours == pytest.approx(stats.ttest_rel(b, a).pvalue, abs=0.03)


def test_identical_systems_give_zero_difference_and_p_one():
    x = DATASETS["binary"]
    r = paired_bootstrap(x, x)
    assert (r.estimate, r.ci_low, r.ci_high, r.p_value, r.effect_size) == (0.0, 0.0, 0.0, 1.0, 0.0)


def test_seeded_and_batched():
    x = np.random.default_rng(0).random(BATCH_ELEMENTS // 100 + 7)  # several batches of resamples
    a, b = resample_means(x, 500, np.random.default_rng(3)), resample_means(x, 500, np.random.default_rng(3))
    assert np.array_equal(a, b) and not np.array_equal(a, resample_means(x, 500, np.random.default_rng(4)))
    assert bootstrap(x, seed=1) == bootstrap(x, seed=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": []}, "no values"),
        ({"values": [1.0, float("nan")]}, "NaN"),
        ({"values": [1.0, 2.0], "method": "basic"}, "unknown bootstrap method"),
        ({"values": [1.0, 2.0], "confidence": 1.5}, "confidence"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(BadInput, match=message):
        bootstrap(**kwargs)
