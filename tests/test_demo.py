import json

import pytest

from halluc_benchmarks import get_benchmark
from halluc_demo import DemoConfig, run_demo
from ucli.generation import generate
from ucli.models import LoadOptions, load_model

TOKENS = 4


@pytest.fixture(scope="module")
def calibration(tiny_llama, tmp_path_factory):
    """Two references are the tiny model's own greedy answers of TOKENS tokens (the budget every test
    here decodes with), so those answers are judged right and the third wrong: the answer labels
    that theta is fitted on hold both classes."""
    lm = load_model(str(tiny_llama), device="cpu")
    own = ["What is the capital of France?", "Who wrote 1984?"]
    greedy = [g["answer"] for g in generate(lm, [lm.chat_prompt(q) for q in own], TOKENS)]
    rows = [*zip(own, greedy, strict=True), ("What is water?", "Water is H2O, a molecule.")]
    path = tmp_path_factory.mktemp("demo") / "cal.jsonl"
    path.write_text("".join(json.dumps({"prompt": q, "reference": a}) + "\n" for q, a in rows))
    return path


def read(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_run_folder_tells_the_whole_story(tiny_llama, calibration, tmp_path):
    out = tmp_path / "run"
    config = DemoConfig(model=str(tiny_llama), limit=4, max_new_tokens=TOKENS, output=out,
                        load=LoadOptions(device="cpu"), seed=5, calibration=calibration)  # fmt: skip
    result = run_demo(config=config)
    names = ["baseline.jsonl", "baseline.jsonl.meta.json", "controller.jsonl", "controller.jsonl.meta.json",
             "heads.json", "run.json", "theta.json"]  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == names
    base, ctl = read(out / "baseline.jsonl"), read(out / "controller.jsonl")
    facts = get_benchmark("facts")
    samples = facts.load("test", limit=4, seed=5)
    assert [r["sample_id"] for r in base] == [r["sample_id"] for r in ctl] == [s.id for s in samples]
    lm = load_model(str(tiny_llama), device="cpu")
    for sample, b in zip(samples, base, strict=True):  # the baseline arm is plain greedy decoding
        plain = generate(lm, [facts.format_prompt(sample, lm.tokenizer)], TOKENS)[0]
        assert b["answer"] == plain["answer"] and b["triggers"] == 0
        assert b["correct"] == facts.score(sample, plain["answer"]).correct
    doc = json.loads((out / "run.json").read_text())
    assert doc["provenance"]["schema"] == "halluc.demo.run" and doc["provenance"]["seed"] == 5
    s = doc["summary"]
    theta = json.loads((out / "theta.json").read_text())
    assert s["theta"] == theta["theta"] and theta["provenance"]["schema"] == "halluc.rauq.theta"
    assert s["calibration"] == str(calibration) and s["n"] == 4
    b_count = sum(x["correct"] and not y["correct"] for x, y in zip(base, ctl, strict=True))
    c_count = sum(y["correct"] and not x["correct"] for x, y in zip(base, ctl, strict=True))
    assert (s["comparison"]["mcnemar"]["correct"]["b"], s["comparison"]["mcnemar"]["correct"]["c"]) == (
        b_count,
        c_count,
    )
    wrong = [int(not r["correct"] and not r["abstained"]) for r in ctl]
    assert s["controller"]["wrong"] == sum(wrong) and s["baseline"]["wrong"] == 4 - sum(
        r["correct"] for r in base
    )
    assert s["risk_coverage"]["coverage"][0] == 1.0 and theta["labels"] == "answer"
    assert s["controller"]["accuracy"] == sum(r["correct"] for r in ctl) / 4
    assert s["controller"]["avg_triggers"] == sum(r["triggers"] for r in ctl) / 4
    assert result.summary == s and [a["id"] for a in result.answers] == [s.id for s in samples]


def test_demo_cli_json_is_pure_json_on_stdout(cli, tiny_llama, calibration, tmp_path):
    res = cli("demo", "--model", tiny_llama, "--calibration", calibration, "--limit", 2, "--max-new-tokens", TOKENS,
              "--output", tmp_path / "r", "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["summary"]["n"] == 2 and len(data["answers"]) == 2


def test_demo_table(cli, tiny_llama, calibration, tmp_path):
    res = cli("demo", "-m", tiny_llama, "--calibration", calibration, "--limit", 2, "--max-new-tokens", TOKENS,
              "-o", tmp_path / "r")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert "plain greedy" in res.stdout and "controller" in res.stdout and "McNemar" in res.stdout
    assert f"run folder: {tmp_path / 'r'}" in res.stdout


def test_demo_on_your_own_questions_file(cli, tiny_llama, calibration, tmp_path):
    qfile = tmp_path / "mine.tsv"
    qfile.write_text("Capital of France?\tParis\nCapital of Italy?\tRome\n")
    res = cli("demo", "-m", tiny_llama, "--calibration", calibration, "-q", qfile, "--max-new-tokens", TOKENS,
              "-o", tmp_path / "r", "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["summary"]["benchmark"] == "local"
    assert {a["expected"] for a in data["answers"]} == {"Paris", "Rome"}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("q.jsonl", '{"prompt": "a", "reference": "b"}\n{oops\n', "q.jsonl:2: invalid JSON"),
        ("q.tsv", "What?\n", "q.tsv:1: expected 'prompt<TAB>reference', found no tab"),
        ("q.jsonl", "", "q.jsonl: file is empty"),
    ],
)
def test_bad_questions_file_exits_2_with_one_line_and_no_output(
    cli, tiny_llama, tmp_path, name, text, message
):
    qfile = tmp_path / name
    qfile.write_text(text)
    out = tmp_path / "run"
    res = cli("demo", "-m", tiny_llama, "-q", qfile, "-o", out)
    assert res.exit_code == 2
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.stderr and res.stdout == ""
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--model", "/no/such/model"], "no such model file or folder"),
        (["--model", "FAKE_GGUF"], "not a GGUF file"),
    ],
)
def test_bad_model_or_device_exits_2(cli, tiny_llama, tmp_path, args, message):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a gguf file at all")
    args = [str(fake) if a == "FAKE_GGUF" else a for a in args]
    res = cli("demo", *(["-m", tiny_llama] if "--model" not in args else []), *args, "-o", tmp_path / "r")
    assert res.exit_code == 2 and message in res.stderr
    assert not (tmp_path / "r").exists()


