"""Record a model's internals during one forward pass, for the layers asked for and nothing more.

- Attention weights and Q/K/V come from the model's own attention kernel, wrapped (`ucli.attention`):
  the kernel receives queries and keys after rotary embedding where the model applies one (Llama,
  Qwen2, ...) and key/value heads before grouped-query repetition, so that is what is stored.
  Weights need the eager kernel (the fused ones never form them); Q/K/V alone keep the model's kernel.
- The residual stream comes from forward hooks: a block's input (pre-attention), the input of the
  norm that opens its MLP sub-block (post-attention; for post-norm encoders such as BERT, the
  attention sub-block's normalised output), and the block's output (post-MLP).
- Hidden states are the model's own `output_hidden_states`.

Each tensor is detached and cast to the storage dtype as soon as it exists, so a batch holds one
copy of what will be written.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from ucli.attention import attention_modules, wrapped_kernel
from ucli.errors import BadInput

TRACE_ATTR = "_halluc_trace"  # on a watched attention module: (recorder, stored-layer position)
MLP_NORMS = ("pre_feedforward_layernorm", "post_attention_layernorm", "ln_2")


@dataclass
class Anatomy:
    """Where the residual stream can be read in this architecture."""

    blocks: list[Any]
    post_attn: list[tuple[str, Any]]  # ("input", norm) or ("output", attention sub-block)
    rotary: bool  # queries and keys are stored after rotary embedding


def _block_class(model: Any) -> type:
    base = getattr(model, "base_model", model)
    recorder = (getattr(base, "_can_record_outputs", None) or {}).get("hidden_states")
    cls = getattr(recorder, "target_class", recorder)
    if not isinstance(cls, type):
        raise BadInput(
            f"{type(model).__name__}: cannot find its transformer blocks (no hidden-state recorder)"
        )
    return cls


def anatomy(model: Any) -> Anatomy:
    cls = _block_class(model)
    blocks = [m for m in model.modules() if type(m) is cls]
    post_attn = []
    for block in blocks:
        norm = next((getattr(block, n) for n in MLP_NORMS if hasattr(block, n)), None)
        if norm is not None:
            post_attn.append(("input", norm))
        elif hasattr(
            block, "attention"
        ):  # BERT-style: attention + dense + residual + LayerNorm in one module
            post_attn.append(("output", block.attention))
        else:
            raise BadInput(f"{cls.__name__}: cannot tell where its attention sub-block ends (resid capture)")
    return Anatomy(blocks, post_attn, applies_rotary(model))


def applies_rotary(model: Any) -> bool:
    """Whether the attention modules rotate queries and keys themselves (they take the rotary
    `position_embeddings`), so the kernel sees them rotated; absolute-position models do not."""
    attn = attention_modules(model)[0]
    return "position_embeddings" in inspect.signature(attn.forward).parameters


def _first(x: Any) -> Any:
    return x[0] if isinstance(x, tuple | list) else x


@dataclass
class Recorder:
    """Collects, per stored layer, what one forward pass computed; `take()` empties it."""

    model: Any
    captures: tuple[str, ...]
    layers: list[int]
    dtype: Any  # torch dtype of the stored arrays
    parts: dict[str, list[Any]] = field(default_factory=dict)
    embed: Any = None

    def __post_init__(self) -> None:
        self.anatomy = anatomy(self.model) if "resid" in self.captures else None
        self._slot = {layer: i for i, layer in enumerate(self.layers)}
        self._reset()

    def _reset(self) -> None:
        names = [*("attn",) * ("attn" in self.captures), *(("q", "k", "v") if "qkv" in self.captures else ())]
        if "resid" in self.captures:
            names += ["pre_attn", "post_attn", "post_mlp"]
        self.parts = {n: [None] * len(self.layers) for n in names}
        self.embed = None

    def _keep(self, name: str, layer: int, tensor: Any) -> None:
        slot = self._slot.get(layer)
        if slot is not None:
            self.parts[name][slot] = tensor.detach().to(self.dtype)

    def kernel_saw(self, layer: int, query: Any, key: Any, value: Any, weights: Any) -> None:
        if "attn" in self.captures:
            if weights is None:
                raise RuntimeError("the attention kernel returned no weights (eager attention is required)")
            self._keep("attn", layer, weights)
        if "qkv" in self.captures:
            self._keep("q", layer, query)
            self._keep("k", layer, key)
            self._keep("v", layer, value)

    def take(self) -> dict[str, Any]:
        """{name: [B, L, ...] tensor}, plus 'embed' [B, T, D] with resid."""
        import torch

        missing = [n for n, got in self.parts.items() if any(t is None for t in got)]
        if missing:
            raise RuntimeError(f"no {', '.join(missing)} recorded for some layers (the model skipped a hook)")
        out = {n: torch.stack(got, dim=1) for n, got in self.parts.items()}
        if self.embed is not None:
            out["embed"] = self.embed
        self._reset()
        return out

    @contextmanager
    def installed(self) -> Iterator[Recorder]:
        with ExitStack() as stack:
            if "attn" in self.captures or "qkv" in self.captures:
                base = "eager" if "attn" in self.captures else None
                modules = stack.enter_context(wrapped_kernel(self.model, "trace", _tracing, base=base))
                for layer in self.layers:
                    setattr(modules[layer], TRACE_ATTR, self)
                    stack.callback(delattr, modules[layer], TRACE_ATTR)
            if self.anatomy is not None:
                for handle in self._resid_hooks():
                    stack.callback(handle.remove)
            yield self

    def _resid_hooks(self) -> list[Any]:
        assert self.anatomy is not None
        handles = []

        def block_input(layer: int):
            def hook(_m: Any, args: tuple, kwargs: dict) -> None:
                x = args[0] if args else kwargs["hidden_states"]
                if layer == 0:
                    self.embed = x.detach().to(self.dtype)
                self._keep("pre_attn", layer, x)

            return hook

        def norm_input(layer: int):
            return lambda _m, args: self._keep("post_attn", layer, args[0])

        def sub_block_output(layer: int):
            return lambda _m, _args, out: self._keep("post_attn", layer, _first(out))

        def block_output(layer: int):
            return lambda _m, _args, out: self._keep("post_mlp", layer, _first(out))

        for layer, block in enumerate(self.anatomy.blocks):
            if layer != 0 and layer not in self._slot:
                continue
            handles.append(block.register_forward_pre_hook(block_input(layer), with_kwargs=True))
            if layer not in self._slot:
                continue
            how, module = self.anatomy.post_attn[layer]
            if how == "input":
                handles.append(module.register_forward_pre_hook(norm_input(layer)))
            else:
                handles.append(module.register_forward_hook(sub_block_output(layer)))
            handles.append(block.register_forward_hook(block_output(layer)))
        return handles


def _tracing(base: Any) -> Any:
    """An attention kernel that runs `base` unchanged and hands watched layers' inputs and weights over."""

    def attention(module, query, key, value, attention_mask, **kwargs):
        out = base(module, query, key, value, attention_mask, **kwargs)
        recorder = getattr(module, TRACE_ATTR, None)
        if recorder is not None:
            recorder.kernel_saw(module.layer_idx, query, key, value, out[1])
        return out

    return attention
