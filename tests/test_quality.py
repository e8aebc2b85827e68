"""Quality measures against independent references: the published evaluation scripts' rules
(written here from their text, not by calling halluc), rouge-score and sacrebleu."""

import re
import string
from collections import Counter

import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

from halluc_benchmarks import Sample, get_benchmark
from halluc_benchmarks.quality import CorrectIf, get_measure
from ucli.errors import BadInput

# --- the official rules, as the scripts publish them ---------------------------------------------


def squad_official_normalize(s):
    """SQuAD evaluate-v1.1 normalize_answer: white_space_fix(remove_articles(remove_punc(lower(s))))."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def squad_official_f1(prediction, ground_truth):
    pred, gold = squad_official_normalize(prediction).split(), squad_official_normalize(ground_truth).split()
    if len(pred) == 0 or len(gold) == 0:  # v2.0's get_tokens rule: agree only when both are empty
        return int(pred == gold)
    num_same = sum((Counter(pred) & Counter(gold)).values())
    if num_same == 0:
        return 0
    precision, recall = num_same / len(pred), num_same / len(gold)
    return (2 * precision * recall) / (precision + recall)


def triviaqa_official_normalize(s):
    """TriviaQA utils normalize_answer: white_space_fix(remove_articles(handle_punc(lower(replace_underscore(s)))))."""
    s = s.replace("_", " ").lower()
    exclude = set(string.punctuation + "".join(["‘", "’", "´", "`"]))
    s = "".join(ch if ch not in exclude else " " for ch in s)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def coqa_official_f1(golds, pred):
    """CoQA evaluate-v1.0 _compute_turn_score: with several golds each is left out in turn."""
    if len(golds) > 1:
        total = sum(
            max(squad_official_f1(pred, g) for g in golds[:i] + golds[i + 1 :]) for i in range(len(golds))
        )
        return total / len(golds)
    return max(squad_official_f1(pred, g) for g in golds)


def sample(*refs):
    return Sample("s", "q?", refs[0] if refs else None, tuple(refs[1:]))


# odd Unicode, punctuation, quotes, articles and empty strings
ODD = st.lists(
    st.sampled_from([*list("aAbeThnt _-'’`´.,!?é\xa0ÅßİÆ∂1\t\n"), "the ", "an ", "a ", "The ", "_"]),
    max_size=12,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(pred=ODD, refs=st.lists(ODD, min_size=1, max_size=3))
def test_exact_match_and_f1_follow_squad(pred, refs):
    s = sample(*refs)
    expected_em = max(
        float(squad_official_normalize(pred) == squad_official_normalize(r)) for r in s.references or [""]
    )
    assert get_measure("exact_match")(pred, s) == expected_em
    assert get_measure("f1")(pred, s) == pytest.approx(
        max(squad_official_f1(pred, r) for r in s.references or [""])
    )


@settings(max_examples=300, deadline=None)
@given(pred=ODD, refs=st.lists(ODD.filter(str.strip), min_size=1, max_size=3))
def test_triviaqa_em_follows_its_evaluation_script(pred, refs):
    s = sample(*refs)
    expected = any(triviaqa_official_normalize(pred) == triviaqa_official_normalize(r) for r in s.references)
    assert get_measure("triviaqa_em")(pred, s) == float(expected)


@settings(max_examples=200, deadline=None)
@given(pred=ODD, refs=st.lists(ODD, min_size=1, max_size=4))
def test_coqa_f1_follows_its_evaluation_script(pred, refs):
    s = Sample("s", "q?", refs[0], tuple(refs[1:]))
    golds = s.references or [""]
    assert get_measure("coqa_f1")(pred, s) == pytest.approx(coqa_official_f1(golds, pred))


def test_the_rules_on_the_cases_they_were_written_for():
    assert (
        get_measure("exact_match")("The Eiffel-Tower!", sample("eiffeltower")) == 1.0
    )  # punctuation deleted
    assert get_measure("triviaqa_em")("The Eiffel-Tower!", sample("eiffel tower")) == 1.0  # ... spaced
    assert get_measure("f1")("Paris France", sample("Paris")) == pytest.approx(2 / 3)
    assert get_measure("f1")("", Sample("s", "q?", None)) == 1.0  # SQuAD v2: no answer, said nothing
    assert get_measure("exact_match")("Paris", Sample("s", "q?", None)) == 0.0
    # CoQA with four references: leave-one-out averaging, not the best match
    assert get_measure("coqa_f1")("white", sample("white", "grey", "grey", "grey")) == pytest.approx(0.75)


SENTENCES = st.lists(st.sampled_from([*list("abc xyz.,'-éü"), "running ", "ran ", "the "]), max_size=20).map(
    "".join
)


@settings(max_examples=200, deadline=None)
@given(pred=SENTENCES, refs=st.lists(SENTENCES, min_size=1, max_size=3))
def test_rouge_l_equals_rouge_score(pred, refs):
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    expected = max(scorer.score(r, pred)["rougeL"].fmeasure for r in refs)
    assert get_measure("rouge_l")(pred, sample(*refs)) == pytest.approx(expected)


@settings(max_examples=150, deadline=None)
@given(pred=SENTENCES, refs=st.lists(SENTENCES, min_size=1, max_size=3))
def test_bleu_and_chrf_equal_sacrebleu(pred, refs):
    refs = [r for r in refs if r] or [""]  # a sample keeps its non-empty references
    bleu = sacrebleu.metrics.BLEU(effective_order=True).sentence_score(pred, refs).score
    chrf = sacrebleu.metrics.CHRF().sentence_score(pred, refs).score
    assert get_measure("bleu")(pred, sample(*refs)) == pytest.approx(bleu)
    assert get_measure("chrf")(pred, sample(*refs)) == pytest.approx(chrf)


def test_bleu_on_a_known_pair():
    s = sample("The cat is on the mat.")
    assert get_measure("bleu")("The cat is on the mat.", s) == pytest.approx(100.0)
    assert 0 < get_measure("bleu")("The cat sat on the mat.", s) < 100


def test_numeric_and_contains_are_the_answer_rules():
    assert get_measure("numeric")("She has 5 apples, so #### 12", sample("12")) == 1.0
    assert get_measure("numeric")("The answer is 13.", sample("12")) == 0.0
    assert get_measure("contains")("It is Paris.", sample("Paris")) == 1.0
    assert get_measure("contains")("Paris or Lyon.", sample("Paris")) == 0.0


@pytest.mark.parametrize(
    ("text", "value", "verdict"),
    [("rouge_l>=0.3", 0.3, True), ("rouge_l>0.3", 0.3, False), ("f1 < 0.5", 0.2, True), ("bleu==100", 100, True),
     ("chrf<=1e1", 10.5, False)],
)  # fmt: skip
def test_correct_if_parses_and_decides(text, value, verdict):
    assert CorrectIf.parse(text).passes(value) is verdict


@pytest.mark.parametrize("text", ["rouge_l", ">=0.3", "rouge_l=>0.3", "rouge_l>=high", ""])
def test_a_malformed_rule_is_one_line_of_bad_input(text):
    with pytest.raises(BadInput, match="expected MEASURE OP NUMBER"):
        CorrectIf.parse(text)


def test_correct_if_reaches_any_benchmark_and_is_recorded():
    bench = get_benchmark("facts", correct_if="f1 >= 0.5")
    q = bench.load("test")[0]
    verdict = bench.score(q, f"{q.reference} indeed\nmore text")
    assert verdict.correct and verdict.value == pytest.approx(2 / 3) and verdict.rule == "f1>=0.5"
    assert verdict.extracted == f"{q.reference} indeed"  # the first line
    assert bench.options == {"correct_if": "f1>=0.5"}
    with pytest.raises(BadInput, match=r"unknown metric 'rogue_l'.*rouge_l"):
        get_benchmark("facts", correct_if="rogue_l>=0.3")


def test_a_third_party_quality_measure_is_one_module_and_one_entry_point(install_plugin):
    install_plugin(
        "my_measure",
        "from halluc_benchmarks.quality import QualityMeasure\n"
        "LENGTH = QualityMeasure('length', 'shorter over longer', 'mine',\n"
        "    lambda a, s: min(len(a), len(s.reference)) / max(len(a), len(s.reference), 1))\n",
        {"length": "LENGTH"},
        kind="metrics",
    )
    bench = get_benchmark("facts", correct_if="length>=0.5")
    q = bench.load("test")[0]
    assert bench.score(q, q.reference).correct and not bench.score(q, q.reference * 3).correct
