"""Verbalized confidence: the model is shown the question and its own answer and asked for a
confidence from 0 to 100 (the two-stage form of Tian et al. 2023, "Just ask for calibration",
LM-Polygraph's Verbalized2S; asked of the greedy answer, so every estimator scores the same answer).

Parse rule: the first number in the reply (an integer or a decimal, a `%` after it allowed) that
lies in [0, 100] is the confidence; a reply with none is recorded as unparsable (the estimator gives
None for it, and the reply stays in the record). A number in [0, 1] written with a decimal point
(`0.8`) is read as a probability and scaled to 80, since models often answer so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from halluc_signals.estimators import Estimator

PROMPT = (
    "Question: {question}\nProposed answer: {answer}\n"
    "How confident are you that the proposed answer is correct? Reply with one number from 0 to 100, "
    "where 0 means certainly wrong and 100 means certainly correct.\nConfidence:"
)
CONFIDENCE_TOKENS = 8  # the reply's budget: a number, perhaps a percent sign
_NUMBER = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d+)?|\.\d+)\s*(%?)")


def confidence_prompt(question: str, answer: str) -> str:
    return PROMPT.format(question=question.strip(), answer=answer.strip())


def parse_confidence(reply: str) -> float | None:
    """The stated confidence in [0, 100] (the module's parse rule), or None."""
    for match in _NUMBER.finditer(reply or ""):
        text, percent = match.groups()
        value = float(text)
        if "." in text and value <= 1.0 and not percent:
            value *= 100.0
        if 0.0 <= value <= 100.0:
            return value
    return None


def _verbalized(r: Mapping[str, Any]) -> float | None:
    stated = r.get("verbalized_confidence")
    return None if stated is None else 1.0 - float(stated) / 100.0


VERBALIZED_CONFIDENCE = Estimator(
    "verbalized_confidence", _verbalized, frozenset({"verbalized"}),
    reference="Verbalized confidence (Tian et al. 2023, two-stage; LM-Polygraph Verbalized2S), 0-100 as stated",
    formula="1 - c / 100, c the first number in [0, 100] of the reply to the confidence prompt",
)  # fmt: skip
