"""Correctness judges through the real SDKs against the loopback server: prompts as published,
replies read by each prompt's rule, a malformed reply a recorded failure, a 429 retried, grades
cached, a key never written; a panel's combining rules and its agreement against statsmodels."""

import json
import random

import numpy as np
import pytest
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from halluc_backends import Limits
from halluc_backends.loopback import LoopbackServer
from halluc_benchmarks import Sample, get_benchmark
from halluc_judges.correctness import PROMPTS, Item, Judge, parse_spec
from halluc_judges.panel import Panel, fleiss_kappa
from ucli.errors import BadInput

FAST = Limits(requests_per_minute=6000, retry_initial_wait=0.05)  # the loopback server has no limit


def test_the_semantic_entropy_prompt_is_the_papers():
    build = PROMPTS["semantic-entropy"].build
    assert build("Capital of France?", ["Paris"], "Paris, France") == (
        "We are assessing the quality of answers to the following question: Capital of France?\n"
        "The expected answer is: Paris.\nThe proposed answer is: Paris, France\n"
        "Within the context of the question, does the proposed answer mean the same as the expected answer? "
        "Respond only with yes or no.\nResponse:"
    )
    assert "The following are expected answers to this question: ['Paris', 'City of Light'].\n" in build(
        "Capital of France?", ["Paris", "City of Light"], "Paris"
    )
    read = PROMPTS["semantic-entropy"].read
    assert read(" Yes.") == (1.0, "yes") and read("No") == (0.0, "no") and read("Maybe") is None
    letter = PROMPTS["simpleqa"].read
    assert letter("A") == (1.0, "correct") and letter("The grade: B") == (0.0, "incorrect")
    assert letter("C") == (0.0, "not_attempted") and letter("correct") is None


@pytest.mark.parametrize("spec", ["openai", "openai:", ":gpt", ""])
def test_a_malformed_judge_spec_is_bad_input(spec):
    with pytest.raises(BadInput, match="expected BACKEND:MODEL"):
        parse_spec(spec)


def items():
    return [Item("Capital of France?", ("Paris",), "Paris"), Item("Capital of Spain?", ("Madrid",), "Lisbon"),
            Item("Capital of Peru?", ("Lima",), "Lima, I think"), Item("Capital of Chad?", ("N'Djamena",), "Cairo")]  # fmt: skip


def test_an_openai_judge_grades_retries_records_failures_and_caches(tmp_path, monkeypatch):
    secret = "sk-judge-" + "".join(random.choice("abcdef0123456789") for _ in range(24))
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    with LoopbackServer(api_key=secret) as server:
        server.script("Capital of France?", ["429:0", "say:Yes"])
        server.script("Capital of Spain?", ["say:no"])
        server.script("Capital of Peru?", ["say:Perhaps"])
        server.script("Capital of Chad?", ["400", "say:no"])
        judge = Judge(f"openai:judge-model@{server.url}/v1", limits=FAST, cache=tmp_path / "grades.jsonl")
        first = judge.grade(items())
        assert [g["value"] for g in first] == [1.0, 0.0, None, None]
        assert first[2]["label"] == "unreadable" and first[2]["reply"] == "Perhaps"
        assert first[3]["label"] == "failed" and "HTTP 400" in first[3]["error"]
        assert sum(n for p, n in server.calls.items() if "France" in p) == 2  # the 429 was retried
        asked = sum(server.calls.values())
        again = judge.grade(items())  # cached, except the request that failed: asked again
        assert [g["value"] for g in again] == [1.0, 0.0, None, 0.0]
        assert sum(server.calls.values()) == asked + 1
    cached = (tmp_path / "grades.jsonl").read_text()
    assert secret not in cached and len(cached.splitlines()) == 1 + 4  # header and four grades
    assert {json.loads(x).get("judge") for x in cached.splitlines()[1:]} == {"openai:judge-model"}


def test_an_anthropic_judge_through_its_sdk(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "anything")
    with LoopbackServer() as server:
        server.script("Capital of France?", ["say:A"])
        judge = Judge(f"anthropic:claude-x@{server.url}", "simpleqa", FAST, cache=tmp_path / "g.jsonl")
        (grade,) = judge.grade(items()[:1])
    assert (grade["value"], grade["label"]) == (1.0, "correct")


def test_a_local_model_judges_offline_and_an_unreadable_reply_is_recorded(tiny_llama, tmp_path):
    judge = Judge(f"hf:{tiny_llama}", cache=tmp_path / "g.jsonl")
    grades = judge.grade(items()[:2])
    assert all(g["error"] is None and isinstance(g["reply"], str) for g in grades)
    assert all(
        (g["value"], g["label"]) == (None, "unreadable") or g["label"] in ("yes", "no") for g in grades
    )


