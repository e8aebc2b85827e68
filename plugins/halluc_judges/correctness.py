"""Correctness judges: a model (behind an API or local, any registered backend) grades an answer
against its references with a documented prompt; a panel of judges combines their grades and
says how much they agree.

A judge is named `BACKEND:MODEL` (`openai:gpt-4o-mini`, `anthropic:claude-3-5-haiku-latest`,
`hf:smollm2-135m`), with `@BASE_URL` for a compatible server (`openai:qwen@http://127.0.0.1:8000/v1`);
keys come from the backend's environment variables only. Requests go through the pilot's `Caller`
(rate limit, retries, Retry-After). Every grade is journaled in `$HALLUC_CACHE/judges/grades.jsonl`
keyed by (judge, prompt, question, references, answer): a rerun or a resumed run asks nothing
twice. A reply the prompt's rule cannot read is a recorded failure (its reply kept), never a
silent "wrong"; a request that failed for good is reported, not cached, and asked again next time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ucli.errors import BadInput

# --- prompts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GradePrompt:
    """How a judge is asked (`build(question, references, answer)`) and how its reply is read
    (`read(reply)`: 1.0 right, 0.0 wrong, None unreadable; `label` names the grade)."""

    name: str
    source: str
    build: Callable[[str, list[str], str], str]
    read: Callable[[str], tuple[float | None, str] | None]
    max_tokens: int = 8


def _semantic_entropy(question: str, references: list[str], answer: str) -> str:
    """Farquhar et al. 2024 (Nature), the accuracy judge of their code, line by line."""
    if len(references) == 1:
        expected = f"The expected answer is: {references[0]}.\n"
        ask = "does the proposed answer mean the same as the expected answer?"
    else:
        expected = f"The following are expected answers to this question: {references}.\n"
        ask = "does the proposed answer mean the same as any of the expected answers?"
    return (f"We are assessing the quality of answers to the following question: {question}\n{expected}"
            f"The proposed answer is: {answer}\nWithin the context of the question, {ask} "
            "Respond only with yes or no.\nResponse:")  # fmt: skip


def _yes_no(reply: str) -> tuple[float, str] | None:
    """The paper's rule: "yes" anywhere is right, else "no" anywhere is wrong."""
    said = reply.lower()
    return (1.0, "yes") if "yes" in said else (0.0, "no") if "no" in said else None


def _graded(question: str, references: list[str], answer: str) -> str:
    """SimpleQA's grading scheme (CORRECT / INCORRECT / NOT_ATTEMPTED as A / B / C), in halluc's
    own short wording rather than simple-evals' long worked examples."""
    gold = "; ".join(references)
    return ("Grade a predicted answer against the gold target of a question.\n"
            "CORRECT: it contains the gold target's meaning and contradicts nothing in it (extra detail is fine).\n"
            "INCORRECT: it contradicts the gold target or gives another answer, even with a hedge.\n"
            "NOT_ATTEMPTED: it gives no answer (a refusal, 'I don't know') and contradicts nothing.\n"
            f"Question: {question}\nGold target: {gold}\nPredicted answer: {answer}\n"
            "Grade it as one of:\nA: CORRECT\nB: INCORRECT\nC: NOT_ATTEMPTED\n"
            'Just return the letter "A", "B", or "C", with no text around it.')  # fmt: skip


def _letter(reply: str) -> tuple[float, str] | None:
    """simple-evals' rule: the first capital A, B or C (no letter: a failure here, not C)."""
    found = re.search(r"(A|B|C)", reply)
    if found is None:
        return None
    return {"A": (1.0, "correct"), "B": (0.0, "incorrect"), "C": (0.0, "not_attempted")}[found.group(1)]


def _fact_check(question: str, references: list[str], claim: str) -> str:
    """One claim of a long answer checked: against the reference facts as context when there are
    some (FActScore's retrieve-then-ask "True or False?", Min et al. 2023), else from the judge's
    own knowledge (LM-Polygraph's claim fact check); halluc's wording, three verdicts."""
    if references:
        context = "Reference facts:\n" + "\n".join(f"- {f}" for f in references) + "\n"
        ask = "Do the reference facts support the claim?"
        scale = ("SUPPORTED: the facts state it. REFUTED: the facts contradict it. "
                 "UNVERIFIABLE: the facts say nothing about it.")  # fmt: skip
    else:
        context, ask = "", "Is the claim true?"
        scale = "SUPPORTED: it is true. REFUTED: it is false. UNVERIFIABLE: you cannot tell."
    return (f"You check one claim taken from an answer to: {question}\n{context}Claim: {claim}\n"
            f"{ask} {scale}\nReply with one word: SUPPORTED, REFUTED or UNVERIFIABLE.")  # fmt: skip


def _fact_verdict(reply: str) -> tuple[float | None, str] | None:
    """The first of the three words in the reply (any case); none of them is a failure."""
    found = re.search(r"supported|refuted|unverifiable", reply.lower())
    if found is None:
        return None
    return {"supported": (1.0, "supported"), "refuted": (0.0, "unsupported"),
            "unverifiable": (None, "unverifiable")}[found.group(0)]  # fmt: skip


