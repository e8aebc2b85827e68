"""`halluc pilot`: configs, prompts, backends through their real SDKs against a loopback server with
scripted faults, exactly-once resume after SIGKILL, secrets kept out of every file."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from halluc_backends.loopback import LoopbackServer, answer_tokens, token_logprob

PROMPTS = [
    {"id": f"p{i}", "text": f"question number {i} about CVE-2024-{1000 + i}", "category": "cve" if i % 2 else "probe",
     "is_synthetic_probe": i % 2 == 0, "severity": i}
    for i in range(6)
]  # fmt: skip


def write(path, obj):
    path.write_text(json.dumps(obj))
    return path


def read(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture
def server():
    with LoopbackServer() as s:
        yield s


def pilot_config(tmp_path, server, models=None, **top):
    prompts = write(tmp_path / "prompts.json", {"prompts": PROMPTS})
    doc = {"prompts_file": str(prompts), "output_dir": str(tmp_path / "out"), "seed": 3, "max_retries": 2,
           "requests_per_minute": 6000, "retry_initial_wait": 0.01, "retry_max_wait": 1.0, "timeout": 2.0,
           "models": models or [{"name": "echo", "type": "openai", "base_url": server.url + "/v1",
                                 "temperatures": [0.0, 0.7], "max_tokens": 4}], **top}  # fmt: skip
    return write(tmp_path / "pilot.json", doc)


def test_every_record_carries_what_annotation_needs(cli, server, tmp_path):
    config = pilot_config(tmp_path, server)
    res = cli("pilot", "run", "--config", config)
    assert res.exit_code == 0, res.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "results").iterdir()) == [
        "echo__temp0.0.jsonl",
        "echo__temp0.0.jsonl.meta.json",  # each table's provenance sidecar
        "echo__temp0.7.jsonl",
        "echo__temp0.7.jsonl.meta.json",
    ]
    records = read(out / "results" / "echo__temp0.7.jsonl")
    assert [r["prompt_id"] for r in records] == [p["id"] for p in PROMPTS]
    r = records[1]
    words = answer_tokens(PROMPTS[1]["text"], 4)
    assert r["full_response"] == "".join(words) and r["finish_reason"] == "length"
    assert r["tokens_used"] == {"input": len(PROMPTS[1]["text"].split()), "output": 4,
                                "total": len(PROMPTS[1]["text"].split()) + 4}  # fmt: skip
    assert [p["logprob"] for p in r["token_logprobs"]] == [token_logprob(i) for i in range(4)]
    assert len(r["token_logprobs"][0]["top"]) == 5
    assert r["sampling_params"] == {"temperature": 0.7, "top_p": 1.0, "max_tokens": 4, "seed": 3}
    assert (r["model"], r["backend"], r["variant"]) == ("echo", "openai", "temp0.7")
    assert (r["prompt_category"], r["is_synthetic_probe"], r["prompt_metadata"]) == (
        "cve",
        False,
        {"severity": 1},
    )
    assert r["retry_count"] == 0 and r["error"] is None and r["timestamp"].endswith("+00:00")
    combined = json.loads((out / "results.json").read_text())
    assert combined["metadata"]["run_id"] == r["run_id"] and len(combined["runs"]) == 12
    summary = json.loads((out / "summary.json").read_text())
    assert {(v["variant"], v["done"], v["errors"]) for v in summary["variants"]} == {
        ("temp0.0", 6, 0),
        ("temp0.7", 6, 0),
    }
    assert all(server.calls[p["text"]] == 2 for p in PROMPTS)  # once per variant


def test_toml_config_is_the_same_as_json(server, tmp_path):
    from halluc_pilot.config import load_config, variants

    json_config = pilot_config(tmp_path, server)
    doc = json.loads(json_config.read_text())
    models = doc.pop("models")
    lines = [f"{k} = {json.dumps(v)}" for k, v in doc.items()]
    for m in models:
        lines.append("[[models]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in m.items()]
    toml = tmp_path / "pilot.toml"
    toml.write_text("\n".join(lines) + "\n")
    a, b = load_config(json_config)[0], load_config(toml)[0]
    assert a == b and [v.name for v in variants(a)] == ["temp0.0", "temp0.7"]


@pytest.mark.parametrize(
    ("actions", "retries", "calls", "error"),
    [
        (["429:0.3"], 1, 2, None),
        (["500", "503"], 2, 3, None),
        (["slow:3"], 1, 2, None),  # past the 2 s timeout
        (["truncate"], 1, 2, None),
        (["400"], 0, 1, "HTTP 400"),  # permanent: failed at once
        (["500", "500", "500", "500"], 2, 3, "HTTP 500"),  # max_retries 2, then the error is kept
    ],
)
def test_faults_are_retried_or_failed_as_they_should(cli, server, tmp_path, actions, retries, calls, error):
    config = pilot_config(
        tmp_path, server, models=[{"name": "echo", "type": "openai", "base_url": server.url + "/v1"}]
    )
    server.script("number 2 ", actions)
    start = time.monotonic()
    res = cli("pilot", "run", "--config", config)
    assert res.exit_code == 0, res.stderr
    records = {r["prompt_id"]: r for r in read(tmp_path / "out" / "results" / "echo__temp0.0.jsonl")}
    r = records["p2"]
    assert r["retry_count"] == retries and server.calls[PROMPTS[2]["text"]] == calls
    assert (r["error"] or "").startswith(error) if error else r["error"] is None and r["full_response"]
    if actions[0].startswith("429"):
        assert time.monotonic() - start >= 0.3  # Retry-After honoured
    assert all(records[p["id"]]["error"] is None for p in PROMPTS if p["id"] != "p2")


def test_an_authentication_error_stops_that_model_only(cli, tmp_path):
    with LoopbackServer(api_key="right-key-123456") as locked, LoopbackServer() as open_server:
        models = [{"name": "locked", "type": "anthropic", "base_url": locked.url, "api_key": "wrong-key-123456"},
                  {"name": "open", "type": "gemini", "base_url": open_server.url, "api_key": "anything-123456"}]  # fmt: skip
        config = pilot_config(tmp_path, open_server, models=models, concurrency=1)
        res = cli("pilot", "run", "--config", config)
        assert res.exit_code == 1, res.stderr  # incomplete: a script must not take it for a finished run
        assert res.stderr.count("authentication failed") == 2  # the warning, and the closing error line
        assert (
            "locked: authentication failed" in res.stderr
            and "error: run incomplete: locked/temp0.0: 6 undone" in res.stderr
        )
        assert sum(locked.calls.values()) == 1  # no hammering
        assert len(read(tmp_path / "out" / "results" / "open__temp0.0.jsonl")) == len(PROMPTS)
        assert read(tmp_path / "out" / "results" / "locked__temp0.0.jsonl") == []
        summary = json.loads((tmp_path / "out" / "summary.json").read_text())
        assert [v["stopped"] is not None for v in summary["variants"]] == [True, False]


def test_no_secret_reaches_any_file_or_output(cli, server, tmp_path, monkeypatch):
    secret = "sk-test-" + "".join(random.choice("abcdef0123456789") for _ in range(32))
    monkeypatch.setenv("PILOT_TEST_KEY", secret)
    models = [
        {"name": "echo", "type": "openai", "base_url": server.url + "/v1", "api_key": "${PILOT_TEST_KEY}"}
    ]
    config = pilot_config(tmp_path, server, models=models)
    server.script("number 1 ", ["401"])  # the key is rejected once: the error path too
    res = cli("pilot", "run", "--config", config)
    val = cli("pilot", "validate", "--config", config)
    assert res.exit_code == 1 and val.exit_code == 0, res.stderr + val.stderr  # the 401 left prompts undone
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
    for text in (res.stdout, res.stderr, val.stdout, val.stderr):
        assert secret not in text
    assert "${PILOT_TEST_KEY}" in (tmp_path / "out" / "results.json").read_text()


def test_a_model_that_cannot_run_stops_before_sending_and_resume_sends_its_prompts(
    cli, server, tmp_path, monkeypatch
):
    """No key, or no SDK: like a rejected key, never an error per prompt and a 'successful' run."""
    from halluc_backends.openai_api import OpenAIBackend

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setattr(OpenAIBackend, "sdk", "no_such_sdk_halluc")
    models = [{"name": "echo", "type": "openai", "base_url": server.url + "/v1", "max_tokens": 4},
              {"name": "claude", "type": "claude", "model": "claude-x"}]  # fmt: skip
    config = pilot_config(tmp_path, server, models=models)
    res = cli("pilot", "run", "--config", config, "--json")
    assert res.exit_code == 1 and sum(server.calls.values()) == 0
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert lines[0] == "warning: echo/temp0.0: cannot run: sdk `no_such_sdk_halluc` is not installed: pip install 'halluc[api]'; its 6 prompts stay undone"  # fmt: skip
    assert lines[1].startswith("warning: claude/temp0.0: cannot run: api key missing (ANTHROPIC_API_KEY)")
    assert (
        lines[2].startswith("error: run incomplete: echo/temp0.0: 6 undone (cannot run: sdk")
        and "--resume" in lines[2]
    )
    assert len(lines) == 3
    doc = json.loads(res.stdout)
    assert doc["complete"] is False
    assert [(v["done"], v["undone"], v["errors"], v["requests"], v["requests_per_minute"]) for v in doc["variants"]] == [
        (0, 6, 0, 0, None), (0, 6, 0, 0, None)
    ]  # fmt: skip
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["complete"] is False
    monkeypatch.undo()  # the SDK is back
    again = cli("pilot", "run", "--config", config, "--resume", "--models", "echo", "--json")
    assert again.exit_code == 0, again.stderr
    echo = json.loads(again.stdout)["variants"][0]
    assert (echo["done"], echo["undone"], echo["errors"], echo["requests"]) == (6, 0, 0, 6)
    assert echo["requests_per_minute"] > 0 and all(server.calls[p["text"]] == 1 for p in PROMPTS)


def test_validate_catches_a_missing_sdk(cli, server, tmp_path, monkeypatch):
    from halluc_backends.openai_api import OpenAIBackend

    monkeypatch.setattr(OpenAIBackend, "sdk", "no_such_sdk_halluc")
    res = cli("pilot", "validate", "--config", pilot_config(tmp_path, server), "--json")
    assert res.exit_code == 1
    checks = {c["check"]: c for c in json.loads(res.stdout)["checks"]}
    assert checks["sdk echo"] == {"check": "sdk echo", "ok": False,
                                  "detail": "`no_such_sdk_halluc` is not installed: pip install 'halluc[api]'"}  # fmt: skip


def test_the_seed_backend_names_are_aliases(tmp_path, server):
    from halluc_pilot.config import load_config

    models = [{"name": n, "type": t, "model": "m"} for n, t in
              (("a", "local"), ("b", "transformers"), ("c", "claude"), ("d", "google"), ("e", "hf"))]  # fmt: skip
    config, raw, _ = load_config(pilot_config(tmp_path, server, models=models))
    assert [m.type for m in config.models] == ["hf", "hf", "anthropic", "gemini", "hf"]
    assert raw["models"][0]["type"] == "local"  # the config as written stays in the provenance


def run_cli_process(*args):
    code = "import sys; from ucli.app import main; sys.argv = ['halluc', *sys.argv[1:]]; main()"
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_then_resume_gives_exactly_once_results(tmp_path, seed):
    with LoopbackServer(latency=0.05) as server:
        prompts = [{"id": f"q{i}", "text": f"prompt {i}"} for i in range(40)]
        write(tmp_path / "prompts.json", prompts)
        doc = {"prompts_file": str(tmp_path / "prompts.json"), "requests_per_minute": 60000, "concurrency": 4,
               "models": [{"name": "a", "type": "openai", "base_url": server.url + "/v1", "max_tokens": 3,
                           "temperatures": [0.0, 1.0]}]}  # fmt: skip
        config = write(tmp_path / "pilot.json", doc)
        whole = run_cli_process("pilot", "run", "-c", config, "-o", tmp_path / "whole")
        assert whole.wait(60) == 0, whole.stderr.read().decode()
        part = run_cli_process("pilot", "run", "-c", config, "-o", tmp_path / "part")
        journals = tmp_path / "part" / "journals"
        deadline = time.monotonic() + 60
        stop_after = random.Random(seed).randint(5, 50)  # records on disk before the kill
        while time.monotonic() < deadline:
            done = (
                sum(len(p.read_text().splitlines()) - 1 for p in journals.glob("*.jsonl"))
                if journals.exists()
                else 0
            )
            if done >= stop_after:
                break
            time.sleep(0.01)
        part.send_signal(signal.SIGKILL)
        part.wait(10)
        assert not (tmp_path / "part" / "results.json").exists()
        resumed = run_cli_process("pilot", "run", "-c", config, "-o", tmp_path / "part", "--resume")
        assert resumed.wait(60) == 0, resumed.stderr.read().decode()

    def comparable(folder):
        runs = json.loads((folder / "results.json").read_text())["runs"]
        keep = (
            "prompt_id",
            "variant",
            "full_response",
            "tokens_used",
            "token_logprobs",
            "error",
            "retry_count",
        )
        return sorted(json.dumps({k: r[k] for k in keep}, sort_keys=True) for r in runs)

    assert comparable(tmp_path / "part") == comparable(tmp_path / "whole")
    assert len(comparable(tmp_path / "part")) == 80


def test_resume_with_a_changed_config_needs_force(cli, server, tmp_path):
    config = pilot_config(tmp_path, server)
    assert cli("pilot", "run", "--config", config).exit_code == 0
    doc = json.loads(config.read_text())
    doc["models"][0]["max_tokens"] = 2
    write(config, doc)
    refused = cli("pilot", "run", "--config", config, "--resume")
    assert refused.exit_code == 2 and "different configuration" in refused.stderr
    forced = cli("pilot", "run", "--config", config, "--resume", "--force")
    assert forced.exit_code == 0 and "--force" in forced.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"models": [{"name": "x", "type": "telepathy"}]},
            "unknown backend 'telepathy' (known: anthropic, gemini, hf, openai, vllm; aliases: local = hf, "
            "transformers = hf, claude = anthropic, google = gemini)",
        ),
        (
            {"models": [{"name": "x", "type": "openai", "api_key": "${NO_SUCH_VAR_HERE}"}]},
            "models[0].api_key: environment variable NO_SUCH_VAR_HERE is not set",
        ),
        ({"requests_per_minute": -5}, "requests_per_minute: Input should be greater than 0"),
        (
            {"models": [{"name": "x", "type": "hf", "model": "/no/such/model"}]},
            "no such model file or folder",
        ),
        ({"prompts": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}, "duplicate id 'a'"),
        ({"prompts": [{"id": "a", "text": "  "}]}, "field 'text': empty prompt"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(cli, server, tmp_path, change, message):
    config = pilot_config(tmp_path, server)
    doc = json.loads(config.read_text())
    if "prompts" in change:
        write(tmp_path / "prompts.json", change["prompts"])
    else:
        doc.update(change)
    write(config, doc)
    res = cli("pilot", "run", "--config", config)
    assert res.exit_code == 2 and message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    checked = cli("pilot", "validate", "--config", config)
    if "/no/such/model" in json.dumps(
        change
    ):  # validate reports a model that cannot resolve as a failed check
        assert checked.exit_code == 1 and message in checked.stdout
    else:
        assert checked.exit_code == 2 and message in checked.stderr
    assert not (tmp_path / "out").exists()


def test_validate_reports_a_missing_key_without_showing_any(cli, server, tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    models = [{"name": "claude", "type": "anthropic", "model": "claude-x"}]
    config = pilot_config(tmp_path, server, models=models)
    res = cli("pilot", "validate", "--config", config, "--json")
    assert res.exit_code == 1
    checks = {c["check"]: c for c in json.loads(res.stdout)["checks"]}
    assert checks["api key claude"] == {
        "check": "api key claude",
        "ok": False,
        "detail": "missing (ANTHROPIC_API_KEY): set ANTHROPIC_API_KEY or api_key in the config",
    }
    assert checks["disk"]["ok"] and checks["prompts"]["detail"] == "6 prompts"


def test_hf_backend_top5_logprobs_match_a_manual_softmax(tiny_qwen2):
    from halluc_backends.base import SamplingParams
    from halluc_backends.hf import HFBackend

    backend = HFBackend(str(tiny_qwen2), device="cpu")
    prompts = ["Say something", "A longer prompt that needs left padding in the batch"]
    gens = backend.generate_batch(prompts, SamplingParams(max_tokens=5, top_logprobs=5))
    lm = backend.lm
    for prompt, gen in zip(prompts, gens, strict=True):
        ids = lm.tokenizer(lm.chat_prompt(prompt), add_special_tokens=False)["input_ids"]
        answer = [p["id"] for p in gen.token_logprobs]
        with torch.no_grad():
            logits = lm.model(torch.tensor([ids + answer])).logits[0].double()
        for i, pos in enumerate(gen.token_logprobs):
            probs = torch.exp(logits[len(ids) - 1 + i] - logits[len(ids) - 1 + i].max())
            logp = torch.log(probs / probs.sum())
            top = logp.topk(5)
            assert [t["logprob"] for t in pos["top"]] == pytest.approx(top.values.tolist(), abs=1e-4)
            assert [t["token"] for t in pos["top"]] == [
                lm.tokenizer.decode([t]) for t in top.indices.tolist()
            ]
            assert pos["logprob"] == pytest.approx(logp[answer[i]].item(), abs=1e-4)
        assert gen.input_tokens == len(ids) and gen.output_tokens == len(gen.token_logprobs) + (
            gen.finish_reason == "stop"
        )


def test_a_local_hf_model_and_an_api_model_in_one_run(cli, server, tmp_path, tiny_llama):
    models = [{"name": "tiny", "type": "hf", "model": str(tiny_llama), "device": "cpu", "max_tokens": 3,
               "batch_size": 4, "temperatures": [0.0, 1.0]},
              {"name": "echo", "type": "openai", "base_url": server.url + "/v1"}]  # fmt: skip
    config = pilot_config(tmp_path, server, models=models)
    res = cli("pilot", "run", "--config", config, "--limit", 5, "--models", "tiny,echo", "--json")
    assert res.exit_code == 0, res.stderr
    done = {(v["model"], v["variant"]): v["done"] for v in json.loads(res.stdout)["variants"]}
    assert done == {("tiny", "temp0.0"): 5, ("tiny", "temp1.0"): 5, ("echo", "temp0.0"): 5}
    greedy = read(tmp_path / "out" / "results" / "tiny__temp0.0.jsonl")
    assert all(len(r["token_logprobs"][0]["top"]) == 5 and r["backend"] == "hf" for r in greedy)
    # a local prompt's elapsed time is the wall time of the batch it ran in (issue 17, item 14)
    assert [r["batch_size"] for r in greedy] == [4, 4, 4, 4, 1]
    assert len({r["elapsed_seconds"] for r in greedy[:4]}) == 1 and greedy[0]["elapsed_seconds"] > 0
    api = read(tmp_path / "out" / "results" / "echo__temp0.0.jsonl")
    assert all(r["batch_size"] == 1 for r in api)
    again = cli("pilot", "run", "--config", config, "--limit", 5, "--output", tmp_path / "again")
    assert again.exit_code == 0
    rerun = read(tmp_path / "again" / "results" / "tiny__temp1.0.jsonl")  # seeded sampling repeats itself
    assert [r["full_response"] for r in rerun] == [
        r["full_response"] for r in read(tmp_path / "out" / "results" / "tiny__temp1.0.jsonl")
    ]
    unknown = cli("pilot", "run", "--config", config, "--models", "nobody", "-o", tmp_path / "x")
    assert unknown.exit_code == 2 and "no model named nobody" in unknown.stderr


def test_the_shipped_example_config_loads():
    from pathlib import Path

    from halluc_pilot.config import load_config, variants
    from halluc_pilot.prompts import load_prompts

    example = Path(__file__).parent.parent / "examples" / "pilot" / "pilot.toml"
    config, _, _ = load_config(example)
    assert [f"{v.model.name}/{v.name}" for v in variants(config)] == [
        "smollm2/temp0.0", "smollm2/temp0.7", "local-server/temp0.0"]  # fmt: skip
    prompts = load_prompts(example.parent / config.prompts_file)
    assert {p.category for p in prompts} == {"known_cve", "fabricated_cve"}


def test_out_of_memory_halves_the_local_batch(tmp_path, monkeypatch):
    from halluc_backends.base import Generation, LocalBackend
    from halluc_pilot.config import PilotConfig, variants
    from halluc_pilot.prompts import PilotPrompt
    from halluc_pilot.runner import VariantStats, _run_local_variant
    from ucli.journal import Journal

    sizes = []

    class Small(LocalBackend):
        def generate_batch(self, prompts, params):
            sizes.append(len(prompts))
            if len(prompts) > 2:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return [Generation(p.upper(), "stop", 1, 1) for p in prompts]

    config = PilotConfig(models=[{"name": "m", "type": "hf", "batch_size": 8}])
    v = variants(config)[0]
    prompts = [PilotPrompt(f"p{i}", f"text {i}") for i in range(5)]
    stats = VariantStats("m", v.name, "hf", prompts=5)
    with Journal(tmp_path / "j.jsonl") as journal:
        _run_local_variant(config, v, Small("m"), prompts, journal, "run", stats, lambda n: None)
        records = journal.records()
    assert sizes == [5, 4, 2, 2, 1] and [r["full_response"] for r in records] == [
        f"TEXT {i}" for i in range(5)
    ]
    assert stats.done == 5 and stats.errors == 0


def test_out_of_memory_on_a_replica_splits_the_batch_in_halves():
    """What a Ray replica does with a batch that does not fit: halves, down to one prompt, then an error."""
    from halluc_backends import Generation, LocalBackend
    from halluc_pilot.prompts import PilotPrompt
    from halluc_pilot.runner import answer_batch

    sizes = []

    class Small(LocalBackend):
        def generate_batch(self, prompts, params):
            sizes.append(len(prompts))
            if len(prompts) > 2 or any("never" in p for p in prompts):
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return [Generation(p.upper(), "stop", 1, 1) for p in prompts]

    batch = [PilotPrompt(f"p{i}", f"text {i}" if i != 4 else "never fits") for i in range(5)]
    done, gens, errors, elapsed = answer_batch(Small("m"), batch, None)
    assert done == batch and sizes == [5, 2, 3, 1, 2, 1, 1] and elapsed >= 0
    assert [g.text if g else None for g in gens] == ["TEXT 0", "TEXT 1", "TEXT 2", "TEXT 3", None]
    assert errors[:4] == [None] * 4 and errors[4].startswith("out of memory: CUDA out of memory")


@pytest.mark.parametrize("backend", ["anthropic", "gemini"])
def test_the_other_sdks_retry_the_same_faults(cli, server, tmp_path, backend):
    models = [
        {"name": "m", "type": backend, "base_url": server.url, "api_key": "test-key-123456", "timeout": 1.0}
    ]
    config = pilot_config(tmp_path, server, models=models, max_retries=4)
    server.script("number 3 ", ["429:0.2", "truncate", "503", "slow:2"])
    server.script("number 4 ", ["400"])
    res = cli("pilot", "run", "--config", config)
    assert res.exit_code == 0, res.stderr
    records = {r["prompt_id"]: r for r in read(tmp_path / "out" / "results" / "m__temp0.0.jsonl")}
    assert records["p3"]["retry_count"] == 4 and records["p3"]["error"] is None
    assert records["p3"]["full_response"] == "".join(answer_tokens(PROMPTS[3]["text"], 256))
    assert records["p4"]["retry_count"] == 0 and records["p4"]["error"].startswith("HTTP 400")
    assert records["p0"]["tokens_used"]["total"] == len(PROMPTS[0]["text"].split()) * 2 + 1
