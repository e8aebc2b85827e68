"""The benchmark interface: one class (plus one entry point) per benchmark.

A third-party package adds a benchmark like this:

    # my_pkg/bench.py
    from halluc_benchmarks import Benchmark, Sample

    class Trivia(Benchmark):
        name = "trivia"
        description = "Three questions about my lab."
        splits = ("test",)

        def _load(self, split):
            return [Sample(id="q1", prompt="Who founded the lab?", reference="Ada", aliases=("Ada L.",))]

    # pyproject.toml
    [project.entry-points."halluc.benchmarks"]
    trivia = "my_pkg.bench:Trivia"

`load`, prompt formatting and `score` (the shared rules in `halluc_benchmarks.metrics`) come from
the base class; override `_load` always, and either declare `correct_if` (a quality measure and
its threshold, `halluc_benchmarks.quality`) or override `score` for another rule.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from halluc_benchmarks.metrics import Score, final_answer, judge_number, judge_text, well_formed
from halluc_benchmarks.quality import CorrectIf, get_measure
from ucli.errors import BadInput


@dataclass(frozen=True)
class Sample:
    id: str
    prompt: str
    reference: str | None
    aliases: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def references(self) -> list[str]:
        return [r for r in (self.reference, *self.aliases) if r]

    def as_record(self) -> dict[str, Any]:
        """The prompt/reference record `ucli.data.read_prompt_pairs` (and so `calibrate`) reads."""
        return {
            "id": self.id,
            "prompt": self.prompt,
            "reference": self.reference,
            "aliases": list(self.aliases),
            "metadata": self.metadata,
        }


class Benchmark(ABC):
    """Prompts with references and the metric that decides whether an answer is right."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ("test",)
    answer_type: ClassVar[str] = "text"  # text | number | final-number: the shared rule `score` applies
    instruction: ClassVar[str] = "Answer in a few words."
    # The verdict as a quality measure passing a threshold ("f1>=0.5"); None: the answer-type
    # rules below. `--correct-if` sets it per run.
    correct_if: str | None = None

    @abstractmethod
    def _load(self, split: str) -> list[Sample]:
        """Every sample of one split (the split name is already checked)."""

    def load(self, split: str = "test", limit: int | None = None, seed: int | None = None) -> list[Sample]:
        """Samples of one split: all in file order, or `limit` of them drawn with `seed` (`ucli.data.select`)."""
        if split not in self.splits:
            raise BadInput(
                f"benchmark '{self.name}' has no split '{split}' (splits: {', '.join(self.splits)})"
            )
        from ucli.data import select

        return select(list(self._load(split)), limit, seed)

    def base_prompt(self, sample: Sample) -> str:
        """Prompt for a base (non-chat) model."""
        return f"Question: {sample.prompt}\nAnswer:"

    def chat_message(self, sample: Sample) -> str:
        """The user turn for a chat model."""
        return f"{sample.prompt} {self.instruction}".strip()

    def format_prompt(self, sample: Sample, tokenizer: Any = None) -> str:
        """Chat template when the tokenizer has one, else the base-model prompt."""
        if tokenizer is not None and getattr(tokenizer, "chat_template", None):
            from ucli.models import chat_prompt

            return chat_prompt(tokenizer, self.chat_message(sample))
        return self.base_prompt(sample)

    def well_formed(self, sample: Sample, answer: str) -> bool:
        """Whether `answer` reads as an answer to `sample` (see `metrics.well_formed`), right or wrong."""
        kind = sample.metadata.get("answer_type", self.answer_type)
        return well_formed(answer, sample.prompt, kind)

    def answer_text(self, completion: str) -> str:
        """The part of a completion a quality measure reads: its first non-empty line (short answers)."""
        return next((line.strip() for line in completion.splitlines() if line.strip()), "")

    def measure(self, name: str) -> Any:
        """The quality measure `name`: one configured for this run (a judge panel), else the registry's."""
        return getattr(self, "measures", {}).get(name) or get_measure(name)

    def score_many(self, samples: list[Sample], completions: list[str]) -> list[Score]:
        """Every verdict at once: a measure that grades in bulk (a judge panel's requests run
        concurrently) is asked once."""
        if not self.correct_if:
            return [self.score(s, c) for s, c in zip(samples, completions, strict=True)]
        rule = CorrectIf.parse(self.correct_if)
        measure = self.measure(rule.measure)
        answers = [self.answer_text(c) for c in completions]
        many = getattr(measure, "many", None)
        values = (
            many(list(zip(answers, samples, strict=True)))
            if many
            else [measure(a, s) for a, s in zip(answers, samples, strict=True)]
        )
        return [verdict(rule, value, answer) for value, answer in zip(values, answers, strict=True)]

    def score(self, sample: Sample, completion: str) -> Score:
        if self.correct_if:
            return self.score_many([sample], [completion])[0]
        if not sample.references:
            raise BadInput(f"sample '{sample.id}' of '{self.name}' has no reference to score against")
        # A sample may override the benchmark's answer type (facts mixes names and years).
        kind = sample.metadata.get("answer_type", self.answer_type)
        if kind == "final-number":  # worked solutions end on their result
            return judge_number(completion, sample.reference or "", extracted=final_answer(completion))
        if kind == "number":
            return judge_number(completion, sample.reference or "")
        return judge_text(completion, sample.references)


def verdict(rule: CorrectIf, value: float, answer: str) -> Score:
    """A quality value through the rule; a value that is not a number (every judge failed) is a
    recorded failure, never a silent verdict."""
    if value != value:
        return Score(False, value, answer, f"{rule.measure} failed")
    return Score(rule.passes(value), value, answer, str(rule))
