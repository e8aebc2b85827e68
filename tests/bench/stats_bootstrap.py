"""Paired bootstrap: halluc_stats against scipy.stats.bootstrap(paired=True, method="percentile").

Run: python tests/bench/stats_bootstrap.py [--pairs N] [--resamples B] [--repeats R].
Same data, same run, interleaved repeats; time is the median, peak memory comes from tracemalloc
(numpy reports its buffers to it). Targets: at least 2x faster than scipy, peak memory under 200 MB.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np
from scipy import stats

from halluc_stats import paired_bootstrap

SPEED_TARGET = 2.0
MEMORY_TARGET_MB = 200.0


def measure(fn) -> tuple[float, float, object]:
    tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return elapsed, peak, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    a = rng.random(args.pairs)
    b = np.clip(a + rng.normal(0.02, 0.1, args.pairs), 0, 1)

    def ours():
        return paired_bootstrap(a, b, n_resamples=args.resamples, seed=1)

    def scipy_ref():
        return stats.bootstrap(
            (a, b), lambda x, y, axis: y.mean(axis=axis) - x.mean(axis=axis),
            paired=True, vectorized=True, method="percentile", n_resamples=args.resamples, random_state=1,
        )  # fmt: skip

    runs: dict[str, list[tuple[float, float]]] = {"halluc_stats": [], "scipy": []}
    results = {}
    for _ in range(args.repeats):
        for name, fn in (("halluc_stats", ours), ("scipy", scipy_ref)):
            t, peak, results[name] = measure(fn)
            runs[name].append((t, peak))
    t_ours = statistics.median(t for t, _ in runs["halluc_stats"])
    t_scipy = statistics.median(t for t, _ in runs["scipy"])
    m_ours = max(m for _, m in runs["halluc_stats"])
    m_scipy = max(m for _, m in runs["scipy"])
    ci = results["scipy"].confidence_interval
    print(f"paired bootstrap, {args.pairs:,} pairs x {args.resamples:,} resamples, median of {args.repeats}")
    print(f"{'implementation':<14} {'seconds':>8} {'peak MB':>8} {'CI low':>9} {'CI high':>9}")
    print(
        f"{'halluc_stats':<14} {t_ours:>8.2f} {m_ours:>8.1f} {results['halluc_stats'].ci_low:>9.5f} {results['halluc_stats'].ci_high:>9.5f}"
    )
    print(f"{'scipy':<14} {t_scipy:>8.2f} {m_scipy:>8.1f} {ci.low:>9.5f} {ci.high:>9.5f}")
    speedup = t_scipy / t_ours
    fast, small = speedup >= SPEED_TARGET, m_ours < MEMORY_TARGET_MB
    print(f"speed-up {speedup:.1f}x (target >= {SPEED_TARGET:.0f}x): {'met' if fast else 'MISSED'}")
    print(f"peak memory {m_ours:.1f} MB (target < {MEMORY_TARGET_MB:.0f} MB): {'met' if small else 'MISSED'}")
    return 0 if fast and small else 1


if __name__ == "__main__":
    raise SystemExit(main())