PROMPTS = {
    p.name: p
    for p in (
        GradePrompt(
            "semantic-entropy", "Farquhar et al. 2024, jlko/semantic_uncertainty", _semantic_entropy, _yes_no
        ),
        GradePrompt("simpleqa", "OpenAI simple-evals SimpleQA grades (halluc's wording)", _graded, _letter),
    )
}
# the prompt that grades one claim of a long answer (`halluc_claims`), not a whole answer
FACT_CHECK = GradePrompt("fact-check", "FActScore / LM-Polygraph claim checks (halluc's wording)", _fact_check,
                         _fact_verdict)  # fmt: skip


LOCAL_BATCH = 16  # prompts a local judge model grades per forward batch

# --- one judge ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """What a judge grades."""

    question: str
    references: tuple[str, ...]
    answer: str


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """`BACKEND:MODEL[@BASE_URL]` -> (backend, model, base_url)."""
    kind, colon, rest = spec.partition(":")
    model, _, base_url = rest.partition("@")
    if not colon or not kind or not model:
        raise BadInput(f"--judge {spec!r}: expected BACKEND:MODEL[@BASE_URL], e.g. openai:gpt-4o-mini")
    return kind, model, base_url or None


class Judge:
    """One model grading with one prompt (a name in PROMPTS, or a GradePrompt such as FACT_CHECK);
    `grade` journals what it learns."""

    def __init__(
        self,
        spec: str,
        prompt: str | GradePrompt = "semantic-entropy",
        limits: Any = None,
        cache: Path | None = None,
    ):
        from halluc_backends import Limits, backend_class

        if isinstance(prompt, str) and prompt not in PROMPTS:
            raise BadInput(f"--judge-prompt {prompt!r}: expected one of {', '.join(PROMPTS)}")
        kind, model, base_url = parse_spec(spec)
        self.spec, self.prompt = spec, PROMPTS[prompt] if isinstance(prompt, str) else prompt
        self.name = f"{kind}:{model}"  # the base URL and any key stay out of records
        self.backend = backend_class(kind)(model, **({"base_url": base_url} if base_url else {}))
        self.limits = limits or Limits()
        self.cache = cache
        self._open: Any = None  # the grades journal, once opened
        self._known: dict[str, dict[str, Any]] = {}

    def key(self, item: Item) -> str:
        doc = [self.name, self.prompt.name, item.question, list(item.references), item.answer]
        return hashlib.sha256(json.dumps(doc, ensure_ascii=False).encode()).hexdigest()[:32]

    def grade(self, items: list[Item]) -> list[dict[str, Any]]:
        """One grade per item ({value, label, reply, error}), from the cache where it holds one."""
        journal, asked = self._journal(), {}
        todo = list({self.key(i): i for i in items if self.key(i) not in self._known}.items())
        for key, grade in zip([k for k, _ in todo], self._ask([i for _, i in todo]), strict=True):
            asked[key] = {"id": key, "judge": self.name, "prompt": self.prompt.name, **grade}
            if grade["error"] is None:  # a failed request is asked again next time
                journal.append(asked[key])
                self._known[key] = asked[key]
        return [asked.get(k) or self._known[k] for k in map(self.key, items)]

    def _journal(self) -> Any:
        """The grades journal, opened (and read) once per judge: a run that grades answer by answer
        reads it once."""
        if self._open is None:
            from ucli.journal import Journal
            from ucli.paths import cache_dir

            path = self.cache or cache_dir() / "judges" / "grades.jsonl"
            self._open = Journal(path, config={"schema": "halluc.judges.grades"}, resume=True)
            self._known = {r["id"]: r for r in self._open.records()}
        return self._open

    def _ask(self, items: list[Item]) -> list[dict[str, Any]]:
        from halluc_backends import LocalBackend, SamplingParams

        prompts = [self.prompt.build(i.question, list(i.references), i.answer) for i in items]
        params = SamplingParams(temperature=0.0, max_tokens=self.prompt.max_tokens, top_logprobs=0)
        if not prompts:
            return []
        if isinstance(self.backend, LocalBackend):  # in batches of LOCAL_BATCH prompts
            batches = [prompts[i : i + LOCAL_BATCH] for i in range(0, len(prompts), LOCAL_BATCH)]
            replies = [
                (g.text, None) for batch in batches for g in self.backend.generate_batch(batch, params)
            ]
        else:
            replies = asyncio.run(self._ask_api(prompts, params))
        return [self._read(text, error) for text, error in replies]

    async def _ask_api(self, prompts: list[str], params: Any) -> list[tuple[str | None, str | None]]:
        from halluc_backends import BackendError, Caller

        caller = Caller(self.backend, self.limits)

        async def one(text: str) -> tuple[str | None, str | None]:
            async with caller.gate:
                try:
                    return (await caller.answer(text, params, [0])).text, None
                except BackendError as exc:
                    return None, str(exc)

        try:
            return list(await asyncio.gather(*(one(p) for p in prompts)))
        finally:
            await self.backend.aclose()

    def _read(self, reply: str | None, error: str | None) -> dict[str, Any]:
        if error is not None:
            return {"value": None, "label": "failed", "reply": None, "error": f"request failed: {error}"}
        read = self.prompt.read(reply or "")
        if read is None:
            return {"value": None, "label": "unreadable", "reply": reply, "error": None}
        return {"value": read[0], "label": read[1], "reply": reply, "error": None}
