"""`halluc trace index`: what a run holds, and (`--validate`) whether it is whole.

The index needs the run's files and reads only metadata. Validation reads everything, one example
at a time, and collects every problem instead of stopping at the first: meta.json against the
arrays on disk and against tokens.parquet, a missing chunk (an example's shard file) in any array,
non-finite values, non-zero padding, and attention rows that do not sum to 1 on a seeded sample.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from halluc_trace import layout
from halluc_trace.layout import ArraySpec
from ucli.errors import BadInput

SUM_TOLERANCE = {"float16": 1e-2, "float32": 1e-4}


def _meta(run: Path) -> dict[str, Any]:
    from ucli.artifacts import load_artifact

    if not run.is_dir():
        raise BadInput(f"{run}: no such trace run folder")
    missing = [name for name in (layout.META, layout.TOKENS) if not (run / name).is_file()]
    if missing:
        hint = " (an unfinished run: continue it with `halluc trace extract --resume --output`)" if (
            run / layout.JOURNAL).is_file() else ""  # fmt: skip
        raise BadInput(f"{run}: missing {', '.join(missing)}{hint}")
    meta = load_artifact(run / layout.META, layout.META_SCHEMA)
    if not isinstance(meta.get("arrays"), dict) or not isinstance(meta.get("examples"), list):
        raise BadInput(f"{run / layout.META}: no 'arrays' or 'examples' entry")
    return meta


def _specs(meta: dict[str, Any]) -> list[ArraySpec]:
    return [ArraySpec(path, tuple(a["shape"]), tuple(a["chunks"]), tuple(a["shards"]))
            for path, a in meta["arrays"].items()]  # fmt: skip


def index_run(run_dir: str | Path) -> dict[str, Any]:
    """Arrays (shape, dtype, chunks, bytes on disk), example count and what was captured; a damaged
    tokens.parquet is reported in `tokens_error` (its row count is then None)."""
    import pyarrow.parquet as pq
    import zarr

    run = Path(run_dir)
    meta = _meta(run)
    absent = [path for path in meta["arrays"] if not (run / path / "zarr.json").is_file()]
    if absent:
        raise BadInput(f"{run}: missing array(s) {', '.join(absent)} listed in {layout.META}")
    arrays = []
    for path in meta["arrays"]:
        arr = zarr.open_array(str(run / path), mode="r")
        arrays.append({"array": path, "shape": list(arr.shape), "dtype": str(arr.dtype),
                       "chunks": list(arr.chunks), "bytes_on_disk": layout.folder_bytes(run / path)})  # fmt: skip
    try:
        token_rows, tokens_error = pq.ParquetFile(run / layout.TOKENS).metadata.num_rows, None
    except Exception as exc:  # pyarrow raises several types for a damaged file
        token_rows, tokens_error = None, f"{layout.TOKENS}: unreadable ({exc})"
    model = (meta["provenance"].get("model") or {}).get("name")
    return {
        "run": str(run),
        "model": model,
        "mode": meta.get("mode"),
        "examples": len(meta["examples"]),
        "max_seq_len": meta.get("max_seq_len"),
        "captures": meta.get("captures"),
        "layers": meta.get("layers"),
        "store_dtype": meta.get("store_dtype"),
        "tokens_rows": token_rows,
        "tokens_error": tokens_error,
        "bytes_on_disk": sum(a["bytes_on_disk"] for a in arrays),
        "arrays": arrays,
    }


def _check_meta(meta: dict[str, Any], specs: list[ArraySpec]) -> list[str]:
    problems = []
    n, t = len(meta["examples"]), meta.get("max_seq_len")
    if meta.get("n_examples") != n:
        problems.append(f"{layout.META}: n_examples {meta.get('n_examples')} but {n} examples listed")
    for i, ex in enumerate(meta["examples"]):
        if ex.get("index") != i:
            problems.append(
                f"{layout.META}: example '{ex.get('id')}' has index {ex.get('index')}, expected {i}"
            )
        if any(not 1 <= length <= (t or 0) for length in ex.get("lengths") or [0]):
            problems.append(
                f"{layout.META}: example '{ex.get('id')}' has lengths {ex.get('lengths')} outside 1..{t}"
            )
    for spec in specs:
        if spec.shape[0] != n:
            problems.append(f"{layout.META}: {spec.path} has {spec.shape[0]} examples, the run lists {n}")
    return problems


def _check_arrays(
    run: Path, meta: dict[str, Any], specs: list[ArraySpec]
) -> tuple[list[str], list[ArraySpec]]:
    """Shape and dtype on disk against meta.json; returns the problems and the arrays that can be read."""
    import zarr

    problems, readable = [], []
    for spec in specs:
        if not (run / spec.path / "zarr.json").is_file():
            problems.append(f"{spec.path}: missing (listed in {layout.META})")
            continue
        arr = zarr.open_array(str(run / spec.path), mode="r")
        if tuple(arr.shape) != spec.shape:
            problems.append(f"{spec.path}: shape {tuple(arr.shape)} on disk, {spec.shape} in {layout.META}")
        elif str(arr.dtype) != meta.get("store_dtype"):
            problems.append(
                f"{spec.path}: dtype {arr.dtype} on disk, {meta.get('store_dtype')} in {layout.META}"
            )
        else:
            readable.append(spec)
    return problems, readable


def _check_tokens(run: Path, meta: dict[str, Any]) -> list[str]:
    import pyarrow.parquet as pq

    from halluc_trace.tokens import schema

    path = run / layout.TOKENS
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        return [f"{layout.TOKENS}: unreadable ({exc})"]
    expected = schema(meta.get("mode", "nexttok")).names
    absent = [c for c in expected if c not in table.column_names]
    if absent:
        return [f"{layout.TOKENS}: missing column(s) {', '.join(absent)}"]
    problems = []
    ids = table.column("example_id").to_pylist()
    positions = table.column("position").to_pylist()
    seen: dict[str, list[int]] = {}
    for eid, pos in zip(ids, positions, strict=True):
        seen.setdefault(eid, []).append(pos)
    listed = {str(e["id"]): e for e in meta["examples"]}
    extra = sorted(set(seen) - set(listed))
    if extra:
        problems.append(f"{layout.TOKENS}: example(s) not in {layout.META}: {', '.join(extra[:5])}")
    for eid, ex in listed.items():
        got = seen.get(eid)
        if got is None:
            problems.append(f"{layout.TOKENS}: no rows for example '{eid}'")
            continue
        want = sorted(p for length in ex["lengths"] for p in range(length))
        if sorted(got) != want:
            problems.append(f"{layout.TOKENS}: example '{eid}' has {len(got)} token rows, {layout.META} says "
                            f"lengths {ex['lengths']}")  # fmt: skip
    return problems


def _per_sequence(spec: ArraySpec, lengths: list[int], data: Any) -> list[tuple[int, Any]]:
    """(true length, that sequence's data) for an example's one sequence, or for each of its choices."""
    if spec.group.startswith("enc_mc"):
        return [(length, data[c]) for c, length in enumerate(lengths)]
    return [(lengths[0], data)]


def _padding_is_zero(spec: ArraySpec, lengths: list[int], data: Any) -> bool:
    """Stored values past a sequence's length must be exact zeros (T is the second-last axis;
    attention maps also have T keys last)."""
    for length, x in _per_sequence(spec, lengths, data):
        if (x[..., length:, :] != 0).any():
            return False
        if spec.name == "attn" and (x[..., :length, length:] != 0).any():
            return False
    return True


# what `_check_values` reports per array, in this order
VALUE_PROBLEMS = {
    "missing": "missing chunk(s) for example(s) {which}",
    "nonfinite": "non-finite values in example(s) {which}",
    "padded": "non-zero values past the true length in example(s) {which}",
    "bad_rows": "attention rows do not sum to 1 (tolerance {tol}) in {which}",
}


def _check_values(
    run: Path, meta: dict[str, Any], specs: list[ArraySpec], sample: int, seed: int
) -> list[str]:
    import numpy as np
    import zarr

    problems = []
    examples = meta["examples"]
    chosen = set(random.Random(seed).sample(range(len(examples)), min(sample, len(examples))))
    tol = SUM_TOLERANCE.get(meta.get("store_dtype"), 1e-4)
    for spec in specs:
        arr = zarr.open_array(str(run / spec.path), mode="r")
        t = spec.shape[-2]
        found: dict[str, list[str]] = {k: [] for k in VALUE_PROBLEMS}
        missing, nonfinite, padded, bad_rows = (found[k] for k in VALUE_PROBLEMS)
        for ex in examples:
            i, lengths = ex.get("index"), ex.get("lengths") or []
            if not (isinstance(i, int) and 0 <= i < spec.shape[0]) or not all(1 <= n <= t for n in lengths):
                continue  # meta.json contradicts the array; _check_meta reported it
            if not (run / layout.shard_key(spec, i)).is_file():
                missing.append(f"{i} ('{ex['id']}')")
                continue
            data = np.asarray(arr[i])
            if not np.isfinite(data).all():
                nonfinite.append(f"'{ex['id']}' ({int((~np.isfinite(data)).sum())})")
            if not _padding_is_zero(spec, lengths, data):
                padded.append(f"'{ex['id']}'")
            if spec.name == "attn" and i in chosen:
                for length, x in _per_sequence(spec, lengths, data):
                    sums = x[..., :length, :length].astype(np.float64).sum(-1)
                    worst = float(np.abs(sums - 1).max())
                    if not worst <= tol:
                        bad_rows.append(f"'{ex['id']}' (off by {worst:.3g})")
        problems += [f"{spec.path}: " + VALUE_PROBLEMS[k].format(tol=tol, which=", ".join(v))
                     for k, v in found.items() if v]  # fmt: skip
    return problems


def validate_run(run_dir: str | Path, sample: int = 8, seed: int = 0) -> list[str]:
    """Every problem found (empty: the run is whole). A run whose meta.json or tokens.parquet is
    missing, or whose meta.json is not a trace meta artifact, is refused with BadInput instead."""
    run = Path(run_dir)
    meta = _meta(run)
    specs = _specs(meta)
    problems = _check_meta(meta, specs)
    array_problems, readable = _check_arrays(run, meta, specs)
    problems += array_problems
    problems += _check_tokens(run, meta)
    problems += _check_values(run, meta, readable, sample, seed)
    return problems
