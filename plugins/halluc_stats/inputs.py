"""Per-item values from result files, paired by key, grouped by seed.

Reads lm-evaluation-harness `samples_*.jsonl` (values may come back as strings), halluc JSONL,
CSV and Parquet through `ucli.data`. A glob that matches several files gives one group per file
(one per seed); A and B groups are matched by the `seed<N>` in their paths, else by sorted order.
"""

from __future__ import annotations

import glob
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ucli.data import VERDICT_WORDS, Record, read_records
from ucli.errors import BadInput

LMEVAL_KEY = "doc_id"
LMEVAL_HASH = "doc_hash"
DEFAULT_KEY = "id"
SAMPLE_KEY = "sample_id"


@dataclass
class ItemTable:
    """The chosen fields of one result file, one row per item, in file order."""

    path: Path
    label: str
    key_field: str
    keys: list[str]
    values: dict[str, np.ndarray]
    hashes: dict[str, str] = field(default_factory=dict)
    locs: dict[str, str] = field(default_factory=dict)


@dataclass
class Paired:
    """One field of two result files, aligned on their common keys."""

    label: str
    paths: tuple[Path, Path]
    keys: list[str]
    a: np.ndarray
    b: np.ndarray
    only_a: list[str]
    only_b: list[str]


def expand(patterns: list[str] | str) -> list[Path]:
    """Files named by paths or glob patterns, sorted; a pattern that matches nothing is bad input."""
    out: list[Path] = []
    for pattern in [patterns] if isinstance(patterns, str) else patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise BadInput(f"{pattern}: no file matches")
        out.extend(Path(m) for m in matches if Path(m) not in out)
    return out


def seed_label(path: Path) -> str | None:
    m = re.search(r"seed[_-]?(\d+)", str(path))
    return f"seed{m.group(1)}" if m else None


def _lookup(data: dict[str, Any], name: str) -> tuple[bool, Any]:
    """A field by name, or by dotted path into nested objects (`metrics.acc`)."""
    if name in data:
        return True, data[name]
    node: Any = data
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def parse_value(value: Any, loc: str, name: str) -> float:
    """A finite float from numbers, booleans, numeric strings and one-element lists (lm-eval's shapes)."""
    v = value
    if isinstance(v, list | tuple) and len(v) == 1:
        v = v[0]
    if isinstance(v, str):
        text = v.strip().strip("[]'\" ")
        if text.lower() in VERDICT_WORDS:  # the one reading of verdict words (`ucli.data.parse_verdict`)
            return float(VERDICT_WORDS[text.lower()])
        try:
            v = float(text)
        except ValueError:
            raise BadInput(f"{loc}: field '{name}': expected a number, found {value!r}") from None
    if isinstance(v, bool):
        return float(v)
    if not isinstance(v, int | float):
        raise BadInput(f"{loc}: field '{name}': expected a number, found {value!r}")
    if not math.isfinite(v):
        raise BadInput(f"{loc}: field '{name}': {v} is not a finite number")
    return float(v)


def _is_lmeval(path: Path, first: Record) -> bool:
    return path.name.startswith("samples_") or (LMEVAL_KEY in first.data and LMEVAL_HASH in first.data)


def default_key(path: Path, first: Record) -> str:
    """doc_id for lm-eval files; sample_id for halluc's per-arm outputs (`control eval`, the demo),
    whose `id` carries the arm (`baseline:q7`, `controller:q7`) and so never pairs; else id."""
    if _is_lmeval(path, first):
        return LMEVAL_KEY
    return SAMPLE_KEY if SAMPLE_KEY in first.data else DEFAULT_KEY


def _fields(rec: Any, fields: list[str]) -> dict[str, Any]:
    """The named fields of one record, as written; a missing one is refused naming those it has."""
    row = {}
    for name in fields:
        found, raw = _lookup(rec.data, name)
        if not found:
            raise BadInput(f"{rec.loc}: no field '{name}' (fields: {', '.join(sorted(rec.data))})")
        row[name] = raw
    return row


