"""`uq score --backend` throughput: the greedy answers and their K samples against the model's limit.

Run: python tests/bench/uq_api_throughput.py [--questions N] [--samples K] [--latency S] [--rpm R]
[--concurrency C]. `halluc uq score --backend openai --samples 5` runs against the loopback
OpenAI-compatible server (200 ms per request) at a limit of 600 requests/min, with the texts-only
and log-prob estimators (exact equivalence judge, so the judge costs nothing here): the achieved
request rate as a fraction of the limit (target >= 0.95, never above 1.0), next to the same requests
one at a time, and the whole command's wall time against the time the limit alone allows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

TARGET = 0.95


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rpm", type=float, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "bench-not-a-key")
    from typer.testing import CliRunner

    from halluc_backends.base import SamplingParams
    from halluc_backends.loopback import LoopbackServer
    from halluc_backends.openai_api import OpenAIBackend
    from ucli import console
    from ucli.app import app

    with LoopbackServer(latency=args.latency) as server, tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "q.jsonl"
        data.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Question number {i}?", "reference": "x"}) + "\n"
                                for i in range(args.questions)))  # fmt: skip
        start = time.monotonic()
        res = CliRunner().invoke(app, ["uq", "score", "--data", str(data), "--backend", "openai", "-m", "loop",
                                       "--base-url", server.url + "/v1", "--rpm", str(args.rpm), "--concurrency",
                                       str(args.concurrency), "--samples", str(args.samples), "--max-new-tokens", "8",
                                       "--equivalence", "exact", "--estimators",
                                       "msp,perplexity,max_token_entropy,lexical_similarity,num_semantic_sets,"
                                       "mc_sequence_entropy,cocoa_msp", "-o", str(Path(tmp) / "s.jsonl")])  # fmt: skip
        wall = time.monotonic() - start
        assert res.exit_code == 0, res.output
        times = sorted(server.times)
        rate = (len(times) - 1) / (times[-1] - times[0]) * 60
        server.times.clear()

        async def one_at_a_time() -> float:
            backend = OpenAIBackend("loop", base_url=server.url + "/v1")
            begin = time.monotonic()
            for i in range(12):
                await backend.agenerate(
                    f"Question number {i}?", SamplingParams(max_tokens=8, top_logprobs=20)
                )
            await backend.aclose()
            return 12 / (time.monotonic() - begin) * 60

        serial = asyncio.run(one_at_a_time())
    n = len(times)
    floor = (n - 1) * 60 / args.rpm  # the least time the limit allows for n requests
    rows = [(f"uq score --backend openai --samples {args.samples} (concurrency {args.concurrency})", f"{rate:.0f}",
             f"{rate / args.rpm:.2f}"), ("one request at a time", f"{serial:.0f}", f"{serial / args.rpm:.2f}")]  # fmt: skip
    console.out.print(console.table(
        f"{n} requests ({args.questions} questions x {1 + args.samples}) against a {args.rpm:.0f}/min limit, "
        f"{args.latency * 1000:.0f} ms per request", ["path", "requests/min", "fraction of limit"], rows))  # fmt: skip
    fraction = rate / args.rpm
    verdict = "meets" if TARGET <= fraction <= 1.02 else "misses"
    console.out.print(f"achieved {fraction:.2f} of the limit ({verdict} >= {TARGET}, <= 1); the whole command took "
                      f"{wall:.1f} s, {wall / floor:.2f}x the {floor:.1f} s the limit allows")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
