"""Claim splitters: an answer in, its claims out. A splitter is a class registered under the
entry-point group `halluc.claims`, constructed with its own options (`-B key=value`), with a
`split(answer, question)` method; the built-in `sentences` is the offline default.

The `sentences` rule: the answer is cut into sentences by pysbd (the rule-based segmenter of
Sadvilkar and Neumann 2020: abbreviations such as "Dr." and "Nov.", decimals such as "66.5", and
quoted sentences stay whole), then each sentence into clauses at semicolons (`clauses=false` keeps
whole sentences). Leading and trailing spaces are trimmed; a piece with no letter or digit is not a
claim. Every claim is a span of the answer: its character offsets are kept, so it aligns exactly.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from ucli.errors import BadInput


@dataclass(frozen=True)
class Claim:
    """One claim of an answer: its text, the sentence it came from (index), and its character span
    in the answer when it is a span of it (None for a claim an LLM rewrote)."""

    text: str
    sentence: int
    start: int | None = None
    end: int | None = None


class Sentences:
    """Sentences by pysbd, then clauses at semicolons (`clauses`): spans of the answer."""

    name = "sentences"

    def __init__(self, clauses: bool | str = True) -> None:
        self.clauses = clauses if isinstance(clauses, bool) else _flag(clauses, "clauses")

    def split(self, answer: str, question: str = "") -> list[Claim]:
        import pysbd

        out = []
        segmenter = pysbd.Segmenter(language="en", clean=False, char_span=True)
        for index, sentence in enumerate(s for s in segmenter.segment(answer) if s.sent.strip()):
            pieces = [(sentence.start, sentence.end)]
            if self.clauses:
                cuts = [
                    sentence.start + m.end() for m in re.finditer(";", answer[sentence.start : sentence.end])
                ]
                bounds = [sentence.start, *cuts, sentence.end]
                pieces = list(itertools.pairwise(bounds))
            for start, end in pieces:
                claim = _trimmed(answer, start, end, index)
                if claim is not None:
                    out.append(claim)
        return out


def _trimmed(answer: str, start: int, end: int, sentence: int) -> Claim | None:
    text = answer[start:end]
    lead = len(text) - len(text.lstrip())
    text = text.strip()
    if not re.search(r"\w", text):
        return None
    return Claim(text, sentence, start + lead, start + lead + len(text))


def _flag(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered not in ("true", "false", "1", "0", "yes", "no"):
        raise BadInput(f"-B {name}={value}: expected true or false")
    return lowered in ("true", "1", "yes")


def splitters() -> dict[str, Any]:
    """Every claim splitter that loaded, by name (entry points `halluc.claims`)."""
    from ucli import plugins

    return {info.name: info.obj for info in plugins.discover("claims") if info.status == "ok"}


def get_splitter(name: str, **options: Any) -> Any:
    """The splitter `name` made with its options; an unknown name or option is one line."""
    import inspect

    from ucli import plugins

    cls = plugins.load("claims", name)
    accepted = set(inspect.signature(cls).parameters)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise BadInput(
            f"--claims {name}: unknown option '{unknown[0]}' (it takes: {', '.join(sorted(accepted)) or 'none'})"
        )
    return cls(**options)


def parse_splitter(spec: str) -> tuple[str, dict[str, str]]:
    """`NAME[,key=value...]` (`sentences,clauses=false`, `llm,model=openai:gpt-4o-mini`) -> (name, options)."""
    name, *rest = [part.strip() for part in spec.split(",")]
    options = {}
    for part in rest:
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise BadInput(f"--claims {spec}: expected NAME[,key=value...], got {part!r}")
        options[key.strip()] = value.strip()
    return name, options
