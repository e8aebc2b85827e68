"""Quality measures: how good an answer is against a sample's references, as one number, and the
rule that turns the number into a verdict (`rouge_l>=0.3`).

A measure is a plugin of the `halluc.metrics` entry-point group, built-ins included; a third-party
package adds one in one module:

    # my_pkg/measure.py
    from halluc_benchmarks.quality import QualityMeasure

    def _length_ratio(answer, sample):
        return min(len(answer), len(sample.reference)) / max(len(answer), len(sample.reference), 1)

    LENGTH = QualityMeasure("length", "shorter over longer length", "mine", _length_ratio)

    # pyproject.toml
    [project.entry-points."halluc.metrics"]
    length = "my_pkg.measure:LENGTH"

The built-ins follow their published rules: `exact_match` and `f1` are SQuAD's evaluate-v1.1
(lower case, punctuation deleted, articles a/an/the dropped, whitespace collapsed; the best
reference counts); `triviaqa_em` is TriviaQA's evaluation (underscores and punctuation, with
curly quotes and backticks, become spaces before the same steps); `coqa_f1` is CoQA's
evaluate-v1.0 (several references: each left out in turn, the best F1 against the others,
averaged); `rouge_l` is rouge-score's ROUGE-L F-measure with the Porter stemmer (as LM-Polygraph
computes it); `bleu` and `chrf` are sacrebleu's sentence scores on its 0-100 scale (BLEU with
effective order); `numeric` and `contains` are halluc's own answer rules (`metrics`).
"""

from __future__ import annotations

import operator
import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from ucli.errors import BadInput

Sample = Any  # a halluc_benchmarks.base.Sample (base imports this module)


@dataclass(frozen=True)
class QualityMeasure:
    """One number for (answer, sample), higher = better; `source` names the rule it follows."""

    name: str
    description: str
    source: str
    measure: Callable[[str, Any], float]

    def __call__(self, answer: str, sample: Sample) -> float:
        return float(self.measure(answer, sample))


# --- SQuAD's and TriviaQA's normalisation (their published evaluation scripts' order) -------------

