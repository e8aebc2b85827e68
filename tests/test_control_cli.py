"""`halluc control run | eval | ablate`: artifacts checked against each other, journaled resume, grids."""

import json

import pytest

from halluc_rauq.controller import RAUQController
from ucli.generation import generate
from ucli.models import load_model
from ucli.testing import QUESTIONS


def read(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_qwen2):
    """A question file, heads and a rauq theta fitted on the tiny Qwen2 model (built once)."""
    from typer.testing import CliRunner

    from ucli.app import app

    d = tmp_path_factory.mktemp("control")
    data = d / "q.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "prompt": q, "reference": a}) + "\n"
                            for i, (q, a) in enumerate(QUESTIONS)))  # fmt: skip
    # half the references are the model's own greedy answers, so token labels hold both classes
    lm = load_model(str(tiny_qwen2), device="cpu")
    own = [q for q, _ in QUESTIONS[:3]]
    greedy = [g["answer"] for g in generate(lm, [lm.chat_prompt(q) for q in own], 8)]
    cal = d / "cal.jsonl"
    cal.write_text("".join(json.dumps({"prompt": q, "reference": a}) + "\n"
                           for q, a in [*zip(own, greedy, strict=True), *QUESTIONS[3:]]))  # fmt: skip
    runner = CliRunner()
    for args in (
        ["calibrate", "heads", "-m", tiny_qwen2, "--calibration", cal, "-o", d / "heads.json"],
        ["calibrate", "threshold", "-m", tiny_qwen2, "--calibration", cal, "--heads", d / "heads.json", "-o", d / "theta.json",
         "--labels", "teacher-forced"],
        ["calibrate", "threshold", "-m", tiny_qwen2, "--calibration", cal, "--heads", d / "heads.json", "-o",
         d / "theta-entropy.json", "--signal", "entropy", "--labels", "teacher-forced"],
    ):  # fmt: skip
        res = runner.invoke(app, [str(a) for a in args])
        assert res.exit_code == 0, res.output
    return {"model": str(tiny_qwen2), "data": data, "heads": d / "heads.json", "theta": d / "theta.json",
            "theta_entropy": d / "theta-entropy.json"}  # fmt: skip


def base_args(setup, *extra):
    return ["-m", setup["model"], "--heads", setup["heads"], "--threshold", setup["theta"], *extra]


def test_run_prints_the_trace_and_keeps_everything(cli, setup, tmp_path):
    out = tmp_path / "out.json"
    res = cli("control", "run", "-p", "Who wrote 1984?", *base_args(setup, "--theta", "0", "--max-new-tokens", 12),
              "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert "trigger(s) on rauq" in res.stdout and "RAUQ trace" in res.stdout
    doc = json.loads(out.read_text())
    assert doc["provenance"]["schema"] == "halluc.control.run" and doc["theta"] == 0.0
    assert doc["stats"]["triggers"] == len(doc["trigger_events"]) >= 1  # theta 0 fires at once
    assert doc["generated_tokens"] <= 12 and doc["threshold_source"] == "fixed"


def test_run_reads_the_prompt_from_a_file_and_prints_json(cli, setup, tmp_path):
    prompt = tmp_path / "p.txt"
    prompt.write_text("What is water?")
    res = cli("control", "run", "-p", f"@{prompt}", *base_args(setup, "--max-new-tokens", 5), "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    theta = json.loads(setup["theta"].read_text())
    assert doc["prompt"] == "What is water?" and doc["theta"] == theta["theta"]
    assert doc["threshold_source"] == str(setup["theta"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "  "], "--prompt is empty"),
        (["-p", "@/no/such/file.txt"], "prompt file not found"),
        (["-p", "hi", "--signal", "entropy"], "no learned threshold for the 'entropy' trigger"),
        (["-p", "hi", "--alpha", "0.3", "--strict"], "fitted with alpha 0.5, running with 0.3 (--strict)"),
        (["-p", "hi", "--cot-top-p", "2"], "--cot-top-p"),
        (["-p", "hi", "--repair", "magic"], "--repair"),
    ],
)
def test_run_bad_input_exits_2(cli, setup, args, message):
    res = cli("control", "run", *base_args(setup), *args)
    assert res.exit_code == 2 and message in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("run", ["-p", "hi", "--signal", "entropy"], "`halluc calibrate threshold --signal entropy`"),
        ("run", ["-p", "hi", "--cot-top-p", "2"], "--cot-top-p"),
        ("run", ["-p", "hi", "--threshold", "/no/theta.json"], "/no/theta.json: no such artifact"),
        ("ablate", ["--signals", "rauq,margin"], "no learned threshold for the 'margin' trigger"),
        ("ablate", ["--cot-top-p", "2"], "--cot-top-p"),
        ("eval", ["--signal", "entropy"], "or give a fixed --theta"),
    ],
)
def test_options_and_artifacts_are_checked_before_the_model_loads(cli, setup, monkeypatch, tmp_path, command,
                                                                  args, message):  # fmt: skip
    """A refusal costs a second, not a model load (issue 17, item 11)."""
    import ucli.models

    def no_load(*a, **k):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr(ucli.models, "load_model", no_load)
    bench = [] if command == "run" else ["-b", "local", "--data-file", setup["data"], "-o", tmp_path / "x"]
    res = cli("control", command, *base_args(setup), *bench, *args)
    assert res.exit_code == 2 and message in res.stderr, res.stderr


