import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from halluc_benchmarks.metrics import (
    DANGLING,
    final_answer,
    first_sentence,
    judge_number,
    judge_text,
    normalize,
    numbers,
    seam,
    well_formed,
)


@pytest.mark.parametrize(
    ("completion", "references", "correct", "rule"),
    [
        ("Paris", ["Paris"], True, "exact"),
        ("  the PARIS!! ", ["Paris"], True, "exact"),
        ("The capital of France is Paris.", ["Paris"], True, "contains"),
        ("Paris or Lyon", ["Paris"], False, "hedged"),
        ("Either Paris or Lyon.", ["Paris"], False, "hedged"),
        ("War and Peace", ["War and Peace"], True, "exact"),
        ("It is Pride or Prejudice.", ["Pride and Prejudice"], False, "no match"),
        ("Crime or Punishment", ["Crime or Punishment"], True, "exact"),
        ("It is not Paris, it is Lyon.", ["Paris"], False, "negated"),
        ("The capital isn't Paris.", ["Paris"], False, "negated"),
        ("No, Paris.", ["Paris"], True, "contains"),
        ("Paristown is lovely.", ["Paris"], False, "no match"),
        ("The answer is Lyon. Paris is nearby.", ["Paris"], False, "no match"),
        ("Dr. Alexander Fleming discovered it in 1928.", ["Alexander Fleming", "Fleming"], True, "contains"),
        ("J. K. Rowling wrote it. Not Tolkien.", ["J. K. Rowling", "Rowling"], True, "contains"),
        ("It was written by Orwell", ["George Orwell", "Orwell"], True, "contains"),
        ("São Paulo", ["Sao Paulo"], True, "exact"),
        ("Marie Curie.", ["Marie Curie"], True, "exact"),
        ("Curie, along with Pierre.", ["Marie Curie"], False, "no match"),
        ("The symbol is Au.\nGold is element 79.", ["Au"], True, "contains"),
        ("", ["Paris"], False, "no match"),
    ],
)
def test_text_rules(completion, references, correct, rule):
    verdict = judge_text(completion, references)
    assert (verdict.correct, verdict.rule) == (correct, rule)
    assert verdict.value == float(correct)


@pytest.mark.parametrize(
    ("completion", "reference", "correct"),
    [
        ("He has $1,234.50 now.", "1234.5", True),
        ("On July 20, 1969.", "1969", True),
        ("About 12 apples", "12", True),
        ("About 12 apples", "13", False),
        ("It is 45% of it.", "45", True),
        ("Minus 7: −7", "-7", True),
        ("There are 1,000,000 people.", "1000000", True),
        ("No idea.", "3", False),
    ],
)
def test_number_rules(completion, reference, correct):
    assert judge_number(completion, reference).correct is correct


@pytest.mark.parametrize(
    ("completion", "final"),
    [
        ("Step 1: 3 + 4 = 7\n#### 7", "7"),
        ("So 12 + 5 = 17. The answer is 34 stickers.\nDone", "34 stickers."),
        ("23 + 5 = 28 and 28 * 4 = 112", "112"),
        ("Answer: $1,200", "$1,200"),
        ("no number", "no number"),
    ],
)
def test_final_answer(completion, final):
    assert final_answer(completion) == final


def test_helpers():
    assert normalize("  The Quick, BROWN fox!  ") == "quick brown fox"
    assert first_sentence("Mt. Everest is tallest. K2 is second.") == "Mt. Everest is tallest."
    assert first_sentence("\n\nParis\nLyon") == "Paris"
    assert numbers("$2,500 and 3.5 km, -4") == [2500.0, 3.5, -4.0]


@pytest.mark.parametrize(
    ("answer", "question", "kind", "ok"),
    [
        ("Ceres.", "What is the largest object in the asteroid belt?", "text", True),
        ("The largest object in the asteroid belt is Ceres.", "What is the largest object in the asteroid belt?", "text", True),
        ("The largest object in the asteroid belt 1.", "What is the largest object in the asteroid belt?", "text", False),
        (": 2.", "Who discovered Pluto?", "text", False),
        ("451", "Who wrote 'Fahrenheit 451'?", "text", False),
        ("", "Who wrote 'Fahrenheit 451'?", "text", False),
        ("...", "Who wrote 'Fahrenheit 451'?", "text", False),
        ("Who wrote", "Who wrote 'Fahrenheit 451'?", "text", False),
        ("1912.", "In which year did the Titanic sink?", "number", True),
        ("It sank.", "In which year did the Titanic sink?", "number", False),
        ("8", "How many planets are in the Solar System?", "text", True),
    ],
)  # fmt: skip
def test_well_formed_answers(answer, question, kind, ok):
    assert well_formed(answer, question, kind) is ok


def test_every_facts_reference_is_well_formed():
    from halluc_benchmarks import get_benchmark

    facts = get_benchmark("facts")
    samples = [s for split in facts.splits for s in facts.load(split)]
    assert all(facts.well_formed(s, ref) for s in samples for ref in s.references)


# the repairs `cot+abstain` kept on SmolLM2 facts/test (issue 30) and the stricter rule's verdicts
SEAMED = [
    ("Which infrared space telescope was launched on 25 December 2021?", "New Horizons New Horizons", False),
    ("Who wrote 'The Metamorphosis'?", "The Metamorph The Metamorphosis", False),
    ("Who wrote 'Lolita'?", "Lol Lol Lolita", False),
    ("Who invented the cotton gin?",
     "The cotton gin was invented by a man named Gus Fremont, who was a slave owner Gus Fremont", False),
    ("Who wrote 'The Hunchback of Notre-Dame'?",
     'The Hunchback of Notre-Dame is the story "The Hunchback of Notre-Dame" by', False),
    ("What is the capital of Iran?", "The capital of Tehran", True),
    ("Which small country lies in the Pyrenees between France and Spain?",
     "The Pyrenees Pyra-e-Nero, a former French colony in Spain.", True),
    ("Who wrote 'A Brief History of Time'?", "Tim Tebow", True),
    ("How many inches are in a foot?", "12.", True),
    ("Who discovered the electron?", "J. J. Thomson", True),
    ("What is the theory of relativity about?", "The theory of space and time.", True),
    ("Who wrote 'Emma'?", "It was written by", False),
]  # fmt: skip


@pytest.mark.parametrize(("question", "answer", "ok"), SEAMED)
def test_the_stricter_rule_fails_answers_with_a_seam(question, answer, ok):
    assert well_formed(answer, question) is ok


WORD = st.from_regex(r"[a-z]{4,9}", fullmatch=True)


@given(st.lists(WORD, min_size=2, max_size=6))
def test_a_phrase_said_twice_is_never_well_formed(words):
    phrase = " ".join(words)
    assert not well_formed(f"{phrase}, {phrase.title()}.", "Who?")


@given(st.lists(WORD, min_size=1, max_size=6), st.sampled_from(sorted(DANGLING)))
def test_an_answer_that_ends_on_a_dangling_word_is_never_well_formed(words, last):
    assert not well_formed(" ".join([*words, last]), "Who?")
    assume(seam(" ".join(words)) is None)  # nothing else shows a seam
    assert seam(" ".join([*words, last])) == f"ends on '{last}'"


@given(WORD, WORD)
def test_a_word_begun_again_is_caught_and_a_clean_pair_is_not(word, other):
    assert seam(f"{word} {word}") is not None
    if word[:3] not in DANGLING:
        assert seam(f"{word[:3]} {word}") is not None
    assume(not other.startswith(word) and not word.startswith(other) and other not in DANGLING)
    assert seam(f"{word} {other}") is None
