"""The `llm` claim splitter: each sentence of the answer (pysbd, as `sentences` cuts them) broken
into independent atomic claims by a model behind any registered backend (`--claims
llm,model=openai:gpt-4o-mini`, `@URL` for a compatible server, `hf:PATH` for a local model).

The prompt is halluc's wording of the atomic-fact decomposition of FActScore (Min et al. 2023,
"Please breakdown the following sentence into independent facts") as LM-Polygraph's claim
extraction asks it: one sentence at a time, one worked example, one claim per line starting
with "- ". A reply with no such line is out of format: that sentence's claims are a recorded
failure (`claims_failed` in the record), never guessed. Requests go through `halluc_judges.Judge`
(rate limit, retries, keys from the environment), so every reply is journaled and a rerun asks
nothing twice. The claims are rewritten text, not spans: they are aligned by their content words.
"""

from __future__ import annotations

import re

from halluc_claims.split import Claim, Sentences

EXAMPLE_SENTENCE = "He was born in London in 1950 and studied physics at Cambridge, where he later taught."
EXAMPLE_CLAIMS = ("He was born in London.", "He was born in 1950.", "He studied physics at Cambridge.",
                  "He later taught at Cambridge.")  # fmt: skip


def decomposition_prompt(question: str, references: list[str], sentence: str) -> str:
    """The request for one sentence (`question` is the prompt the answer replied to)."""
    shown = "\n".join(f"- {c}" for c in EXAMPLE_CLAIMS)
    return ("Break the sentence into independent atomic claims: each claim states one fact, stands on "
            "its own (no pronoun without its name where the sentence gives it) and adds nothing the "
            "sentence does not say.\n\n"
            f'Sentence: "{EXAMPLE_SENTENCE}"\nClaims:\n{shown}\n\n'
            f'The sentence comes from an answer to: {question}\nSentence: "{sentence}"\nClaims:')  # fmt: skip


def read_claims(reply: str) -> tuple[None, str] | None:
    """The reply's claim lines ("- claim"); None when it has none (out of format)."""
    lines = [m.group(1).strip() for m in re.finditer(r"^\s*[-*\u2022]\s+(.+)$", reply, re.M)]
    return (None, "\n".join(lines)) if any(lines) else None


class Decomposer:
    """Atomic claims by an LLM, sentence by sentence (see the module)."""

    name = "llm"

    def __init__(self, model: str = "", rpm: float | str = 60.0) -> None:
        from halluc_backends import Limits
        from halluc_judges import GradePrompt, Judge
        from ucli.errors import BadInput

        if not model:
            raise BadInput(
                "--claims llm needs model=BACKEND:MODEL, e.g. --claims llm,model=openai:gpt-4o-mini"
            )
        try:
            rate = float(rpm)
        except ValueError:
            raise BadInput(f"--claims llm,rpm={rpm}: expected a number of requests per minute") from None
        prompt = GradePrompt("claims", "FActScore atomic facts / LM-Polygraph claim extraction (halluc's wording)",
                             decomposition_prompt, read_claims, max_tokens=256)  # fmt: skip
        self.judge = Judge(model, prompt, Limits(requests_per_minute=rate))
        self.sentences = Sentences(clauses=False)

    def split(self, answer: str, question: str = "") -> list[Claim]:
        return self.split_many([answer], [question])[0][0]

    def split_many(self, answers: list[str], questions: list[str]) -> list[tuple[list[Claim], list[str]]]:
        """Every answer's claims and failures, all sentences of the run asked at once."""
        from halluc_judges import Item

        cut = [self.sentences.split(a, q) for a, q in zip(answers, questions, strict=True)]
        items = [Item(q, (), s.text) for q, sents in zip(questions, cut, strict=True) for s in sents]
        grades = iter(self.judge.grade(items))
        out = []
        for sents in cut:
            claims, failures = [], []
            for index in range(len(sents)):
                grade = next(grades)
                read = read_claims(grade["reply"] or "") if grade["error"] is None else None
                if read is None:
                    failures.append(
                        f"sentence {index}: {grade['error'] or 'reply out of format'}: {grade['reply']!r}"
                    )
                    continue
                claims += [Claim(text, index) for text in read[1].splitlines()]
            out.append((claims, failures))
        return out
