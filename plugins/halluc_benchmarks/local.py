"""`local`: any prompt/reference file (JSONL, JSON, CSV, TSV) as a benchmark, metric chosen by flag."""

from __future__ import annotations

from pathlib import Path

from halluc_benchmarks.base import Benchmark, Sample
from ucli.data import read_prompt_pairs
from ucli.errors import BadInput

METRICS = ("text", "number")


class Local(Benchmark):
    """Prompts are sent as written (under the chat template when the model has one), exactly as
    `calibrate` sends a data file's prompts: put an instruction in the file if you want one."""

    name = "local"
    description = "Your own prompt/reference file (JSONL, JSON, CSV or TSV); -B metric=text or number."
    splits = ("test",)
    instruction = ""

    def base_prompt(self, sample: Sample) -> str:
        return sample.prompt

    def __init__(self, data_file: str | Path | None = None, metric: str = "text"):
        if data_file is None:
            raise BadInput("benchmark 'local' needs --data-file FILE")
        if metric not in METRICS:
            raise BadInput(f"unknown metric '{metric}' (expected one of {', '.join(METRICS)})")
        self.data_file = Path(data_file)
        self.answer_type = metric

    def _load(self, split: str) -> list[Sample]:
        pairs = read_prompt_pairs(self.data_file, require_reference=False)
        return [Sample(p.id, p.prompt, p.reference, tuple(p.aliases), p.metadata) for p in pairs]

    def score(self, sample: Sample, completion: str):
        if sample.reference is None:
            raise BadInput(
                f"{self.data_file}: sample '{sample.id}' has no reference; this file cannot be scored"
            )
        return super().score(sample, completion)
