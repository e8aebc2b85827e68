"""Prediction rejection ratio (PRR): how much of the oracle's gain an uncertainty score achieves.

Items are rejected most-uncertain first. For rejection counts j = 0 .. k-1, with
k = floor(max_rejection * n), the rejection curve is the mean quality of the items kept; each
curve's area is its mean over those points (as LM-Polygraph computes it for the RAUQ paper).
PRR = (area_uncertainty - area_random) / (area_oracle - area_random): 1 for the oracle order, about
0 for a random one. Items with tied uncertainty are rejected together in expectation: their
qualities are averaged, so file order can never flatter a score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from halluc_stats.checks import paired_vectors, require_confidence
from halluc_stats.resampling import count_batches, index_batches
from ucli.errors import BadInput


@dataclass
class PRRResult:
    prr: float
    ci_low: float
    ci_high: float
    area_uncertainty: float
    area_oracle: float
    area_random: float
    n: int
    max_rejection: float
    n_points: int
    confidence: float
    n_resamples: int
    n_resamples_used: int  # resamples where the oracle beats random (PRR defined)
    seed: int | None


def _curves(unc: np.ndarray, quality: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise rejection curves (uncertainty, oracle, random) at rejection counts 0..k-1."""
    m, n = unc.shape
    order = np.argsort(unc, axis=1, kind="stable")  # least uncertain first: kept longest
    u = np.take_along_axis(unc, order, axis=1)
    q = np.take_along_axis(quality, order, axis=1)
    # Average quality within each group of tied uncertainty (group ids made unique per row).
    starts = np.ones((m, n), dtype=bool)
    starts[:, 1:] = u[:, 1:] != u[:, :-1]
    gid = np.cumsum(starts, axis=1) - 1 + (np.arange(m) * n)[:, None]
    sums = np.bincount(gid.ravel(), weights=q.ravel(), minlength=m * n)
    counts = np.bincount(gid.ravel(), minlength=m * n)
    q_tied = (sums / np.maximum(counts, 1))[gid]
    kept = np.arange(n, n - k, -1)  # items kept after rejecting 0..k-1

    def kept_means(ordered: np.ndarray) -> np.ndarray:  # mean of the first n, n-1, ..., n-k+1 items
        return np.cumsum(ordered, axis=1)[:, n - k :][:, ::-1] / kept

    by_unc = kept_means(q_tied)
    by_oracle = kept_means(-np.sort(-quality, axis=1))
    by_random = np.repeat(quality.mean(axis=1, keepdims=True), k, axis=1)
    return by_unc, by_oracle, by_random


def _points(n: int, max_rejection: float) -> int:
    if not 0 < max_rejection <= 1:
        raise BadInput(f"max_rejection must be in (0, 1], got {max_rejection}")
    k = int(np.floor(max_rejection * n + 1e-9))
    if k < 1:
        raise BadInput(f"{n} item(s) leave no rejection point at max_rejection={max_rejection}")
    return k


def rejection_curves(uncertainty, quality, max_rejection: float = 0.5) -> dict[str, np.ndarray]:
    """Rejection rates and the three curves, for plotting or inspection."""
    u = np.asarray(uncertainty, dtype=np.float64)[None, :]
    q = np.asarray(quality, dtype=np.float64)[None, :]
    k = _points(u.shape[1], max_rejection)
    by_unc, by_oracle, by_random = _curves(u, q, k)
    return {
        "rejection_rate": np.arange(k) / u.shape[1],
        "uncertainty": by_unc[0],
        "oracle": by_oracle[0],
        "random": by_random[0],
    }


