"""Capture the attention each selected head pays to the previous token, and nothing more.

Forward hooks on the selected layers' attention modules reduce each weight tensor the moment it
is made: to its diagonal in a teacher-forced pass (query i on key i), or to the last entry of the
row in a KV-cached decode step (the new query on its own key). No full attention map outlives
its layer. The model runs with eager attention while capturing (the only kind that returns
weights); the previous setting comes back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ucli.errors import BadInput


def attention_modules(model: Any) -> list[Any]:
    """The self-attention module of every decoder layer, in layer order (PEFT wrappers included)."""
    found = {}
    for _, module in model.named_modules():
        idx = getattr(module, "layer_idx", None)
        if idx is not None and type(module).__name__.endswith("Attention") and idx not in found:
            found[idx] = module
    if not found:
        raise BadInput(f"{type(model).__name__}: no attention modules with a layer index found")
    return [found[i] for i in sorted(found)]


@contextmanager
def capture_previous_token_attention(model: Any, layers: list[int], mode: str) -> Iterator[dict[int, list]]:
    """Yield {layer: [tensor per forward call]}: mode 'diagonal' -> [B, H, T]; 'last' -> [B, H]."""
    modules = attention_modules(model)
    bad = [layer for layer in layers if not 0 <= layer < len(modules)]
    if bad:
        raise BadInput(f"layer(s) {bad} outside this model's {len(modules)} layers")
    captured: dict[int, list] = {layer: [] for layer in layers}

    def hook_for(layer: int):
        def hook(_module: Any, _args: Any, output: Any) -> None:
            weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
            if weights is None:
                raise RuntimeError("attention weights were not returned; eager attention is required")
            if mode == "diagonal":
                captured[layer].append(weights.diagonal(dim1=-2, dim2=-1).float().cpu())
            else:
                captured[layer].append(weights[..., -1, -1].float().cpu())

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
