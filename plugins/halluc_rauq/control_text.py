"""The controller's text rules: where a sentence or clause ends (rollback anchors, where a thought
may end), what delimiter debris a resumed answer must not start with, and which text around kept
thoughts is the judged answer."""

from __future__ import annotations

import re

ANCHOR_CHARS = ".!?;:,\n"  # a token whose text ends with one of these closes a sentence or clause
LEADING_JUNK = " \t\n:;,.-–—*)]>"  # delimiter debris a resumed answer must not start with


def sentence_closed(text: str) -> bool:
    """Whether `text` ends a sentence or a line: `.`, `!` or `?` (closing quotes or brackets may
    follow) or a line break; a list number ("2.", "Steps: 1.": one or two digits before the dot)
    closes nothing, a year ("in 1930.") does."""
    tail = text.rstrip(" ")
    if tail.endswith("\n"):
        return True
    last = tail.rsplit("\n", 1)[-1].strip()
    if not last or re.search(r"(?<![\d.,])\d{1,2}\.$", last):
        return False
    return re.search(r"[.!?][\"')\]”’]*$", last) is not None


def judged_answer(pieces: list[str], opening: str = "") -> str:
    """The answer a reader is given from the text around kept thoughts (`pieces`: the text before
    the first thought, between thoughts, and after the last, each without its delimiters). The
    closing delimiter asks for the answer ("So the answer is"), so the last piece is the answer, as
    chain-of-thought answer extraction reads it; a piece before a thought counts only when it is a
    finished sentence, so that no phrase is cut at a seam or said again after it ("The capital of" +
    "Tehran" -> "Tehran"; "Lol" + "Lolita" -> "Lolita"). A model that says a thought's `opening`
    itself ("Mong Wait, let me think.", or its first words at the end: "... Wait") starts thinking
    aloud: the answer ends before it."""
    cut = [_before(p, opening) for p in pieces] if opening.strip() else pieces
    *before, last = [p.strip() for p in cut] or [""]
    return " ".join(p for p in [*(p for p in before if sentence_closed(p)), last] if p)


def _before(text: str, opening: str) -> str:
    """`text` up to the opening's echo: the whole opening anywhere, or its first words at the end
    (an echo the model cut short: "... So the answer is: Wait")."""
    said, echo = text.lower(), opening.strip().lower()
    at = said.find(echo)
    if at >= 0:
        return text[:at]
    words = echo.split()
    for n in range(len(words), 0, -1):
        head = " ".join(words[:n]).rstrip(",.;:")
        if re.search(rf"(?:^|\s){re.escape(head)}[\s,.;:]*$", said):
            return text[: said.rfind(head)]
    return text
