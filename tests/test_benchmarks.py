import json
import re

import pytest

from halluc_benchmarks import Benchmark, Sample, get_benchmark
from halluc_benchmarks.arith import FRACTIONS
from ucli.data import read_prompt_pairs
from ucli.errors import BadInput


def solve(prompt: str) -> int:
    """An independent reading of an arith problem: parse each sentence and apply it."""
    value = int(re.search(r"has (\d+)", prompt).group(1))
    divisors = {v: k for k, v in FRACTIONS.items()}
    for sentence in prompt.split(". ")[1:]:
        if m := re.search(r"gets (\d+) more", sentence):
            value += int(m.group(1))
        elif m := re.search(r"gives away (\d+)", sentence):
            value -= int(m.group(1))
        elif m := re.search(r"multiplied by (\d+)", sentence):
            value *= int(m.group(1))
        elif m := re.search(r"keeps only (half|a third|a quarter|a fifth)", sentence):
            assert value % divisors[m.group(1)] == 0
            value //= divisors[m.group(1)]
    return value


@pytest.mark.parametrize("steps", [1, 3, 6])
def test_arith_answers_are_exact_and_ids_stable_across_sizes(steps):
    small = get_benchmark("arith", steps=steps, size=20).load("test")
    big = get_benchmark("arith", steps=steps, size=200).load("test")
    assert big[:20] == small
    assert len({s.id for s in big}) == 200 and all(s.prompt.count("Then") == steps for s in big)
    for s in big:
        assert int(s.reference) == solve(s.prompt) and int(s.reference) >= 0
    train = get_benchmark("arith", steps=steps, size=50).load("train")
    assert not {s.prompt for s in train} & {s.prompt for s in big[:50]} or steps == 1


def test_arith_scores_the_final_number_of_a_worked_answer():
    bench = get_benchmark("arith", steps=2, size=1)
    sample = bench.load("test")[0]
    worked = f"First 23 + 5 = 28. Then 28 x 4 = {sample.reference}. The answer is {sample.reference}."
    assert bench.score(sample, worked).correct
    assert not bench.score(sample, "The answer is 5.").correct


def test_load_seed_and_limit_and_bad_splits_and_options():
    bench = get_benchmark("arith", size=30)
    assert bench.load("test", limit=5) == bench.load("test")[:5]
    shuffled = bench.load("test", limit=5, seed=3)
    assert shuffled == bench.load("test", limit=5, seed=3) and shuffled != bench.load("test", limit=5)
    with pytest.raises(BadInput, match=r"no split 'dev' \(splits: train, test\)"):
        bench.load("dev")
    with pytest.raises(BadInput, match=r"unknown benchmark 'nope' \(available: .*arith"):
        get_benchmark("nope")
    with pytest.raises(BadInput, match=r"does not take -B metric \(it takes: size, steps\)"):
        get_benchmark("arith", metric="text")


def test_local_benchmark_reads_any_pair_file_and_refuses_to_score_without_references(tmp_path):
    f = tmp_path / "q.tsv"
    f.write_text("What is 2+2?\t4\nCapital of Italy?\tRome\n")
    bench = get_benchmark("local", data_file=f, metric="text")
    a, b = bench.load("test")
    assert bench.score(b, "It is Rome.").correct and not bench.score(b, "Rome or Milan").correct
    assert get_benchmark("local", data_file=f, metric="number").score(a, "The sum is 4.").correct
    bare = tmp_path / "prompts.jsonl"
    bare.write_text('{"prompt": "Say hi"}\n')
    sample = get_benchmark("local", data_file=bare).load("test")[0]
    with pytest.raises(
        BadInput, match=r"prompts.jsonl: sample '.*' has no reference; this file cannot be scored"
    ):
        get_benchmark("local", data_file=bare).score(sample, "hi")
    with pytest.raises(BadInput, match="needs --data-file"):
        get_benchmark("local")


def test_a_third_party_benchmark_is_one_class_with_prompt_formats(tiny_llama):
    from ucli.models import load_model

    class Trivia(Benchmark):
        name = "trivia"
        description = "Two questions."

        def _load(self, split):
            return [
                Sample("q1", "Who founded the lab?", "Ada Lovelace", ("Ada",)),
                Sample("q2", "Year?", "1843"),
            ]

    bench = Trivia()
    q1 = bench.load("test")[0]
    assert bench.base_prompt(q1) == "Question: Who founded the lab?\nAnswer:"
    tok = load_model(str(tiny_llama), device="cpu").tokenizer
    assert bench.format_prompt(q1, tok).endswith(
        "Who founded the lab? Answer in a few words.<|im_end|>\n<|im_start|>assistant\n"
    )
    assert bench.format_prompt(q1) == bench.base_prompt(q1)
    assert bench.score(q1, "It was Ada.").rule == "contains"


