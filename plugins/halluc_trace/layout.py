"""Names, shapes and chunking of a trace run's arrays: the one table extract, TraceStore and the
validator all read, so the three can never disagree.

Decoder arrays (side 'dec') and encoder multiple-choice arrays (side 'enc_mc', with a choice axis C
after N) keep the names users of the original trace tool know. Every array is sharded per example
(one file per example and array, all choices included), so a whole example is written in one go;
inside a shard, chunks hold as many layers as fit in CHUNK_BYTES (one choice each), so short
sequences pay zarr's per-chunk cost once per example and long ones read one layer at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

CAPTURES = ("attn", "qkv", "hidden", "resid")
STAGES = ("pre_attn", "post_attn", "post_mlp")
META_SCHEMA = "halluc.trace.meta"
JOURNAL = "journal.jsonl"
META = "meta.json"
TOKENS = "tokens.parquet"
CHUNK_BYTES = 4 << 20  # uncompressed bytes per chunk, at most (unless one layer is larger)


@dataclass(frozen=True)
class Dims:
    """What fixes every array's shape: examples N, choices C (0 for a decoder), stored layers L,
    query heads H, key/value heads H_kv, padded length T, model width D, head width d."""

    n: int
    c: int
    layers: int
    heads: int
    kv_heads: int
    t: int
    d_model: int
    d_head: int


@dataclass(frozen=True)
class ArraySpec:
    path: str  # "<group>.zarr/<array>" relative to the run folder
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    shards: tuple[int, ...]

    @property
    def group(self) -> str:
        return self.path.split("/")[0]

    @property
    def name(self) -> str:
        return self.path.split("/")[1]


def group_name(side: str, what: str) -> str:
    """'attn' / 'qkv' / 'hidden' / 'res_<stage>' -> the group folder name for that side."""
    if side == "dec":
        return {"attn": "dec_self_attn", "qkv": "dec_self_qkv"}.get(what, f"dec_{what}") + ".zarr"
    return f"enc_mc_{what}.zarr"


def layers_per_chunk(n_layers: int, layer_bytes: int) -> int:
    """The most layers (a divisor of the layer count, as sharding requires) whose chunk stays within
    CHUNK_BYTES: short sequences get one chunk per example (zarr's per-chunk cost dominates small
    chunks), long ones one chunk per layer (reading one head decompresses one layer)."""
    fitting = [k for k in range(1, n_layers + 1) if n_layers % k == 0 and k * layer_bytes <= CHUNK_BYTES]
    return max(fitting, default=1)


def _spec(path: str, prefix: tuple[int, ...], per_example: tuple[int, ...], layer_axis: bool,
          itemsize: int) -> ArraySpec:  # fmt: skip
    ones = (1,) * len(prefix)
    if layer_axis:
        layer_bytes = itemsize * math.prod(per_example[1:])
        chunk = (*ones, layers_per_chunk(per_example[0], layer_bytes), *per_example[1:])
    else:
        chunk = ones + per_example
    return ArraySpec(path, prefix + per_example, chunk, (1, *prefix[1:], *per_example))


def array_specs(side: str, captures: tuple[str, ...], dims: Dims, itemsize: int = 2) -> list[ArraySpec]:
    """Every array a run with these captures holds, in a fixed order (`itemsize`: bytes per value)."""
    prefix = (dims.n,) if side == "dec" else (dims.n, dims.c)
    L, T, D = dims.layers, dims.t, dims.d_model
    specs = []
    if "attn" in captures:
        specs.append(_spec(f"{group_name(side, 'attn')}/attn", prefix, (L, dims.heads, T, T), True, itemsize))
    if "qkv" in captures:
        for which, heads in (("q", dims.heads), ("k", dims.kv_heads), ("v", dims.kv_heads)):
            specs.append(
                _spec(
                    f"{group_name(side, 'qkv')}/{which}", prefix, (L, heads, T, dims.d_head), True, itemsize
                )
            )
    if "hidden" in captures:
        specs.append(_spec(f"{group_name(side, 'hidden')}/h", prefix, (L + 1, T, D), True, itemsize))
    if "resid" in captures:
        specs.append(_spec(f"{group_name(side, 'res_embed')}/x", prefix, (T, D), False, itemsize))
        for stage in STAGES:
            specs.append(_spec(f"{group_name(side, 'res_' + stage)}/x", prefix, (L, T, D), True, itemsize))
    return specs


def shard_key(spec: ArraySpec, index: int) -> str:
    """The file (relative to the run) that holds example `index` of `spec`: zarr v3's default
    chunk key encoding of the shard grid, whose first axis is the example."""
    zeros = "/".join("0" for _ in spec.shape[1:])
    return f"{spec.path}/c/{index}/{zeros}"


def folder_bytes(path: Path) -> int:
    """Bytes on disk of every file below `path`."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
