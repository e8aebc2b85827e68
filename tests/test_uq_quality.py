"""`uq score` records a continuous quality where the verdict rests on one (`--correct-if`), and
`uq report` ranks PRR by it, as LM-Polygraph's tables do; AUROC stays against the verdict."""

import json

import pytest

from halluc_stats import prr


def test_prr_is_ranked_by_the_quality_measure_and_named(cli, tiny_llama, tmp_path):
    first = tmp_path / "q.jsonl"
    first.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "prompt": f"Name {i} things.", "reference": "x"}) + "\n"
            for i in range(8)
        )
    )
    cli("uq", "score", "--data", first, "-m", tiny_llama, "--device", "cpu", "--estimators", "msp,max_token_entropy",
        "--max-new-tokens", 4, "-o", tmp_path / "own.jsonl")  # fmt: skip
    said = [json.loads(x)["completion"] for x in (tmp_path / "own.jsonl").read_text().splitlines()]
    # references the answers match wholly, in part (their first word) or not at all: F1 1, between, 0
    refs = [s if i % 3 == 0 else s.split()[0] if i % 3 == 1 else "nothing alike" for i, s in enumerate(said)]
    data = tmp_path / "refs.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Name {i} things.", "reference": r}) + "\n"
                            for i, r in enumerate(refs)))  # fmt: skip
    out = tmp_path / "scores.jsonl"
    res = cli("uq", "score", "--data", data, "-m", tiny_llama, "--device", "cpu", "--estimators", "msp,max_token_entropy",
              "--max-new-tokens", 4, "--correct-if", "f1>=0.5", "-o", out)  # fmt: skip
    assert res.exit_code == 0, res.stderr
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert {r["quality_measure"] for r in records} == {"f1"}
    assert [r["quality"] == 1.0 for r in records][::3] == [True] * 3 and records[2]["quality"] == 0.0
    assert all(r["correct"] == int(r["quality"] >= 0.5) for r in records)
    res = cli("uq", "report", out, "--json", "--reference", "msp", "-o", tmp_path / "report.json")
    assert res.exit_code == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["prr_against"] == "quality (f1)" and report["auroc_against"].startswith("correct")
    msp = next(r for r in report["estimators"] if r["estimator"] == "msp")
    quality = [r["quality"] for r in records]
    assert msp["prr_50"] == pytest.approx(prr([r["uq"]["msp"] for r in records], quality, n_resamples=0).prr)