def test_cli_list_show_export_score(cli, tmp_path):
    listed = json.loads(cli("benchmarks", "list", "--json").stdout)["benchmarks"]
    assert {"arith", "local"} <= {b["name"] for b in listed}
    shown = json.loads(cli("benchmarks", "show", "arith", "--limit", 2, "-B", "steps=2", "--json").stdout)
    assert [s["id"] for s in shown["samples"]] == ["arith-s2-test-0", "arith-s2-test-1"]
    assert shown["options"] == [{"name": "steps", "type": "int", "default": 3},
                                {"name": "size", "type": "int", "default": 200}]  # fmt: skip

    out = tmp_path / "arith.jsonl"
    res = cli("benchmarks", "export", "arith", "--split", "train", "--limit", 4, "--output", out)
    assert res.exit_code == 0, res.stderr
    pairs = read_prompt_pairs(out)  # the format calibrate reads
    assert len(pairs) == 4 and pairs[0].metadata["benchmark"] == "arith" and pairs[0].id == "arith-s3-train-0"

    preds = tmp_path / "preds.jsonl"
    preds.write_text(
        "".join(
            json.dumps(
                {"id": p.id, "completion": f"So the answer is {p.reference}." if i % 2 else "I think 0."}
            )
            + "\n"
            for i, p in enumerate(pairs)
        )
    )
    res = cli("benchmarks", "score", "arith", "--predictions", preds, "--json")
    assert res.exit_code == 0, res.stderr
    summary = json.loads(res.stdout)
    assert (summary["n"], summary["correct"], summary["accuracy"]) == (4, 2, 0.5)
    verdicts = [json.loads(x) for x in (tmp_path / "preds.verdicts.jsonl").read_text().splitlines()]
    assert [v["correct"] for v in verdicts] == [False, True, False, True] and verdicts[1][
        "extracted"
    ].startswith(pairs[1].reference)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('{"id": "arith-s3-test-0"}\n', "preds.jsonl:1: no field 'completion' (fields: id)"),
        ('{"id": "nope", "completion": "1"}\n', "preds.jsonl:1: id 'nope' is not in arith (train, test)"),
        ('{"id": "arith-s3-test-0", "completion": 5}\n', "field 'completion': expected a string"),
    ],
)
def test_cli_score_bad_predictions(cli, tmp_path, lines, message):
    preds = tmp_path / "preds.jsonl"
    preds.write_text(lines)
    res = cli("benchmarks", "score", "arith", "--predictions", preds)
    assert res.exit_code == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "preds.verdicts.jsonl").exists()


def test_cli_local_without_references_is_refused_for_scoring(cli, tmp_path):
    data = tmp_path / "prompts.jsonl"
    data.write_text('{"id": "a", "prompt": "Say hi"}\n')
    preds = tmp_path / "preds.jsonl"
    preds.write_text('{"id": "a", "completion": "hi"}\n')
    assert cli("benchmarks", "show", "local", "--data-file", data).exit_code == 0
    res = cli("benchmarks", "score", "local", "--data-file", data, "--predictions", preds)
    assert res.exit_code == 2 and "has no reference; this file cannot be scored" in res.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["show", "nope"],
            "unknown benchmark 'nope' (available: arith, bios, coqa, facts, gsm8k, humaneval, local, math, mmlu, nq_open, "
            "person_bio, popqa, sciq, simpleqa, squad, svamp, triviaqa, truthfulqa, wmt14, wmt19, xsum)",
        ),
        (["show", "facts", "--split", "dev"], "benchmark 'facts' has no split 'dev' (splits: train, test)"),
        (
            ["export", "arith", "-B", "steps=0", "-o", "x.jsonl"],
            "arith: -B steps must be between 1 and 12, got 0",
        ),
        (
            ["show", "arith", "-B", "steps=many"],
            "benchmark 'arith': -B steps=many: input should be a valid "
            "integer, unable to parse string as an integer",
        ),
        (["show", "arith", "-B", "steps"], "-B steps: expected key=value (e.g. -B steps=4)"),
    ],
)
def test_cli_bad_names_and_splits_exit_2_with_one_line(cli, args, message):
    res = cli("benchmarks", *args)
    assert res.exit_code == 2 and res.stderr.strip() == f"error: {message}"


