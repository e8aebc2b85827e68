"""`TraceStore`: read a finished trace run back one example at a time.

Every accessor returns a NumPy array trimmed to the example's true length (padding never leaks out)
and reads only the chunks it needs: one layer of one example. Layers are named as in the model
(layer 12 is layer 12 even when a run stored only layers 0, 12 and 24).

Decoder runs (`side="dec"`):
    attn(eid, side="dec", kind="self", layer, head)        -> (T, T)    query rows, key columns
    qkv(eid, which, side="dec", kind="self", layer, head)   -> (T, d_head)
    hidden(eid, side="dec")                                 -> (L+1, T, D)  embeddings, then each layer
    resid(eid, stage, side="dec", layer)                    -> (T, D)   stage: embed, pre_attn,
                                                                         post_attn, post_mlp
Encoder multiple-choice runs: the same with `mcq_` and a `choice_idx`.

With grouped-query attention, k and v hold the model's key/value heads: `head` then names a KV
head, and query head h reads KV head h // (heads / kv_heads).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from halluc_trace import layout
from ucli.errors import BadInput


class TraceStore:
    def __init__(self, run_dir: str | Path):
        from ucli.artifacts import load_artifact

        self.run_dir = Path(run_dir)
        if not self.run_dir.is_dir():
            raise BadInput(f"{self.run_dir}: no such trace run folder")
        if not (self.run_dir / layout.META).is_file():
            hint = " (unfinished: continue it with `halluc trace extract --resume --output`)" if (
                self.run_dir / layout.JOURNAL).is_file() else ""  # fmt: skip
            raise BadInput(f"{self.run_dir}: missing {layout.META}{hint}")
        self.meta: dict[str, Any] = load_artifact(self.run_dir / layout.META, layout.META_SCHEMA)
        self.side: str = self.meta["side"]
        self._examples = {str(e["id"]): e for e in self.meta["examples"]}
        self._layer_slot = {layer: i for i, layer in enumerate(self.meta["layers"])}
        self._open: dict[str, Any] = {}

    # --- what the run holds ------------------------------------------------------------------

    def arrays(self) -> dict[str, tuple[int, ...]]:
        """{'dec_self_attn.zarr/attn': shape, ...} as stored on disk."""
        return {path: tuple(self._array(path).shape) for path in self.meta["arrays"]}

    @cached_property
    def tokens(self) -> Any:
        """tokens.parquet as a pandas DataFrame (one row per token, and per choice in encoder runs)."""
        import pandas as pd

        path = self.run_dir / layout.TOKENS
        if not path.is_file():
            raise BadInput(f"{path}: missing")
        return pd.read_parquet(path, dtype_backend="numpy_nullable")  # nullable ints stay ints

    def example_ids(self) -> list[str]:
        return list(self._examples)

    def length(self, eid: Any, choice_idx: int | None = None) -> int:
        lengths = self._example(eid)["lengths"]
        return lengths[self._choice(choice_idx, len(lengths))]

    # --- decoder accessors -------------------------------------------------------------------

    def attn(self, eid: Any, side: str = "dec", kind: str = "self", layer: int = 0, head: int = 0) -> Any:
        self._side(side, kind)
        t = self.length(eid)
        return self._read(layout.group_name(side, "attn") + "/attn", eid, None, layer, head)[:t, :t]

    def qkv(self, eid: Any, which: str = "q", side: str = "dec", kind: str = "self", layer: int = 0,
            head: int = 0) -> Any:  # fmt: skip
        self._side(side, kind)
        return self._qkv(eid, None, which, layer, head)

    def hidden(self, eid: Any, side: str = "dec") -> Any:
        self._side(side, "self")
        return self._hidden(eid, None)

    def resid(self, eid: Any, stage: str = "post_mlp", side: str = "dec", layer: int = 0) -> Any:
        self._side(side, "self")
        return self._resid(eid, None, stage, layer)

    # --- encoder multiple-choice accessors -----------------------------------------------------

    def mcq_attn(self, eid: Any, choice_idx: int = 0, layer: int = 0, head: int = 0) -> Any:
        self._side("enc_mc", "self")
        t = self.length(eid, choice_idx)
        return self._read(layout.group_name("enc_mc", "attn") + "/attn", eid, choice_idx, layer, head)[:t, :t]

    def mcq_qkv(self, eid: Any, choice_idx: int = 0, which: str = "q", layer: int = 0, head: int = 0) -> Any:
        self._side("enc_mc", "self")
        return self._qkv(eid, choice_idx, which, layer, head)

    def mcq_hidden(self, eid: Any, choice_idx: int = 0) -> Any:
        self._side("enc_mc", "self")
        return self._hidden(eid, choice_idx)

    def mcq_resid(self, eid: Any, choice_idx: int = 0, stage: str = "post_mlp", layer: int = 0) -> Any:
        self._side("enc_mc", "self")
        return self._resid(eid, choice_idx, stage, layer)

    # --- internals ---------------------------------------------------------------------------

    def _qkv(self, eid: Any, choice: int | None, which: str, layer: int, head: int) -> Any:
        if which not in ("q", "k", "v"):
            raise BadInput(f"which={which!r}: expected 'q', 'k' or 'v'")
        heads = self.meta["num_heads"] if which == "q" else self.meta["num_kv_heads"]
        if which != "q" and not 0 <= head < heads:
            group = self.meta["num_heads"] // heads
            raise BadInput(f"{which} has {heads} key/value heads (grouped-query attention): query head {head} "
                           f"reads KV head {head // group}")  # fmt: skip
        t = self.length(eid, choice)
        return self._read(layout.group_name(self.side, "qkv") + "/" + which, eid, choice, layer, head)[:t]

    def _hidden(self, eid: Any, choice: int | None) -> Any:
        t = self.length(eid, choice)
        return self._read(layout.group_name(self.side, "hidden") + "/h", eid, choice)[:, :t]

    def _resid(self, eid: Any, choice: int | None, stage: str, layer: int) -> Any:
        t = self.length(eid, choice)
        if stage == "embed":
            return self._read(layout.group_name(self.side, "res_embed") + "/x", eid, choice)[:t]
        if stage not in layout.STAGES:
            raise BadInput(f"stage={stage!r}: expected one of embed, {', '.join(layout.STAGES)}")
        return self._read(layout.group_name(self.side, "res_" + stage) + "/x", eid, choice, layer)[:t]

    def _side(self, side: str, kind: str) -> None:
        if kind != "self":
            raise BadInput(f"kind={kind!r}: trace runs hold self-attention only")
        if side != self.side:
            raise BadInput(f"this run holds side {self.side!r} arrays ({self.meta['mode']} mode), not {side!r}"
                           + ("; use the mcq_ accessors" if self.side == "enc_mc" else ""))  # fmt: skip

    def _example(self, eid: Any) -> dict[str, Any]:
        found = self._examples.get(str(eid))
        if found is None:
            raise BadInput(f"{self.run_dir}: no example '{eid}' ({len(self._examples)} examples, e.g. "
                           f"{', '.join(list(self._examples)[:3])})")  # fmt: skip
        return found

    def _choice(self, choice: int | None, n: int) -> int:
        if choice is None:
            return 0
        if not 0 <= choice < n:
            raise BadInput(f"choice_idx {choice} outside 0..{n - 1}")
        return choice

    def _array(self, path: str) -> Any:
        if path not in self._open:
            import zarr

            if path not in self.meta["arrays"]:
                captured = ", ".join(self.meta["captures"])
                raise BadInput(f"{self.run_dir}: no {path} in this run (captured: {captured})")
            self._open[path] = zarr.open_array(str(self.run_dir / path), mode="r")
        return self._open[path]

    def _read(self, path: str, eid: Any, choice: int | None, layer: int | None = None,
              head: int | None = None) -> Any:  # fmt: skip
        index: list[Any] = [self._example(eid)["index"]]
        if self.side == "enc_mc":
            index.append(self._choice(choice, self.meta["n_choices"]))
        if layer is not None:
            slot = self._layer_slot.get(layer)
            if slot is None:
                raise BadInput(f"layer {layer} was not captured (stored layers: {self.meta['layers']})")
            index.append(slot)
        if head is not None:
            arr = self._array(path)
            heads = arr.shape[len(index)]
            if not 0 <= head < heads:
                raise BadInput(f"head {head} outside 0..{heads - 1}")
            index.append(head)
        return self._array(path)[tuple(index)]
