"""`halluc eval run` against one `lm_eval` CLI invocation per (task, seed): same cells, same numbers.

Run from the repository root: python tests/bench/eval_sweep.py [--seeds 0,1,2] [--limit N]. Two
local tasks (examples/tasks) x three seeds on the tiny random Llama model: one `halluc eval run`
process (one model load, one TaskManager) against six `python -m lm_eval run` processes. Prints
both wall times, their ratio (target >= 3x), and checks every metric is identical.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 3.0
TASKS = ["halluc_arc_easy_local", "halluc_truthfulqa_mc2_local"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    from ucli import console
    from ucli.testing import build_tiny_model

    seeds = [int(s) for s in args.seeds.split(",")]
    limit = ["--limit", str(args.limit)] if args.limit else []
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model("llama", Path(tmp) / "tiny")
        root = Path(tmp) / "evals"
        start = time.monotonic()
        code = "import sys; from ucli.app import main; sys.argv = ['halluc', *sys.argv[1:]]; main()"
        subprocess.run([sys.executable, "-c", code, "eval", "run", "-m", str(model), "--tasks", ",".join(TASKS),
                        "--seeds", args.seeds, "--include-path", "examples/tasks", "--output-root", str(root),
                        "--device", "cpu", *limit], check=True, capture_output=True)  # fmt: skip
        ours = time.monotonic() - start
        start = time.monotonic()
        direct = {}
        for task in TASKS:
            for seed in seeds:
                out = Path(tmp) / "direct" / f"{task}_{seed}"
                subprocess.run([sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args",
                                f"pretrained={model}", "--tasks", task, "--include_path", "examples/tasks",
                                "--seed", str(seed), "--log_samples", "--output_path", str(out / "results.json"),
                                "--device", "cpu", "--batch_size", "1", *limit], check=True, capture_output=True)  # fmt: skip
                direct[(task, seed)] = json.loads(next(out.glob("results_*.json")).read_text())["results"][
                    task
                ]
        theirs = time.monotonic() - start
        same = True
        for (task, seed), want in direct.items():
            phase = (root / "drafts" / "baseline") if args.limit else root / "baseline"
            cell = phase / f"{task}_seed{seed}_{'limit' + str(args.limit) if args.limit else 'full'}"
            got = json.loads(next(cell.glob("results_*.json")).read_text())["results"][task]
            same &= all(got[k] == v for k, v in want.items() if isinstance(v, float))
    rows = [("halluc eval run (1 process)", f"{ours:.1f}", "1.00"),
            (f"lm_eval CLI ({len(direct)} processes)", f"{theirs:.1f}", f"{theirs / ours:.2f}")]  # fmt: skip
    console.out.print(console.table(f"{len(TASKS)} tasks x {len(seeds)} seeds, tiny Llama, CPU",
                                    ["path", "seconds", "time ratio"], rows))  # fmt: skip
    verdict = "meets" if theirs / ours >= TARGET else "misses"
    console.out.print(f"speed-up {theirs / ours:.2f}x ({verdict} >= {TARGET}x); identical metrics: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
