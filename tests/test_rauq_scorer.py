"""RAUQ scorer: attention semantics pinned against full forward passes, scores against an independent implementation."""

import math

import numpy as np
import pytest
import torch

from halluc_signals import (
    capture_previous_token_attention,
    default_alpha,
    default_layers,
    rauq_scores,
    score_completion,
)
from ucli.errors import BadInput
from ucli.models import load_model


def reference_rauq(p, a_prev, alpha):
    """The formulas, literally: probability space, one layer (short sequences only)."""
    c = [p[0]]
    for i in range(1, len(p)):
        c.append(alpha * p[i] + (1 - alpha) * a_prev[i] * c[-1])
    return -sum(math.log(x) for x in c) / len(c), [-math.log(x) for x in c]


def independent_rauq(lm, prompt, answer, layers, alpha):
    """Per-layer u_l, per-sequence heads and token probabilities from one full eager forward pass."""
    s, n = len(prompt), len(answer)
    lm.model.set_attn_implementation("eager")
    with torch.no_grad():
        full = lm.model(torch.tensor([prompt + answer]), output_attentions=True)
    lm.model.set_attn_implementation("sdpa")
    logp = torch.log_softmax(full.logits[0].double(), -1)
    p = [math.exp(logp[s - 1 + i, t].item()) for i, t in enumerate(answer)]
    per_layer, heads = {}, {}
    for layer in layers:
        att = full.attentions[layer][0].double()  # [H, T, T]; a(i) is the diagonal at y_{i-1}
        a = [
            [0.0] + [att[h, s + i - 2, s + i - 2].item() for i in range(2, n + 1)]
            for h in range(att.shape[0])
        ]
        heads[layer] = int(np.argmax([np.mean(row[1:]) for row in a]))
        per_layer[layer] = reference_rauq(p, a[heads[layer]], alpha)[0]
    return per_layer, heads, p


@pytest.mark.parametrize(
    ("num_layers", "expected"),
    [(30, list(range(10, 21))), (3, [1, 2]), (4, [1, 2, 3]), (12, list(range(4, 9))), (1, [0])],
)
def test_default_layers_are_the_middle_third(num_layers, expected):
    assert default_layers(num_layers) == expected
    assert (default_alpha(True), default_alpha(False)) == (0.5, 0.2)


def test_scores_match_the_formulas_on_random_inputs():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, n_layers, n_heads = int(rng.integers(1, 12)), 3, 4
        p = rng.uniform(0.01, 1.0, n)
        attn = rng.uniform(0.0, 1.0, (n_layers, n_heads, n))
        alpha = float(rng.choice([0.0, 0.2, 0.5, 0.9, 1.0]))
        result = rauq_scores(np.log(p), attn, [3, 4, 5], alpha)
        expected_heads = {
            layer: int(np.argmax(attn[j, :, 1:].mean(axis=1))) if n > 1 else 0
            for j, layer in enumerate([3, 4, 5])
        }
        assert result.heads == expected_heads
        per_layer = {}
        token_layers = []
        for j, layer in enumerate([3, 4, 5]):
            u, toks = reference_rauq(p, attn[j, expected_heads[layer]], alpha)
            per_layer[layer] = u
            token_layers.append(toks)
        assert result.layers == pytest.approx(per_layer, rel=1e-9)
        assert result.sequence == pytest.approx(max(per_layer.values()), rel=1e-9)
        assert result.tokens == pytest.approx(np.max(token_layers, axis=0).tolist(), rel=1e-9)


def test_fixed_heads_are_used_as_given():
    attn = np.zeros((1, 2, 3))
    attn[0, 0] = [0, 0.9, 0.9]
    attn[0, 1] = [0, 0.1, 0.1]
    p = np.log([0.5, 0.5, 0.5])
    assert rauq_scores(p, attn, [7], 0.5).heads == {7: 0}
    assert rauq_scores(p, attn, [7], 0.5, heads={7: 1}).heads == {7: 1}
    with pytest.raises(BadInput, match=r"no head given for layer\(s\) \[7\]"):
        rauq_scores(p, attn, [7], 0.5, heads={8: 0})


def test_alpha_one_is_mean_negative_log_likelihood_and_alpha_zero_cannot_underflow():
    rng = np.random.default_rng(1)
    log_p = np.log(rng.uniform(0.05, 1, 50))
    attn = rng.uniform(0, 1, (2, 3, 50))
    assert rauq_scores(log_p, attn, [0, 1], 1.0).sequence == pytest.approx(-log_p.mean())
    n = 3000
    long = rauq_scores(np.full(n, math.log(0.9)), np.full((1, 1, n), 0.1), [0], 0.0)
    # c_i = 0.9 * 0.1^(i-1): probability space underflows to 0 long before i = 3000; log space does not.
    assert math.isfinite(long.sequence)
    assert long.sequence == pytest.approx(-(math.log(0.9) + (n - 1) / 2 * math.log(0.1)), rel=1e-9)


def test_bad_alpha_and_layers_are_bad_input(tiny_llama):
    with pytest.raises(BadInput, match=r"alpha must be in \[0, 1\], got 1.5"):
        rauq_scores([0.0], np.zeros((1, 1, 1)), [0], 1.5)
    lm = load_model(str(tiny_llama), device="cpu")
    with pytest.raises(BadInput, match=r"--layers: \[7\] outside this model's layers 0..2"):
        score_completion(lm, [5, 6], [7, 8], layers=[7])


