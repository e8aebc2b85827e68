"""Answer extraction and matching shared by every benchmark, so one rule decides everywhere.

Rules, in order (`judge_text`):
1. `exact`: the whole completion, normalised, equals a normalised reference or alias.
2. The first sentence is judged (chatty instruct answers put the answer there; "Dr." or "J. K."
   do not end a sentence). Within it:
   - `hedged`: a disjunction ("or", "either", "neither", "nor") makes it wrong: "Paris or Lyon"
     is not an answer. A reference that itself contains the word is exempt.
   - `negated`: "not", "never" or "isn't" right before the match makes it wrong.
   - `contains`: a reference appears as whole words: "The capital of France is Paris." is right.
3. `no match` otherwise.
Normalisation: Unicode NFKC, accents removed, lower case, punctuation to spaces, articles
(a, an, the) dropped, whitespace collapsed.

Numbers (`judge_number`): numbers are read with commas, currency signs, percent signs and trailing
units ignored ("$1,234.50", "12 apples", "45%"); correct when a number of the first sentence
(or the extracted final answer) equals the reference. `final_answer` finds where a worked
solution ends: after its last "####", else after its last "answer is"/"answer:", else its last
number.

Well-formed answers (`well_formed`): not empty, not only punctuation, not a bare number for a text
question, not a copy of (part of) the question: some word beyond the question's own words and a few
function words must hold a letter (a digit for number answers; either for "how many/much" questions).
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from dataclasses import dataclass

ARTICLES = re.compile(r"\b(a|an|the)\b")
HEDGES = ("or", "either", "neither", "nor")
NEGATIONS = ("not", "never", "isn t", "wasn t", "aren t", "weren t")  # not "no": "No, Paris." corrects
ABBREVIATIONS = {
    "dr",
    "mr",
    "mrs",
    "ms",
    "st",
    "mt",
    "jr",
    "sr",
    "vs",
    "no",
    "etc",
    "e g",
    "i e",
    "prof",
    "gen",
    "u s",
}
INITIALS = re.compile(r"(?:[^\W\d_]\.)*[^\W\d_]")  # "j", "j.r.r", "u.s"
NUMBER = re.compile(r"(?<![\w.])[-−]?[$€£]?\d[\d,]*(?:\.\d+)?")
PUNCTUATION = str.maketrans(string.punctuation + "“”‘’–—…", " " * (len(string.punctuation) + 7))


@dataclass(frozen=True)
class Score:
    """A verdict that can be audited: what was extracted and which rule decided."""

    correct: bool
    value: float
    extracted: str
    rule: str


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def normalize(text: str) -> str:
    text = strip_accents(unicodedata.normalize("NFKC", text)).lower().translate(PUNCTUATION)
    return " ".join(ARTICLES.sub(" ", text).split())


def first_sentence(text: str) -> str:
    """The completion up to its first sentence end or line break (abbreviations and initials kept)."""
    text = text.strip()
    line = text.split("\n", 1)[0].strip() or text
    for m in re.finditer(r"[.!?](?=\s|$)", line):
        before = re.findall(r"[\w.]+$", line[: m.start()])
        word = before[0].lower().rstrip(".") if before else ""
        if m.group() == "." and (INITIALS.fullmatch(word) or word.replace(".", " ") in ABBREVIATIONS):
            continue  # "J. K. Rowling", "J.R.R. Tolkien", "U.S.", "Dr. Fleming"
        return line[: m.end()].strip()
    return line


def _whole(needle: str, haystack: str) -> int:
    """Index of needle as whole words in haystack (both normalised), or -1."""
    m = re.search(rf"(?:^| ){re.escape(needle)}(?: |$)", haystack)
    return -1 if m is None else m.start()


def judge_text(completion: str, references: list[str]) -> Score:
    refs = [r for r in dict.fromkeys(normalize(r) for r in references) if r]
    whole = normalize(completion)
    if whole in refs:
        return Score(True, 1.0, completion.strip(), "exact")
    sentence = first_sentence(completion)
    said = normalize(sentence)
    for ref in refs:
        at = _whole(ref, said)
        if at < 0:
            continue
        ref_words = set(ref.split())
        if any(_whole(h, said) >= 0 for h in HEDGES if h not in ref_words):
            return Score(False, 0.0, sentence, "hedged")
        before = said[:at].split()[-2:]
        if any(" ".join(before[i:]) in NEGATIONS for i in range(len(before))):
            return Score(False, 0.0, sentence, "negated")
        return Score(True, 1.0, sentence, "contains")
    return Score(False, 0.0, sentence, "no match")


def parse_number(text: str) -> float | None:
    """The first number in text ("$1,234.50" -> 1234.5, "12 apples" -> 12), or None."""
    found = numbers(text)
    return found[0] if found else None


def numbers(text: str) -> list[float]:
    out = []
    for m in NUMBER.finditer(text.replace("−", "-")):
        raw = m.group().replace(",", "").lstrip("$€£").replace("-$", "-")
        raw = raw.replace("$", "").replace("€", "").replace("£", "")
        try:
            out.append(float(raw))
        except ValueError:
            continue
    return out


def same_number(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def judge_number(completion: str, reference: str, extracted: str | None = None) -> Score:
    """Numeric match: `extracted` (a final answer a benchmark pulled out) or the first sentence."""
    target = parse_number(reference)
    if target is None:
        raise ValueError(f"reference {reference!r} holds no number")
    text = extracted if extracted is not None else first_sentence(completion)
    found = numbers(text)
    if any(same_number(x, target) for x in found):
        return Score(True, 1.0, text, "number")
    return Score(False, 0.0, text, "no match" if not found else "wrong number")


# words that carry no answer on their own ("is", "by", ...): an answer made only of these and of
# the question's own words says nothing new
FUNCTION_WORDS = frozenset(
    [
        "is",
        "was",
        "are",
        "were",
        "be",
        "been",
        "of",
        "in",
        "on",
        "at",
        "by",
        "for",
        "to",
        "from",
        "with",
        "and",
        "as",
        "it",
        "its",
        "this",
        "that",
        "which",
        "who",
        "whom",
        "what",
        "when",
        "where",
        "how",
        "answer",
        "so",
    ]
)


def well_formed(answer: str, question: str, answer_type: str = "text") -> bool:
    """Whether an answer reads as an answer: something beyond the question's own words and function
    words, holding a letter (a digit for number answers; either for "how many/much" questions). Empty
    text, bare list numbers ("2.") for a text question, punctuation and truncated copies of the
    question fail."""
    asked = normalize(question)
    new = [w for w in normalize(answer).split() if w not in set(asked.split()) | FUNCTION_WORDS]
    if answer_type in ("number", "final-number"):  # judged on its digits
        return any(c.isdigit() for w in new for c in w)
    counting = asked.startswith(("how many", "how much"))
    return any(c.isalpha() or (counting and c.isdigit()) for w in new for c in w)


FINAL_MARKER = re.compile(r"answer\s*(?:is|:)\s*", re.I)


def final_answer(completion: str) -> str:
    """The span a worked solution ends on (see the module rules)."""
    if "####" in completion:
        return completion.rsplit("####", 1)[1].strip().split("\n", 1)[0]
    markers = list(FINAL_MARKER.finditer(completion))
    if markers:
        return completion[markers[-1].end() :].strip().split("\n", 1)[0]
    found = list(NUMBER.finditer(completion))
    return found[-1].group() if found else completion.strip()
