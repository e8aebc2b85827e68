"""Run a statistic per seed (one file or file pair each) and on all items pooled; JSON-safe output."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from halluc_stats.inputs import ItemTable, Paired
from ucli.artifacts import strict_json


def paired_report(test: str, fn: Callable[..., Any], pairs: list[Paired], field: str, **kwargs: Any) -> dict:
    """`fn(a, b, **kwargs)` on each seed's pairs, and on all pairs pooled when there are several seeds."""
    groups = [
        {
            "label": p.label,
            "files": [str(x) for x in p.paths],
            "n_pairs": len(p.keys),
            "only_a": len(p.only_a),
            "only_b": len(p.only_b),
            **strict_json(fn(p.a, p.b, **kwargs)),
        }
        for p in pairs
    ]
    pooled = None
    if len(pairs) > 1:
        a = np.concatenate([p.a for p in pairs])
        b = np.concatenate([p.b for p in pairs])
        pooled = {"label": "pooled", "files": [], "n_pairs": int(a.size), **strict_json(fn(a, b, **kwargs))}
    return {"test": test, "field": field, "groups": groups, "pooled": pooled}


def table_report(
    test: str, fn: Callable[..., Any], tables: list[ItemTable], fields: list[str], **kwargs: Any
) -> dict:
    """`fn(*columns, **kwargs)` on each file, and on all rows pooled when there are several files."""
    groups = [
        {
            "label": t.label,
            "files": [str(t.path)],
            "n_items": len(t.keys),
            **strict_json(fn(*(t.values[f] for f in fields), **kwargs)),
        }
        for t in tables
    ]
    pooled = None
    if len(tables) > 1:
        cols = [np.concatenate([t.values[f] for t in tables]) for f in fields]
        pooled = {
            "label": "pooled",
            "files": [],
            "n_items": int(cols[0].size),
            **strict_json(fn(*cols, **kwargs)),
        }
    return {"test": test, "fields": fields, "groups": groups, "pooled": pooled}


def rows(report: dict) -> list[dict]:
    """Each seed's result, then the pooled one."""
    return [*report["groups"], *([report["pooled"]] if report["pooled"] else [])]
