"""The one way to look inside a model's attention: find its attention modules, and wrap its attention
kernel (transformers' AttentionInterface) so a plugin sees the query, key and value each layer really
uses (after rotary embedding, before any KV-head repetition) without replacing the kernel.

A wrapper is registered once per (tag, base kernel) under the name `halluc_<tag>+<base>`; it is
stateless and consults attributes the caller sets on the modules it watches, so two models (or two
runs) never share state through the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ucli.errors import BadInput

# make_wrapper(base_kernel) -> kernel with the signature (module, query, key, value, attention_mask, **kwargs)
KernelWrapper = Callable[[Callable[..., Any]], Callable[..., Any]]


def attention_modules(model: Any) -> list[Any]:
    """The self-attention module of every layer, in layer order (PEFT wrappers included)."""
    found = {}
    for _, module in model.named_modules():
        idx = getattr(module, "layer_idx", None)
        if idx is not None and type(module).__name__.endswith("Attention") and idx not in found:
            found[idx] = module
    if not found:
        raise BadInput(f"{type(model).__name__}: no attention modules with a layer index found")
    return [found[i] for i in sorted(found)]


def layer_list(spec: str, option: str = "--layers") -> list[int]:
    """'10,12,14', '10-20' (inclusive) or a mix -> sorted distinct layer numbers."""
    layers: list[int] = []
    for part in spec.replace(" ", ",").split(","):
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                layers.extend(range(lo, hi + 1))
            else:
                layers.append(int(part))
        except ValueError:
            raise BadInput(f"{option}: '{part}' is not a layer number or a range like 10-20") from None
    if not layers:
        raise BadInput(f"{option}: no layers in '{spec}'")
    return sorted(set(layers))


def check_layers(layers: Any, n_layers: int) -> None:
    bad = sorted(layer for layer in layers if not 0 <= layer < n_layers)
    if bad:
        raise BadInput(f"--layers: {bad} outside this model's layers 0..{n_layers - 1}")


def _registered(model: Any, module: Any, tag: str, make_wrapper: KernelWrapper) -> str:
    """Register (once) `make_wrapper` around the model's current kernel; return the new kernel's name."""
    import sys

    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    current = model.config._attn_implementation
    prefix = f"halluc_{tag}+"
    if current.startswith(prefix):
        return current
    family = type(module).__module__
    name = prefix + current
    if current not in ALL_ATTENTION_FUNCTIONS:  # eager is each model family's own function
        name += "-" + family.rsplit(".", 1)[-1]
    if name not in ALL_ATTENTION_FUNCTIONS:
        eager = getattr(sys.modules[family], "eager_attention_forward", None)
        base = ALL_ATTENTION_FUNCTIONS.get(current, eager)
        if base is None:
            raise BadInput(f"cannot watch the attention of {type(model).__name__} ('{current}' kernel)")
        AttentionInterface.register(name, make_wrapper(base))
        if current in ALL_MASK_ATTENTION_FUNCTIONS:
            AttentionMaskInterface.register(name, ALL_MASK_ATTENTION_FUNCTIONS[current])
    return name


@contextmanager
def wrapped_kernel(
    model: Any, tag: str, make_wrapper: KernelWrapper, base: str | None = None
) -> Iterator[list[Any]]:
    """Run `model` with its attention kernel (or `base`, e.g. 'eager' for weights) wrapped by
    `make_wrapper`; yield the attention modules. The previous kernel comes back afterwards."""
    modules = attention_modules(model)
    previous = model.config._attn_implementation
    if base is not None and base != previous:
        model.set_attn_implementation(base)
    try:
        model.set_attn_implementation(_registered(model, modules[0], tag, make_wrapper))
        yield modules
    finally:
        model.set_attn_implementation(previous)
