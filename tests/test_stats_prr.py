import numpy as np
import pytest

from halluc_stats import prr, rejection_curves
from halluc_stats.rejection import plot_curves
from ucli.errors import BadInput


def polygraph_style_prr(ue, quality, max_rejection):
    """An independent implementation for untied scores: tail cumulative sums over ascending uncertainty."""
    n = len(ue)
    k = int(max_rejection * n)

    def area(sorted_quality):
        kept = np.cumsum(sorted_quality)[-k:] / np.arange(n - k + 1, n + 1)
        return kept.sum() / k

    a_ue = area(quality[np.argsort(ue)])
    a_oracle = area(np.sort(quality)[::-1])
    return (a_ue - quality.mean()) / (a_oracle - quality.mean())


def test_oracle_order_gives_one_and_reversed_order_by_hand():
    q = np.array([1.0, 0.0, 1.0, 0.0])
    assert prr(-q, q).prr == pytest.approx(1.0)
    # Rejecting the most uncertain item first removes a correct one: kept means 0.5 then 1/3.
    r = prr(np.array([0.1, 0.3, 0.9, 0.2]), q, max_rejection=0.5)
    assert (r.area_uncertainty, r.area_oracle, r.area_random) == pytest.approx(
        ((0.5 + 1 / 3) / 2, (0.5 + 2 / 3) / 2, 0.5)
    )
    assert r.prr == pytest.approx(-1.0) and r.n_points == 2


def test_random_scores_give_about_zero():
    rng = np.random.default_rng(0)
    values = [
        prr(rng.random(400), (rng.random(400) < 0.6).astype(float), n_resamples=10).prr for _ in range(60)
    ]
    assert abs(np.mean(values)) < 0.03


@pytest.mark.parametrize("max_rejection", [0.5, 0.3, 1.0])
def test_matches_an_independent_implementation_on_untied_data(max_rejection):
    rng = np.random.default_rng(4)
    for _ in range(50):
        n = int(rng.integers(10, 200))
        q = rng.random(n)
        ue = -q + rng.normal(scale=0.5, size=n)
        assert prr(ue, q, max_rejection, n_resamples=5).prr == pytest.approx(
            polygraph_style_prr(ue, q, max_rejection), abs=1e-12
        )


def test_tied_uncertainty_is_judged_in_expectation_so_row_order_never_matters():
    q = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    u = np.array([0.5, 0.5, 0.5, 0.1, 0.9, 0.9])
    base = prr(u, q, n_resamples=50).prr
    for perm in np.random.default_rng(1).permuted(np.tile(np.arange(6), (10, 1)), axis=1):
        assert prr(u[perm], q[perm], n_resamples=50).prr == pytest.approx(base)
    assert prr(np.zeros(10), np.arange(10.0), n_resamples=5).prr == pytest.approx(0.0)


def test_curves_and_bootstrap_ci():
    rng = np.random.default_rng(3)
    q = (rng.random(300) < 0.5).astype(float)
    u = -q + rng.normal(scale=0.8, size=300)
    c = rejection_curves(u, q, 0.5)
    assert c["rejection_rate"][0] == 0 and len(c["rejection_rate"]) == 150
    assert c["uncertainty"][0] == c["oracle"][0] == c["random"][0] == pytest.approx(q.mean())
    r = prr(u, q, n_resamples=1000, seed=2)
    assert r.ci_low < r.prr < r.ci_high and r.n_resamples_used == 1000


def test_plot_is_a_png(tmp_path):
    rng = np.random.default_rng(3)
    q = rng.random(50)
    out = plot_curves(-q + rng.normal(size=50), q, 0.5, tmp_path / "curve.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000


@pytest.mark.parametrize(
    ("u", "q", "kwargs", "message"),
    [
        ([0.1, 0.2, 0.3], [1.0, 1.0, 1.0], {}, "oracle does no better than random"),
        ([0.1], [1.0], {}, "no rejection point"),
        ([0.1, 0.2], [1.0, 0.0], {"max_rejection": 0}, "max_rejection"),
        ([0.1, float("nan")], [1.0, 0.0], {}, "NaN"),
    ],
)
def test_bad_input(u, q, kwargs, message):
    with pytest.raises(BadInput, match=message):
        prr(u, q, **kwargs)


@pytest.mark.parametrize("ties", [False, True])
def test_paired_prr_gives_the_resamples_prr_draws_for_every_score(ties):
    """Sorting each score once and weighting by draw counts is exactly `prr`'s bootstrap, score by
    score and share by share (same seed: same resamples), with tied scores averaged as `prr` does."""
    from halluc_stats import paired_prr

    rng = np.random.default_rng(5)
    n = 61
    quality = (rng.random(n) < 0.6).astype(float) if ties else rng.random(n)
    scores = (
        [rng.integers(0, 5, n) + 0.5 * (quality < 0.5), rng.random(n)] if ties else [rng.random(n), -quality]
    )
    shares = (0.3, 0.5, 1.0)
    boot = paired_prr(np.stack(scores), quality, shares, n_resamples=150, seed=9)
    assert boot.shape == (3, 2, 150)
    for j, s in enumerate(scores):
        for i, share in enumerate(shares):
            ref = prr(s, quality, max_rejection=share, n_resamples=150, seed=9)
            ok = boot[i, j][~np.isnan(boot[i, j])]
            assert ok.size == ref.n_resamples_used
            assert np.percentile(ok, [2.5, 97.5]) == pytest.approx([ref.ci_low, ref.ci_high], abs=1e-12)
