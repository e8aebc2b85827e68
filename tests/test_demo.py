import json

import pytest
import torch

from halluc_benchmarks import get_benchmark
from halluc_demo import run_demo
from ucli.models import load_model


def test_logprobs_match_a_teacher_forced_forward_pass(tiny_llama, tmp_path):
    # Batch of 3 with left padding: each row must equal an unpadded, single-sequence forward pass.
    result = run_demo(
        str(tiny_llama), limit=3, max_new_tokens=6, batch_size=3, output=tmp_path / "run", device="cpu"
    )
    lm = load_model(str(tiny_llama), device="cpu")
    facts = get_benchmark("facts")
    by_id = {s.id: s for s in facts.load("test")}
    for row in result.answers:
        prompt = facts.format_prompt(by_id[row["id"]], lm.tokenizer)
        assert prompt.endswith(f"{row['question']} Answer in a few words.<|im_end|>\n<|im_start|>assistant\n")
        prompt_ids = lm.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + row["token_ids"]])
        with torch.no_grad():
            logp = torch.log_softmax(lm.model(ids).logits.float(), dim=-1)[0]
        expected = [logp[len(prompt_ids) - 1 + i, t].item() for i, t in enumerate(row["token_ids"])]
        assert row["logprobs"] == pytest.approx(expected, abs=1e-4)
        assert row["mean_logprob"] == pytest.approx(sum(expected) / len(expected), abs=1e-4)
        # Greedy: every chosen token is the argmax of its step.
        assert all(logp[len(prompt_ids) - 1 + i].argmax().item() == t for i, t in enumerate(row["token_ids"]))


def test_run_folder_holds_answers_and_provenance(tiny_llama, tmp_path):
    out = tmp_path / "run"
    result = run_demo(
        str(tiny_llama), limit=4, max_new_tokens=4, batch_size=3, output=out, device="cpu", seed=5
    )
    assert sorted(p.name for p in out.iterdir()) == ["answers.jsonl", "run.json"]
    saved = [json.loads(x) for x in (out / "answers.jsonl").read_text().splitlines()]
    assert [r["id"] for r in saved] == [s.id for s in get_benchmark("facts").load("test", limit=4, seed=5)]
    assert saved == json.loads(json.dumps(result.answers))
    doc = json.loads((out / "run.json").read_text())
    assert doc["provenance"]["schema"] == "halluc.demo.run"
    assert doc["provenance"]["seed"] == 5 and doc["provenance"]["model"]["num_layers"] == 3
    assert doc["summary"]["n"] == 4 and doc["summary"]["accuracy"] == sum(r["correct"] for r in saved) / 4


def test_demo_cli_json_is_pure_json_on_stdout(cli, tiny_llama, tmp_path):
    res = cli(
        "demo",
        "--model",
        tiny_llama,
        "--limit",
        2,
        "--max-new-tokens",
        3,
        "--output",
        tmp_path / "r",
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["summary"]["n"] == 2 and len(data["answers"]) == 2


def test_demo_table(cli, tiny_llama, tmp_path):
    res = cli("demo", "-m", tiny_llama, "--limit", 1, "--max-new-tokens", 2, "-o", tmp_path / "r")
    assert res.exit_code == 0, res.stderr
    assert "mean log-prob" in res.stdout and "question" in res.stdout
    assert "/1 correct" in res.stdout and f"run folder: {tmp_path / 'r'}" in res.stdout


def test_demo_on_your_own_questions_file(cli, tiny_llama, tmp_path):
    qfile = tmp_path / "mine.tsv"
    qfile.write_text("Capital of France?\tParis\nCapital of Italy?\tRome\n")
    res = cli("demo", "-m", tiny_llama, "-q", qfile, "--max-new-tokens", 2, "-o", tmp_path / "r", "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["summary"]["benchmark"] == "local" and {a["expected"] for a in data["answers"]} == {
        "Paris",
        "Rome",
    }
    assert all(a["rule"] in ("exact", "contains", "hedged", "negated", "no match") for a in data["answers"])


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
