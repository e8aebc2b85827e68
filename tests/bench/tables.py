"""What the one table rule costs: `write_table` (secrets scrubbed, nested values as JSON text in
CSV and Parquet, each column's kind in the sidecar) and `read_records` (typed back by it), against
writing and reading the same rows as plain JSON lines, measured side by side.

Run: python tests/bench/tables.py [--rows N] [--runs N]. Rows have the shape of `uq score --estimators
all` records (token lists, 5 samples with their own lists, 25 estimator values). Targets, with no
secret in the environment: writing a JSONL table <= 2.5x plain JSON lines (the copy, the sidecar
and its sha256), reading one <= 1.5x. With an API key set, every text of every row is scrubbed:
reported, without a target. CSV and Parquet are reported beside JSONL, as their price for reading
back whole.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

TARGETS = {"write .jsonl": 2.5, "read .jsonl": 1.5}


def rows(n: int) -> list[dict]:
    tokens = list(range(32))
    return [
        {"id": f"q{i}", "prompt": f"Question {i}: what is the capital of country {i}? Answer in a few words.",
         "completion": f"The capital is city {i}.", "token_ids": tokens, "token_logprobs": [-0.1 * t for t in tokens],
         "token_entropy": [0.5] * 32, "correct": i % 2, "rauq": 0.5 + i / n,
         "uq": {f"estimator_{k}": (i * k) / n for k in range(25)},
         "samples": [{"answer": f"city {i + s}", "token_ids": tokens[:8], "logprobs": [-0.2] * 8,
                      "relevance": [0.3] * 8} for s in range(5)],
         "sample_clusters": [0, 0, 1, 1, 2]}
        for i in range(n)
    ]  # fmt: skip


def timed(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    import os

    from ucli.artifacts import write_table
    from ucli.data import read_records
    from ucli.secrets import is_secret_name

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = rows(args.rows)
    folder = Path(tempfile.mkdtemp(prefix="halluc-bench-tables-"))
    plain = folder / "plain.jsonl"

    def write_plain() -> None:
        plain.write_text("".join(json.dumps(r) + "\n" for r in data))

    def read_plain() -> None:
        [json.loads(line) for line in plain.read_text().splitlines()]

    for name in [n for n in os.environ if is_secret_name(n)]:  # the first pass: no secret to scrub
        del os.environ[name]
    print(f"{args.rows} uq-score-shaped rows, median of {args.runs}; ratios against plain JSON lines")
    print(f"{'run':<42} {'seconds':>8} {'ratio':>7}")
    ratios = {}
    for setting, env in (
        ("no secret set", {}),
        ("an API key set", {"OPENAI_API_KEY": "sk-bench-0123456789"}),
    ):
        os.environ.update(env)
        base = {"write": timed(write_plain, args.runs), "read": timed(read_plain, args.runs)}
        for what in ("write", "read"):
            print(f"{f'plain JSON lines, {what} ({setting})':<42} {base[what]:>8.3f} {1:>7.2f}")
        for suffix in (".jsonl", ".csv", ".parquet"):
            path = folder / f"t{suffix}"
            spent = {"write": timed(lambda p=path: write_table(p, data, "halluc.bench"), args.runs)}
            assert [r.data for r in read_records(path, "halluc.bench")] == data, (
                f"{suffix}: not read back as written"
            )
            spent["read"] = timed(lambda p=path: read_records(p, "halluc.bench"), args.runs)
            for what in ("write", "read"):
                key = f"{what} {suffix} ({setting})"
                ratios[key] = spent[what] / base[what]
                print(f"{'table ' + key:<42} {spent[what]:>8.3f} {ratios[key]:>7.2f}")
    print("every format read back equal to the rows written: True")
    met = True
    for key, target in TARGETS.items():
        ratio = ratios[f"{key} (no secret set)"]
        met &= ratio <= target
        print(
            f"{key} (no secret set): {ratio:.2f}x (target <= {target}): {'met' if ratio <= target else 'MISSED'}"
        )
    walk = ratios["write .jsonl (an API key set)"] - ratios["write .jsonl (no secret set)"]
    print(f"with an API key set, every text is scrubbed: +{walk:.2f}x of a plain write (a walk of every value, "
          "about the price of one more serialization; no target)")  # fmt: skip
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
