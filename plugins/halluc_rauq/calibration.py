"""Offline calibration: which head of each layer attends most to the previous token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from halluc_signals import default_layers, teacher_force
from ucli.data import PromptPair
from ucli.errors import BadInput
from ucli.models import LoadedModel, chat_prompt

MODES = ("teacher-forced", "generated")


@dataclass
class HeadsCalibration:
    heads: dict[int, int]  # every layer -> the head with the largest mean previous-token attention
    layers: list[int]  # the subset RAUQ uses at runtime
    mean_attention: np.ndarray  # [L, H]
    n_tokens: int  # previous-token attention values averaged (a(2)..a(n) of every example)
    n_examples: int
    skipped_empty: int
    mode: str
    examples: list[dict[str, Any]] = field(default_factory=list)

    def runtime_heads(self) -> dict[int, int]:
        """The chosen head of each runtime layer: what the scorer and the threshold fit use."""
        return {layer: self.heads[layer] for layer in self.layers}

    def payload(self) -> dict[str, Any]:
        return {
            "heads": {str(layer): head for layer, head in self.heads.items()},
            "layers": self.layers,
            "mean_attention": self.mean_attention.round(8).tolist(),
            "n_tokens": self.n_tokens,
            "n_examples": self.n_examples,
            "skipped_empty": self.skipped_empty,
            "mode": self.mode,
        }


def _mean_previous_token_attention(
    lm: LoadedModel,
    sequences: list[tuple[list[int], list[int]]],
    batch_size: int,
    advance: Callable[[int], None],
) -> tuple[np.ndarray, int]:
    """Sum of a_{l,h}(i) over i = 2..n of every (prompt, completion), for all layers; and the count."""
    forced = teacher_force(lm, sequences, list(range(lm.fingerprint.num_layers)), batch_size, advance)
    sums = sum(f.attn[:, :, 1:].sum(axis=-1) for f in forced)
    return np.asarray(sums), sum(max(f.attn.shape[-1] - 1, 0) for f in forced)


def _completions(
    lm: LoadedModel, pairs: list[PromptPair], mode: str, max_new_tokens: int, batch_size: int
) -> list[tuple[PromptPair, list[int], str]]:
    """Each pair's completion as ids and text (empty ids: nothing to calibrate on): its reference
    (teacher-forced), or the model's greedy answer (generated)."""
    if mode == "teacher-forced":
        return [(p, lm.tokenizer(p.reference, add_special_tokens=False)["input_ids"] if (p.reference or "").strip()
                 else [], p.reference or "") for p in pairs]  # fmt: skip
    from ucli.generation import generate

    out = []
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start : start + batch_size]
        texts = [chat_prompt(lm.tokenizer, p.prompt) for p in batch]
        out += [
            (p, g["token_ids"], g["answer"])
            for p, g in zip(batch, generate(lm, texts, max_new_tokens), strict=True)
        ]
    return out


def calibrate_heads(
    lm: LoadedModel,
    pairs: list[PromptPair],
    mode: str = "teacher-forced",
    layers: list[int] | None = None,
    max_new_tokens: int = 32,
    batch_size: int = 8,
    advance: Callable[[int], None] = lambda n: None,
) -> HeadsCalibration:
    """Mean previous-token attention of every head over completion tokens; argmax head per layer.

    `teacher-forced` uses each pair's reference as the completion (empty ones are skipped and
    counted); `generated` uses the model's own greedy answers.
    """
    if mode not in MODES:
        raise BadInput(f"unknown --mode '{mode}' (expected one of {', '.join(MODES)})")
    runtime_layers = layers if layers is not None else default_layers(lm.fingerprint.num_layers)
    completions = _completions(lm, pairs, mode, max_new_tokens, batch_size)
    kept = [(pair, ids, text) for pair, ids, text in completions if ids]
    skipped = len(completions) - len(kept)
    sequences = [(lm.prompt_ids(lm.chat_prompt(pair.prompt)), ids) for pair, ids, _ in kept]
    examples = [{"id": pair.id, "completion": text} for pair, _, text in kept]
    if not sequences:
        raise BadInput("every completion is empty: nothing to calibrate on")
    sums, count = _mean_previous_token_attention(lm, sequences, batch_size, advance)
    if count == 0:
        raise BadInput("the completions are all one token long: no previous-token attention to average")
    means = sums / count
    return HeadsCalibration(
        heads={layer: int(np.argmax(means[layer])) for layer in range(means.shape[0])},
        layers=runtime_layers,
        mean_attention=means,
        n_tokens=count,
        n_examples=len(sequences),
        skipped_empty=skipped,
        mode=mode,
        examples=examples,
    )


def plot_heads(cal: HeadsCalibration, path: str | Path, title: str) -> Path:
    """Heat map of the L x H mean previous-token attention, chosen heads marked, runtime layers boxed."""
    from ucli.artifacts import new_figure, write_figure

    n_layers, n_heads = cal.mean_attention.shape
    fig, ax = new_figure(figsize=(max(4, 0.45 * n_heads + 2), max(4, 0.28 * n_layers + 1.5)), dpi=120)
    image = ax.imshow(cal.mean_attention, aspect="auto", cmap="viridis", origin="lower")
    fig.colorbar(image, ax=ax, label="mean attention to the previous token")
    for layer, head in cal.heads.items():
        used = layer in cal.layers
        ax.scatter(head, layer, marker="s" if used else "x", s=40, facecolors="none" if used else "white",
                   edgecolors="red" if used else None, linewidths=1.5)  # fmt: skip
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title)
    return write_figure(fig, path)