def test_alpha_mismatch_warns_without_strict(cli, setup):
    res = cli("control", "run", *base_args(setup), "-p", "hi", "--alpha", "0.3", "--max-new-tokens", 2)
    assert res.exit_code == 0 and "fitted with alpha 0.5, running with 0.3" in res.stderr


def test_artifacts_of_another_model_are_refused(cli, setup, tiny_llama):
    res = cli("control", "run", "-m", tiny_llama, "--heads", setup["heads"], "-p", "hi", "--theta", "1")
    assert res.exit_code == 2 and "heads.json" in res.stderr and "model" in res.stderr


def test_eval_writes_per_sample_records_and_a_summary(cli, setup, tmp_path):
    out = tmp_path / "ev"
    res = cli("control", "eval", "-b", "local", "--data-file", setup["data"], *base_args(setup, "--theta", "2"),
              "--max-new-tokens", 10, "-o", out, "--baseline")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["baseline.jsonl", "baseline.jsonl.meta.json", "controller.jsonl",
                                                     "controller.jsonl.meta.json", "summary.json"]  # fmt: skip
    ctl, base = read(out / "controller.jsonl"), read(out / "baseline.jsonl")
    assert [r["sample_id"] for r in ctl] == [r["sample_id"] for r in base] and len(ctl) == len(QUESTIONS)
    for c, b in zip(ctl, base, strict=True):
        assert set(c) >= {"correct", "triggers", "extra_tokens", "latency_s", "completion", "trigger_events"}
        assert len(c["tokens"]) == len(c["token_kinds"]) == c["completion_tokens"] and c["question"]
        assert b["triggers"] == 0 and b["extra_tokens"] == 0
        if not any(e["action"] != "none" for e in c["trigger_events"]):
            assert b["completion"] == c["completion"] and b.get("reused")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"]["schema"] == "halluc.control.eval"
    s = summary["summary"]["controller"]
    assert s["n"] == len(QUESTIONS) and s["accuracy"] == sum(r["correct"] for r in ctl) / len(ctl)
    assert s["avg_triggers"] == pytest.approx(sum(r["triggers"] for r in ctl) / len(ctl))
    stats = cli("stats", "mcnemar", out / "baseline.jsonl", out / "controller.jsonl", "--field", "correct",
                "--key", "sample_id", "--json")  # fmt: skip
    assert stats.exit_code == 0, stats.stderr
    group = json.loads(stats.stdout)["groups"][0]
    assert group["n_pairs"] == len(QUESTIONS) and group["acc_b"] == s["accuracy"]