def read_table(path: Path, fields: list[str], key: str | None = None, require_key: bool = True) -> ItemTable:
    """The named fields of every record, keyed by `key` (default: `default_key`).

    Without `require_key` (single-file statistics), a file lacking the default key uses row numbers,
    and rows where a field is null are left out with one warning (a trace's `tokens.parquet` has no
    next token at each example's last position); paired statistics refuse a null.
    """
    records = read_records(path)
    key_field = key or default_key(path, records[0])
    columns: dict[str, list[float]] = {f: [] for f in fields}
    table = ItemTable(path, seed_label(path) or path.stem, key_field, [], {})
    skipped: list[str] = []
    for rec in records:
        found, raw_key = _lookup(rec.data, key_field)
        if not found and not require_key and key is None:
            found, raw_key = True, f"row{rec.index + 1}"
        if not found:
            raise BadInput(
                f"{rec.loc}: no key field '{key_field}' (fields: {', '.join(sorted(rec.data))}); choose one with --key"
            )
        k = str(raw_key)
        if k in table.locs:
            raise BadInput(f"{rec.loc}: duplicate {key_field} '{k}' (first at {table.locs[k]})")
        row = _fields(rec, fields)
        if not require_key and any(
            v is None or (isinstance(v, float) and math.isnan(v)) for v in row.values()
        ):
            skipped.append(rec.loc)
            continue
        for name, raw in row.items():
            columns[name].append(parse_value(raw, rec.loc, name))
        if LMEVAL_HASH in rec.data:
            table.hashes[k] = str(rec.data[LMEVAL_HASH])
        table.keys.append(k)
        table.locs[k] = rec.loc
    if skipped:
        from ucli import console

        console.warn(
            f"left out {len(skipped)} row(s) with a null {' or '.join(fields)} (first: {skipped[0]})"
        )
    if not table.keys:
        raise BadInput(f"{path}: no row has a value for {' and '.join(fields)}")
    table.values = {name: np.asarray(vals, dtype=np.float64) for name, vals in columns.items()}
    return table


def pair(a: ItemTable, b: ItemTable, name: str, allow_unpaired: bool = False) -> Paired:
    """Align one field of two tables on their keys, checking lm-eval doc_hash where both have it."""
    b_index = {k: i for i, k in enumerate(b.keys)}
    common = [k for k in a.keys if k in b_index]
    only_a = [k for k in a.keys if k not in b_index]
    a_keys = set(a.keys)
    only_b = [k for k in b.keys if k not in a_keys]
    if not common:
        raise BadInput(
            f"{a.path} and {b.path}: no {a.key_field} in common "
            f"(A has e.g. '{a.keys[0]}', B has e.g. '{b.keys[0]}'); check --key"
        )
    for k in common:
        if k in a.hashes and k in b.hashes and a.hashes[k] != b.hashes[k]:
            raise BadInput(
                f"{b.locs[k]}: doc_hash differs from {a.locs[k]} for {a.key_field} '{k}' "
                "(the files do not hold the same items)"
            )
    if (only_a or only_b) and not allow_unpaired:
        raise BadInput(
            f"{a.path} vs {b.path}: {len(only_a)} item(s) only in A{_examples(only_a)}, "
            f"{len(only_b)} only in B{_examples(only_b)}; pass --allow-unpaired to use the {len(common)} pairs"
        )
    a_index = {k: i for i, k in enumerate(a.keys)}
    ia = np.fromiter((a_index[k] for k in common), dtype=np.int64, count=len(common))
    ib = np.fromiter((b_index[k] for k in common), dtype=np.int64, count=len(common))
    label = a.label if a.label == b.label else f"{a.label}|{b.label}"
    return Paired(label, (a.path, b.path), common, a.values[name][ia], b.values[name][ib], only_a, only_b)


def _examples(keys: list[str]) -> str:
    return f" (e.g. {', '.join(repr(k) for k in keys[:3])})" if keys else ""


def match_groups(a: list[Path], b: list[Path]) -> list[tuple[Path, Path]]:
    """Pair A files with B files: by seed label when every file has one, else by sorted order."""
    if len(a) != len(b):
        raise BadInput(
            f"A matches {len(a)} file(s) but B matches {len(b)}; each seed needs one file on each side"
        )
    la, lb = [seed_label(p) for p in a], [seed_label(p) for p in b]
    if None not in la and None not in lb:
        if sorted(la) != sorted(lb):
            raise BadInput(f"A has seeds {sorted(la)} but B has seeds {sorted(lb)}")
        by_seed = dict(zip(lb, b, strict=True))
        return [(pa, by_seed[s]) for pa, s in zip(a, la, strict=True)]
    return list(zip(a, b, strict=True))


def load_pairs(
    a: list[str] | str, b: list[str] | str, field: str, key: str | None = None, allow_unpaired: bool = False
) -> list[Paired]:
    """One `Paired` per seed for the A and B paths/globs."""
    return [
        pair(read_table(pa, [field], key), read_table(pb, [field], key), field, allow_unpaired)
        for pa, pb in match_groups(expand(a), expand(b))
    ]


def load_tables(patterns: list[str] | str, fields: list[str], key: str | None = None) -> list[ItemTable]:
    """One `ItemTable` per file for the paths/globs (row numbers stand in for a missing default key)."""
    return [read_table(p, fields, key, require_key=False) for p in expand(patterns)]
