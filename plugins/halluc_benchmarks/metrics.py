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
function words must hold a letter (a digit for number answers; either for "how many/much" questions),
and no seam may show (`seam`): no phrase of two or more words said twice ("New Horizons New
Horizons"), no word said twice in a row or begun again within the next two words ("Lol Lol
Lolita", "The Metamorph The Metamorphosis"; initials such as "J. J." are exempt), no dangling last
word ("... by", "... of the").
"""

from __future__ import annotations

import itertools
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
    """Whether an answer reads as an answer, right or wrong: it says something beyond the question's
    own words and function words (a letter; a digit for number answers and "how many/much"
    questions), and it has no seam: no phrase of two or more words said twice, no word repeated or
    restarted by the next one ("Lol Lol", "Metamorph Metamorphosis"), no dangling last word ("by",
    "of", "the"). Empty text, punctuation, bare list numbers for a text question and truncated
    copies of the question fail too. Every repair, the `+abstain` fallback and the summaries use it."""
    asked = normalize(question)
    new = [w for w in normalize(answer).split() if w not in set(asked.split()) | FUNCTION_WORDS]
    if answer_type in ("number", "final-number"):  # judged on its digits
        says = any(c.isdigit() for w in new for c in w)
    else:
        counting = asked.startswith(("how many", "how much"))
        says = any(c.isalpha() or (counting and c.isdigit()) for w in new for c in w)
    return says and seam(answer) is None


# a last word that leaves the answer hanging
DANGLING = FUNCTION_WORDS - {"it", "its", "this", "that", "so", "answer"} | {
    "the",
    "a",
    "an",
    "or",
    "but",
    "named",
    "called",
}


def seam(answer: str) -> str | None:
    """What shows that an answer was stitched or cut (None: nothing): a repeated phrase, a word
    repeated or restarted by the next one, or a dangling last word."""
    words = [w for w in unicodedata.normalize("NFKC", answer).lower().translate(PUNCTUATION).split() if w]
    for i, word in enumerate(words):  # cut and begun again: "Lol Lol", "Metamorph The Metamorphosis"
        after = words[i + 1 : i + 3]
        restarted = (
            len(word) >= 3 and word not in DANGLING and any(w != word and w.startswith(word) for w in after)
        )
        if (len(word) > 1 and after[:1] == [word]) or restarted:  # initials repeat: "J. J. Thomson"
            return f"'{word}' is begun again"
    seen: set[tuple[str, str]] = set()
    for first, second in itertools.pairwise(words):
        if (first, second) in seen:
            return f"'{first} {second}' is said twice"
        seen.add((first, second))
    if words and words[-1] in DANGLING:
        return f"ends on '{words[-1]}'"
    return None


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
