"""`facts`: 536 short-answer factual questions, written and checked here, the embedded default set.

Eight categories (capitals, authors, chemistry, discoverers, astronomy, dates, units,
geography); every question has a canonical answer, aliases where they exist, an answer type
(text, or number for years and quantities) and a fixed split (alternating within each category,
so train and test cover every category alike). Contested facts (the longest river, disputed
inventions, countries with several capitals) were left out on purpose.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from halluc_benchmarks.base import Benchmark, Sample
from ucli.data import read_records


def data_file() -> Path:
    return Path(str(resources.files("halluc_benchmarks") / "data" / "facts.jsonl"))


@cache
def _all() -> tuple[Sample, ...]:
    return tuple(
        Sample(
            id=r.data["id"],
            prompt=r.data["question"],
            reference=r.data["answer"],
            aliases=tuple(r.data["aliases"]),
            metadata={
                "category": r.data["category"],
                "answer_type": r.data["answer_type"],
                "split": r.data["split"],
            },
        )
        for r in read_records(data_file())
    )


class Facts(Benchmark):
    name = "facts"
    description = (
        "536 offline short-answer factual questions in 8 categories (train/test), every answer checked."
    )
    splits = ("train", "test")

    def _load(self, split: str) -> list[Sample]:
        return [s for s in _all() if s.metadata["split"] == split]