def test_a_panel_combines_by_majority_or_mean_and_measures_agreement(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    replies = [["yes", "no", "yes", "no"], ["yes", "no", "no", "no"], ["yes", "yes", "no", "maybe"]]
    with LoopbackServer() as a, LoopbackServer() as b, LoopbackServer() as c:
        for server, said in zip((a, b, c), replies, strict=True):
            for item, reply in zip(items(), said, strict=True):
                server.script(item.question, [f"say:{reply}"])
        specs = [f"openai:m{i}@{s.url}/v1" for i, s in enumerate((a, b, c))]
        samples = [Sample(f"s{i}", it.question, it.references[0]) for i, it in enumerate(items())]
        pairs = [(it.answer, s) for it, s in zip(items(), samples, strict=True)]
        majority = Panel(specs, combine="majority", cache=tmp_path / "g.jsonl", rpm=6000)
        assert majority.many(pairs) == [1.0, 0.0, 0.0, 0.0]  # the fourth: one no, one unreadable -> no
        mean = Panel(specs, combine="mean", cache=tmp_path / "g.jsonl")  # every grade cached now
        assert mean.many(pairs) == pytest.approx([1.0, 1 / 3, 1 / 3, 0.0])
        two = Panel(specs[:2], cache=tmp_path / "g.jsonl")
        assert two.many(pairs) == [1.0, 0.0, 0.5, 0.0]  # a tie is 0.5: not right under judge>0.5
    agreement = mean.agreement()
    votes = [[1, 1, 1], [0, 0, 1], [1, 0, 0]]  # the items all three graded
    assert agreement["items_all_graded"] == 3
    assert agreement["fleiss_kappa"] == pytest.approx(sm_fleiss(aggregate_raters(np.array(votes))[0]))
    assert agreement["judges"]["openai:m2"] == {"right": 2, "graded": 3, "failed": 1}
    both = two.agreement()
    table = np.zeros((2, 2))
    for x, y in [[1, 1], [0, 0], [1, 0], [0, 0]]:
        table[x, y] += 1
    assert both["cohen_kappa"] == pytest.approx(cohens_kappa(table).kappa)


@pytest.mark.parametrize("raters", [2, 3, 5])
def test_fleiss_kappa_equals_statsmodels(raters):
    rng = np.random.default_rng(raters)
    votes = (rng.random((40, raters)) < rng.random((40, 1))).astype(int).tolist()
    assert fleiss_kappa(votes) == pytest.approx(sm_fleiss(aggregate_raters(np.array(votes))[0]))


def test_benchmarks_score_re_judges_a_run_with_a_judge_panel(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HALLUC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    facts = get_benchmark("facts").load("test")[:3]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": s.id, "completion": a}) + "\n"
                             for s, a in zip(facts, ["Berlin.", "Paris", "I don't know"], strict=True)))  # fmt: skip
    with LoopbackServer() as server:
        server.script(facts[0].prompt, ["say:yes"])
        server.script(facts[1].prompt, ["say:no"])
        server.script(facts[2].prompt, ["say:unclear"])
        res = cli(
            "benchmarks",
            "score",
            "facts",
            "--predictions",
            preds,
            "--judge",
            f"openai:m@{server.url}/v1",
            "--json",
            "--judge-rpm",
            6000,
        )
        assert res.exit_code == 0, res.stderr
        summary = json.loads(res.stdout)
        assert summary["rules"] == {"judge>0.5": 2, "judge failed": 1} and summary["correct"] == 1
        assert summary["judges"]["judges"]["openai:m"] == {"right": 1, "graded": 2, "failed": 1}
        verdicts = [json.loads(x) for x in (tmp_path / "preds.verdicts.jsonl").read_text().splitlines()]
        assert [v["correct"] for v in verdicts] == [True, False, False] and verdicts[0][
            "extracted"
        ] == "Berlin."
        calls = sum(server.calls.values())
        cli("benchmarks", "score", "facts", "--predictions", preds, "--judge", f"openai:m@{server.url}/v1",
            "--json", "--force")  # fmt: skip
        assert sum(server.calls.values()) == calls  # every reply, readable or not, was cached
    meta = json.loads((tmp_path / "preds.verdicts.jsonl.meta.json").read_text())
    assert meta["provenance"]["config"]["judge"] == {"judges": ["openai:m"], "prompt": "semantic-entropy",
                                                     "combine": "majority", "requests_per_minute": 60.0}  # fmt: skip


