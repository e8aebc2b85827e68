"""Teacher-forced passes over prompt + completion: every per-token view RAUQ and its rivals need."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from halluc_signals.attention import capture_previous_token_attention
from halluc_signals.rauq import RAUQResult, check_alpha, default_layers, rauq_scores


@dataclass
class ForcedTokens:
    """One completion under teacher forcing (n tokens)."""

    token_logprobs: np.ndarray  # [n] log p of each completion token
    attn: np.ndarray  # [layers, H, n] previous-token attention; column 0 (no a(1)) is 0
    top1: np.ndarray  # [n] the model's own top-1 token at each step
    entropy: np.ndarray  # [n] entropy of the predictive distribution (nats)
    margin: np.ndarray  # [n] top-1 minus top-2 probability


def teacher_force(
    lm: Any,
    sequences: list[tuple[list[int], list[int]]],
    layers: list[int],
    batch_size: int = 8,
    advance: Callable[[int], None] = lambda n: None,
) -> list[ForcedTokens]:
    """Right-padded batches (exact for causal attention: pads follow every position read)."""
    import torch

    from ucli.generation import token_statistics
    from ucli.models import right_padded

    out: list[ForcedTokens] = []
    pad = lm.tokenizer.pad_token_id
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start : start + batch_size]
        ids, mask = right_padded([p + c for p, c in batch], pad)
        with capture_previous_token_attention(lm.model, layers, "diagonal") as captured, torch.no_grad():
            logits = lm.model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device)).logits.float()
        for b, (p, c) in enumerate(batch):
            s, n = len(p), len(c)
            target = torch.tensor(c, device=logits.device)  # logits[s - 1 + i] predicts y_(i+1)
            _, chosen, entropy, margin, top1 = token_statistics(logits[b, s - 1 : s + n - 1], target)
            attn = np.zeros((len(layers), captured[layers[0]][0].shape[1], n))
            for j, layer in enumerate(layers):  # a(i+1) for token i sits on the diagonal at s + i - 1
                attn[j, :, 1:] = captured[layer][0][b, :, s : s + n - 1].double().numpy()
            out.append(
                ForcedTokens(
                    token_logprobs=chosen.double().cpu().numpy(),
                    attn=attn,
                    top1=top1.cpu().numpy(),
                    entropy=entropy.double().cpu().numpy(),
                    margin=margin.double().cpu().numpy(),
                )
            )
        advance(len(batch))
    return out


def score_completion(
    lm: Any,
    prompt_ids: list[int],
    completion_ids: list[int],
    layers: list[int] | None = None,
    alpha: float = 0.5,
    heads: dict[int, int] | None = None,
) -> RAUQResult:
    """RAUQ of `completion_ids` after `prompt_ids` from one teacher-forced pass (the prompt is never
    used beyond conditioning)."""
    check_alpha(alpha)
    layers = layers if layers is not None else default_layers(lm.fingerprint.num_layers)
    forced = teacher_force(lm, [(prompt_ids, completion_ids)], layers)[0]
    return rauq_scores(forced.token_logprobs, forced.attn, layers, alpha, heads)
