import pytest
import torch

from ucli.errors import BadInput
from ucli.models import chat_prompt, load_model, resolve


def test_tiny_models_load_with_full_fingerprints(tiny_llama, tiny_qwen2):
    llama = load_model(str(tiny_llama), device="cpu")
    fp = llama.fingerprint
    assert (fp.architecture, fp.num_layers, fp.num_heads, fp.num_kv_heads, fp.hidden_size) == (
        "LlamaForCausalLM",
        3,
        4,
        4,
        64,
    )
    assert fp.source == "local" and len(fp.file_sha256) == 64
    qwen = load_model(str(tiny_qwen2), device="cpu")
    assert (qwen.fingerprint.model_type, qwen.fingerprint.num_heads, qwen.fingerprint.num_kv_heads) == (
        "qwen2",
        6,
        2,
    )
    assert llama.tokenizer.padding_side == "left" and not llama.model.training
    # Same weights -> same fingerprint; another model -> a mismatch that names the fields.
    assert load_model(str(tiny_llama), device="cpu").fingerprint.file_sha256 == fp.file_sha256
    assert "num_layers: 4 vs 3" in "; ".join(fp.mismatches(qwen.fingerprint))


def test_chat_prompt_uses_the_template_and_leaves_base_models_plain(tiny_llama):
    lm = load_model(str(tiny_llama), device="cpu")
    assert lm.chat_prompt("Hi?", system="Be brief.") == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n"
    )
    lm.tokenizer.chat_template = None
    assert chat_prompt(lm.tokenizer, "Hi?") == "Hi?"


def test_bf16_dtype_option(tiny_llama):
    assert load_model(str(tiny_llama), device="cpu", dtype="bfloat16").model.dtype == torch.bfloat16


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: str(d / "missing"), "no such model file or folder"),
        (lambda d: str(d / "nope.gguf"), "no such model file or folder"),
        (
            lambda d: (d / "fake.gguf").write_bytes(b"PK\x03\x04 not gguf") and str(d / "fake.gguf"),
            "not a GGUF file",
        ),
        (lambda d: (d / "empty").mkdir() or str(d / "empty"), "not a model folder (no config.json)"),
        (lambda d: "no such alias!", "not a known alias"),
    ],
)
def test_unloadable_specs_are_bad_input(tmp_path, make, message):
    with pytest.raises(BadInput) as info:
        resolve(make(tmp_path))
    assert message in str(info.value)


def test_a_wrong_model_name_fails_at_once_with_the_closest_alias(monkeypatch):
    """Offline, no hub retries at all; online, one short look-up (issue 17, item 10)."""
    import time

    start = time.monotonic()
    with pytest.raises(BadInput) as offline:
        resolve("SmolLM2-135M")
    assert time.monotonic() - start < 5
    assert str(offline.value) == (
        "model 'SmolLM2-135M': not a local path and not in the hub cache, and the hub is off (HF_HUB_OFFLINE); "
        "did you mean smollm2-135m? (aliases: smollm2-135m)"
    )
    import huggingface_hub

    calls = []

    def unreachable(name, **kwargs):
        calls.append((name, kwargs))
        raise ConnectionError("Name or service not known")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub, "model_info", unreachable)
    with pytest.raises(BadInput, match=r"the hub cannot be reached \(Name or service not known\)"):
        resolve("someone/some-model@main")
    assert calls == [("someone/some-model", {"revision": "main", "timeout": 10})]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device": "tpu"}, "unknown device 'tpu'"),
        ({"dtype": "float8"}, "unknown dtype 'float8'"),
        ({"device": "cuda"}, "CUDA is not available"),
    ],
)
def test_bad_options_are_bad_input(tiny_llama, kwargs, message):
    if kwargs.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(BadInput, match=message):
        load_model(str(tiny_llama), **kwargs)


def test_unreachable_hub_id_is_bad_input():
    with pytest.raises(BadInput, match="not in the hub cache, and the hub is off"):
        load_model("halluc-test/definitely-not-cached", device="cpu")


@pytest.fixture(scope="module")
def llama_adapter(tiny_llama, tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("adapter")
    get_peft_model(base, cfg).save_pretrained(folder)
    return folder


def test_adapter_changes_outputs_and_is_fingerprinted(tiny_llama, llama_adapter):
    base = load_model(str(tiny_llama), device="cpu")
    tuned = load_model(str(tiny_llama), device="cpu", adapter=str(llama_adapter))
    ids = base.tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        diff = (base.model(**ids).logits - tuned.model(**ids).logits).abs().max().item()
    assert diff > 1e-4
    assert tuned.fingerprint.adapter_sha256 and tuned.fingerprint.mismatches(base.fingerprint)


def test_adapter_for_another_base_via_the_cli_exits_2_without_output(
    cli, tiny_qwen2, llama_adapter, tmp_path
):
    res = cli("demo", "-m", tiny_qwen2, "--adapter", llama_adapter, "-o", tmp_path / "r")
    assert res.exit_code == 2 and "adapter does not fit model" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_demo_with_a_fitting_adapter_records_it(cli, tiny_llama, llama_adapter, tmp_path):
    import json

    from ucli.generation import generate

    # theta is fitted on the adapted model's own answers: two references are its answers, one is not
    lm = load_model(str(tiny_llama), device="cpu", adapter=str(llama_adapter))
    own = ["What is the capital of France?", "Who wrote 1984?"]
    answers = [g["answer"] for g in generate(lm, [lm.chat_prompt(q) for q in own], 2)]
    cal = tmp_path / "cal.jsonl"
    rows = [*zip(own, answers, strict=True), ("What is water?", "H2O")]
    cal.write_text("".join(json.dumps({"prompt": q, "reference": a}) + "\n" for q, a in rows))
    res = cli("demo", "-m", tiny_llama, "--adapter", llama_adapter, "--calibration", cal, "--limit", 1,
              "--max-new-tokens", 2, "-o", tmp_path / "r")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    prov = json.loads((tmp_path / "r" / "run.json").read_text())["provenance"]
    assert prov["model"]["adapter"] == str(llama_adapter.resolve()) and prov["model"]["adapter_sha256"]


def test_adapter_for_another_base_and_adapter_as_model_are_bad_input(tiny_qwen2, llama_adapter, tmp_path):
    with pytest.raises(BadInput, match="adapter does not fit model"):
        load_model(str(tiny_qwen2), device="cpu", adapter=str(llama_adapter))
    with pytest.raises(BadInput, match="is a PEFT adapter, not a model"):
        resolve(str(llama_adapter))
    with pytest.raises(BadInput, match="not a PEFT adapter folder"):
        load_model(str(tiny_qwen2), device="cpu", adapter=str(tmp_path))


def test_quantization_options_are_checked_before_loading(tiny_llama):
    import importlib.util

    from ucli.errors import HallucError

    with pytest.raises(BadInput, match="not both"):
        load_model(str(tiny_llama), device="cpu", load_in_4bit=True, load_in_8bit=True)
    if importlib.util.find_spec("bitsandbytes") is None:
        with pytest.raises(HallucError, match=r"pip install 'halluc\[quant\]'"):
            load_model(str(tiny_llama), device="cpu", load_in_4bit=True)