def test_eval_with_abstention_reports_coverage_the_paired_moves_and_a_figure(cli, setup, tmp_path):
    from halluc_rauq.outcomes import paired_comparison, risk_coverage

    out, plot = tmp_path / "ev", tmp_path / "rc.png"
    res = cli("control", "eval", "-b", "local", "--data-file", setup["data"], *base_args(setup, "--theta", "1.5"),
              "--repair", "abstain", "--abstain-text", "Pass.", "--max-new-tokens", 8, "-o", out, "--baseline",
              "--plot", plot)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert "against plain greedy:" in res.stdout and plot.stat().st_size > 0
    ctl, base = read(out / "controller.jsonl"), read(out / "baseline.jsonl")
    doc = json.loads((out / "summary.json").read_text())
    s = doc["summary"]["controller"]
    abstained = [r for r in ctl if r["abstained"]]
    assert abstained and all(r["answer"] == "Pass." and r["outcome"] == "abstained" for r in abstained)
    assert s["coverage"] == 1 - len(abstained) / len(ctl) and s["abstained"] == len(abstained)
    assert doc["comparison"] == json.loads(json.dumps(paired_comparison(base, ctl)))
    curve = risk_coverage(base, "above")
    assert doc["risk_coverage"]["coverage"] == curve["coverage"] and doc["risk_coverage"]["signal"] == "rauq"
    # the abstain repair at theta 1.5 sits on the curve: answered exactly where the greedy peak is under it
    assert [not r["abstained"] for r in ctl] == [r["uncertainty"]["peak_signal"] < 1.5 for r in base]
    res = cli("control", "eval", "-b", "local", "--data-file", setup["data"], *base_args(setup, "--theta", "1.5"),
              "-o", tmp_path / "x", "--plot", plot)  # fmt: skip
    assert res.exit_code == 2 and "add --baseline" in res.stderr and not (tmp_path / "x").exists()


def test_eval_resumes_without_redoing_work(cli, setup, tmp_path, monkeypatch):
    args = ["control", "eval", "-b", "local", "--data-file", setup["data"], *base_args(setup, "--theta", "2"),
            "--max-new-tokens", 6, "--batch-size", 2, "-o"]  # fmt: skip
    whole = tmp_path / "whole"
    assert cli(*args, whole).exit_code == 0
    original = RAUQController.generate_batch
    calls = []

    def interrupted(self, prompts, *a, **kw):
        calls.append(len(prompts))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, prompts, *a, **kw)

    monkeypatch.setattr(RAUQController, "generate_batch", interrupted)
    part = tmp_path / "part"
    stopped = cli(*args, part)
    assert stopped.exit_code == 130
    assert len(read(part / "journal.jsonl")) == 3  # config line + the first batch of 2
    assert stopped.stderr.strip() == (f"interrupted; kept 2 record(s) in {part / 'journal.jsonl'}. "
                                      "Rerun the same command with --resume to continue from there")  # fmt: skip
    monkeypatch.setattr(RAUQController, "generate_batch", original)
    refused = cli(*args, part)
    assert refused.exit_code == 2 and "not empty; pass --resume to continue the run in it" in refused.stderr
    calls.clear()

    def counted(self, prompts, *a, **kw):
        calls.append(len(prompts))
        return original(self, prompts, *a, **kw)

    monkeypatch.setattr(RAUQController, "generate_batch", counted)
    res = cli(*args, part, "--resume")
    assert res.exit_code == 0, res.stderr
    assert sum(calls) == len(QUESTIONS) - 2
    strip = lambda rs: [{k: v for k, v in r.items() if k != "latency_s"} for r in rs]  # noqa: E731
    assert strip(read(part / "controller.jsonl")) == strip(read(whole / "controller.jsonl"))
    assert not (part / "journal.jsonl").exists()


