"""`person_bio`: LM-Polygraph's long-form prompts ("Tell me a bio of Albert Einstein."), the set its
claim-level experiments use. There is no reference answer: a biography is judged claim by claim."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from halluc_benchmarks.base import Sample
from halluc_benchmarks.hub_qa import HubBenchmark
from halluc_benchmarks.metrics import Score
from ucli.errors import BadInput

LANGS = ("en", "ru", "zh", "ar")


class PersonBio(HubBenchmark):
    name = "person_bio"
    description = "Person biographies (LM-Polygraph/person_bio, -B lang=en|ru|zh|ar): long answers, judged claim by claim."
    splits = ("test",)
    fewshot_split = None
    fields = ("input",)
    source = "LM-Polygraph person_bio (the prompt as given)"

    def __init__(self, data_file: str | Path | None = None, lang: str = "en"):
        super().__init__(data_file, 0)
        if lang not in LANGS:
            raise BadInput(f"benchmark 'person_bio': -B lang={lang}: expected one of {', '.join(LANGS)}")
        self.hub = ("LM-Polygraph/person_bio", lang)

    def sample(self, row: dict[str, Any], split: str, index: int, where: str) -> Sample:
        return Sample(f"person_bio-{self.hub[1]}-{index}", str(row["input"]).strip(), None)

    def base_prompt(self, sample: Sample) -> str:
        return f"{sample.prompt}\n"

    def chat_message(self, sample: Sample) -> str:
        return sample.prompt

    def answer_text(self, completion: str) -> str:
        return completion.strip()

    def score(self, sample: Sample, completion: str) -> Score:
        raise BadInput(
            f"'{self.name}' has no reference answers: a biography is judged claim by claim, not whole"
        )
