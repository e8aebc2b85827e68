"""Post-hoc RAUQ of greedy answers: the paper's hallucination-detection experiment on any model."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from halluc_rauq.attention import capture_previous_token_attention
from halluc_rauq.scorer import entropy_log_confidence, rauq_scores
from ucli.data import PromptPair
from ucli.generation import generate
from ucli.journal import Journal
from ucli.models import LoadedModel, chat_prompt


def torch_stack(tensors: list) -> Any:
    """Captured per-step [B, H] tensors as one numpy array [steps, B, H]."""
    import torch

    return torch.stack(tensors).double().cpu().numpy()


def score_pairs(
    lm: LoadedModel,
    pairs: list[PromptPair],
    journal: Journal,
    layers: list[int],
    alpha: float,
    heads: dict[int, int] | None,
    judge: Callable[[PromptPair, str], bool] | None,
    max_new_tokens: int = 32,
    batch_size: int = 8,
    advance: Callable[[int], None] = lambda n: None,
) -> None:
    """Greedy-decode every pair not yet in the journal and append its scored record.

    The previous-token attention is captured during the KV-cached decode itself (the last entry of
    each step's row, on the selected layers only), so scoring needs no second pass.
    """
    import numpy as np

    todo = [p for p in pairs if p.id not in journal.done]
    advance(len(pairs) - len(todo))
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        with capture_previous_token_attention(lm.model, layers, "last") as captured:
            gens = generate(lm, [chat_prompt(lm.tokenizer, p.prompt) for p in batch], max_new_tokens)
        # Step k >= 1 fed token y_k and produced y_{k+1}: its last entry is a(k+1). Step 0 is the prefill.
        steps = {layer: torch_stack(captured[layer]) for layer in layers}  # [steps, B, H]
        results: dict[str, Any] = {}  # id -> previous-token attention [layers, H, n]
        for b, (pair, gen) in enumerate(zip(batch, gens, strict=True)):
            n = len(gen["token_ids"])
            if n == 0:
                continue
            attn = np.zeros((len(layers), steps[layers[0]].shape[2], n))
            for j, layer in enumerate(layers):
                attn[j, :, 1:] = steps[layer][1:n, b, :].T
            results[pair.id] = attn
        for pair, gen in zip(batch, gens, strict=True):
            record: dict[str, Any] = {
                "id": pair.id,
                "prompt": pair.prompt,
                "completion": gen["answer"],
                "token_ids": gen["token_ids"],
                "token_probs": [math.exp(lp) for lp in gen["logprobs"]],
                "finish_reason": gen["finish_reason"],
                "alpha": alpha,
            }
            record.update(
                token_logprobs=gen["logprobs"], token_entropy=gen["entropies"], token_margin=gen["margins"]
            )
            if pair.id in results:
                r = rauq_scores(gen["logprobs"], results[pair.id], layers, alpha, heads)
                # the entropy variant: log(log|V| - H_i) in place of log p(y_i), same heads and attention
                confidence = entropy_log_confidence(gen["entropies"], lm.fingerprint.vocab_size).tolist()
                entropy_variant = rauq_scores(confidence, results[pair.id], layers, alpha, heads)
                record.update(
                    rauq_entropy=entropy_variant.sequence,
                    rauq=r.sequence,
                    rauq_layers={str(k): v for k, v in r.layers.items()},
                    token_rauq=r.tokens,
                    heads={str(k): v for k, v in r.heads.items()},
                )
            else:  # an empty answer has no tokens to score
                record.update(rauq=None, rauq_entropy=None, rauq_layers={}, token_rauq=[], heads={})
            if pair.reference is not None and judge is not None:
                record.update(reference=pair.reference, correct=int(judge(pair, gen["answer"])))
            journal.append(record)
        advance(len(batch))
