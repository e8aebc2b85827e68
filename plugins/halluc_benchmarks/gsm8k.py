"""`gsm8k`: grade-school maths word problems; the answer is the number after `####`."""

from __future__ import annotations

from pathlib import Path

from halluc_benchmarks.base import Benchmark, Sample
from halluc_benchmarks.hub import load_rows, require_fields
from halluc_benchmarks.metrics import numbers
from ucli.errors import BadInput


class GSM8K(Benchmark):
    name = "gsm8k"
    description = "GSM8K (openai/gsm8k, main): word problems, numeric final answer after ####; --data-file for a local copy."
    splits = ("train", "test")
    answer_type = "final-number"
    instruction = "Solve it step by step, then give the final number after '####'."

    def __init__(self, data_file: str | Path | None = None):
        self.data_file = data_file

    def _load(self, split: str) -> list[Sample]:
        samples = []
        for i, row in enumerate(load_rows("openai/gsm8k", "main", split, self.data_file)):
            where = f"{self.data_file or 'openai/gsm8k'}: row {i + 1}"
            require_fields(row, ("question", "answer"), where)
            solution = str(row["answer"])
            if "####" not in solution or not numbers(solution.rsplit("####", 1)[1]):
                raise BadInput(f"{where}: field 'answer' has no final number after '####'")
            final = numbers(solution.rsplit("####", 1)[1])[0]
            reference = str(int(final)) if final.is_integer() else str(final)
            samples.append(
                Sample(f"gsm8k-{split}-{i}", str(row["question"]), reference, metadata={"solution": solution})
            )
        return samples

    def base_prompt(self, sample: Sample) -> str:
        return f"Question: {sample.prompt}\nAnswer:"
