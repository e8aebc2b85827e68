"""Questions about a passage: SQuAD (v1.1, and v2.0 with unanswerable questions) and CoQA
(a story and a dialogue about it).

SQuAD is judged by its official token F1 (`f1>=0.5`, the semantic-entropy paper's rule, with the
best of the human answers); a v2.0 question without an answer is right when the model says it
cannot be answered (the prompt asks for "unanswerable", which, like an empty answer, counts as SQuAD's
no-answer). CoQA is judged by its official F1 (`coqa_f1>=0.5`) against the turn's answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from halluc_benchmarks.base import Sample
from halluc_benchmarks.hub_qa import SHOTS_INTRO, HubBenchmark, nested, text_list
from ucli.errors import BadInput

NO_ANSWER = "unanswerable"


class SQuAD(HubBenchmark):
    name = "squad"
    description = (
        "SQuAD (rajpurkar/squad; -B version=2: rajpurkar/squad_v2 with unanswerables): passage QA, token F1."
    )
    splits = ("train", "validation")
    fields = ("id", "context", "question", "answers")
    source = "semantic-entropy paper (Context/Question/Answer); SQuAD evaluate-v1.1 / v2.0"
    correct_if = "f1>=0.5"

    def __init__(self, data_file: str | Path | None = None, shots: int = 0, version: int = 1):
        super().__init__(data_file, shots)
        if version not in (1, 2):
            raise BadInput(f"benchmark 'squad': -B version={version}: expected 1 (v1.1) or 2 (v2.0)")
        self.version = version
        self.hub = ("rajpurkar/squad", "plain_text") if version == 1 else ("rajpurkar/squad_v2", "squad_v2")
        if version == 2:
            self.instruction += f" If the passage does not answer it, say {NO_ANSWER}."

    def sample(self, row: dict[str, Any], split: str, index: int, where: str) -> Sample:
        answers = text_list(nested(row, "answers", ("text",), where)["text"], where, "answers.text")
        if not answers and self.version == 1:
            raise BadInput(f"{where}: field 'answers.text': SQuAD v1.1 questions have answers")
        unique = list(dict.fromkeys(answers))
        return Sample(str(row["id"]), str(row["question"]).strip(), unique[0] if unique else None,
                      tuple(unique[1:]), {"context": str(row["context"]), "title": row.get("title")})  # fmt: skip

    def question(self, sample: Sample) -> str:
        return f"Context: {sample.metadata['context']}\nQuestion: {sample.prompt}"

    def example(self, sample: Sample) -> str:
        return f"{self.question(sample)}\nAnswer: {sample.reference or NO_ANSWER}"

    def answer_text(self, completion: str) -> str:
        """SQuAD's no-answer is the empty answer: "unanswerable" (the prompt's word) reads as one."""
        said = super().answer_text(completion)
        return "" if said.strip(" .!").lower() == NO_ANSWER else said


class CoQA(HubBenchmark):
    name = "coqa"
    description = "CoQA (stanfordnlp/coqa): a story and a dialogue about it, one sample per turn, CoQA F1."
    hub = ("stanfordnlp/coqa", None)
    splits = ("train", "validation")
    fields = ("story", "questions", "answers")
    source = "LM-Polygraph coqa_simple_instruct (story, earlier turns with their answers); CoQA evaluate-v1.0"
    correct_if = "coqa_f1>=0.5"

    def __init__(self, data_file: str | Path | None = None):
        super().__init__(data_file, 0)

    def samples(self, row: dict[str, Any], split: str, index: int, where: str) -> list[Sample]:
        questions = text_list(row["questions"], where, "questions")
        answers = text_list(
            nested(row, "answers", ("input_text",), where)["input_text"], where, "answers.input_text"
        )
        if len(answers) != len(questions):
            raise BadInput(f"{where}: {len(questions)} questions but {len(answers)} answers.input_text")
        story = str(row["story"])
        return [Sample(f"coqa-{split}-{index}-{turn}", q.strip(), a,
                       metadata={"story": story, "history": list(zip(questions[:turn], answers[:turn], strict=True)),
                                 "source": row.get("source")})
                for turn, (q, a) in enumerate(zip(questions, answers, strict=True))]  # fmt: skip

    def intro(self, sample: Sample) -> str:
        story = f"Here's a short story:\n\n{sample.metadata['story']} (End of story)\n\n{self.instruction}"
        history = sample.metadata["history"]
        if not history:
            return story
        turns = "".join(f"\n\nQuestion: {q}\nAnswer: {a}" for q, a in history)
        return f"{story}\n\n{SHOTS_INTRO}{turns}\n\nNow answer the following question."

    def base_prompt(self, sample: Sample) -> str:
        return f"{self.intro(sample)}\n\n{self.question(sample)}\nAnswer:"