_SQUAD_PUNCTUATION = set(string.punctuation)
_TRIVIA_PUNCTUATION = set(string.punctuation + "‘’´`")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def squad_normalize(text: str) -> str:
    """lower, delete punctuation, drop articles, collapse whitespace (SQuAD evaluate-v1.1/v2.0)."""
    text = "".join(c for c in text.lower() if c not in _SQUAD_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def triviaqa_normalize(text: str) -> str:
    """underscores to spaces, lower, punctuation to spaces, drop articles, collapse whitespace."""
    text = "".join(" " if c in _TRIVIA_PUNCTUATION else c for c in text.replace("_", " ").lower())
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, truth: str) -> float:
    """SQuAD's token F1 of two normalised strings; two empty ones agree (v2's no-answer)."""
    pred, gold = squad_normalize(prediction).split(), squad_normalize(truth).split()
    if not pred or not gold:
        return float(pred == gold)
    same = sum((Counter(pred) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def _references(sample: Sample) -> list[str]:
    """Every reference of a sample; an unanswerable one (SQuAD v2) has the empty answer only."""
    return sample.references or [""]


def _exact(answer: str, sample: Sample) -> float:
    said = squad_normalize(answer)
    return float(any(said == squad_normalize(r) for r in _references(sample)))


def _f1(answer: str, sample: Sample) -> float:
    return max(token_f1(answer, r) for r in _references(sample))


def _triviaqa_em(answer: str, sample: Sample) -> float:
    said = triviaqa_normalize(answer)
    return float(any(said == triviaqa_normalize(r) for r in sample.references))


def _coqa_f1(answer: str, sample: Sample) -> float:
    refs = _references(sample)
    if len(refs) == 1:
        return token_f1(answer, refs[0])
    return sum(
        max(token_f1(answer, r) for j, r in enumerate(refs) if j != i) for i in range(len(refs))
    ) / len(refs)


@cache
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(answer: str, reference: str) -> float:
    return _rouge().score(reference, answer)["rougeL"].fmeasure


def _rouge_l(answer: str, sample: Sample) -> float:
    return max(rouge_l(answer, r) for r in _references(sample))


def _bleu(answer: str, sample: Sample) -> float:
    import sacrebleu

    return sacrebleu.sentence_bleu(answer, _references(sample)).score


def _chrf(answer: str, sample: Sample) -> float:
    import sacrebleu

    return sacrebleu.sentence_chrf(answer, _references(sample)).score


def _rouge_l_margin(answer: str, sample: Sample) -> float:
    """TruthfulQA's rule: the best ROUGE-L against the true answers less the best against the false ones."""
    false = sample.metadata.get("incorrect_answers") or []
    return _rouge_l(answer, sample) - max((rouge_l(answer, r) for r in false), default=0.0)


_LETTER_FIRST = re.compile(
    r"^\W*?\(?([A-Z])(?:[.):,]|[ \t]*(?:\n|$))"
)  # "B", "(B)", "B. 4", "B\n..."; not "A cat"
_LETTER_SAID = re.compile(r"answer is:?\s*\(?([A-Z])\b(?!['’])")


def chosen_letter(answer: str, letters: str, options: list[str]) -> str | None:
    """The option an answer picks: its letter first ("B", "(B)", "B. 4", "the answer is B"), else the
    one option whose text it says (normalised as SQuAD does), else None."""
    found = _LETTER_FIRST.match(answer.strip()) or _LETTER_SAID.search(answer)
    if found and found.group(1) in letters:
        return found.group(1)
    said = squad_normalize(answer)
    named = [x for x, o in zip(letters, options, strict=True) if said and squad_normalize(o) == said]
    return named[0] if len(named) == 1 else None


def _choice(answer: str, sample: Sample) -> float:
    letter = chosen_letter(answer, sample.metadata["letters"], sample.metadata["options"])
    return float(letter is not None and letter in sample.references)


def _numeric(answer: str, sample: Sample) -> float:
    from halluc_benchmarks.metrics import final_answer, judge_number

    return judge_number(answer, sample.reference or "", extracted=final_answer(answer)).value


def _contains(answer: str, sample: Sample) -> float:
    from halluc_benchmarks.metrics import judge_text

    return judge_text(answer, sample.references).value


EXACT_MATCH = QualityMeasure(
    "exact_match", "normalised exact match, best reference", "SQuAD evaluate-v1.1", _exact
)
F1 = QualityMeasure("f1", "token F1, best reference", "SQuAD evaluate-v1.1", _f1)
TRIVIAQA_EM = QualityMeasure(
    "triviaqa_em", "exact match over the aliases", "TriviaQA evaluation", _triviaqa_em
)
COQA_F1 = QualityMeasure("coqa_f1", "token F1, references left out in turn", "CoQA evaluate-v1.0", _coqa_f1)
ROUGE_L = QualityMeasure("rouge_l", "ROUGE-L F-measure (stemmed), best reference", "rouge-score", _rouge_l)
BLEU = QualityMeasure("bleu", "sentence BLEU 0-100, all references", "sacrebleu", _bleu)
CHRF = QualityMeasure("chrf", "sentence chrF 0-100, all references", "sacrebleu", _chrf)
ROUGE_L_MARGIN = QualityMeasure("rouge_l_margin", "best ROUGE-L to a true answer less to a false one", "TruthfulQA (lm-eval truthfulqa_gen)", _rouge_l_margin)  # fmt: skip
CHOICE = QualityMeasure("choice", "the option letter picked is a right one", "MMLU / lm-eval multiple choice", _choice)  # fmt: skip
NUMERIC = QualityMeasure("numeric", "the final number equals the reference", "halluc metrics", _numeric)
CONTAINS = QualityMeasure("contains", "a reference in the first sentence, not hedged or negated", "halluc metrics", _contains)  # fmt: skip


def get_measure(name: str) -> QualityMeasure:
    """The measure registered as `name` (`halluc.metrics`), or bad input listing them."""
    from ucli import plugins

    found = plugins.load("metrics", name)
    if not callable(found):
        raise BadInput(f"quality measure '{name}' ({found!r}) is not callable as (answer, sample) -> float")
    return found


# --- the verdict rule --------------------------------------------------------------------------

_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq}
_RULE = re.compile(r"\s*([A-Za-z_][\w.+-]*)\s*(>=|<=|==|>|<)\s*([-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class CorrectIf:
    """`measure op threshold`: an answer is right when its quality passes the threshold."""

    measure: str
    op: str
    threshold: float

    @classmethod
    def parse(cls, text: str) -> CorrectIf:
        m = _RULE.match(text)
        if m is None:
            raise BadInput(
                f"--correct-if {text!r}: expected MEASURE OP NUMBER, e.g. rouge_l>=0.3 (OP: >=, >, <=, <, ==)"
            )
        return cls(m.group(1), m.group(2), float(m.group(3)))

    def __str__(self) -> str:
        return f"{self.measure}{self.op}{self.threshold:g}"

    def passes(self, value: float) -> bool:
        return bool(_OPS[self.op](value, self.threshold))
