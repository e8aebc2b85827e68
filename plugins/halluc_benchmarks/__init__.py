"""Benchmarks that register themselves through the `halluc.benchmarks` entry points.

Python API:

    from halluc_benchmarks import Benchmark, Sample, Score, get_benchmark
    bench = get_benchmark("facts")
    samples = bench.load("test", limit=10)
    bench.score(samples[0], "The capital of France is Paris.")

Names load on first use so that `halluc --help` stays light.
"""

from ucli.lazy import lazy_exports

_EXPORTS = {
    "Benchmark": "base",
    "Sample": "base",
    "Score": "metrics",
    "get_benchmark": "registry",
    "judged_pairs": "registry",
    "recorded_options": "registry",
    "verdict_options": "registry",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
