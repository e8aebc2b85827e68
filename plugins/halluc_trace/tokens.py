"""tokens.parquet: one row per token (per choice, for encoder runs) with what the model predicted there.

Decoder rows carry next-token diagnostics computed with a float32 softmax over the full vocabulary:
the true next token (null at an example's last position), the argmax, their probabilities, the
entropy in nats and the top-k. Multiple-choice runs add the per-example answer columns (label_idx,
pred_idx, pred_label, is_correct, choice_logits, choice_probs), repeated on each of its rows so a
single filter on the table finds them.
"""

from __future__ import annotations

from typing import Any

from ucli.data import MultipleChoiceItem


def schema(mode: str) -> Any:
    import pyarrow as pa

    head = [("example_id", pa.string()), ("example_index", pa.int32())]
    if mode == "encoder-mcq":
        head.append(("choice_idx", pa.int32()))
    head += [("position", pa.int32()), ("token_id", pa.int64()), ("token", pa.string())]
    nexttok = [
        ("next_pos", pa.int32()), ("next_true_id", pa.int64()), ("next_pred_id", pa.int64()),
        ("next_correct", pa.bool_()), ("next_true_prob", pa.float32()), ("next_pred_prob", pa.float32()),
        ("next_entropy", pa.float32()), ("next_topk_ids", pa.list_(pa.int64())),
        ("next_topk_tokens", pa.list_(pa.string())), ("next_topk_probs", pa.list_(pa.float32())),
    ]  # fmt: skip
    mcq = [
        ("label_idx", pa.int32()), ("pred_idx", pa.int32()), ("pred_label", pa.string()),
        ("is_correct", pa.bool_()), ("choice_logits", pa.list_(pa.float32())),
        ("choice_probs", pa.list_(pa.float32())),
    ]  # fmt: skip
    fields = head + (nexttok if mode != "encoder-mcq" else []) + (mcq if mode != "nexttok" else [])
    return pa.schema(fields)


class TokenText:
    """Each token id's own text (decoded alone, so ' the' keeps its space), cached per id."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.cache: dict[int, str] = {}

    def __call__(self, ids: list[int]) -> list[str]:
        new = [i for i in set(ids) if i not in self.cache]
        for i, text in zip(new, self.tokenizer.batch_decode([[i] for i in new]) if new else [], strict=True):
            self.cache[i] = text
        return [self.cache[i] for i in ids]


def next_token_stats(logits: Any, input_ids: Any, attention_mask: Any, topk: int) -> dict[str, Any]:
    """Per position (tensors [B, T] or [B, T, k] on the CPU; zeros at padding): argmax, its
    probability, entropy, top-k, and the probability of the token that really comes next (position t
    predicts t+1). Only real positions are computed: the vocabulary-wide softmax is the cost."""
    import torch

    valid = attention_mask.bool()
    nxt = torch.zeros_like(input_ids)
    nxt[:, :-1] = input_ids[:, 1:]
    logp = torch.log_softmax(logits[valid].float(), dim=-1)  # [real positions, V], one fused pass
    top_logp, top_ids = logp.topk(topk, dim=-1)
    flat = {
        "entropy": -(logp.exp() * logp).sum(dim=-1),
        "top_ids": top_ids,
        "top_probs": top_logp.exp(),
        "true_prob": logp.gather(-1, nxt[valid].unsqueeze(-1)).squeeze(-1).exp(),
    }
    flat["pred"], flat["pred_prob"] = top_ids[:, 0], flat["top_probs"][:, 0]
    out = {}
    for name, values in flat.items():
        full = torch.zeros((*valid.shape, *values.shape[1:]), dtype=values.dtype, device=values.device)
        full[valid] = values
        out[name] = full.cpu()
    return out


def answer_columns(item: MultipleChoiceItem, choice_logits: list[float]) -> dict[str, Any]:
    """The per-example multiple-choice columns from the logits of its choices."""
    import math

    top = max(choice_logits)
    exps = [math.exp(v - top) for v in choice_logits]
    pred = max(range(len(choice_logits)), key=choice_logits.__getitem__)
    return {
        "label_idx": item.label,
        "pred_idx": pred,
        "pred_label": item.labels[pred],
        "is_correct": None if item.label is None else pred == item.label,
        "choice_logits": [float(v) for v in choice_logits],
        "choice_probs": [e / sum(exps) for e in exps],
    }


def decoder_rows(eid: str, index: int, ids: list[int], stats: dict[str, Any], row: int,
                 text: TokenText, extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Rows for one decoder example (batch row `row` of `stats`)."""
    n = len(ids)
    pieces = text(ids)
    pred = stats["pred"][row, :n].tolist()
    pred_prob = stats["pred_prob"][row, :n].tolist()
    entropy = stats["entropy"][row, :n].tolist()
    true_prob = stats["true_prob"][row, :n].tolist()
    top_ids = stats["top_ids"][row, :n].tolist()
    top_probs = stats["top_probs"][row, :n].tolist()
    rows = []
    for p in range(n):
        last = p == n - 1
        rows.append({
            "example_id": eid, "example_index": index, "position": p, "token_id": ids[p], "token": pieces[p],
            "next_pos": None if last else p + 1,
            "next_true_id": None if last else ids[p + 1],
            "next_pred_id": pred[p],
            "next_correct": None if last else pred[p] == ids[p + 1],
            "next_true_prob": None if last else true_prob[p],
            "next_pred_prob": pred_prob[p],
            "next_entropy": entropy[p],
            "next_topk_ids": top_ids[p],
            "next_topk_tokens": text(top_ids[p]),
            "next_topk_probs": top_probs[p],
            **(extra or {}),
        })  # fmt: skip
    return rows


def encoder_rows(eid: str, index: int, choice_ids: list[list[int]], text: TokenText,
                 answer: dict[str, Any]) -> list[dict[str, Any]]:  # fmt: skip
    rows = []
    for c, ids in enumerate(choice_ids):
        for p, (tid, piece) in enumerate(zip(ids, text(ids), strict=True)):
            rows.append({"example_id": eid, "example_index": index, "choice_idx": c, "position": p,
                         "token_id": tid, "token": piece, **answer})  # fmt: skip
    return rows
