"""`math`: MATH / MATH-500 competition problems; answers in `\\boxed{}` compared after LaTeX normalisation."""

from __future__ import annotations

from pathlib import Path

from halluc_benchmarks.base import Benchmark, Sample
from halluc_benchmarks.hub import load_rows, require_fields
from halluc_benchmarks.latex import last_boxed, latex_equal
from halluc_benchmarks.metrics import Score
from ucli.errors import BadInput


class CompetitionMath(Benchmark):
    name = "math"
    description = "MATH-500 (HuggingFaceH4/MATH-500): \\boxed{} answers, LaTeX-normalised match; --data-file for MATH or a local copy."
    splits = ("test",)
    instruction = "Solve it step by step and put the final answer in \\boxed{}."

    def __init__(self, data_file: str | Path | None = None):
        self.data_file = data_file

    def _load(self, split: str) -> list[Sample]:
        samples = []
        for i, row in enumerate(load_rows("HuggingFaceH4/MATH-500", None, split, self.data_file)):
            where = f"{self.data_file or 'HuggingFaceH4/MATH-500'}: row {i + 1}"
            require_fields(row, ("problem",), where)
            answer = row.get("answer") or last_boxed(str(row.get("solution", "")))
            if not answer:
                raise BadInput(f"{where}: no 'answer' field and no \\boxed{{}} answer in 'solution'")
            meta = {k: row[k] for k in ("subject", "level", "solution") if k in row}
            samples.append(
                Sample(
                    str(row.get("unique_id") or f"math-{split}-{i}"),
                    str(row["problem"]),
                    str(answer),
                    metadata=meta,
                )
            )
        return samples

    def base_prompt(self, sample: Sample) -> str:
        return f"Problem: {sample.prompt}\nSolution:"

    def score(self, sample: Sample, completion: str) -> Score:
        """The last \\boxed{} of the completion (else its final line) against the reference."""
        extracted = last_boxed(completion)
        rule = "boxed"
        if extracted is None:
            lines = [x for x in completion.strip().splitlines() if x.strip()]
            extracted, rule = (lines[-1] if lines else ""), "last line"
        ok = latex_equal(extracted, sample.reference or "")
        return Score(ok, float(ok), extracted, rule if ok else "no match")
