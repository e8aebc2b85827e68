import hashlib
import json
import os
import re
import stat

import pytest

from ucli import artifacts
from ucli.errors import BadInput
from ucli.fingerprint import ModelFingerprint

FP = {
    "name": "m",
    "source": "local",
    "architecture": "LlamaForCausalLM",
    "model_type": "llama",
    "num_layers": 3,
    "num_heads": 4,
    "num_kv_heads": 4,
    "hidden_size": 64,
    "vocab_size": 400,
    "file_sha256": "aa",
}


def test_atomic_write_replaces_whole_file_and_leaves_no_temp_on_failure(tmp_path):
    target = tmp_path / "out.json"
    artifacts.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), artifacts.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    mode = stat.S_IMODE(os.stat(target).st_mode)
    assert mode == 0o666 & ~artifacts._umask()


def test_jsonl_csv_parquet_round_trip(tmp_path):
    import pyarrow.parquet as pq

    rows = [{"id": "a", "v": 1.5}, {"id": "b", "v": -2.0}]
    artifacts.write_jsonl(tmp_path / "r.jsonl", rows)
    assert [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()] == rows
    artifacts.write_csv(tmp_path / "r.csv", rows)
    assert (tmp_path / "r.csv").read_text().splitlines() == ["id,v", "a,1.5", "b,-2.0"]
    artifacts.write_parquet(tmp_path / "r.parquet", rows)
    assert pq.read_table(tmp_path / "r.parquet").to_pylist() == rows