def test_uq_judges_compares_two_judges_on_the_same_scored_answers(cli, tmp_path, monkeypatch):
    from scipy.stats import kendalltau
    from sklearn.metrics import roc_auc_score

    monkeypatch.setenv("HALLUC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    facts = get_benchmark("facts").load("test")[:10]
    right = [i % 2 == 0 for i in range(10)]
    rng = np.random.default_rng(0)
    records = [{"id": s.id, "completion": s.reference if ok else "Nowhere",
                "uq": {"sharp": float(0.2 * (not ok) + rng.random() * 0.1), "blunt": float(rng.random()),
                       "upside": float(ok + rng.random() * 0.1)}}
               for s, ok in zip(facts, right, strict=True)]  # fmt: skip
    scores = tmp_path / "scores.jsonl"
    scores.write_text("".join(json.dumps(r) + "\n" for r in records))
    strict_grades = ["yes" if ok else "no" for ok in right]
    lenient = ["yes" if ok or i in (1, 3) else "no" for i, ok in enumerate(right)]
    with LoopbackServer() as a, LoopbackServer() as b:
        for server, said in ((a, strict_grades), (b, lenient)):
            for s, reply in zip(facts, said, strict=True):
                server.script(s.prompt, [f"say:{reply}"])
        res = cli("uq", "judges", scores, "-b", "facts", "--split", "test", "--judge", f"openai:strict@{a.url}/v1",
                  "--judge", f"openai:lenient@{b.url}/v1", "--json", "--n-resamples", 20, "--judge-rpm", 6000)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    for name, said in (("openai:strict", strict_grades), ("openai:lenient", lenient)):
        wrong = [int(x == "no") for x in said]
        for est in ("sharp", "blunt", "upside"):
            assert out["judges"][name]["auroc"][est] == pytest.approx(
                roc_auc_score(wrong, [r["uq"][est] for r in records])
            )
    assert (
        out["judges"]["openai:strict"]["ranking"][0] == "sharp"
        and out["judges"]["openai:strict"]["accuracy"] == 0.5
    )
    a_auc, b_auc = out["judges"]["openai:strict"]["auroc"], out["judges"]["openai:lenient"]["auroc"]
    (change,) = out["ranking_changes"]
    assert change["kendall_tau"] == pytest.approx(
        kendalltau(list(a_auc.values()), [b_auc[k] for k in a_auc]).statistic
    )
    votes = [[int(x == "yes"), int(y == "yes")] for x, y in zip(strict_grades, lenient, strict=True)]
    assert out["agreement"]["fleiss_kappa"] == pytest.approx(sm_fleiss(aggregate_raters(np.array(votes))[0]))
    table = cli(
        "uq",
        "judges",
        scores,
        "-b",
        "facts",
        "--split",
        "test",
        "--judge",
        f"openai:strict@{a.url}/v1",
        "--judge",
        f"openai:lenient@{b.url}/v1",
        "--n-resamples",
        20,
    )  # every grade cached: no server needed
    assert table.exit_code == 0 and "Kendall tau" in table.stdout and "sharp" in table.stdout
    one = cli("uq", "judges", scores, "-b", "facts", "--judge", f"openai:strict@{a.url}/v1")
    assert one.exit_code == 2 and "two or more --judge" in one.stderr


def test_uq_score_takes_the_judge_like_every_command_that_judges(cli, tiny_llama, tmp_path, monkeypatch):
    monkeypatch.setenv("HALLUC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    data = tmp_path / "q.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "prompt": f"Question {i}?", "reference": f"ref{i}"}) + "\n"
            for i in range(4)
        )
    )
    with LoopbackServer() as server:
        for i, reply in enumerate(["yes", "no", "no", "maybe"]):
            server.script(f"Question {i}?", [f"say:{reply}"])
        out = tmp_path / "scores.jsonl"
        res = cli("uq", "score", "--data", data, "-m", tiny_llama, "--device", "cpu", "--estimators", "msp",
                  "--max-new-tokens", 3, "--judge", f"openai:m@{server.url}/v1", "--judge-rpm", 6000, "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["correct"] for r in records] == [1, 0, 0, 0]
    assert [r["quality"] for r in records] == [1.0, 0.0, 0.0, None] and {
        r["quality_measure"] for r in records
    } == {"judge"}
    config = json.loads((tmp_path / "scores.jsonl.meta.json").read_text())["provenance"]["config"]
    assert config["benchmark_options"]["judge"]["judges"] == ["openai:m"]