def test_existing_output_is_never_overwritten(cli, tiny_llama, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    res = cli("demo", "-m", tiny_llama, "-o", out)
    assert res.exit_code == 2 and "exists and is not empty" in res.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_the_demo_cli_and_run_demo_share_their_measured_defaults():
    import inspect

    from halluc_demo.cli import demo
    from halluc_demo.run import DEFAULT_COVERAGE, DEFAULT_REPAIR

    params = inspect.signature(demo).parameters
    assert params["coverage"].default.default == DEFAULT_COVERAGE == DemoConfig().coverage
    assert params["repair"].default.default == DEFAULT_REPAIR == "abstain"


def test_the_verdict_says_what_the_numbers_show_either_way():
    from halluc_demo.report import verdict
    from halluc_rauq.outcomes import paired_comparison, summarize

    def rec(correct, abstained=False, repaired=False):
        return {"correct": int(correct), "abstained": abstained, "repaired": repaired, "well_formed": True,
                "generated_tokens": 5, "completion_tokens": 5, "extra_tokens": 0, "triggers": 0, "latency_s": 0.1}  # fmt: skip

    base = [rec(1)] * 20 + [rec(0)] * 20

    def said(controller):
        return " ".join(verdict({"baseline": summarize(base), "controller": summarize(controller),
                                 "comparison": paired_comparison(base, controller)}))  # fmt: skip

    lines = said([rec(1)] * 18 + [rec(0, True)] * 2 + [rec(0, True)] * 15 + [rec(0)] * 5)
    assert (
        "20 under plain greedy, 5 under the controller (15 fewer" in lines and "significant at 0.05" in lines
    )
    assert "fell from 50.0% to 45.0%" in lines and "the 2 right answers withheld" in lines
    lines = said(
        [rec(0, repaired=True)] * 10 + [rec(1)] * 10 + [rec(0)] * 20
    )  # repairs broke 10 right answers
    assert (
        "20 under plain greedy, 30 under the controller (10 more; paired McNemar p = 0.002, significant"
        in lines
    )
    assert "fell from 50.0% to 25.0%" in lines and "10 broken" in lines and "do not raise accuracy" in lines
    # nothing answered: no accuracy among answered to print
    assert "Accuracy among answered: - against greedy's 50.0%" in said([rec(0, True)] * 40)


def test_the_changed_answers_table_shows_a_repaired_answer_when_the_repair_kept_one():
    from halluc_demo.report import examples_table, shown_changes

    def row(i, controller, outcome, repaired=False):
        return {"question": f"q{i}?", "expected": "x", "baseline": f"greedy {i}", "baseline_correct": False,
                "controller": controller, "controller_outcome": outcome, "repaired": repaired}  # fmt: skip

    # eight abstentions come first; the one kept repair is the ninth change
    answers = [row(i, "I am not sure.", "abstained") for i in range(8)] + [row(8, "x", "right", True)]
    answers.insert(3, row(99, "greedy 99", "wrong"))  # unchanged: never shown
    shown = shown_changes(answers, limit=6)
    assert [a["question"] for a in shown] == ["q0?", "q1?", "q2?", "q3?", "q4?", "q8?"]
    repaired = [row(i, f"fix {i}", "wrong", True) for i in range(5)]
    assert sum(a["repaired"] for a in shown_changes(repaired + answers, limit=6)) == 3  # half the rows
    assert shown_changes([row(0, "greedy 0", "wrong")]) == []
    table = examples_table(answers, limit=6).table
    assert table.title == "answers the controller changed (9, 1 of them repaired; 6 shown)"
    assert table.row_count == 6 and [c.header for c in table.columns][-1] == "how"
    assert list(table.columns[-1].cells) == ["abstained"] * 5 + ["repaired"]
    # an abstain fallback's abstention is no kept repair
    fallback = [row(0, "I am not sure.", "abstained", True), row(1, "x", "right", True)]
    assert [a["question"] for a in shown_changes(fallback, limit=2)] == ["q0?", "q1?"]
    assert (
        examples_table(fallback, limit=2).table.title
        == "answers the controller changed (2, 1 of them repaired; 2 shown)"
    )
