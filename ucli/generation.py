"""Batched generation with the log-probability of every chosen token (torch inside functions)."""

from __future__ import annotations

from typing import Any

from ucli.models import LoadedModel


def step_statistics(log_probs: Any) -> tuple[Any, Any, Any]:
    """Each step's entropy (nats), top-1 minus top-2 probability and top-1 token id, from its
    log-probabilities [..., V]: the one place a decode, a teacher-forced pass and the controller
    compute the per-token statistics the estimators read."""
    top2 = log_probs.topk(min(2, log_probs.shape[-1]), dim=-1)
    probs = top2.values.exp()
    return -(log_probs.exp() * log_probs).sum(-1), probs[..., 0] - probs[..., -1], top2.indices[..., 0]


def token_statistics(logits: Any, token_ids: Any) -> tuple[Any, Any, Any, Any, Any]:
    """From raw logits [..., V] and the chosen token ids [...]: the log-probabilities [..., V], each
    chosen token's log p, and `step_statistics`: the one factory of what a decode, a teacher-forced
    pass and the controller record per token (`halluc_signals.TokenStep` holds it per step)."""
    import torch

    log_probs = torch.log_softmax(logits.float(), dim=-1)
    chosen = log_probs.gather(-1, token_ids.unsqueeze(-1)).squeeze(-1)
    return (log_probs, chosen, *step_statistics(log_probs))


def eos_ids(lm: LoadedModel) -> set[int]:
    """Token ids that end an answer: the tokenizer's eos and the generation config's."""
    ids = {lm.tokenizer.eos_token_id}
    gen_eos = getattr(lm.model.generation_config, "eos_token_id", None)
    ids.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
    return {i for i in ids if i is not None}


def generate(
    lm: LoadedModel,
    prompts: list[str],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_logprobs: int = 0,
) -> list[dict[str, Any]]:
    """Answers for one left-padded batch: greedy at temperature 0, else sampled (seed torch first).

    Per answer: text, token ids and strings (up to eos), the log-probability of each chosen token,
    each step's entropy (nats) and top-1 minus top-2 probability (what single-pass uncertainty
    estimators read) and, with `top_logprobs` k, the k most probable tokens of each step, all from
    the raw logits (before temperature or top-p); prompt and answer token counts; why it stopped.
    """
    import torch

    enc = lm.encode(prompts)
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_p": top_p}
        if temperature > 0
        else {"do_sample": False}
    )
    with torch.no_grad():
        out = lm.model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            output_logits=True,
            return_dict_in_generate=True,
            pad_token_id=lm.tokenizer.pad_token_id,
            **sampling,
        )
    new = out.sequences[:, enc["input_ids"].shape[1] :]
    logprobs, chosen, entropies, margins, _ = token_statistics(torch.stack(out.logits, dim=1), new)
    top = logprobs.topk(top_logprobs, dim=-1) if top_logprobs else None
    eos, prompt_tokens = eos_ids(lm), enc["attention_mask"].sum(1).tolist()
    columns = zip(
        new.tolist(), chosen.tolist(), entropies.tolist(), margins.tolist(), prompt_tokens, strict=True
    )
    return [_answer_row(lm.tokenizer.decode, eos, *column, None if top is None else (top.indices[b], top.values[b]))
            for b, column in enumerate(columns)]  # fmt: skip


def _answer_row(decode: Any, eos: set[int], ids: list[int], lps: list[float], ents: list[float],
                gaps: list[float], prompt_tokens: int, top: tuple[Any, Any] | None) -> dict[str, Any]:  # fmt: skip
    """One answer of `generate`: cut at its first eos, with each kept token's statistics."""
    stop = next((i for i, t in enumerate(ids) if t in eos), None)
    keep = ids if stop is None else ids[:stop]
    row = {
        "answer": decode(keep, skip_special_tokens=True).strip(),
        "token_ids": keep,
        "tokens": [decode([t]) for t in keep],
        "logprobs": lps[: len(keep)],
        "entropies": ents[: len(keep)],
        "margins": gaps[: len(keep)],
        "finish_reason": "length" if stop is None else "eos",
        "prompt_tokens": int(prompt_tokens),
        "generated_tokens": len(keep) + (stop is not None),
    }
    if top is not None:
        indices, values = top[0][: len(keep)].tolist(), top[1][: len(keep)].tolist()
        row["top_logprobs"] = [[(decode([t]), lp) for t, lp in zip(ti, tv, strict=True)]
                               for ti, tv in zip(indices, values, strict=True)]  # fmt: skip
    return row