def test_one_limit_rule_and_one_prompt_rule_across_commands(cli, tiny_llama, tmp_path):
    """probe generate, calibrate score and control eval pick the same items for the same --limit and
    --seed, and send a data file's prompts the same way (issue 17, item 13)."""
    from halluc_benchmarks.local import Local
    from halluc_probe.runs import GenerateConfig, load_questions
    from ucli.data import select
    from ucli.models import chat_prompt, load_model

    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Capital number {i}?", "reference": f"C{i}"}) + "\n"
                            for i in range(12)))  # fmt: skip
    drawn = [f"q{i}" for i in select(list(range(12)), 4, 7)]
    assert drawn != ["q0", "q1", "q2", "q3"]  # a draw, not the head of the file
    assert [s.id for s in Local(data).load("test", limit=4, seed=7)] == drawn  # control eval, demo
    assert [
        s.id for s in load_questions(GenerateConfig(data=str(data), limit=4, seed=7))[1]
    ] == drawn  # probe
    scored = tmp_path / "s.jsonl"
    res = cli("calibrate", "score", "-m", tiny_llama, "--data", data, "--limit", 4, "--seed", 7, "--layers", "0",
              "--max-new-tokens", 2, "-o", scored)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert [json.loads(x)["id"] for x in scored.read_text().splitlines()] == drawn
    assert [s.id for s in Local(data).load("test", seed=7)] == [
        f"q{i}" for i in range(12)
    ]  # no limit: file order
    sample = Local(data).load("test")[0]
    tok = load_model(str(tiny_llama), device="cpu").tokenizer
    assert Local(data).format_prompt(sample, tok) == chat_prompt(tok, sample.prompt)  # as calibrate sends it
    assert Local(data).chat_message(sample) == sample.prompt  # as probe generate sends it
    tok.chat_template = None
    assert Local(data).format_prompt(sample, tok) == chat_prompt(tok, sample.prompt) == sample.prompt


def test_benchmark_options_reach_every_command_that_reads_a_benchmark(cli, tiny_llama, tmp_path):
    """arith's -B steps works in probe generate (and control, demo), and a benchmark refuses an option
    it does not take, naming those it does (issue 18); the old --steps still works, with a notice."""
    from halluc_probe.runs import GenerateConfig, load_questions

    _, samples = load_questions(GenerateConfig(benchmark="arith", split="test", steps=1, size=4))
    assert [s.id for s in samples] == [f"arith-s1-test-{i}" for i in range(4)]
    for command in (["control", "eval", "-b", "facts", "-o", tmp_path / "c"], ["demo", "-b", "facts"],
                    ["probe", "generate", "-b", "facts", "-o", tmp_path / "r.jsonl"]):  # fmt: skip
        res = cli(*command, "-m", tiny_llama, "-B", "steps=2")
        assert res.exit_code == 2 and "benchmark 'facts' does not take -B steps" in res.stderr, (
            command,
            res.stderr,
        )
        old = cli(*command, "-m", tiny_llama, "--steps", 2)
        assert "is now `-B steps=2`" in old.stderr and "does not take -B steps" in old.stderr, old.stderr


COUNTDOWN = """
from halluc_benchmarks import Benchmark, Sample


class Countdown(Benchmark):
    name = "countdown"
    description = "What comes before N, from --start down to 1."
    answer_type = "number"

    def __init__(self, start: int = 5, word: str = "before"):
        self.start, self.word = start, word

    def _load(self, split):
        return [Sample(f"c{n}", f"What number comes {self.word} {n}?", str(n - 1)) for n in range(self.start, 0, -1)]
"""


def test_a_third_party_benchmark_takes_its_own_options_through_B(cli, tiny_llama, tmp_path, install_plugin):
    """One module and one entry point: its constructor's options are typed and checked from -B,
    listed by `benchmarks show`, recorded by the runs that read it (issue 29)."""
    install_plugin("countdown_bench", COUNTDOWN, {"countdown": "Countdown"}, kind="benchmarks")
    shown = json.loads(
        cli("benchmarks", "show", "countdown", "-B", "start=3", "-B", "word=after", "--json").stdout
    )
    assert [s["prompt"] for s in shown["samples"]] == [f"What number comes after {n}?" for n in (3, 2, 1)]
    assert [o["name"] for o in shown["options"]] == ["start", "word"]
    res = cli("benchmarks", "show", "countdown", "-B", "stop=3")
    assert res.exit_code == 2 and "does not take -B stop (it takes: start, word)" in res.stderr

    out = tmp_path / "uq.jsonl"
    res = cli("uq", "score", "-b", "countdown", "-B", "start=2", "-m", tiny_llama, "--estimators", "mean_token_entropy",
              "--max-new-tokens", 2, "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["c2", "c1"]
    run = tmp_path / "run"
    res = cli("control", "eval", "-b", "countdown", "-B", "start=2", "-m", tiny_llama, "--signal", "entropy",
              "--theta", 9, "--max-new-tokens", 2, "-o", run)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    recorded = json.loads((run / "summary.json").read_text())["provenance"]["config"]["benchmark_options"]
    assert recorded == {"metric": None, "steps": None, "size": None, "start": 2}
