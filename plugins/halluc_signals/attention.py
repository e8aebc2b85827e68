"""Capture the attention each selected head pays to the previous token, and nothing more.

Teacher-forced passes (mode 'diagonal': query i on key i) run eager attention with forward hooks
that reduce each weight tensor to its diagonal the moment it is made. KV-cached decoding (mode
'last': the new query on its own key) keeps the model's own kernel (sdpa, flash) and wraps it, so
that only the watched heads compute one extra row of scores. No full attention map outlives its
layer, and the previous attention setting comes back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ucli.attention import attention_modules, check_layers, wrapped_kernel


@contextmanager
def capture_previous_token_attention(model: Any, layers: list[int], mode: str) -> Iterator[dict[int, list]]:
    """Yield {layer: [tensor per forward call]}: mode 'diagonal' -> [B, H, T]; 'last' -> [B, H]."""
    if mode == "last":
        with watch_own_key_attention(model, dict.fromkeys(layers)) as captured:
            yield captured
        return
    modules = attention_modules(model)
    check_layers(layers, len(modules))
    captured = {layer: [] for layer in layers}

    def hook_for(layer: int):
        def hook(_module: Any, _args: Any, output: Any) -> None:
            weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
            if weights is None:
                raise RuntimeError("attention weights were not returned; eager attention is required")
            captured[layer].append(weights.diagonal(dim1=-2, dim2=-1).float().cpu())

        return hook

    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    handles = [modules[layer].register_forward_hook(hook_for(layer)) for layer in layers]
    try:
        yield captured
    finally:
        for h in handles:
            h.remove()
        model.set_attn_implementation(previous)


WATCHED = "_halluc_previous_token_heads"  # attribute on a watched attention module: heads or None (all)


def _own_key_weights(
    module: Any, query: Any, key: Any, attention_mask: Any, scaling: Any, softcap: Any
) -> Any:
    """Softmax weight of the last query on the last key (its own), for the watched heads: [B, H_sel]."""
    import torch

    heads = getattr(module, WATCHED)
    (b, n_heads, _, d), kv_heads = query.shape, key.shape[1]
    groups = n_heads // kv_heads
    scale = scaling or d**-0.5
    if heads is None:  # every head: each KV head's queries at once, the keys never copied
        q = query[:, :, -1, :].reshape(b, kv_heads, groups, d).float()
        scores = torch.matmul(q, key.float().transpose(-1, -2)).reshape(b, n_heads, -1) * scale
    else:  # [B, H_sel, T]; one head (the controller's case) is a view
        if len(heads) == 1:
            h = heads[0]
            q, k = query[:, h : h + 1, -1, :], key[:, h // groups : h // groups + 1]
        else:
            chosen = torch.tensor(heads, device=query.device)
            q, k = query[:, chosen, -1, :], key[:, chosen // groups]
        scores = torch.matmul(k.float(), q.float().unsqueeze(-1)).squeeze(-1) * scale
    if softcap:
        scores = torch.tanh(scores / softcap) * softcap
    if attention_mask is not None:  # [B, 1 or H, Q, T]: bool (True = visible) or additive floats
        row = attention_mask[:, :1, -1, : key.shape[2]]
        scores = scores.masked_fill(~row, float("-inf")) if row.dtype == torch.bool else scores + row.float()
    return torch.softmax(scores, dim=-1)[..., -1]


def _watching(base: Any) -> Any:
    """An attention function that runs `base` unchanged and, on watched modules, records own-key weights."""

    def attention(module, query, key, value, attention_mask, **kwargs):
        out = base(module, query, key, value, attention_mask, **kwargs)
        if getattr(module, WATCHED, False) is not False:
            weights = _own_key_weights(
                module, query, key, attention_mask, kwargs.get("scaling"), kwargs.get("softcap")
            )
            module._halluc_sink.append(weights)
        return out

    return attention


@contextmanager
def watch_own_key_attention(model: Any, heads: dict[int, list[int] | None]) -> Iterator[dict[int, list]]:
    """Yield {layer: [tensor [B, H_sel] per forward call]}: the weight each watched head's last query
    puts on its own key (a(i) in a KV-cached decode), with the model's own attention kernel.

    The kernel is wrapped, not replaced: sdpa or flash attention keep running every layer, and the
    watched heads alone get one extra dot product of their last query with their keys. `heads` maps a
    layer to the heads to watch (None: every head).
    """
    check_layers(heads, len(attention_modules(model)))
    captured: dict[int, list] = {layer: [] for layer in heads}
    with wrapped_kernel(model, "watch", _watching) as modules:
        for layer, chosen in heads.items():
            setattr(modules[layer], WATCHED, chosen)
            modules[layer]._halluc_sink = captured[layer]
        try:
            yield captured
        finally:
            for layer in heads:
                delattr(modules[layer], WATCHED)
                del modules[layer]._halluc_sink
