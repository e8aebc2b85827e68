"""What the field's hub benchmarks share: rows loaded through `datasets` (or a local copy in the
hub's schema), each turned into a `Sample`, few-shot examples, and one prompt layout.

The prompt (`-B shots=N` examples, none by default):

- a base model gets the semantic-entropy paper's layout (Farquhar et al. 2024): the instruction on
  one line, then each example as "Question: ...\\nAnswer: ...\\n\\n", then "Question: ...\\nAnswer:";
- a chat model gets LM-Polygraph's `simple_instruct` layout: the instruction, then "Here are a few
  examples of questions and answers:" with the examples and "Now answer the following question:",
  then the question.

Examples are the first N samples of the benchmark's few-shot split (lm-eval's `first_n`), never the
sample itself; with `--data-file` they come from the same file.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from halluc_benchmarks.base import Benchmark, Sample
from halluc_benchmarks.hub import load_rows, require_fields
from ucli.errors import BadInput

SHOTS_INTRO = "Here are a few examples of questions and answers:"
SHOTS_OUTRO = "Now answer the following question:"


class HubBenchmark(Benchmark):
    """A benchmark read from the hub: name its data set, fields and prompt source; write `sample`
    (or `samples`)."""

    hub: ClassVar[tuple[str, str | None]] = ("", None)  # data set id and config
    revision: ClassVar[str | None] = None  # a hub branch, where the default one still holds a script
    fields: ClassVar[tuple[str, ...]] = ()  # what every row must hold
    fewshot_split: ClassVar[str | None] = "train"
    source: ClassVar[str] = ""  # the reference the prompt and the verdict follow
    instruction = "Answer the following question as briefly as possible."

    def __init__(self, data_file: str | Path | None = None, shots: int = 0):
        if shots < 0:
            raise BadInput(f"benchmark '{self.name}': -B shots={shots}: expected 0 or more examples")
        self.data_file, self.shots = data_file, shots

    def rows(self, split: str) -> list[dict[str, Any]]:
        return load_rows(self.hub[0], self.hub[1], split, self.data_file, self.revision)

    def _load(self, split: str, rows: list[dict[str, Any]] | None = None) -> list[Sample]:
        out = []
        for i, row in enumerate(self.rows(split) if rows is None else rows):
            where = f"{self.data_file or self.hub[0]}: row {i + 1}"
            require_fields(row, self.fields, where)
            out.extend(self.samples(row, split, i, where))
        return out

    def samples(self, row: dict[str, Any], split: str, index: int, where: str) -> list[Sample]:
        """The samples of one hub row: a subclass writes `sample(row, split, index, where)` for a
        row that is one sample, or overrides this (a CoQA story is one sample per turn)."""
        return [self.sample(row, split, index, where)]  # type: ignore[attr-defined]

    # --- prompts ---------------------------------------------------------------------------------

    @cached_property
    def _shot_pool(self) -> list[Sample]:
        if not self.shots:
            return []
        if self.data_file or not self.fewshot_split:
            return self._load(self.splits[-1])[: self.shots + 1]
        # only the rows needed: the hub reads a slice of the split
        head = load_rows(
            self.hub[0], self.hub[1], f"{self.fewshot_split}[:{self.shots + 1}]", None, self.revision
        )
        return self._load(self.fewshot_split, head)[: self.shots + 1]

    def examples(self, sample: Sample) -> list[Sample]:
        """The few-shot examples of a sample: the first `shots` of the few-shot split but itself."""
        return [s for s in self._shot_pool if s.id != sample.id][: self.shots]

    def question(self, sample: Sample) -> str:
        """The sample as the prompt asks it (a passage, a story, options go here)."""
        return f"Question: {sample.prompt}"

    def example(self, sample: Sample) -> str:
        return f"{self.question(sample)}\nAnswer: {sample.reference}"

    def intro(self, sample: Sample) -> str:
        """The instruction line (MMLU names the subject)."""
        return self.instruction

    def base_prompt(self, sample: Sample) -> str:
        shots = "".join(f"{self.example(s)}\n\n" for s in self.examples(sample))
        return f"{self.intro(sample)}\n{shots}{self.question(sample)}\nAnswer:"

    def chat_message(self, sample: Sample) -> str:
        shots = self.examples(sample)
        block = (
            f"\n\n{SHOTS_INTRO}\n\n" + "\n\n".join(self.example(s) for s in shots) + f"\n\n{SHOTS_OUTRO}"
            if shots
            else ""
        )
        return f"{self.intro(sample)}{block}\n\n{self.question(sample)}"


def text_list(value: Any, where: str, field: str) -> list[str]:
    """A hub field that holds a list of strings, checked."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise BadInput(f"{where}: field '{field}': expected a list of strings, found {type(value).__name__}")
    return list(value)


def nested(row: dict[str, Any], field: str, keys: tuple[str, ...], where: str) -> dict[str, Any]:
    """A hub field that holds a dict with `keys` (SQuAD's `answers`, TriviaQA's `answer`), checked."""
    value = row.get(field)
    if not isinstance(value, dict) or any(k not in value for k in keys):
        found = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise BadInput(f"{where}: field '{field}': expected a dict with {', '.join(keys)}, found {found}")
    return value
