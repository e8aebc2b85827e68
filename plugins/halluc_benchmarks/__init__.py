"""Benchmarks that register themselves through the `halluc.benchmarks` entry points.

Python API:

    from halluc_benchmarks import Benchmark, Sample, Score, get_benchmark
    bench = get_benchmark("facts")
    samples = bench.load("test", limit=10)
    bench.score(samples[0], "The capital of France is Paris.")

Names load on first use so that `halluc --help` stays light.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Benchmark": "base",
    "Sample": "base",
    "Score": "metrics",
    "get_benchmark": "registry",
    "benchmark_names": "registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(name)
    return getattr(import_module(f"halluc_benchmarks.{_EXPORTS[name]}"), name)
