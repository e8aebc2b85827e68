"""Semantic entropy (Farquhar et al., Nature 2024) from answers already clustered by meaning.

For one question with K sampled answers, each with a length-normalised log-likelihood l_i (the
mean log-probability of its tokens), and cluster ids c_i:

- discrete semantic entropy: the entropy of the cluster frequencies, -sum_c (n_c/K) log(n_c/K);
- semantic entropy (likelihood-weighted): sample probabilities p_i = exp(l_i) / sum_j exp(l_j)
  (normalised over the K samples), cluster probabilities P_c = sum_{i in c} p_i, and
  -sum_c P_c log P_c;
- naive entropy: the Monte-Carlo estimate of the predictive entropy that ignores meaning,
  -mean_i l_i.

All in nats. One cluster gives 0; K singletons give log K (discrete; likelihood-weighted with equal
likelihoods).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np


def cluster_ids(n: int, equivalent: Callable[[int, int], bool]) -> list[int]:
    """Greedy clustering as in the reference implementation: each unassigned answer opens a cluster
    and takes every later unassigned answer equivalent to it (compared with the cluster's first
    member only, so the order of the answers matters for non-transitive relations)."""
    ids = [-1] * n
    next_id = 0
    for i in range(n):
        if ids[i] != -1:
            continue
        ids[i] = next_id
        for j in range(i + 1, n):
            if ids[j] == -1 and equivalent(i, j):
                ids[j] = next_id
        next_id += 1
    return ids


def discrete_entropy(ids: Sequence[int]) -> float:
    if len(ids) == 0:
        return 0.0
    _, counts = np.unique(np.asarray(ids), return_counts=True)
    freq = counts / counts.sum()
    return float(-(freq * np.log(freq)).sum())


def weighted_entropy(ids: Sequence[int], loglik: Sequence[float]) -> float:
    """Likelihood-weighted semantic entropy from length-normalised log-likelihoods."""
    if len(ids) == 0:
        return 0.0
    ll = np.asarray(loglik, dtype=float)
    log_p = ll - np.logaddexp.reduce(ll)  # normalised over the samples
    labels = np.asarray(ids)
    log_pc = np.array([np.logaddexp.reduce(log_p[labels == c]) for c in np.unique(labels)])
    return float(-(np.exp(log_pc) * log_pc).sum())


def naive_entropy(loglik: Sequence[float]) -> float:
    return float(-np.mean(loglik)) if len(loglik) else 0.0


def best_split_threshold(values: Sequence[float]) -> float:
    """The threshold t that minimises the summed within-group squared error of `values` split into
    <= t and > t (Kossen et al.'s rule for binarising semantic entropy). Candidates are the midpoints
    between consecutive distinct values; with one distinct value there is nothing to split."""
    x = np.sort(np.asarray(values, dtype=float))
    distinct = np.unique(x)
    if distinct.size < 2:
        raise ValueError("every value is the same; there is no split")
    # prefix sums give each split's two within-group errors in O(n)
    csum, csq = np.cumsum(x), np.cumsum(x**2)
    n = x.size
    best, best_err = float(distinct[0]), np.inf
    for lo, hi in itertools.pairwise(distinct):
        k = int(np.searchsorted(x, lo, side="right"))  # values <= lo go low
        left = csq[k - 1] - csum[k - 1] ** 2 / k
        right = (csq[-1] - csq[k - 1]) - (csum[-1] - csum[k - 1]) ** 2 / (n - k)
        if left + right < best_err:
            best, best_err = float((lo + hi) / 2), left + right
    return best
