"""McNemar's test on the 2x2 table of two classifiers judged on the same items."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from halluc_stats.checks import paired_vectors, require_confidence
from ucli.errors import BadInput

METHODS = ("auto", "exact", "chi2", "chi2-cc")
AUTO_EXACT_BELOW = 25  # `auto` uses the exact test when b + c is below this


@dataclass
class McNemarResult:
    """2x2 table, test and accuracies. `b`: A right & B wrong; `c`: A wrong & B right; diff = acc_b - acc_a."""

    b: int
    c: int
    statistic: float
    p_value: float
    method: str
    both_right: int | None = None
    both_wrong: int | None = None
    n: int | None = None
    acc_a: float | None = None
    acc_b: float | None = None
    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float = 0.95


def require_binary(values: np.ndarray, what: str) -> None:
    bad = values[(values != 0) & (values != 1)]
    if bad.size:
        raise BadInput(f"{what}: McNemar needs binary values (0/1, true/false); found {bad[0]:g}")


def _test(b: int, c: int, method: str) -> tuple[float, float, str]:
    if method not in METHODS:
        raise BadInput(f"unknown McNemar method '{method}' (expected one of {', '.join(METHODS)})")
    if method == "auto":
        method = "exact" if b + c < AUTO_EXACT_BELOW else "chi2-cc"
    if b + c == 0:
        return 0.0, 1.0, method  # no discordant pairs: no evidence of a difference
    if method == "exact":
        p = min(1.0, 2.0 * stats.binom.cdf(min(b, c), b + c, 0.5))
        return float(min(b, c)), float(p), method
    diff = abs(b - c)
    if method == "chi2-cc":  # Edwards' correction, clamped so that b == c gives p = 1
        diff = max(diff - 1, 0)
    stat = diff**2 / (b + c)
    return float(stat), float(stats.chi2.sf(stat, 1)), method


def mcnemar_counts(
    b: int,
    c: int,
    method: str = "auto",
    both_right: int | None = None,
    both_wrong: int | None = None,
    confidence: float = 0.95,
) -> McNemarResult:
    """McNemar from the discordant counts; with the concordant ones too, accuracies and their difference.

    The difference acc_b - acc_a gets the Agresti-Min (2005) adjusted Wald interval (0.5 added to
    every cell), which keeps a sensible width when b = c = 0.
    """
    for name, v in (("b", b), ("c", c), ("both_right", both_right), ("both_wrong", both_wrong)):
        if v is not None and (v < 0 or int(v) != v):
            raise BadInput(f"{name} must be a non-negative whole number, got {v}")
    require_confidence(confidence)
    stat, p, used = _test(int(b), int(c), method)
    result = McNemarResult(int(b), int(c), stat, p, used, confidence=confidence)
    if both_right is None or both_wrong is None:
        return result
    n = int(both_right + b + c + both_wrong)
    if n == 0:
        raise BadInput("no pairs to compare")
    result.both_right, result.both_wrong, result.n = int(both_right), int(both_wrong), n
    result.acc_a = (both_right + b) / n
    result.acc_b = (both_right + c) / n
    result.diff = (c - b) / n
    n_adj = n + 2.0
    b_adj, c_adj = b + 0.5, c + 0.5
    center = (c_adj - b_adj) / n_adj
    se = math.sqrt(max((b_adj + c_adj) - (c_adj - b_adj) ** 2 / n_adj, 0.0)) / n_adj
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    result.ci_low, result.ci_high = max(-1.0, center - z * se), min(1.0, center + z * se)
    return result


def mcnemar(a, b, method: str = "auto", confidence: float = 0.95) -> McNemarResult:
    """McNemar on paired binary outcomes (1 = right) of A and B over the same items."""
    a, b_arr = paired_vectors(a, b, ("A", "B"))
    require_binary(a, "A")
    require_binary(b_arr, "B")
    a_right, b_right = a == 1, b_arr == 1
    return mcnemar_counts(
        int(np.sum(a_right & ~b_right)),
        int(np.sum(~a_right & b_right)),
        method,
        both_right=int(np.sum(a_right & b_right)),
        both_wrong=int(np.sum(~a_right & ~b_right)),
        confidence=confidence,
    )