def _prr_rows(
    unc: np.ndarray, quality: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    by_unc, by_oracle, by_random = _curves(unc, quality, k)
    a_unc, a_orc, a_rnd = by_unc.mean(axis=1), by_oracle.mean(axis=1), by_random.mean(axis=1)
    gap = a_orc - a_rnd
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(gap > 1e-12 * np.maximum(1.0, np.abs(a_orc)), (a_unc - a_rnd) / gap, np.nan)
    return ratio, a_unc, a_orc, a_rnd


def prr(
    uncertainty,
    quality,
    max_rejection: float = 0.5,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> PRRResult:
    """PRR of an uncertainty score (higher = less trustworthy) against per-item quality (higher = better)."""
    u, q = paired_vectors(uncertainty, quality, ("uncertainty", "quality"))
    require_confidence(confidence)
    n = u.size
    k = _points(n, max_rejection)
    ratio, a_unc, a_orc, a_rnd = _prr_rows(u[None, :], q[None, :], k)
    if np.isnan(ratio[0]):
        raise BadInput(
            "PRR is undefined: the oracle does no better than random (every item has the same quality)"
        )
    rng = np.random.default_rng(seed)
    boot = [_prr_rows(u[idx], q[idx], k)[0] for idx in index_batches(rng, n, n_resamples, row_cost=4)]
    values = np.concatenate(boot) if boot else np.array([])
    ok = values[~np.isnan(values)]
    alpha = (1 - confidence) / 2
    lo, hi = np.percentile(ok, [100 * alpha, 100 * (1 - alpha)]) if ok.size else (np.nan, np.nan)
    return PRRResult(
        float(ratio[0]), float(lo), float(hi), float(a_unc[0]), float(a_orc[0]), float(a_rnd[0]), n,
        max_rejection, k, confidence, n_resamples, int(ok.size), seed,
    )  # fmt: skip


def paired_prr(
    scores,
    quality,
    max_rejections: tuple[float, ...] = (0.5, 1.0),
    n_resamples: int = 1000,
    seed: int | None = 0,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Bootstrap PRR of several scores [E, n] against one quality vector at each maximum rejection,
    every score on the same resamples (those `prr` and `paired_areas` draw with the same seed):
    [len(max_rejections), E, n_resamples], NaN where a resample's oracle does not beat random.

    A resample is its count of draws per item, so each score is sorted once. With x_t the t-th
    kept-first resampled quality (tied scores averaged, as in `prr`), a curve's area
    (1/k) sum_{m=n-k+1..n} (1/m) sum_{t<=m} x_t is (1/k) sum_t x_t g_k(t), g_k(t) = H_n - H_{max(t, n-k+1)-1}
    (H: harmonic numbers); every draw of one item or tied group has the same x, so a group adds
    its mean quality times the sum of g_k over its run of draws.

    With `groups`, whole groups are resampled (`count_batches`): a resample's size varies, so each
    is expanded and its curves computed as `prr` computes them."""
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    q = np.asarray(quality, dtype=np.float64)
    n = q.size
    if groups is not None:
        return _grouped_prr(s, q, max_rejections, n_resamples, seed, groups)
    ks = [_points(n, share) for share in max_rejections]
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1))])
    t = np.arange(1, n + 1)
    run_sums = [np.concatenate([[0.0], np.cumsum(harmonic[n] - harmonic[np.maximum(t, n - k + 1) - 1])]) / k
                for k in ks]  # fmt: skip
    by_quality = np.argsort(-q, kind="stable")
    rng = np.random.default_rng(seed)
    out = []
    for counts in count_batches(rng, n, n_resamples, row_cost=4):
        a_orc = _kept_areas(q[by_quality], counts[:, by_quality], run_sums)
        a_rnd = (counts @ q) / n
        gap = a_orc - a_rnd
        rows = []
        for score in s:
            order = np.argsort(score, kind="stable")  # least uncertain first: kept longest
            u, w = score[order], counts[:, order]
            starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
            mean: np.ndarray = q[order]
            if starts.size < n:  # tied scores: each group's draws take the group's mean quality
                w = np.add.reduceat(w, starts, axis=1)
                mean = np.add.reduceat(counts[:, order] * q[order], starts, axis=1) / np.maximum(w, 1)
            a_unc = _kept_areas(mean, w, run_sums)
            with np.errstate(invalid="ignore", divide="ignore"):
                rows.append(
                    np.where(gap > 1e-12 * np.maximum(1.0, np.abs(a_orc)), (a_unc - a_rnd) / gap, np.nan)
                )
        out.append(np.stack(rows, axis=1))  # [S, E, r]
    return np.concatenate(out, axis=2)


def _grouped_prr(s: np.ndarray, q: np.ndarray, shares: tuple[float, ...], n_resamples: int, seed: int | None,
                 groups: np.ndarray) -> np.ndarray:  # fmt: skip
    """`paired_prr` over cluster resamples: [len(shares), E, n_resamples]."""
    out = np.full((len(shares), s.shape[0], n_resamples), np.nan)
    rng, at = np.random.default_rng(seed), 0
    for counts in count_batches(rng, q.size, n_resamples, row_cost=4, groups=groups):
        for row in counts:
            idx = np.repeat(np.arange(q.size), row)
            for i, share in enumerate(shares):
                k = int(np.floor(share * idx.size + 1e-9))
                if k >= 1:
                    out[i, :, at] = _prr_rows(s[:, idx], np.broadcast_to(q[idx], (s.shape[0], idx.size)), k)[
                        0
                    ]
            at += 1
    return out


def _kept_areas(mean: np.ndarray, counts: np.ndarray, run_sums: list[np.ndarray]) -> np.ndarray:
    """[len(run_sums), r] curve areas from groups in kept-first order: each group's quality (one
    per group [g], or per resample [r, g]) and draw counts [r, g]; `run_sums[i][m]` is
    sum_{t<=m} g_k(t) / k. Summed by parts, sum_i mean_i (G[end_i] - G[end_(i-1)]) is
    sum_i G[end_i] (mean_i - mean_(i+1)): one gather per curve."""
    end = np.cumsum(counts, axis=1)
    step = mean - np.concatenate([mean[..., 1:], np.zeros_like(mean[..., :1])], axis=-1)
    if step.ndim == 1:
        return np.stack([g[end] @ step for g in run_sums])
    return np.stack([np.einsum("ij,ij->i", g[end], step) for g in run_sums])


def plot_curves(uncertainty, quality, max_rejection: float, path: str | Path, title: str = "") -> Path:
    """Draw the uncertainty, oracle and random rejection curves to a PNG (written atomically)."""
    from ucli.artifacts import new_figure, write_figure

    c = rejection_curves(uncertainty, quality, max_rejection)
    fig, ax = new_figure(figsize=(6, 4), dpi=120)
    ax.plot(c["rejection_rate"], c["oracle"], label="oracle", color="tab:green")
    ax.plot(c["rejection_rate"], c["uncertainty"], label="uncertainty", color="tab:blue")
    ax.plot(c["rejection_rate"], c["random"], label="random", color="tab:gray", linestyle="--")
    ax.set_xlabel("rejection rate")
    ax.set_ylabel("mean quality of kept items")
    ax.set_title(title or "Prediction rejection curves")
    ax.legend()
    return write_figure(fig, path)
