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
    """Verdicts for every record of a predictions file (`id`, `completion`), and a summary. A run's
    own records re-judge as they are: `sample_id` names the sample where a record has one and
    `answer` (the controller's judged answer) is judged in place of the whole completion."""
    samples = {s.id: s for split in splits for s in bench.load(split)}
    rows = []
    for rec in read_records(predictions):
        id_field = "sample_id" if "sample_id" in rec.data else "id"
        text_field = "answer" if "answer" in rec.data else "completion"
        for field in (id_field, text_field):
            if field not in rec.data:
                raise BadInput(f"{rec.loc}: no field '{field}' (fields: {', '.join(sorted(rec.data))})")
        sample_id, completion = str(rec.data[id_field]), rec.data[text_field]
        if not isinstance(completion, str):
            raise BadInput(
                f"{rec.loc}: field '{text_field}': expected a string, found {type(completion).__name__}"
            )
        if sample_id not in samples:
            raise BadInput(f"{rec.loc}: id '{sample_id}' is not in {bench.name} ({', '.join(splits)})")
        rows.append((samples[sample_id], completion))
    scores = bench.score_many([s for s, _ in rows], [c for _, c in rows])
    verdicts = [{"id": sample.id, "correct": v.correct, "value": v.value, "extracted": v.extracted, "rule": v.rule,
                 "reference": sample.reference, "completion": completion}
                for (sample, completion), v in zip(rows, scores, strict=True)]  # fmt: skip
    values = [v["value"] for v in verdicts if v["value"] == v["value"]]  # a failed judge gives no value
    n_correct = sum(v["correct"] for v in verdicts)
    summary = {
        "n": len(verdicts),
        "correct": n_correct,
        "accuracy": n_correct / len(verdicts),
        "mean_value": sum(values) / len(values) if values else None,
        "rules": dict(Counter(v["rule"] for v in verdicts).most_common()),
    }
    panel = getattr(bench, "measures", {}).get("judge")
    if panel is not None:
        summary["judges"] = panel.agreement()
    return verdicts, summary
