"""Batched greedy generation with the log-probability of every chosen token (torch inside functions)."""

from __future__ import annotations

from typing import Any

from ucli.models import LoadedModel


def eos_ids(lm: LoadedModel) -> set[int]:
    """Token ids that end an answer: the tokenizer's eos and the generation config's."""
    ids = {lm.tokenizer.eos_token_id}
    gen_eos = getattr(lm.model.generation_config, "eos_token_id", None)
    ids.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
    return {i for i in ids if i is not None}


def generate_greedy(lm: LoadedModel, prompts: list[str], max_new_tokens: int) -> list[dict[str, Any]]:
    """Greedy answers for one left-padded batch: text, token ids and strings (up to eos), per-token
    log-probabilities from the raw logits, and why each answer stopped."""
    import torch

    enc = lm.encode(prompts)
    with torch.no_grad():
        out = lm.model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            output_logits=True,
            return_dict_in_generate=True,
            pad_token_id=lm.tokenizer.pad_token_id,
        )
    new = out.sequences[:, enc["input_ids"].shape[1] :]
    logprobs = torch.log_softmax(torch.stack(out.logits, dim=1).float(), dim=-1)
    chosen = logprobs.gather(-1, new.unsqueeze(-1)).squeeze(-1)
    eos = eos_ids(lm)
    rows = []
    for ids, lps in zip(new.tolist(), chosen.tolist(), strict=True):
        stop = next((i for i, t in enumerate(ids) if t in eos), None)
        keep = ids if stop is None else ids[:stop]
        rows.append(
            {
                "answer": lm.tokenizer.decode(keep, skip_special_tokens=True).strip(),
                "token_ids": keep,
                "tokens": [lm.tokenizer.decode([t]) for t in keep],
                "logprobs": lps[: len(keep)],
                "finish_reason": "length" if stop is None else "eos",
            }
        )
    return rows