def test_ablate_runs_the_deduplicated_grid(cli, setup, tmp_path):
    out, plot = tmp_path / "abl.json", tmp_path / "abl.png"
    res = cli("control", "ablate", "-b", "local", "--data-file", setup["data"], "-m", setup["model"],
              "--heads", setup["heads"], "--threshold", setup["theta"], "--threshold", setup["theta_entropy"],
              "--signals", "rauq,entropy", "--repairs", "cot,none", "--cot-policies", "rauq,max20",
              "--threshold-types", "learned,fixed", "--thetas", "2", "--max-new-tokens", 6, "--limit", 3,
              "-o", out, "--plot", plot)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    doc = json.loads(out.read_text())
    keys = [c["key"] for c in doc["configurations"]]
    # 2 triggers x 2 threshold types x (cot x 2 policies + none) = 12 distinct cells
    assert len(keys) == len(set(keys)) == 12
    assert all(len(c["samples"]) == 3 for c in doc["configurations"])
    learned = [c for c in doc["configurations"] if c["knobs"]["threshold_type"] == "learned"]
    theta = {json.loads(p.read_text())["signal"]: json.loads(p.read_text())["theta"]
             for p in (setup["theta"], setup["theta_entropy"])}  # fmt: skip
    assert all(c["theta"] == theta[c["knobs"]["trigger"]] for c in learned)
    none_cells = [c for c in doc["configurations"] if c["knobs"]["repair"] == "none"]
    assert all("cot_policy" not in c["knobs"] for c in none_cells)
    assert plot.stat().st_size > 0 and not out.with_name("abl.json.journal").exists()


