"""Read a results tree back: tidy metric rows, mean +- sd over seeds, and paired phase comparisons.

Only complete cells (with a manifest) count. Drafts (`--limit` runs) stay out unless asked for,
and a row says whether it is one.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from halluc_lmeval.layout import MANIFEST, MANIFEST_SCHEMA
from ucli import console
from ucli.artifacts import load_artifact
from ucli.errors import BadInput

SKIP_KEYS = ("alias", "name", "sample_len", " ")


@dataclass
class CellResult:
    path: Path
    phase: str
    task: str
    seed: int
    draft: bool
    n: int | None
    metrics: dict[str, tuple[float, float | None]]  # "acc,none" -> (value, stderr)

    @property
    def adapter(self) -> str:
        return self.phase.split("/", 1)[1] if self.phase.startswith("postqlora/") else ""

    def samples_file(self) -> Path:
        found = sorted(self.path.glob(f"samples_{self.task}_*.jsonl"))
        if not found:
            raise BadInput(f"{self.path}: no samples_{self.task}_*.jsonl (per-sample logs are needed)")
        return found[-1]


def read_cells(root: str | Path, include_drafts: bool = False) -> list[CellResult]:
    """Every complete cell under `root` (drafts only with `include_drafts`)."""
    root = Path(root)
    if not root.is_dir():
        raise BadInput(f"{root}: no results tree here")
    cells = []
    for manifest in sorted(root.rglob(MANIFEST)):
        doc = load_artifact(manifest, MANIFEST_SCHEMA)
        if doc.get("draft") and not include_drafts:
            continue
        results = sorted(manifest.parent.glob("results_*.json"))
        if not results:
            console.warn(f"{manifest.parent}: manifest without results_*.json; skipped")
            continue
        task_results = json.loads(results[-1].read_text())["results"].get(doc["task"], {})
        metrics = {}
        for key, value in task_results.items():
            if "_stderr" in key or key in SKIP_KEYS or not isinstance(value, (int, float)):
                continue
            metric, _, filt = key.partition(",")
            stderr = task_results.get(f"{metric}_stderr,{filt}")
            metrics[key] = (float(value), float(stderr) if isinstance(stderr, (int, float)) else None)
        cells.append(CellResult(manifest.parent, doc["phase"], doc["task"], int(doc["seed"]), bool(doc.get("draft")),
                                task_results.get("sample_len"), metrics))  # fmt: skip
    if not cells:
        raise BadInput(
            f"{root}: no complete cells" + ("" if include_drafts else " (drafts need --include-drafts)")
        )
    return cells


def tidy_rows(cells: list[CellResult]) -> list[dict[str, Any]]:
    """One row per (phase, adapter, task, metric, seed): value, stderr, n, draft."""
    return [
        {"phase": c.phase, "adapter": c.adapter, "task": c.task, "metric": metric, "seed": c.seed, "value": value,
         "stderr": stderr, "n": c.n, "draft": c.draft}
        for c in cells for metric, (value, stderr) in sorted(c.metrics.items())
    ]  # fmt: skip


def missing_seeds(cells: list[CellResult]) -> list[str]:
    """Per (phase, task), the seeds other phases of that task have and it lacks."""
    seeds_by_task: dict[str, set[int]] = defaultdict(set)
    have: dict[tuple[str, str], set[int]] = defaultdict(set)
    for c in cells:
        seeds_by_task[c.task].add(c.seed)
        have[(c.phase, c.task)].add(c.seed)
    return [
        f"{phase}/{task}: missing seed(s) {', '.join(map(str, sorted(seeds_by_task[task] - seeds)))}"
        for (phase, task), seeds in sorted(have.items())
        if seeds_by_task[task] - seeds
    ]


def mean_sd(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample sd over seeds per (phase, task, metric); mixed drafts and finals are flagged."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["phase"], r["task"], r["metric"])].append(r)
    out = []
    for (phase, task, metric), rs in sorted(groups.items()):
        values = [r["value"] for r in rs]
        drafts = {r["draft"] for r in rs}
        out.append({"phase": phase, "task": task, "metric": metric, "seeds": sorted(r["seed"] for r in rs),
                    "mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else math.nan,
                    "mixed_drafts": len(drafts) > 1})  # fmt: skip
    return out


def _by_phase(cells: list[CellResult], phase: str) -> dict[tuple[str, int], CellResult]:
    found = {(c.task, c.seed): c for c in cells if c.phase == phase}
    if not found:
        phases = sorted({c.phase for c in cells})
        raise BadInput(f"no cells for phase '{phase}' (found: {', '.join(phases)})")
    return found


def _paired(pre: CellResult, post: CellResult, metric: str) -> tuple[list[float], list[float]]:
    """Per-sample values of `metric` paired by doc_id with doc_hash checked: `halluc stats`' reader,
    so `eval compare` and `stats mcnemar` on the same samples files pair the same documents."""
    from halluc_stats import load_pairs

    [pairs] = load_pairs(str(pre.samples_file()), str(post.samples_file()), metric, allow_unpaired=True)
    unpaired = len(pairs.only_a) + len(pairs.only_b)
    if unpaired:
        console.warn(f"{pre.task} seed {pre.seed}: {unpaired} document(s) in one phase only")
    return [float(v) for v in pairs.a], [float(v) for v in pairs.b]


def compare(cells: list[CellResult], pre: str, post: str, seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Deltas post - pre per task and metric (per seed and the mean over shared seeds), and a paired
    test per seed on the per-sample logs: McNemar for 0/1 metrics, paired bootstrap otherwise."""
    from halluc_stats import mcnemar, paired_bootstrap

    a, b = _by_phase(cells, pre), _by_phase(cells, post)
    per_seed, means = [], []
    for task in sorted({t for t, _ in a} & {t for t, _ in b}):
        seeds = sorted({s for t, s in a if t == task} & {s for t, s in b if t == task})
        metrics = sorted(set(a[(task, seeds[0])].metrics) & set(b[(task, seeds[0])].metrics)) if seeds else []
        for metric in metrics:
            deltas = []
            for s in seeds:
                x, y = a[(task, s)], b[(task, s)]
                delta = y.metrics[metric][0] - x.metrics[metric][0]
                deltas.append(delta)
                name = metric.split(",")[0]
                va, vb = _paired(x, y, name)
                binary = set(va) | set(vb) <= {0.0, 1.0}
                row = {"task": task, "metric": metric, "seed": s, "pre": x.metrics[metric][0],
                       "post": y.metrics[metric][0], "delta": delta, "n_pairs": len(va)}  # fmt: skip
                if binary:
                    t = mcnemar(va, vb)
                    row.update(test="mcnemar", p_value=t.p_value, b=t.b, c=t.c)
                else:
                    t = paired_bootstrap(va, vb, seed=seed)
                    row.update(test="paired_bootstrap", p_value=t.p_value, ci_low=t.ci_low, ci_high=t.ci_high)
                per_seed.append(row)
            means.append({"task": task, "metric": metric, "seeds": seeds, "mean_delta": statistics.fmean(deltas),
                          "sd_delta": statistics.stdev(deltas) if len(deltas) > 1 else math.nan})  # fmt: skip
    if not per_seed:
        raise BadInput(f"'{pre}' and '{post}' share no (task, seed) cell to compare")
    return {"per_seed": per_seed, "mean": means}
