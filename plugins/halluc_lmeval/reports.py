"""What a study writes up: the experiment matrix, the adapter recipe table, per-adapter deltas, the
trade-off figure, and the items two phases disagree on."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from halluc_lmeval.analysis import CellResult, compare
from halluc_lmeval.layout import MANIFEST, MANIFEST_SCHEMA
from ucli.artifacts import load_artifact
from ucli.errors import BadInput

RECIPE_KEYS = ("r", "lora_alpha", "lora_dropout", "target_modules", "base_model_name_or_path")


def matrix_markdown(cells: list[CellResult]) -> str:
    """Phases x tasks, each cell listing the seeds that are complete."""
    tasks = sorted({c.task for c in cells})
    phases = sorted({c.phase for c in cells}, key=lambda p: (p != "baseline", p))
    seeds: dict[tuple[str, str], list[int]] = defaultdict(list)
    for c in cells:
        seeds[(c.phase, c.task)].append(c.seed)
    lines = ["| phase | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for phase in phases:
        row = [", ".join(map(str, sorted(seeds[(phase, t)]))) or "-" for t in tasks]
        lines.append(f"| {phase} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def recipes(cells: list[CellResult]) -> list[dict[str, Any]]:
    """Each adapter's recorded recipe: its PEFT config, plus halluc's recipe file when it has one."""
    rows = []
    seen = set()
    for c in cells:
        if not c.adapter or c.adapter in seen:
            continue
        seen.add(c.adapter)
        manifest = load_artifact(c.path / MANIFEST, MANIFEST_SCHEMA)
        folder = Path(manifest.get("adapter") or "")
        row: dict[str, Any] = {"adapter": c.adapter, "path": str(folder)}
        config = folder / "adapter_config.json"
        if config.is_file():
            doc = json.loads(config.read_text())
            row.update({k: doc.get(k) for k in RECIPE_KEYS})
            if isinstance(row.get("target_modules"), list):
                row["target_modules"] = ",".join(sorted(row["target_modules"]))
        recipe = folder / "recipe.json"  # written by `halluc finetune qlora`
        if recipe.is_file():
            from halluc_finetune import RECIPE_SCHEMA

            doc = load_artifact(recipe, RECIPE_SCHEMA)
            row.update({f"recipe.{k}": v for k, v in doc.items() if not isinstance(v, (dict, list))})
        rows.append(row)
    return rows


def delta_summary(cells: list[CellResult], pre: str = "baseline") -> list[dict[str, Any]]:
    """Per adapter, task and metric: mean and sd over seeds of post - pre (the rows plots use)."""
    rows = []
    for post in sorted({c.phase for c in cells if c.phase != pre}):
        for m in compare(cells, pre, post)["mean"]:
            rows.append({"phase": post, "adapter": post.split("/", 1)[-1], "task": m["task"], "metric": m["metric"],
                         "seeds": len(m["seeds"]), "mean_delta": m["mean_delta"], "sd_delta": m["sd_delta"]})  # fmt: skip
    return rows


def _pick(rows: list[dict[str, Any]], task: str, metric: str) -> dict[str, dict[str, Any]]:
    found = {r["adapter"]: r for r in rows if r["task"] == task and r["metric"].split(",")[0] == metric}
    if not found:
        tasks = sorted({r["task"] for r in rows})
        raise BadInput(f"no deltas for task '{task}' metric '{metric}' (tasks: {', '.join(tasks)})")
    return found


def plot_tradeoff(
    rows: list[dict[str, Any]], x_task: str, y_task: str, metric: str, path: str | Path
) -> list[Path]:
    """Delta of `x_task` against delta of `y_task` per adapter, seed sd as error bars; PNG and SVG."""
    from ucli.artifacts import new_figure, write_figure

    xs, ys = _pick(rows, x_task, metric), _pick(rows, y_task, metric)
    adapters = sorted(set(xs) & set(ys))
    if not adapters:
        raise BadInput(f"no adapter has deltas for both {x_task} and {y_task}")
    written = []
    for fmt in ("png", "svg"):
        fig, ax = new_figure(figsize=(6, 5), dpi=120)
        ax.axhline(0, color="grey", lw=0.8)
        ax.axvline(0, color="grey", lw=0.8)
        for a in adapters:
            x, y = xs[a], ys[a]
            ax.errorbar(x["mean_delta"], y["mean_delta"], xerr=_bar(x["sd_delta"]), yerr=_bar(y["sd_delta"]),
                        fmt="o", capsize=3)  # fmt: skip
            ax.annotate(
                a, (x["mean_delta"], y["mean_delta"]), textcoords="offset points", xytext=(5, 5), fontsize=8
            )
        ax.set_xlabel(f"Δ {x_task} {metric} (post - baseline)")
        ax.set_ylabel(f"Δ {y_task} {metric} (post - baseline)")
        ax.set_title("adapters: trade-off (mean over seeds, bars: sd)")
        written.append(write_figure(fig, Path(path).with_suffix(f".{fmt}"), fmt))
    return written


def _bar(sd: float) -> float | None:
    return None if sd is None or math.isnan(sd) else sd


def _choices(sample: dict[str, Any]) -> list[str]:
    return [arg[1].strip() for arg in sample["arguments"]] if "arguments" in sample else []


def _question(sample: dict[str, Any]) -> str:
    doc = sample.get("doc", {})
    if isinstance(doc.get("question"), str):
        return doc["question"]
    context = sample["arguments"][0][0] if sample.get("arguments") else ""
    return context.strip().splitlines()[-1] if context.strip() else ""


def disagreements(pre: CellResult, post: CellResult, n: int) -> list[dict[str, Any]]:
    """Items (by doc_id) where the two phases pick different answers (argmax log-likelihood)."""

    def load(cell: CellResult) -> dict[int, dict[str, Any]]:
        return {int(s["doc_id"]): s for s in map(json.loads, cell.samples_file().read_text().splitlines())}

    a, b = load(pre), load(post)
    out = []
    for doc_id in sorted(set(a) & set(b)):
        sa, sb = a[doc_id], b[doc_id]
        la = [float(r[0][0]) for r in sa["resps"]]
        lb = [float(r[0][0]) for r in sb["resps"]]
        if not la or max(range(len(la)), key=la.__getitem__) == max(range(len(lb)), key=lb.__getitem__):
            continue
        out.append({"doc_id": doc_id, "question": _question(sa), "choices": _choices(sa), "target": sa.get("target"),
                    "pre_choice": max(range(len(la)), key=la.__getitem__), "post_choice": max(range(len(lb)), key=lb.__getitem__),
                    "pre_scores": la, "post_scores": lb})  # fmt: skip
        if len(out) >= n:
            break
    return out


def qualitative_markdown(cells: list[CellResult], pre: str, post: str, n: int) -> str:
    by = {(c.phase, c.task, c.seed): c for c in cells}
    pairs = sorted((t, s) for (p, t, s) in by if p == pre and (post, t, s) in by)
    if not pairs:
        raise BadInput(f"'{pre}' and '{post}' share no (task, seed) cell")
    lines = [f"# Where {post} and {pre} disagree", ""]
    for task in sorted({t for t, _ in pairs}):
        seed = min(s for t, s in pairs if t == task)
        items = disagreements(by[(pre, task, seed)], by[(post, task, seed)], n)
        lines += [f"## {task} (seed {seed}): {len(items)} item(s) shown", ""]
        for it in items:
            lines.append(f"### doc {it['doc_id']}: {it['question']}")
            for i, choice in enumerate(it["choices"]):
                marks = [m for m, k in (("target", it["target"]), (pre, it["pre_choice"]), (post, it["post_choice"]))
                         if str(k) == str(i)]  # fmt: skip
                lines.append(f"- {i}. {choice}  (ll {pre} {it['pre_scores'][i]:.3f}, {post} {it['post_scores'][i]:.3f})"
                             + (f"  ← {', '.join(marks)}" if marks else ""))  # fmt: skip
            lines.append("")
    return "\n".join(lines)
