"""Score a given completion with one teacher-forced pass over prompt + completion."""

from __future__ import annotations

from typing import Any

import numpy as np

from halluc_rauq.attention import capture_previous_token_attention
from halluc_rauq.scorer import RAUQResult, check_alpha, default_layers, rauq_scores


def score_completion(
    lm: Any,
    prompt_ids: list[int],
    completion_ids: list[int],
    layers: list[int] | None = None,
    alpha: float = 0.5,
    heads: dict[int, int] | None = None,
) -> RAUQResult:
    """RAUQ of `completion_ids` after `prompt_ids`: token probabilities and previous-token attention
    of the completion only (the prompt is never used), from one forward pass."""
    import torch

    check_alpha(alpha)
    num_layers = lm.fingerprint.num_layers
    layers = layers if layers is not None else default_layers(num_layers)
    s, n = len(prompt_ids), len(completion_ids)
    ids = torch.tensor([prompt_ids + completion_ids], device=lm.device)
    with capture_previous_token_attention(lm.model, layers, "diagonal") as captured, torch.no_grad():
        logits = lm.model(ids).logits[0].float()
    log_probs = torch.log_softmax(logits[s - 1 : s + n - 1], dim=-1)
    token_logprobs = log_probs.gather(-1, torch.tensor(completion_ids, device=logits.device)[:, None])[:, 0]
    # Token i (0-based) is y_{i+1}; a(i+1) is the diagonal at y_i's position s + i - 1.
    attn = np.zeros((len(layers), captured[layers[0]][0].shape[1], n))
    for j, layer in enumerate(layers):
        diag = captured[layer][0][0].numpy()  # [H, T]
        attn[j, :, 1:] = diag[:, s : s + n - 1]
    return rauq_scores(token_logprobs.cpu().numpy(), attn, layers, alpha, heads)
