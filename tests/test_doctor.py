import json
from importlib import metadata

import torch

from ucli.models import packaged_path

SECRET = "sk-test-doctor-0123456789"


def test_doctor_json_reports_environment_and_never_a_key_value(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    out = tmp_path / "env.json"
    res = cli("doctor", "--json", "--output", out)
    assert res.exit_code == 0, res.stderr
    snap = json.loads(res.stdout)
    assert snap["api_keys"]["OPENAI_API_KEY"] is True and snap["api_keys"]["ANTHROPIC_API_KEY"] is False
    assert snap["torch"]["version"] == torch.__version__
    assert snap["torch"]["cuda_available"] == torch.cuda.is_available()
    assert len(snap["torch"]["gpus"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert snap["packages"]["transformers"] == metadata.version("transformers")
    assert snap["default_models"]["smollm2-135m"]["installed"] == (packaged_path("smollm2-135m") is not None)
    assert snap["cpu"]["logical_cores"] >= 1 and snap["memory_gib"]["total"] > 0
    assert SECRET not in res.stdout and SECRET not in out.read_text()
    if snap["bitsandbytes"]["installed"]:  # 0.45+ made `bitsandbytes.backends` a package (it broke doctor)
        assert snap["bitsandbytes"]["import_ok"] and "cpu" in snap["bitsandbytes"]["backends"]
    doc = json.loads(out.read_text())
    assert (
        doc["provenance"]["schema"] == "halluc.doctor" and doc["environment"]["api_keys"] == snap["api_keys"]
    )


def test_doctor_table(cli):
    res = cli("doctor")
    assert res.exit_code == 0
    for word in ("python", "torch", "cache", "key OPENAI_API_KEY"):
        assert word in res.stdout