def test_provenance_header_and_secret_redaction(tmp_path, monkeypatch):
    secret = "sk-ant-very-secret-value-123"
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    monkeypatch.setattr("sys.argv", ["halluc", "pilot", "run", "--api-key", secret, "--max-tokens", "5"])
    data = tmp_path / "in.txt"
    data.write_text("hello")
    doc = artifacts.write_artifact(
        tmp_path / "a.json",
        "halluc.test",
        3,
        {"note": f"key was {secret}", "token": "Paris"},
        model=ModelFingerprint(**FP),
        inputs=[data],
        seed=11,
        config={
            "api_key": secret,
            "anthropic_key_ref": "${ANTHROPIC_API_KEY}",
            "max_tokens": 5,
            "hf_token": "x" * 9,
        },
    )
    text = (tmp_path / "a.json").read_text()
    assert secret not in text
    prov = json.loads(text)["provenance"]
    assert prov["schema"] == "halluc.test" and prov["schema_version"] == 3
    assert prov["seed"] == 11 and prov["model"]["num_layers"] == 3
    assert prov["inputs"] == {str(data): "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}
    assert prov["argv"] == ["halluc", "pilot", "run", "--api-key", "<redacted>", "--max-tokens", "5"]
    assert prov["config"] == {
        "api_key": "<redacted>",
        "anthropic_key_ref": "${ANTHROPIC_API_KEY}",
        "max_tokens": 5,
        "hf_token": "<redacted>",
    }
    assert doc["note"] == "key was ${ANTHROPIC_API_KEY}" and doc["token"] == "Paris"
    assert prov["created_utc"].endswith("+00:00")


def test_load_artifact_refuses_wrong_schema_newer_version_and_other_model(tmp_path):
    path = tmp_path / "heads.json"
    artifacts.write_artifact(path, "halluc.rauq.heads", 2, {"heads": [1]}, model=FP)
    assert artifacts.load_artifact(path, "halluc.rauq.heads", max_version=2, model=ModelFingerprint(**FP))[
        "heads"
    ] == [1]
    with pytest.raises(
        BadInput, match=re.escape("is a 'halluc.rauq.heads' artifact, expected 'halluc.rauq.theta'")
    ):
        artifacts.load_artifact(path, "halluc.rauq.theta", max_version=2)
    with pytest.raises(BadInput, match="version 2 is newer"):
        artifacts.load_artifact(path, "halluc.rauq.heads", max_version=1)
    other = ModelFingerprint(**{**FP, "name": "other", "num_layers": 30})
    with pytest.raises(BadInput, match=r"made for model 'm', not 'other' \(num_layers: 3 vs 30\)"):
        artifacts.load_artifact(path, "halluc.rauq.heads", max_version=2, model=other)
    reweighted = ModelFingerprint(**{**FP, "file_sha256": "bb"})
    with pytest.raises(BadInput, match="file_sha256"):
        artifacts.load_artifact(path, "halluc.rauq.heads", max_version=2, model=reweighted)
    (tmp_path / "plain.json").write_text("{}")
    with pytest.raises(BadInput, match="no provenance header"):
        artifacts.load_artifact(tmp_path / "plain.json", "halluc.rauq.heads")


def test_staged_dir_appears_whole_or_not_at_all(tmp_path):
    final = tmp_path / "run"
    with pytest.raises(ValueError), artifacts.staged_dir(final) as stage:
        (stage / "a.txt").write_text("x")
        raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []
    with artifacts.staged_dir(final) as stage:
        (stage / "a.txt").write_text("x")
    assert (final / "a.txt").read_text() == "x"
    with pytest.raises(BadInput, match="exists and is not empty"), artifacts.staged_dir(final):
        pass


def test_sha256_file_is_cached_by_size_and_mtime(tmp_path):
    import hashlib

    f = tmp_path / "w.bin"
    f.write_bytes(b"abc" * 1000)
    assert artifacts.sha256_file(f) == hashlib.sha256(b"abc" * 1000).hexdigest()
    f.write_bytes(b"abcd" * 1000)
    assert artifacts.sha256_file(f) == hashlib.sha256(b"abcd" * 1000).hexdigest()


def test_strict_json_drops_what_json_cannot_hold():
    import json
    import math
    from dataclasses import dataclass

    import numpy as np

    from ucli.artifacts import strict_json

    @dataclass
    class Point:
        x: float
        n: int

    doc = strict_json(
        {"a": [math.nan, -math.inf, 1.5], "b": Point(np.float32(0.25), np.int64(3)), "c": (True, "s")}
    )
    assert doc == {"a": [None, None, 1.5], "b": {"x": 0.25, "n": 3}, "c": [True, "s"]}
    assert type(doc["b"]["n"]) is int and json.loads(json.dumps(doc, allow_nan=False)) == doc


@pytest.mark.parametrize("name", ["scores.jsonl", "table.csv", "rows.parquet"])
def test_every_table_carries_a_sidecar_its_readers_check(tmp_path, capsys, name):
    from ucli.artifacts import check_table, sidecar_path, write_table
    from ucli.data import read_records

    rows = [{"id": "a", "x": 1}, {"id": "b", "x": 2}]
    path = write_table(
        tmp_path / name, rows, "halluc.test.table", seed=3, config={"k": "v"}, summary={"n": 2}
    )
    side = json.loads(sidecar_path(path).read_text())
    assert side["provenance"]["schema"] == "halluc.test.table" and side["provenance"]["seed"] == 3
    assert (side["table"], side["rows"], side["n"]) == (name, 2, 2)
    assert side["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [r.data["id"] for r in read_records(path, "halluc.test.table")] == ["a", "b"]
    assert capsys.readouterr().err == ""
    with pytest.raises(
        BadInput, match=re.escape("is a 'halluc.test.table' artifact, expected 'halluc.probe.runs'")
    ):
        read_records(path, "halluc.probe.runs")  # another command's table given by mistake
    if name.endswith(".jsonl"):
        with open(path, "a") as fh:
            fh.write('{"id": "c", "x": 3}\n')
        assert len(read_records(path)) == 3  # an edited table is still read, with a warning
        assert "changed since halluc wrote it" in capsys.readouterr().err
    plain = tmp_path / ("plain" + path.suffix)
    plain.write_bytes(path.read_bytes())
    assert check_table(plain, "halluc.test.table") is None  # a table from elsewhere is read as it is
