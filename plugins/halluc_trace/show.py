"""`halluc trace show`: one head's attention map for one example, with its tokens on both axes."""

from __future__ import annotations

from pathlib import Path

from halluc_trace.store import TraceStore

MAX_LABELS = 80  # beyond this many tokens, label every k-th so the labels stay readable


def _label(token: str) -> str:
    text = token.replace("\n", "⏎").replace("\t", "⇥")
    return text if text.strip() else repr(text)


def attention_heatmap(run_dir: str | Path, example: str, layer: int, head: int, png: str | Path,
                      choice_idx: int | None = None) -> Path:  # fmt: skip
    """Draw query rows against key columns (weights in [0, 1]) and save it as a PNG."""
    from ucli.artifacts import new_figure, write_figure

    store = TraceStore(run_dir)
    if store.side == "enc_mc":
        choice = choice_idx or 0
        weights = store.mcq_attn(example, choice, layer, head)
        tokens = store.tokens
        rows = tokens[(tokens["example_id"] == str(example)) & (tokens["choice_idx"] == choice)]
        what = f"choice {choice} · "
    else:
        weights = store.attn(example, layer=layer, head=head)
        tokens = store.tokens
        rows = tokens[tokens["example_id"] == str(example)]
        what = ""
    labels = [_label(t) for t in rows.sort_values("position")["token"].tolist()]
    t = len(labels)
    step = max(1, -(-t // MAX_LABELS))
    size = min(max(4.0, 0.22 * min(t, MAX_LABELS) + 2), 22.0)
    fig, ax = new_figure(figsize=(size + 1.2, size))
    image = ax.imshow(
        weights, cmap="viridis", vmin=0.0, vmax=float(max(weights.max(), 1e-9)), interpolation="nearest"
    )
    ticks = list(range(0, t, step))
    ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=90, fontsize=7)
    ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=7)
    ax.set_xlabel("key token")
    ax.set_ylabel("query token")
    ax.set_title(f"{example} · {what}layer {layer} · head {head}")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    return write_figure(fig, png)
