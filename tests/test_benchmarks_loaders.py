"""gsm8k, math and humaneval: real loaders tested on local files in the hub's format, and HumanEval in the sandbox."""

import json
import sys
import types

import pytest

from halluc_benchmarks import get_benchmark
from halluc_benchmarks.humaneval import program
from halluc_benchmarks.latex import last_boxed, latex_equal
from ucli.artifacts import write_parquet
from ucli.errors import BadInput, HallucError

GSM8K_ROWS = [
    {
        "question": "Natalia sold clips to 48 friends in April and half as many in May. How many in total?",
        "answer": "In May: 48/2 = <<48/2=24>>24\n48+24 = <<48+24=72>>72\n#### 72",
    },
    {"question": "A shop sells 1,200 pens a day. How many in 3 days?", "answer": "1200*3=3600\n#### 3,600"},
]


def test_gsm8k_from_a_local_copy_in_the_hubs_format(tmp_path):
    f = tmp_path / "gsm8k_test.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in GSM8K_ROWS))
    bench = get_benchmark("gsm8k", data_file=f)
    a, b = bench.load("test")
    assert (a.id, a.reference, b.reference) == ("gsm8k-test-0", "72", "3600")
    assert bench.score(a, "She sold 24 in May, so 48 + 24 = 72.\n#### 72").correct
    assert bench.score(b, "3 x 1,200 = 3,600 pens. The answer is $3,600.").correct
    assert not bench.score(a, "48 + 24 = 72, but the answer is 70.").correct
    write_parquet(tmp_path / "g.parquet", GSM8K_ROWS)
    assert [s.reference for s in get_benchmark("gsm8k", data_file=tmp_path / "g.parquet").load("train")] == [
        "72",
        "3600",
    ]


def test_gsm8k_bad_rows(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps({"question": "q", "answer": "no final line"}) + "\n")
    with pytest.raises(BadInput, match=r"bad.jsonl: row 1: field 'answer' has no final number after '####'"):
        get_benchmark("gsm8k", data_file=f).load("test")
    f.write_text(json.dumps({"q": "x"}) + "\n")
    with pytest.raises(BadInput, match=r"no field 'question', 'answer' \(fields: q\)"):
        get_benchmark("gsm8k", data_file=f).load("test")


def test_hub_loaders_call_datasets_for_real(monkeypatch):
    calls = []

    def load_dataset(name, config, split):
        calls.append((name, config, split))
        if name == "openai/gsm8k":
            return GSM8K_ROWS
        return [
            {
                "problem": "What is 1/2 + 1/4?",
                "solution": "... \\boxed{\\frac{3}{4}}",
                "answer": "\\frac{3}{4}",
                "unique_id": "test/x/1.json",
            }
        ]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    assert len(get_benchmark("gsm8k").load("train")) == 2
    assert get_benchmark("math").load("test")[0].id == "test/x/1.json"
    assert calls == [("openai/gsm8k", "main", "train"), ("HuggingFaceH4/MATH-500", None, "test")]

    def offline(*a, **k):
        raise ConnectionError("no network")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    with pytest.raises(HallucError, match=r"could not load openai/gsm8k .* pass --data-file"):
        get_benchmark("gsm8k").load("test")
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(HallucError, match=r"pip install 'halluc\[hub\]'"):
        get_benchmark("gsm8k").load("test")


@pytest.mark.parametrize(
    ("candidate", "reference", "equal"),
    [
        ("\\frac{1}{2}", "0.5", True),
        ("\\dfrac12", "\\frac{1}{2}", True),
        ("x = 5", "5", True),
        ("90^\\circ", "90", True),
        ("\\left(3, 4\\right)", "(3,4)", True),
        ("10\\%", "10", True),
        ("1,000", "1000", True),
        ("\\$5.00", "5", True),
        ("\\sqrt2", "\\sqrt{2}", True),
        ("3\\text{ cm}", "3", True),
        ("\\text{Monday}", "Monday", True),
        ("2/4", "\\frac{1}{2}", True),
        (".5", "0.5", True),
        ("\\frac{2}{3}", "0.6667", False),
        ("-\\frac{1}{3}", "-1/3", True),
        ("\\frac{1}{3}", "\\frac{1}{2}", False),
        ("\\sqrt{3}", "\\sqrt{2}", False),
        ("x^2+1", "x^2 + 1", True),
    ],
)
def test_latex_answer_equivalence(candidate, reference, equal):
    assert latex_equal(candidate, reference) is equal


