"""Names, shapes and chunking of a trace run's arrays: the one table extract, TraceStore and the
validator all read, so the three can never disagree.

Decoder arrays (side 'dec') and encoder multiple-choice arrays (side 'enc_mc', with a choice axis C
after N) keep the names users of the original trace tool know. Every array is sharded per example
(one file per example and array) and chunked per layer inside the shard, so a whole example is
written in one go and one head of one layer is read without decompressing the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

CAPTURES = ("attn", "qkv", "hidden", "resid")
STAGES = ("pre_attn", "post_attn", "post_mlp")
SIDES = ("dec", "enc_mc")
STORE_DTYPES = ("float16", "float32")
META_SCHEMA = "halluc.trace.meta"
JOURNAL = "journal.jsonl"
META = "meta.json"
TOKENS = "tokens.parquet"


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


def _spec(path: str, prefix: tuple[int, ...], per_example: tuple[int, ...], layer_axis: bool) -> ArraySpec:
    ones = (1,) * len(prefix)
    chunk = ones + ((1, *per_example[1:]) if layer_axis else per_example)
    return ArraySpec(path, prefix + per_example, chunk, ones + per_example)


def array_specs(side: str, captures: tuple[str, ...], dims: Dims) -> list[ArraySpec]:
    """Every array a run with these captures holds, in a fixed order."""
    prefix = (dims.n,) if side == "dec" else (dims.n, dims.c)
    L, T, D = dims.layers, dims.t, dims.d_model
    specs = []
    if "attn" in captures:
        specs.append(_spec(f"{group_name(side, 'attn')}/attn", prefix, (L, dims.heads, T, T), True))
    if "qkv" in captures:
        for which, heads in (("q", dims.heads), ("k", dims.kv_heads), ("v", dims.kv_heads)):
            specs.append(
                _spec(f"{group_name(side, 'qkv')}/{which}", prefix, (L, heads, T, dims.d_head), True)
            )
    if "hidden" in captures:
        specs.append(_spec(f"{group_name(side, 'hidden')}/h", prefix, (L + 1, T, D), True))
    if "resid" in captures:
        specs.append(_spec(f"{group_name(side, 'res_embed')}/x", prefix, (T, D), False))
        for stage in STAGES:
            specs.append(_spec(f"{group_name(side, 'res_' + stage)}/x", prefix, (L, T, D), True))
    return specs


def shard_key(spec: ArraySpec, index: int) -> str:
    """The file (relative to the run) that holds example `index` of `spec`: zarr v3's default
    chunk key encoding of the shard grid, whose first axis is the example."""
    zeros = "/".join("0" for _ in spec.shape[1:])
    return f"{spec.path}/c/{index}/{zeros}"
