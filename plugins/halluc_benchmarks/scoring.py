"""Re-score saved completions against a benchmark's references."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from halluc_benchmarks.base import Benchmark
from ucli.data import read_records
from ucli.errors import BadInput


def score_predictions(
    bench: Benchmark, predictions: str | Path, splits: list[str]
) -> tuple[list[dict], dict[str, Any]]:
    """Verdicts for every record of a predictions JSONL (`id`, `completion`), and a summary."""
    samples = {s.id: s for split in splits for s in bench.load(split)}
    verdicts = []
    for rec in read_records(predictions):
        for field in ("id", "completion"):
            if field not in rec.data:
                raise BadInput(f"{rec.loc}: no field '{field}' (fields: {', '.join(sorted(rec.data))})")
        sample_id, completion = str(rec.data["id"]), rec.data["completion"]
        if not isinstance(completion, str):
            raise BadInput(
                f"{rec.loc}: field 'completion': expected a string, found {type(completion).__name__}"
            )
        if sample_id not in samples:
            raise BadInput(f"{rec.loc}: id '{sample_id}' is not in {bench.name} ({', '.join(splits)})")
        verdict = bench.score(samples[sample_id], completion)
        verdicts.append(
            {
                "id": sample_id,
                "correct": verdict.correct,
                "value": verdict.value,
                "extracted": verdict.extracted,
                "rule": verdict.rule,
                "reference": samples[sample_id].reference,
                "completion": completion,
            }
        )
    n_correct = sum(v["correct"] for v in verdicts)
    summary = {
        "n": len(verdicts),
        "correct": n_correct,
        "accuracy": n_correct / len(verdicts),
        "mean_value": sum(v["value"] for v in verdicts) / len(verdicts),
        "rules": dict(Counter(v["rule"] for v in verdicts).most_common()),
    }
    return verdicts, summary