def test_last_boxed():
    assert last_boxed("so \\boxed{\\frac{a}{b^{2}}} done") == "\\frac{a}{b^{2}}"
    assert last_boxed("\\boxed{1} then \\boxed{2}") == "2"
    assert last_boxed("\\fbox{7}") == "7" and last_boxed("no box") is None and last_boxed("\\boxed 5") == "5"


def test_math_from_local_copies_of_math500_and_original_math(tmp_path):
    m500 = tmp_path / "m500.jsonl"
    m500.write_text(
        json.dumps(
            {
                "problem": "Half of 1?",
                "solution": "...",
                "answer": "\\frac{1}{2}",
                "subject": "Algebra",
                "level": 1,
                "unique_id": "a/1.json",
            }
        )
        + "\n"
    )
    bench = get_benchmark("math", data_file=m500)
    (s,) = bench.load("test")
    assert bench.score(s, "It is one half: \\boxed{0.5}").correct
    assert bench.score(s, "Therefore\n1/2").rule == "last line" and bench.score(s, "Therefore\n1/2").correct
    assert not bench.score(s, "\\boxed{\\frac{1}{3}}").correct
    original = tmp_path / "math.jsonl"
    original.write_text(
        json.dumps({"problem": "2+2?", "solution": "We get $\\boxed{4}$.", "type": "Prealgebra"}) + "\n"
    )
    assert get_benchmark("math", data_file=original).load("test")[0].reference == "4"


HUMANEVAL = get_benchmark("humaneval")
PROBLEMS = HUMANEVAL.load("test")


def test_humaneval_ships_offline():
    assert len(PROBLEMS) == 164 and PROBLEMS[0].id == "HumanEval/0" and PROBLEMS[-1].id == "HumanEval/163"
    assert HUMANEVAL.base_prompt(PROBLEMS[0]) == PROBLEMS[0].prompt


def test_every_canonical_solution_passes_and_wrong_ones_fail():
    for sample in PROBLEMS:
        verdict = HUMANEVAL.score(sample, sample.reference)
        assert verdict.correct, (sample.id, verdict.rule)
    for sample in PROBLEMS[:5]:
        assert not HUMANEVAL.score(sample, "    return None\n").correct


def test_completion_shapes_a_chat_model_returns():
    sample = PROBLEMS[2]
    whole = sample.prompt + sample.reference
    assert HUMANEVAL.score(sample, f"Here you go:\n```python\n{whole}```\nHope it helps.").correct
    assert HUMANEVAL.score(sample, whole).correct
    assert program(sample, whole).count(f"def {sample.metadata['entry_point']}(") == 1
    looping = HUMANEVAL.__class__(timeout=2)
    assert looping.score(sample, "    while True:\n        pass\n").rule == "timeout"


def test_cli_score_humaneval(cli, tmp_path):
    preds = tmp_path / "he.jsonl"
    preds.write_text(
        json.dumps({"id": PROBLEMS[0].id, "completion": PROBLEMS[0].reference})
        + "\n"
        + json.dumps({"id": PROBLEMS[1].id, "completion": "    return []\n"})
        + "\n"
    )
    res = cli("benchmarks", "score", "humaneval", "--predictions", preds, "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["accuracy"] == 0.5
    verdicts = [json.loads(x) for x in (tmp_path / "he.verdicts.jsonl").read_text().splitlines()]
    assert verdicts[0]["rule"] == "passed" and verdicts[1]["rule"].startswith("failed: AssertionError")