def test_ablate_pins_delimiters_and_depths_that_cannot_matter(cli, setup, tmp_path):
    from halluc_rauq.controller import DELIMITERS

    out = tmp_path / "abl.json"
    res = cli("control", "ablate", "-b", "local", "--data-file", setup["data"], *base_args(setup),
              "--repairs", "cot,abstain", "--delimiters", "wait,restart", "--rollback-modes", "sentence,fixed",
              "--rollbacks", "2,3", "--max-new-tokens", 6, "--limit", 2, "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    cells = json.loads(out.read_text())["configurations"]
    # cot: 2 delimiters x (sentence + fixed x 2 depths) = 6; abstain: 1
    assert len(cells) == 7 and sum(c["knobs"]["repair"] == "abstain" for c in cells) == 1
    sentence = [c["knobs"] for c in cells if c["knobs"].get("rollback_mode") == "sentence"]
    assert len(sentence) == 2 and all(k["rollback"] is None for k in sentence)
    assert {c["knobs"].get("delimiters") for c in cells} == {"wait", "restart", None}
    assert set(DELIMITERS) >= {"wait", "restart"}
    res = cli("control", "ablate", "-b", "local", "--data-file", setup["data"], *base_args(setup),
              "--delimiters", "shout", "-o", tmp_path / "b.json")  # fmt: skip
    assert res.exit_code == 2 and "--delimiters: unknown 'shout'" in res.stderr


def test_ablate_refuses_a_missing_learned_threshold_before_decoding(cli, setup, tmp_path):
    res = cli("control", "ablate", "-b", "local", "--data-file", setup["data"], *base_args(setup),
              "--signals", "rauq,margin", "-o", tmp_path / "a.json")  # fmt: skip
    assert res.exit_code == 2 and "no learned threshold for the 'margin' trigger" in res.stderr
    assert not (tmp_path / "a.json.journal").exists()


def test_cli_defaults_are_the_controller_defaults():
    """The CLI spells its defaults out (no pydantic at `--help`); they must not drift."""
    import typer.main

    from halluc_rauq.control_cli import control
    from halluc_rauq.controller import ControllerConfig

    command = typer.main.get_command(control).commands["eval"]
    defaults = {p.name: p.default for p in command.params}
    checked = [k for k in ControllerConfig.model_fields if k in defaults and k not in ("trigger", "seed")]
    assert len(checked) >= 15
    for name in checked:
        assert defaults[name] == ControllerConfig.model_fields[name].default, name


def test_heads_other_than_thetas_warn_or_are_refused_with_strict(cli, setup, tmp_path):
    other = tmp_path / "other-heads.json"
    res = cli(
        "calibrate",
        "heads",
        "-m",
        setup["model"],
        "--calibration",
        setup["data"],
        "-o",
        other,
        "--layers",
        "1",
    )
    assert res.exit_code == 0, res.stderr
    args = ["control", "run", "-m", setup["model"], "--heads", other, "--threshold", setup["theta"], "-p", "hi",
            "--max-new-tokens", 2]  # fmt: skip
    warned = cli(*args)
    assert warned.exit_code == 0 and "theta was fitted with other heads than" in warned.stderr
    refused = cli(*args, "--strict")
    assert refused.exit_code == 2 and "other heads" in refused.stderr and "(--strict)" in refused.stderr


def test_ablate_resumes_an_interrupted_grid(cli, setup, tmp_path, monkeypatch):
    args = ["control", "ablate", "-b", "local", "--data-file", setup["data"], *base_args(setup),
            "--repairs", "cot,none", "--thetas", "2", "--threshold-types", "fixed", "--max-new-tokens", 5,
            "--limit", 2, "-o"]  # fmt: skip
    whole, part = tmp_path / "whole.json", tmp_path / "part.json"
    assert cli(*args, whole).exit_code == 0
    original = RAUQController.generate_batch
    calls = []

    def interrupted(self, prompts, *a, **kw):
        calls.append(len(prompts))
        if len(calls) == 2:  # the second configuration
            raise KeyboardInterrupt
        return original(self, prompts, *a, **kw)

    monkeypatch.setattr(RAUQController, "generate_batch", interrupted)
    assert cli(*args, part).exit_code != 0 and not part.exists()
    monkeypatch.setattr(RAUQController, "generate_batch", original)
    assert cli(*args, part).exit_code == 2  # a journal is there: --resume or another output
    res = cli(*args, part, "--resume")
    assert res.exit_code == 0, res.stderr

    def comparable(path):
        return [(c["key"], [{k: v for k, v in r.items() if k != "latency_s"} for r in c["samples"]])
                for c in json.loads(path.read_text())["configurations"]]  # fmt: skip

    assert comparable(part) == comparable(whole)


SECOND_BEST = '''
import torch

from halluc_rauq import Outcome, Repair


class SecondBest(Repair):
    """At a trigger, commit the runner-up token instead of the one that fired."""

    name = action = "second_best"
    help = "commit the runner-up token"

    def fire(self, ctl, event, cand):
        runner_up = int(torch.topk(ctl.logits.float(), 2).indices[1])
        ctl.commit(ctl.candidate(runner_up), "rerank")
        event.candidates = [{"token": runner_up, "text": ctl.text(runner_up), "score": None}]
        return Outcome(end=len(ctl.tokens))


SECOND_BEST = SecondBest()
'''


def test_a_third_party_repair_is_one_module_and_one_entry_point(cli, setup, tmp_path, install_plugin):
    install_plugin("second_best_repair", SECOND_BEST, {"second_best": "SECOND_BEST"}, kind="repairs")
    res = cli("control", "eval", "-b", "local", "--data-file", setup["data"], *base_args(setup, "--theta", "0.5"),
              "--repair", "second_best", "--max-new-tokens", 8, "-o", tmp_path / "ev")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    records = read(tmp_path / "ev" / "controller.jsonl")
    events = [e for r in records for e in r["trigger_events"]]
    assert events and {e["action"] for e in events} == {"second_best"}
    for r in records:  # each repair committed one runner-up token where its trigger fired
        fired = [e["position"] for e in r["trigger_events"]]
        assert [i for i, kind in enumerate(r["token_kinds"]) if kind == "rerank"] == fired
    out = tmp_path / "abl.json"
    res = cli("control", "ablate", "-b", "local", "--data-file", setup["data"], *base_args(setup),
              "--repairs", "none,second_best", "--threshold-types", "fixed", "--thetas", "0.5",
              "--max-new-tokens", 6, "--limit", 2, "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    cells = {c["knobs"]["repair"]: c for c in json.loads(out.read_text())["configurations"]}
    assert set(cells) == {"none", "second_best"}
    res = cli("control", "eval", "-b", "local", "--data-file", setup["data"], *base_args(setup), "--repair", "bogus",
              "-o", tmp_path / "ev2")  # fmt: skip
    assert res.exit_code == 2 and "second_best" in res.stderr and "cot+abstain" in res.stderr
