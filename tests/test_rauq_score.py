"""`halluc calibrate score`: scored greedy answers, journaled and resumable, ready for `halluc stats`."""

import json

import pytest

from halluc_signals import score_completion
from ucli.generation import generate
from ucli.models import chat_prompt, load_model
from ucli.testing import QUESTIONS as ALL_QUESTIONS

QUESTIONS = ALL_QUESTIONS[:5]


@pytest.fixture
def data(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "prompt": q, "reference": a}) + "\n"
            for i, (q, a) in enumerate(QUESTIONS)
        )
    )
    return f


def read(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_records_match_an_independent_decode_and_score(cli, tiny_llama, data, tmp_path):
    out = tmp_path / "scores.jsonl"
    res = cli(
        "calibrate",
        "score",
        "-m",
        tiny_llama,
        "-d",
        data,
        "-o",
        out,
        "--max-new-tokens",
        6,
        "--batch-size",
        2,
        "--alpha",
        0.4,
    )
    assert res.exit_code == 0, res.stderr
    records = read(out)
    assert [r["id"] for r in records] == [f"q{i}" for i in range(5)] and not (
        tmp_path / "scores.jsonl.journal"
    ).exists()
    lm = load_model(str(tiny_llama), device="cpu")
    gens = generate(lm, [chat_prompt(lm.tokenizer, q) for q, _ in QUESTIONS], 6)
    for rec, gen, (question, _) in zip(records, gens, QUESTIONS, strict=True):
        assert rec["token_ids"] == gen["token_ids"] and rec["completion"] == gen["answer"]
        expected = score_completion(
            lm, lm.prompt_ids(lm.chat_prompt(question)), rec["token_ids"], layers=[1, 2], alpha=0.4
        )
        assert rec["rauq"] == pytest.approx(expected.sequence, abs=1e-5)
        assert rec["token_rauq"] == pytest.approx(expected.tokens, abs=1e-5)
        assert {int(k): v for k, v in rec["heads"].items()} == expected.heads
        assert (
            rec["correct"] in (0, 1)
            and rec["alpha"] == 0.4
            and len(rec["token_probs"]) == len(rec["token_ids"])
        )
    summary = json.loads(cli("stats", "bootstrap", out, "--field", "rauq", "--json").stdout)
    assert summary["groups"][0]["n"] == 5  # the output feeds halluc stats as it is


def test_fixed_heads_are_used(cli, tiny_llama, data, tmp_path):
    heads = tmp_path / "heads.json"
    assert (
        cli(
            "calibrate", "heads", "-m", tiny_llama, "--calibration", data, "-o", heads, "--layers", "1"
        ).exit_code
        == 0
    )
    out = tmp_path / "scores.jsonl"
    assert (
        cli(
            "calibrate",
            "score",
            "-m",
            tiny_llama,
            "-d",
            data,
            "-o",
            out,
            "--heads",
            heads,
            "--max-new-tokens",
            4,
        ).exit_code
        == 0
    )
    chosen = json.loads(heads.read_text())["heads"]["1"]
    assert all(r["heads"] == {"1": chosen} for r in read(out))


def test_resume_finishes_an_interrupted_run_without_redoing_work(cli, tiny_llama, data, tmp_path):
    out = tmp_path / "scores.jsonl"
    args = (
        "calibrate",
        "score",
        "-m",
        tiny_llama,
        "-d",
        data,
        "-o",
        out,
        "--max-new-tokens",
        4,
        "--batch-size",
        2,
    )
    assert cli(*args, "--limit", 2).exit_code == 0
    first = read(out)
    # Simulate a crash after two records: a journal holding them plus a torn line, no final file.
    journal = tmp_path / "scores.jsonl.journal"
    from ucli.journal import Journal

    lm = load_model(str(tiny_llama), device="cpu")
    config = {"model": str(tiny_llama), "data": str(data), "heads": None, "alpha": 0.5, "layers": [1, 2],
              "max_new_tokens": 4, "limit": None, "seed": 0, "fingerprint": lm.fingerprint.model_dump()}  # fmt: skip
    with Journal(journal, config=config) as j:
        for rec in first:
            j.append(rec)
    with open(journal, "a") as fh:
        fh.write('{"id": "q2", "prom')
    out.unlink()
    assert cli(*args).exit_code == 2  # without --resume an existing journal is refused
    res = cli(*args, "--resume")
    assert res.exit_code == 0, res.stderr
    records = read(out)
    assert [r["id"] for r in records] == [f"q{i}" for i in range(5)]
    assert [next(r for r in records if r["id"] == f["id"]) for f in first] == first  # journaled, not redone
    assert "dropping a torn last record" in res.stderr
    assert not journal.exists()  # a finished run leaves only its output


def test_resume_with_other_options_is_refused(cli, tiny_llama, data, tmp_path):
    from ucli.journal import Journal

    journal = tmp_path / "scores.jsonl.journal"
    with Journal(journal, config={"model": "something else"}) as j:
        j.append({"id": "q0"})
    res = cli("calibrate", "score", "-m", tiny_llama, "-d", data, "-o", tmp_path / "scores.jsonl", "--resume")
    assert res.exit_code == 2 and "--resume with a different configuration" in res.stderr


def test_prompts_without_references_get_no_correct_field(cli, tiny_llama, tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text('{"id": "a", "prompt": "Say hi"}\n')
    out = tmp_path / "s.jsonl"
    assert (
        cli("calibrate", "score", "-m", tiny_llama, "-d", data, "-o", out, "--max-new-tokens", 3).exit_code
        == 0
    )
    (rec,) = read(out)
    assert "correct" not in rec and rec["rauq"] is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--alpha", "-0.1"], "alpha must be in [0, 1]"), (["--layers", "9"], "--layers: [9] outside")],
)
def test_bad_input(cli, tiny_llama, data, tmp_path, args, message):
    res = cli("calibrate", "score", "-m", tiny_llama, "-d", data, "-o", tmp_path / "s.jsonl", *args)
    assert res.exit_code == 2 and message in res.stderr and not (tmp_path / "s.jsonl").exists()


@pytest.mark.slow
def test_decode_time_capture_equals_teacher_forcing_on_the_real_model_in_batches(cli, smollm2, tmp_path):
    data = tmp_path / "facts.jsonl"
    assert (
        cli(
            "benchmarks", "export", "facts", "--split", "test", "--limit", 6, "--seed", 1, "-o", data
        ).exit_code
        == 0
    )
    out = tmp_path / "scores.jsonl"
    res = cli(
        "calibrate",
        "score",
        "-d",
        data,
        "-o",
        out,
        "--batch-size",
        3,
        "--max-new-tokens",
        12,
        "--device",
        "cpu",
    )
    assert res.exit_code == 0, res.stderr
    from ucli.data import read_prompt_pairs

    for rec, pair in zip(read(out), read_prompt_pairs(data), strict=True):
        forced = score_completion(
            smollm2, smollm2.prompt_ids(smollm2.chat_prompt(pair.prompt)), rec["token_ids"], alpha=0.5
        )
        assert rec["rauq"] == pytest.approx(forced.sequence, abs=1e-4)
        assert {int(k): v for k, v in rec["heads"].items()} == forced.heads
