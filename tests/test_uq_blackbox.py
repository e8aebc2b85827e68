"""`uq score --backend` / `--from-pilot` (issue 32): estimators on models reached through an API,
through the real SDKs against the loopback server."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest

from halluc_backends.loopback import LoopbackServer, answer_tokens, token_logprob

QUESTIONS = [
    {"id": "a", "prompt": "What is the chemical formula of water?", "reference": "H2O"},
    {"id": "b", "prompt": "What is the capital of France?", "reference": "Paris"},
    {"id": "c", "prompt": "Who wrote Hamlet?", "reference": "Shakespeare"},
]
FAST = ("--rpm", 6000, "--equivalence", "exact")


@pytest.fixture
def server():
    with LoopbackServer() as s:
        yield s


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return path


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-secret")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-secret")


def read(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_backends_declare_what_they_give_and_estimators_they_cannot_serve_are_refused_before_any_request(
    cli, server, data, tmp_path
):
    from halluc_backends import backend_class

    openai, anthropic = backend_class("openai").capabilities, backend_class("anthropic").capabilities
    assert {"logprobs", "distributions", "second-prompt", "samples", "judge"} <= openai.statistics()
    assert anthropic.statistics() == {"samples", "judge", "consistency", "verbalized"}
    assert (
        "attention" not in backend_class("hf").capabilities.statistics()
    )  # through the backend: no internals
    out = tmp_path / "s.jsonl"
    for backend, url, estimator, needs in [("anthropic", server.url, "msp", "logprobs"),
                                           ("openai", server.url + "/v1", "rauq", "attention"),
                                           ("openai", server.url + "/v1", "eigenscore", "hidden")]:  # fmt: skip
        res = cli("uq", "score", "--data", data, "--backend", backend, "-m", "m", "--base-url", url, *FAST,
                  "--estimators", estimator, "-o", out)  # fmt: skip
        assert res.exit_code == 2, res.stderr
        line = res.stderr.strip()
        assert f"'{estimator}' needs {needs}" in line and f"backend '{backend}' does not give" in line
        assert len(line.splitlines()) == 1
    assert sum(server.calls.values()) == 0 and not out.exists() and not list(tmp_path.glob("s.jsonl*"))
    # `all` and `single-pass` mean what the backend can serve of them
    res = cli("uq", "score", "--data", data, "--backend", "anthropic", "-m", "m", "--base-url", server.url, *FAST,
              "--estimators", "all", "--samples", 2, "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    names = set(read(out)[0]["uq"])
    assert {"lexical_similarity", "num_semantic_sets", "eigval_laplacian", "kernel_language_entropy"} <= names
    assert not names & {"msp", "semantic_entropy", "sentence_sar", "mc_sequence_entropy", "rauq", "p_true"}


@pytest.mark.parametrize("backend", ["openai", "gemini"])
def test_log_prob_estimators_equal_a_direct_computation_from_the_returned_log_probs(
    cli, server, data, tmp_path, backend, monkeypatch
):
    monkeypatch.setenv("GEMINI_API_KEY", "gm-test-not-secret")
    out = tmp_path / "s.jsonl"
    url = server.url + ("/v1" if backend == "openai" else "")
    res = cli("uq", "score", "--data", data, "--backend", backend, "-m", "m", "--base-url", url,
              *FAST, "--max-new-tokens", 5, "--estimators",
              "msp,perplexity,mean_token_entropy,max_token_entropy,min_token_probability,top2_margin", "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    for q, r in zip(QUESTIONS, read(out), strict=True):
        tokens = answer_tokens(q["prompt"], 5)  # what the server said, with its log-probs
        lp = [token_logprob(i) for i in range(len(tokens))]
        assert r["completion"] == "".join(tokens) and r["tokens"] == tokens
        assert r["uq"]["msp"] == pytest.approx(-sum(lp))
        assert r["uq"]["perplexity"] == pytest.approx(-sum(lp) / len(lp))
        assert r["uq"]["min_token_probability"] == pytest.approx(1 - math.exp(min(lp)))
        # 20 alternatives per position, alternative j at log p - j: the top-k renormalised
        from scipy.stats import entropy

        h = [entropy(np.exp([v - j for j in range(20)])) for v in lp]  # scipy normalises
        assert r["uq"]["mean_token_entropy"] == pytest.approx(np.mean(h))
        assert r["uq"]["max_token_entropy"] == pytest.approx(max(h))
        margin = [math.exp(v) - math.exp(v - 1) for v in lp]
        assert r["uq"]["top2_margin"] == pytest.approx(1 - min(margin))
    meta = json.loads((tmp_path / "s.jsonl.meta.json").read_text())
    assert meta["provenance"]["model"] == {"name": "m", "backend": backend}
    assert meta["provenance"]["config"]["entropy"] == "approximated: the entropy of the top 20 renormalised"
    assert "test-not-secret" not in (tmp_path / "s.jsonl.meta.json").read_text() + out.read_text()


def test_p_true_and_verbalized_confidence_are_asked_about_the_greedy_answer(cli, server, data, tmp_path):
    from halluc_signals.verbalized import parse_confidence

    # the follow-ups go after the greedy answer, in this order: p(True) then the stated confidence
    server.script("Hamlet", ["ok", "say:True", "say:I would say 85%"])
    server.script("France", ["ok", "say:False", "say:no idea"])
    out = tmp_path / "s.jsonl"
    res = cli("uq", "score", "--data", data, "--backend", "openai", "-m", "m", "--base-url", server.url + "/v1",
              *FAST, "--concurrency", 1, "--estimators", "p_true,verbalized_confidence", "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    by_id = {r["id"]: r for r in read(out)}
    hamlet, france = by_id["c"], by_id["b"]
    # "True" is the first token, log p -0.1; "False" is not among its top-k: bounded by the least (-0.1 - 19)
    assert hamlet["p_true"] == pytest.approx(-0.1) and hamlet["p_false"] == pytest.approx(-19.1)
    assert hamlet["uq"]["p_true"] == pytest.approx(-(-0.1 - np.logaddexp(-0.1, -19.1)))
    assert france["p_false"] == pytest.approx(-0.1) and france["uq"]["p_true"] > 18
    assert hamlet["verbalized_confidence"] == 85 and hamlet["uq"]["verbalized_confidence"] == pytest.approx(
        0.15
    )
    assert france["verbalized_reply"] == "no idea" and france["uq"]["verbalized_confidence"] is None
    assert by_id["a"]["uq"]["p_true"] is None  # the echo names neither word
    asked = [p for p in server.calls if "Hamlet" in p]
    assert any("Possible answer: echo Who wrote Hamlet?" in p for p in asked)
    assert any("Proposed answer: echo Who wrote Hamlet?" in p for p in asked)
    for reply, value in [("85", 85), ("Confidence: 0.7", 70), ("100%", 100), ("about 250 or 40", 40), ("none", None),
                         ("7.5", 7.5), ("-", None)]:  # fmt: skip
        assert parse_confidence(reply) == value


def test_a_429_mid_sampling_is_retried_and_the_rate_limit_holds_across_answers_samples_and_judge(
    cli, server, data, tmp_path
):
    # the third request about Hamlet (a sample) is refused once with Retry-After 0
    server.script("Hamlet", ["ok", "ok", "429:0"])
    out = tmp_path / "s.jsonl"
    res = cli("uq", "score", "--data", data, "--backend", "openai", "-m", "m", "--base-url", server.url + "/v1",
              "--rpm", 600, "--equivalence", "exact", "--concurrency", 1, "--samples", 3,
              "--estimators", "msp,lexical_similarity", "--judge", f"openai:m@{server.url}/v1",
              "--judge-rpm", 6000, "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    records = read(out)
    assert all(len(r["samples"]) == 3 for r in records)
    assert server.calls["Who wrote Hamlet?"] == 1 + 3 + 1  # the greedy answer, three samples, one retry
    # 12 answers and samples + 1 retry + 3 verdicts, all under the model's one limit (600/min: one per
    # 0.1 s; arrivals jitter by the first connection's set-up); the judge's own 6000/min is not used
    times = sorted(server.times)
    assert len(times) == 16
    assert times[-1] - times[0] >= 15 * 0.1 - 0.06
    assert times[-1] - times[-4] >= 3 * 0.1 - 0.06  # the three verdicts, last


def test_a_killed_run_resumes_and_sends_only_what_is_missing(cli, server, data, tmp_path):
    # the second request about France fails authentication: the model stops, what came back is kept
    server.script("France", ["ok", "401"])
    out = tmp_path / "s.jsonl"
    args = ("uq", "score", "--data", data, "--backend", "openai", "-m", "m", "--base-url", server.url + "/v1",
            *FAST, "--concurrency", 1, "--samples", 3, "--estimators", "msp,lexical_similarity", "-o", out)  # fmt: skip
    res = cli(*args)
    assert res.exit_code == 1 and "rerun with --resume" in res.stderr and not out.exists()
    journal = tmp_path / "s.jsonl.journal"
    kept = len(journal.read_text().splitlines()) - 1  # less the header
    sent = sum(server.calls.values())
    assert 0 < kept < 12
    res = cli(*args, "--resume")
    assert res.exit_code == 0, res.stderr
    assert sum(server.calls.values()) - sent == 12 - kept  # only what the journal lacked
    assert not journal.exists() and len(read(out)) == 3


def test_a_run_killed_mid_flight_resumes_and_sends_only_what_its_journal_lacks(server, data, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    server.latency = 0.05
    out = tmp_path / "s.jsonl"
    journal = tmp_path / "s.jsonl.journal"
    args = [sys.executable, "-m", "ucli", "uq", "score", "--data", str(data), "--backend", "openai", "-m", "m",
            "--base-url", server.url + "/v1", "--rpm", "6000", "--equivalence", "exact", "--concurrency", "1",
            "--samples", "4", "--estimators", "msp,lexical_similarity", "-o", str(out)]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not journal.exists() or len(journal.read_text().splitlines()) < 5):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = len(journal.read_text().splitlines()) - 1
    assert 4 <= kept < 15 and not out.exists()
    sent = sum(server.calls.values())
    done = subprocess.run([*args, "--resume"], capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    assert sum(server.calls.values()) - sent == 15 - kept  # 3 questions x (1 + 4): only the missing
    assert [len(r["samples"]) for r in read(out)] == [4, 4, 4]


def test_the_same_model_served_locally_and_behind_the_openai_api_gives_the_same_values(
    cli, tiny_llama, data, tmp_path
):
    """The tiny model through `--backend hf` (one prompt per batch) and the same model served by an
    OpenAI-compatible loopback, each request seeded as it asks: the same texts, so the same
    texts-only estimator values."""
    from halluc_backends import SamplingParams, backend_class

    model, lock = backend_class("hf")(str(tiny_llama), device="cpu"), threading.Lock()

    def serve(prompt, body):
        params = SamplingParams(temperature=body["temperature"], top_p=body["top_p"], max_tokens=body["max_tokens"],
                                seed=body.get("seed"), top_logprobs=0)  # fmt: skip
        with lock:
            return model.generate_batch([prompt], params)[0].text

    texts_only = "lexical_similarity,num_semantic_sets,eigval_laplacian,degree_matrix,kernel_language_entropy"
    common = ("--data", data, "-m", tiny_llama, "--device", "cpu", "--max-new-tokens", 4, "--samples", 3,
              "--temperature", 1.0, "--equivalence", "exact", "--estimators", texts_only, "--seed", 5)  # fmt: skip
    res = cli("uq", "score", *common, "--backend", "hf", "--batch-size", 1, "-o", tmp_path / "local.jsonl")
    assert res.exit_code == 0, res.stderr
    with LoopbackServer(responder=serve) as served:
        res = cli("uq", "score", *common, "--backend", "openai", "--base-url", served.url + "/v1", "--rpm", 6000,
                  "-o", tmp_path / "served.jsonl")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    local, remote = read(tmp_path / "local.jsonl"), read(tmp_path / "served.jsonl")
    # the loopback splits a text into words and joins them back: compare word for word
    words = lambda r: [" ".join(s["answer"].split()) for s in r["samples"]]  # noqa: E731
    assert [words(r) for r in local] == [words(r) for r in remote]
    assert len({a for r in local for a in words(r)}) > 3  # the samples differ: a real comparison
    for a, b in zip(local, remote, strict=True):
        assert a["uq"] == pytest.approx(b["uq"])


def test_a_pilot_run_with_samples_is_scored_without_a_request(cli, server, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": q["id"], "text": q["prompt"], "reference": q["reference"]}) + "\n"
                               for q in QUESTIONS))  # fmt: skip
    config = tmp_path / "pilot.json"
    config.write_text(json.dumps({"prompts_file": str(prompts), "output_dir": str(tmp_path / "run"), "seed": 3,
                                  "requests_per_minute": 6000, "models": [{"name": "echo", "type": "openai",
                                  "base_url": server.url + "/v1", "max_tokens": 6}]}))  # fmt: skip
    res = cli("pilot", "run", "--config", config, "--samples", 3)
    assert res.exit_code == 0, res.stderr
    rows = read(tmp_path / "run" / "results" / "echo__temp0.0.jsonl")
    assert all(len(r["samples"]) == 3 and r["samples"][0]["token_logprobs"] for r in rows)
    assert sum(server.calls.values()) == 3 * 4  # one rate limit: the answer and its samples
    sent = sum(server.calls.values())
    out = tmp_path / "s.jsonl"
    res = cli("uq", "score", "--from-pilot", tmp_path / "run", *FAST,
              "--estimators", "msp,lexical_similarity,mc_sequence_entropy,cocoa_msp", "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert sum(server.calls.values()) == sent
    records = read(out)
    assert [r["id"] for r in records] == ["a", "b", "c"] and all(r["correct"] == 0 for r in records)
    lp = [token_logprob(i) for i in range(6)]
    assert records[0]["uq"]["msp"] == pytest.approx(-sum(lp))
    assert records[0]["uq"]["mc_sequence_entropy"] == pytest.approx(
        -sum(lp)
    )  # the echo's samples are its answer
    assert records[0]["uq"]["cocoa_msp"] == pytest.approx(0.0)
    res = cli(
        "uq", "score", "--from-pilot", tmp_path / "run", *FAST, "--estimators", "p_true", "-o", out, "--force"
    )
    assert res.exit_code == 2 and "'p_true' needs second-prompt" in res.stderr


def test_the_docs_table_of_estimators_by_backend_is_what_the_declarations_say():
    """docs/uq.md's table says, for every estimator, which backends serve it: from the code."""
    from pathlib import Path

    from halluc_backends import backend_class
    from halluc_signals import registry
    from halluc_uq.blackbox import Recorded

    text = Path(__file__).parents[1].joinpath("docs", "uq.md").read_text()
    block = text.split("### Which estimator runs where", 1)[1].split("\n\n", 2)[1]
    rows = {}
    for line in block.splitlines()[2:]:
        name, needs, _, serve, pilot = (c.strip() for c in line.strip("|").split("|"))
        rows[name.strip("`")] = (set(needs.split(", ")), serve, pilot)
    pilot = Recorded(logprobs=True, top_logprobs=5, sampled=True).statistics()
    backends = ["hf", "vllm", "openai", "gemini", "anthropic"]
    for name, estimator in registry().items():
        needs, serve, from_pilot = rows[name]
        assert needs == set(estimator.needs), name
        served = [b for b in backends if estimator.needs <= backend_class(b).capabilities.statistics()]
        assert serve == (", ".join(served) or "none: a loaded model (`uq score -m`)"), name
        assert from_pilot == ("yes" if estimator.needs <= pilot else "no"), name


