"""AUROC and AUPRC of a score against binary labels, with bootstrap CIs and a permutation p-value.

Point estimates come from scikit-learn. Resamples and permutations use a vectorised version of the
same curves (`curve_areas`): ROC by the trapezoid rule and average precision as a step sum, both
evaluated only at the last item of each group of tied scores, as scikit-learn does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from halluc_stats.checks import paired_vectors, require_confidence
from halluc_stats.resampling import batch_rows, count_batches, index_batches
from ucli.errors import BadInput


@dataclass
class DiscriminationResult:
    auroc: float
    auroc_ci_low: float
    auroc_ci_high: float
    auprc: float
    auprc_ci_low: float
    auprc_ci_high: float
    p_value: float  # permutation test of AUROC = 0.5, two-sided
    n: int
    n_positive: int
    higher_is_positive: bool
    confidence: float
    n_resamples: int
    n_resamples_used: int  # resamples holding both classes
    n_permutations: int
    seed: int | None


def curve_areas(scores_desc: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise (AUROC, average precision) for rows already sorted by descending score.

    Rows with a single class give NaN.
    """
    y = labels.astype(np.float64)
    tps = np.cumsum(y, axis=1)
    fps = np.cumsum(1.0 - y, axis=1)
    pos, neg = tps[:, -1], fps[:, -1]
    end = np.ones(scores_desc.shape, dtype=bool)  # last item of each group of tied scores
    end[:, :-1] = scores_desc[:, :-1] != scores_desc[:, 1:]
    zero = np.zeros((y.shape[0], 1))
    # tps/fps at the previous group end: running max of end values (both counts never decrease).
    prev_tps = np.maximum.accumulate(np.hstack([zero, np.where(end, tps, 0.0)[:, :-1]]), axis=1)
    prev_fps = np.maximum.accumulate(np.hstack([zero, np.where(end, fps, 0.0)[:, :-1]]), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        roc = np.where(end, (fps - prev_fps) * (tps + prev_tps) / 2.0, 0.0).sum(axis=1) / (pos * neg)
        ap = np.where(end, (tps - prev_tps) * tps / (tps + fps), 0.0).sum(axis=1) / pos
    bad = (pos == 0) | (neg == 0)
    roc[bad], ap[bad] = np.nan, np.nan
    return roc, ap


def _sorted_rows(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(labels, order, axis=1)


def _permutation_p(
    s: np.ndarray, y: np.ndarray, auc: float, n_permutations: int, rng: np.random.Generator
) -> float:
    """Two-sided permutation p of AUROC = 0.5: the score order is fixed, so sort once and permute
    the labels along it."""
    n = s.size
    order = np.argsort(-s, kind="stable")
    s_desc, y_desc = s[order][None, :], y[order]
    extreme = 0
    batch = batch_rows(n, n_permutations, row_cost=4)
    for start in range(0, n_permutations, batch):
        m = min(batch, n_permutations - start)
        perm = rng.permuted(np.broadcast_to(y_desc, (m, n)), axis=1)
        r, _ = curve_areas(np.broadcast_to(s_desc, (m, n)), perm)
        extreme += int(np.count_nonzero(np.abs(r - 0.5) >= abs(auc - 0.5) - 1e-12))
    return (1 + extreme) / (n_permutations + 1)


def auroc(
    scores,
    labels,
    higher_is_positive: bool = True,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    n_permutations: int = 2000,
    seed: int | None = 0,
) -> DiscriminationResult:
    """How well `scores` separate `labels` (1 = positive). With higher_is_positive=False, low scores mean positive."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    s, y = paired_vectors(scores, labels, ("scores", "labels"))
    bad = y[(y != 0) & (y != 1)]
    if bad.size:
        raise BadInput(f"labels must be binary (0/1, true/false); found {bad[0]:g}")
    n_pos = int(y.sum())
    if n_pos in (0, y.size):
        raise BadInput(f"AUROC needs both classes; all {y.size} labels are {int(y[0])}")
    require_confidence(confidence)
    if higher_is_positive is False:
        s = -s
    auc = float(roc_auc_score(y, s))
    ap = float(average_precision_score(y, s))
    rng = np.random.default_rng(seed)
    n = s.size
    boot_roc, boot_ap = [], []
    for idx in index_batches(rng, n, n_resamples, row_cost=4):
        r, a = curve_areas(*_sorted_rows(s[idx], y[idx]))
        boot_roc.append(r)
        boot_ap.append(a)
    roc_b = np.concatenate(boot_roc) if boot_roc else np.array([])
    ap_b = np.concatenate(boot_ap) if boot_ap else np.array([])
    ok = ~np.isnan(roc_b)
    alpha = (1 - confidence) / 2
    q = [100 * alpha, 100 * (1 - alpha)]
    roc_lo, roc_hi = np.percentile(roc_b[ok], q) if ok.any() else (np.nan, np.nan)
    ap_lo, ap_hi = np.percentile(ap_b[ok], q) if ok.any() else (np.nan, np.nan)

    p = _permutation_p(s, y, auc, n_permutations, rng)
    return DiscriminationResult(
        auc, float(roc_lo), float(roc_hi), ap, float(ap_lo), float(ap_hi), float(p), n, n_pos,
        bool(higher_is_positive), confidence, n_resamples, int(ok.sum()), n_permutations, seed,
    )  # fmt: skip


def paired_areas(
    scores: np.ndarray,
    labels: np.ndarray,
    n_resamples: int,
    seed: int | None = 0,
    groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap AUROC and average precision of several scores [E, n] (higher = positive) against
    one label vector, every score on the same resampled items, so that differences between scores
    are paired: returns two [E, n_resamples] arrays (NaN where a resample holds one class).

    A resample is its count of draws per item, so each score is sorted once: the curves of a
    resample are weighted cumulative sums along that order, evaluated at the ends of tied groups
    (the values `curve_areas` gives on the resampled rows, without sorting each of them). With
    `groups`, whole groups are resampled (`count_batches`)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    n = y.size
    rng = np.random.default_rng(seed)
    roc, ap = [], []
    for counts in count_batches(rng, n, n_resamples, row_cost=4, groups=groups):
        rows_roc, rows_ap = [], []
        for score in s:
            order = np.argsort(-score, kind="stable")
            w, ys = counts[:, order].astype(np.float64), y[order]
            end = np.ones(n, dtype=bool)
            end[:-1] = score[order][:-1] != score[order][1:]
            r, a = _weighted_areas(np.cumsum(w * ys, axis=1), np.cumsum(w * (1.0 - ys), axis=1), end)
            rows_roc.append(r)
            rows_ap.append(a)
        roc.append(np.stack(rows_roc))
        ap.append(np.stack(rows_ap))
    return np.concatenate(roc, axis=1), np.concatenate(ap, axis=1)


def _weighted_areas(tps: np.ndarray, fps: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUROC (trapezoids) and average precision (steps) from running true/false positive counts,
    evaluated only where `end` marks the last item of a group of tied scores."""
    tps_e, fps_e = tps[:, end], fps[:, end]
    zero = np.zeros((tps.shape[0], 1))
    prev_t, prev_f = np.hstack([zero, tps_e[:, :-1]]), np.hstack([zero, fps_e[:, :-1]])
    pos, neg = tps[:, -1], fps[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        roc = ((fps_e - prev_f) * (tps_e + prev_t) / 2.0).sum(axis=1) / (pos * neg)
        precision = np.where(tps_e + fps_e > 0, tps_e / (tps_e + fps_e), 0.0)
        ap = ((tps_e - prev_t) * precision).sum(axis=1) / pos
    bad = (pos == 0) | (neg == 0)
    roc[bad], ap[bad] = np.nan, np.nan
    return roc, ap
