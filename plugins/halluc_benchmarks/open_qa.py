"""Short-answer open questions from the hub, judged by normalised exact match over every accepted
answer: TriviaQA, NQ-Open, SimpleQA, PopQA; and SVAMP's word problems, judged by their number.

Prompts: the semantic-entropy paper's (Farquhar et al. 2024, which runs TriviaQA, NQ-Open and SVAMP)
for base models, LM-Polygraph's `simple_instruct` for chat models (`hub_qa`)."""

from __future__ import annotations

import ast
import json
from typing import Any

from halluc_benchmarks.base import Sample
from halluc_benchmarks.hub_qa import HubBenchmark, nested, text_list
from ucli.errors import BadInput


class TriviaQA(HubBenchmark):
    name = "triviaqa"
    description = "TriviaQA (mandarjoshi/trivia_qa, rc.nocontext): trivia, exact match over the aliases."
    hub = ("mandarjoshi/trivia_qa", "rc.nocontext")
    splits = ("train", "validation")  # test has no answers
    fields = ("question", "question_id", "answer")
    source = "semantic-entropy paper / LM-Polygraph triviaqa; TriviaQA's evaluation normalisation"
    correct_if = "triviaqa_em>=1"

    def sample(self, row: dict[str, Any], split: str, index: int, where: str) -> Sample:
        answer = nested(row, "answer", ("value", "aliases"), where)
        aliases = [a for a in text_list(answer["aliases"], where, "answer.aliases") if a != answer["value"]]
        return Sample(str(row["question_id"]), str(row["question"]).strip(), str(answer["value"]), tuple(aliases),
                      {"normalized_aliases": list(answer.get("normalized_aliases") or [])})  # fmt: skip


class NQOpen(HubBenchmark):
    name = "nq_open"
    description = "NQ-Open (google-research-datasets/nq_open): Google queries, exact match over the answers."
    hub = ("google-research-datasets/nq_open", "nq_open")
    splits = ("train", "validation")
    fields = ("question", "answer")
    source = "semantic-entropy paper (question + '?'); SQuAD's normalisation"
    correct_if = "exact_match>=1"

    def sample(self, row: dict[str, Any], split: str, index: int, where: str) -> Sample:
        answers = text_list(row["answer"], where, "answer")
        if not answers:
            raise BadInput(f"{where}: field 'answer': expected at least one answer")
        question = str(row["question"]).strip()
        return Sample(f"nq_open-{split}-{index}", question if question.endswith("?") else question + "?",
                      answers[0], tuple(answers[1:]))  # fmt: skip


class SimpleQA(HubBenchmark):
    name = "simpleqa"
    description = (
        "SimpleQA (basicv8vc/SimpleQA, OpenAI's 4,326 questions): exact match (a judge grades it best)."
    )
    hub = ("basicv8vc/SimpleQA", None)
    splits = ("test",)
    fewshot_split = None  # one split: examples come from its head
    fields = ("problem", "answer")
    source = "OpenAI simple-evals (the question alone); SQuAD's normalisation"
    correct_if = "exact_match>=1"

    def sample(self, row: dict[str, Any], split: str, index: int, where: str) -> Sample:
        meta: dict[str, Any] = {}
        if row.get("metadata"):  # a Python dict literal, not JSON
            try:
                meta = dict(ast.literal_eval(str(row["metadata"])))
            except (ValueError, SyntaxError, TypeError):
                raise BadInput(f"{where}: field 'metadata': expected a dict literal") from None
        return Sample(f"simpleqa-{index}", str(row["problem"]).strip(), str(row["answer"]).strip(),
                      metadata={k: meta[k] for k in ("topic", "answer_type") if k in meta})  # fmt: skip


class PopQA(HubBenchmark):
    name = "popqa"
    description = "PopQA (akariasai/PopQA): entity questions with popularity, exact match over the answers."
    hub = ("akariasai/PopQA", None)
    splits = ("test",)
    fewshot_split = None
    fields = ("id", "question", "possible_answers", "prop", "s_pop")
    source = "PopQA paper (the question as given); SQuAD's normalisation"
    correct_if = "exact_match>=1"

    def sample(self, row: dict[str, Any], split: str, index: int, where: str) -> Sample:
        raw = row["possible_answers"]
        try:
            answers = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError:
            raise BadInput(f"{where}: field 'possible_answers': expected a JSON list of answers") from None
        answers = text_list(answers, where, "possible_answers")
        if not answers:
            raise BadInput(f"{where}: field 'possible_answers': expected at least one answer")
        return Sample(f"popqa-{row['id']}", str(row["question"]).strip(), answers[0], tuple(answers[1:]),
                      {"relation": row["prop"], "popularity": row["s_pop"]})  # fmt: skip


class SVAMP(HubBenchmark):
    name = "svamp"
    description = "SVAMP (ChilleD/SVAMP): one-step word problems, judged by the final number."
    hub = ("ChilleD/SVAMP", None)
    splits = ("train", "test")
    fields = ("ID", "Body", "Question", "Answer")
    source = "semantic-entropy paper (Context: body, Question: question)"
    answer_type = "final-number"
    correct_if = "numeric>=1"

    def sample(self, row: dict[str, Any], split: str, index: int, where: str) -> Sample:
        try:
            answer = float(str(row["Answer"]))
        except ValueError:
            raise BadInput(f"{where}: field 'Answer': expected a number, found {row['Answer']!r}") from None
        number = str(int(answer)) if answer.is_integer() else str(answer)
        return Sample(str(row["ID"]), str(row["Question"]).strip(), number,
                      metadata={"context": str(row["Body"]).strip(), "type": row.get("Type")})  # fmt: skip

    def question(self, sample: Sample) -> str:
        return f"Context: {sample.metadata['context']}\nQuestion: {sample.prompt}"
