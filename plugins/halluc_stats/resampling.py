"""Bootstrap confidence intervals for a mean and for a paired mean difference.

Resampling is vectorised in batches of at most `BATCH_ELEMENTS` drawn indices (bounded memory,
about 24 MB whatever the data size) and seeded. The statistic is the mean, whose jackknife has a
closed form (U_i = x_i - mean), so BCa costs no extra resampling.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from halluc_stats.checks import finite_vector, paired_vectors, require_confidence
from ucli.errors import BadInput

METHODS = ("percentile", "bca")
BATCH_ELEMENTS = 1 << 21


@dataclass
class BootstrapResult:
    estimate: float
    ci_low: float
    ci_high: float
    method: str
    confidence: float
    n: int
    n_resamples: int
    seed: int | None
    std_error: float
    note: str | None = None


@dataclass
class PairedBootstrapResult(BootstrapResult):
    """estimate = mean(B) - mean(A) over pairs; p_value two-sided; effect size Cohen's d_z."""

    mean_a: float = math.nan
    mean_b: float = math.nan
    p_value: float = math.nan
    effect_size: float | None = None


def batch_rows(n: int, total: int, row_cost: int = 1) -> int:
    """How many rows of n items fit one batch (`row_cost`: working arrays per drawn index)."""
    return max(1, min(total, BATCH_ELEMENTS // (row_cost * max(n, 1))))


def index_batches(rng: np.random.Generator, n: int, total: int, row_cost: int = 1) -> Iterator[np.ndarray]:
    """Bootstrap index matrices, one row per resample, `total` rows in all, in bounded-memory batches."""
    index_type = np.int32 if n < 2**31 else np.int64  # 32-bit draws are about twice as fast
    batch = batch_rows(n, total, row_cost)
    for start in range(0, total, batch):
        yield rng.integers(0, n, size=(min(batch, total - start), n), dtype=index_type)


def count_batches(rng: np.random.Generator, n: int, total: int, row_cost: int = 1,
                  groups: np.ndarray | None = None) -> Iterator[np.ndarray]:  # fmt: skip
    """Bootstrap resamples as draws per item [rows, n], `total` rows in all, in bounded-memory
    batches. With `groups` (each item's group id, 0..G-1) whole groups are drawn, G per resample,
    and each item counts its group's draws: a cluster bootstrap (the claims of one answer move
    together), whose resamples hold a varying number of items."""
    if groups is None:
        for idx in index_batches(rng, n, total, row_cost):
            offsets = np.arange(idx.shape[0], dtype=np.int64)[:, None] * n
            yield np.bincount((idx + offsets).ravel(), minlength=idx.shape[0] * n).reshape(idx.shape[0], n)
        return
    g = np.asarray(groups, dtype=np.int64)
    m = int(g.max()) + 1
    for idx in index_batches(rng, m, total, row_cost * max(1, n // m)):
        offsets = np.arange(idx.shape[0], dtype=np.int64)[:, None] * m
        drawn = np.bincount((idx + offsets).ravel(), minlength=idx.shape[0] * m).reshape(idx.shape[0], m)
        yield drawn[:, g]


def resample_means(x: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `n_resamples` bootstrap resamples of x."""
    n = x.shape[0]
    return np.concatenate([np.take(x, idx).sum(axis=1) / n for idx in index_batches(rng, n, n_resamples)])


def _check(confidence: float, n_resamples: int, method: str) -> None:
    require_confidence(confidence)
    if n_resamples < 1:
        raise BadInput(f"n_resamples must be at least 1, got {n_resamples}")
    if method not in METHODS:
        raise BadInput(f"unknown bootstrap method '{method}' (expected one of {', '.join(METHODS)})")


def interval(
    x: np.ndarray, boot: np.ndarray, estimate: float, method: str, confidence: float
) -> tuple[float, float, str, str | None]:
    """(low, high, method used, note) for the mean of x; BCa falls back to percentile when undefined."""
    alpha = (1 - confidence) / 2
    note = None
    if method == "bca":
        z0 = ndtri((np.count_nonzero(boot < estimate) + np.count_nonzero(boot <= estimate)) / (2 * boot.size))
        u = x - x.mean()
        ss = float(np.sum(u**2))
        spread = np.ptp(x) > 0  # constant data: no jackknife variation, acceleration undefined
        accel = float(np.sum(u**3)) / (6 * ss**1.5) if spread and ss > 0 else math.nan
        if math.isfinite(z0) and math.isfinite(accel):
            z_lo, z_hi = ndtri(alpha), -ndtri(alpha)
            a1 = ndtr(z0 + (z0 + z_lo) / (1 - accel * (z0 + z_lo)))
            a2 = ndtr(z0 + (z0 + z_hi) / (1 - accel * (z0 + z_hi)))
            lo, hi = np.percentile(boot, [100 * a1, 100 * a2])
            return float(lo), float(hi), "bca", None
        note = "BCa is undefined for this degenerate distribution; used the percentile interval"
        warnings.warn(note, RuntimeWarning, stacklevel=3)
    lo, hi = np.percentile(boot, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi), "percentile", note


def bootstrap(
    values,
    method: str = "percentile",
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int | None = 0,
) -> BootstrapResult:
    """Mean of `values` with a bootstrap CI (`percentile` or `bca`)."""
    x = finite_vector(values, "values")
    _check(confidence, n_resamples, method)
    rng = np.random.default_rng(seed)
    estimate = float(x.mean())
    boot = resample_means(x, n_resamples, rng)
    lo, hi, used, note = interval(x, boot, estimate, method, confidence)
    return BootstrapResult(
        estimate,
        lo,
        hi,
        used,
        confidence,
        x.size,
        n_resamples,
        seed,
        float(boot.std(ddof=1) if n_resamples > 1 else 0.0),
        note,
    )


def paired_bootstrap(
    a,
    b,
    method: str = "percentile",
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int | None = 0,
) -> PairedBootstrapResult:
    """CI of mean(B) - mean(A) resampling pairs, a two-sided p-value, and Cohen's d_z.

    The p-value inverts the bootstrap: the share of resampled differences at least as far from
    the observed one as the observed one is from 0 (Efron & Tibshirani, ch. 16), with +1 smoothing.
    """
    xa, xb = paired_vectors(a, b, ("A", "B"))
    d = xb - xa
    _check(confidence, n_resamples, method)
    rng = np.random.default_rng(seed)
    estimate = float(d.mean())
    boot = resample_means(d, n_resamples, rng)
    lo, hi, used, note = interval(d, boot, estimate, method, confidence)
    far = np.count_nonzero(np.abs(boot - estimate) >= abs(estimate) - 1e-12 * max(1.0, abs(estimate)))
    p = (1 + far) / (n_resamples + 1)
    sd = float(d.std(ddof=1)) if d.size > 1 else 0.0
    effect = estimate / sd if sd > 0 else (0.0 if estimate == 0 else None)
    return PairedBootstrapResult(
        estimate, lo, hi, used, confidence, d.size, n_resamples, seed,
        float(boot.std(ddof=1) if n_resamples > 1 else 0.0), note,
        mean_a=float(xa.mean()), mean_b=float(xb.mean()), p_value=float(min(1.0, p)), effect_size=effect,
    )  # fmt: skip