def greedy_with_step_attention(lm, prompt_ids, n):
    """HF's own generate with output_attentions: per step, per layer [1, H, q, k]."""
    model = lm.model
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            out = model.generate(
                torch.tensor([prompt_ids]), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                output_attentions=True, output_logits=True, return_dict_in_generate=True,
                pad_token_id=lm.tokenizer.pad_token_id,
            )  # fmt: skip
    finally:
        model.set_attn_implementation(previous)
    return out


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_qwen2"])
def test_previous_token_attention_is_the_diagonal_not_the_sub_diagonal(request, fixture):
    lm = load_model(str(request.getfixturevalue(fixture)), device="cpu")
    prompt = lm.tokenizer("The capital of France is", add_special_tokens=False)["input_ids"]
    s, n = len(prompt), 6
    out = greedy_with_step_attention(lm, prompt, n)
    gen = out.sequences[0, s:].tolist()
    layers = default_layers(lm.fingerprint.num_layers)
    # Independent reference: one full eager forward pass over prompt + answer.
    lm.model.set_attn_implementation("eager")
    with torch.no_grad():
        full = lm.model(torch.tensor([prompt + gen]), output_attentions=True)
    lm.model.set_attn_implementation("sdpa")
    for layer in layers:
        heads = full.attentions[layer].shape[1]
        assert heads == lm.fingerprint.num_heads  # query heads, also under GQA
        for i in range(2, n + 1):  # a(i): step producing y_i; its query is y_{i-1} at position s + i - 2
            q = s + i - 2
            decode_last = out.attentions[i - 1][layer][0, :, -1, -1]
            diagonal = full.attentions[layer][0, :, q, q]
            sub_diagonal = full.attentions[layer][0, :, q, q - 1]
            assert torch.allclose(decode_last, diagonal, atol=1e-5)
            assert not torch.allclose(diagonal, sub_diagonal, atol=1e-3)
    # halluc's capture during a KV-cached decode records the same numbers.
    with capture_previous_token_attention(lm.model, layers, "last") as captured, torch.no_grad():
        lm.model.generate(
            torch.tensor([prompt]),
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            pad_token_id=lm.tokenizer.pad_token_id,
        )
    for layer in layers:
        steps = captured[layer]
        assert len(steps) == n
        for i in range(2, n + 1):
            assert torch.allclose(
                steps[i - 1][0], out.attentions[i - 1][layer][0, :, -1, -1].float(), atol=1e-5
            )
    assert lm.model.config._attn_implementation == "sdpa"  # restored


@pytest.mark.parametrize("fixture", ["tiny_llama", "tiny_qwen2"])
@pytest.mark.parametrize("alpha", [0.0, 0.2, 0.5, 1.0])
def test_score_completion_matches_an_independent_computation(request, fixture, alpha):
    lm = load_model(str(request.getfixturevalue(fixture)), device="cpu")
    prompt = lm.tokenizer("Gold has the chemical symbol", add_special_tokens=False)["input_ids"]
    answer = lm.tokenizer(" Au. Water is H2O.", add_special_tokens=False)["input_ids"]
    layers = default_layers(lm.fingerprint.num_layers)
    expected_layers, expected_heads, p = independent_rauq(lm, prompt, answer, layers, alpha)
    result = score_completion(lm, prompt, answer, layers=layers, alpha=alpha)
    assert result.heads == expected_heads
    assert result.layers == pytest.approx(expected_layers, abs=1e-5)
    assert result.sequence == pytest.approx(max(expected_layers.values()), abs=1e-5)
    if alpha == 1.0:
        assert result.sequence == pytest.approx(-np.mean(np.log(p)), abs=1e-5)


@pytest.mark.slow
def test_on_the_real_model_decode_capture_and_teacher_forcing_agree(smollm2):
    lm = smollm2
    prompt = lm.tokenizer(lm.chat_prompt("What is the capital of France?"), add_special_tokens=False)[
        "input_ids"
    ]
    out = greedy_with_step_attention(lm, prompt, 8)
    gen = out.sequences[0, len(prompt) :].tolist()
    layers = default_layers(lm.fingerprint.num_layers)
    assert layers == list(range(10, 21))
    result = score_completion(lm, prompt, gen, layers=layers, alpha=0.5)
    logp = torch.log_softmax(torch.stack(out.logits, 1)[0].double(), -1)
    token_logprobs = [logp[i, t].item() for i, t in enumerate(gen)]
    attn = np.zeros((len(layers), lm.fingerprint.num_heads, len(gen)))
    for j, layer in enumerate(layers):
        for i in range(2, len(gen) + 1):
            attn[j, :, i - 1] = out.attentions[i - 1][layer][0, :, -1, -1].double().numpy()
    from_decode = rauq_scores(token_logprobs, attn, layers, 0.5)
    assert from_decode.heads == result.heads
    assert from_decode.sequence == pytest.approx(result.sequence, abs=1e-4)


def test_entropy_variant_confidence():
    from halluc_signals import entropy_confidence

    rng = np.random.default_rng(5)
    logits = rng.normal(size=(7, 50)) * 3
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = np.log(math.log(50) - (-(p * np.log(p)).sum(1)))
    np.testing.assert_allclose(entropy_confidence(logits), expected, atol=1e-10)
    assert np.all(entropy_confidence(logits) <= math.log(math.log(50)))  # a confident token scores highest


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.2, 0.5])
def test_score_completion_matches_the_formulas_on_the_real_model(smollm2, alpha):
    lm = smollm2
    prompt = lm.tokenizer(lm.chat_prompt("Who wrote 1984?"), add_special_tokens=False)["input_ids"]
    answer = lm.tokenizer("George Orwell wrote the novel 1984.", add_special_tokens=False)["input_ids"]
    expected, _, _ = independent_rauq(lm, prompt, answer, default_layers(lm.fingerprint.num_layers), alpha)
    result = score_completion(lm, prompt, answer, alpha=alpha)
    assert result.layers == pytest.approx(expected, abs=1e-5)