def test_a_local_pilot_variant_draws_its_samples_in_seeded_batches(cli, tmp_path, tiny_llama):
    """hf: one batch per sample index, seeded seed + 1 + i, beside the greedy batch."""
    from halluc_backends import SamplingParams, backend_class

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": q["id"], "text": q["prompt"]}) + "\n" for q in QUESTIONS))
    config = tmp_path / "pilot.json"
    config.write_text(json.dumps({"prompts_file": str(prompts), "output_dir": str(tmp_path / "run"), "seed": 3,
                                  "samples": 2, "sample_temperature": 1.0,
                                  "models": [{"name": "tiny", "type": "hf", "model": str(tiny_llama), "device": "cpu",
                                              "max_tokens": 4, "batch_size": 8}]}))  # fmt: skip
    res = cli("pilot", "run", "--config", config)
    assert res.exit_code == 0, res.stderr
    rows = read(tmp_path / "run" / "results" / "tiny__temp0.0.jsonl")
    model = backend_class("hf")(str(tiny_llama), device="cpu")
    texts = [q["prompt"] for q in QUESTIONS]
    for i in range(2):
        want = model.generate_batch(
            texts, SamplingParams(temperature=1.0, max_tokens=4, seed=3 + 1 + i, top_logprobs=5)
        )
        assert [r["samples"][i]["text"] for r in rows] == [g.text for g in want]
    assert len({s["text"] for r in rows for s in r["samples"]}) > 2
