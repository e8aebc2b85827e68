"""`halluc eval`: thin CLI over halluc_lmeval (lm_eval and torch load only when a command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ucli import console, options

app = typer.Typer(help="lm-evaluation-harness sweeps: tasks x seeds x adapters, one model load each.",
                  no_args_is_help=True)  # fmt: skip


def _ints(name: str, raw: str) -> list[int]:
    from ucli.errors import BadInput

    try:
        return [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise BadInput(f"--{name}: expected comma-separated whole numbers, got '{raw}'") from None


@app.command()
@options.bundled
def run(
    model: str = typer.Option(..., "--model", "-m", help="Base model spec (alias, folder, .gguf, hub id)."),
    adapter: list[Path] | None = options.ADAPTER,
    skip_baseline: bool = typer.Option(False, "--skip-baseline", help="With --adapter: only the adapters."),
    tasks: str = typer.Option(..., "--tasks", "-t", help="Comma list of lm-eval task names."),
    seeds: str = typer.Option("0", "--seeds", help="Comma list of seeds (each sets all of lm-eval's seeds)."),
    num_fewshot: int | None = typer.Option(
        None, "--num-fewshot", min=0, help="Few-shot examples (default: the task's)."
    ),
    batch_size: int = options.batch_size(1, "Documents per forward pass (see --auto-batch-size)."),
    auto_batch_size: bool = typer.Option(
        False,
        "--auto-batch-size",
        help="Let lm-eval find the largest batch that fits (up to --max-batch-size).",
    ),
    max_batch_size: int | None = typer.Option(
        None, "--max-batch-size", min=1, help="Cap for --auto-batch-size."
    ),
    limit: int | None = options.limit("First N documents per task (lm-eval's order): a draft."),
    limit_fraction: float | None = typer.Option(
        None, "--limit-fraction", min=0, max=1, help="A share of each task's documents instead: a draft."
    ),
    include_path: Path | None = typer.Option(None, "--include-path", help="Folder of extra task YAMLs."),
    output_root: Path = typer.Option(Path("evals"), "--root", help="Root of the results tree."),
    load: Any = options.LOAD.without("adapter"),
    resume: bool = options.RESUME,
    runner: Any = options.SCALE_OUT_SLURM,
    json_out: bool = options.JSON,
) -> None:
    """Evaluate the base model and each adapter on every task and seed; lm-eval's own files per cell
    (`--executor ray|slurm`: one Ray task or SLURM array job per base or adapter)."""
    from halluc_lmeval.sweep import run_sweep
    from halluc_lmeval.units import SweepConfig
    from ucli.errors import BadInput

    task_list = [t.strip() for t in tasks.split(",") if t.strip()]
    seed_list = _ints("seeds", seeds)
    size: int | str = "auto" if auto_batch_size else batch_size
    adapters: list[str | None] = ([] if skip_baseline and adapter else [None]) + [
        str(a) for a in adapter or []
    ]
    if limit is not None and limit_fraction is not None:
        raise BadInput("give --limit or --limit-fraction, not both")
    lim = limit if limit is not None else limit_fraction
    total = len(adapters) * len(task_list) * len(seed_list)
    config = SweepConfig(model=model, tasks=tuple(task_list), adapters=tuple(adapters), seeds=tuple(seed_list),
                         root=output_root, num_fewshot=num_fewshot, batch_size=size, max_batch_size=max_batch_size,
                         limit=lim, include_path=include_path, load=load)  # fmt: skip
    with console.progress("eval cells", total=total) as advance:
        rows = run_sweep(config=config, resume=resume, advance=advance, executor=runner)
    if json_out:
        console.print_json({"cells": rows})
        return
    table = []
    for r in rows:
        metrics = ", ".join(f"{k.split(',')[0]} {v:.4f}" for k, v in (r.get("results") or {}).items()
                            if isinstance(v, float) and "stderr" not in k)  # fmt: skip
        table.append((r["cell"], r["status"], f"{r['seconds']:.1f}", metrics))
    console.out.print(console.table("halluc eval run", ["cell", "status", "seconds", "metrics"], table))


def _write_compare(out: Path, result: dict[str, Any], **prov: Any) -> None:
    """The per-seed CSV and, beside it, the mean over seeds, each with its provenance sidecar."""
    from ucli.artifacts import write_table

    order = [
        "task",
        "metric",
        "seed",
        "pre",
        "post",
        "delta",
        "n_pairs",
        "test",
        "p_value",
        "b",
        "c",
        "ci_low",
        "ci_high",
    ]
    write_table(out, result["per_seed"], "halluc.eval.compare",
                fieldnames=sorted({k for r in result["per_seed"] for k in r}, key=order.index), **prov)  # fmt: skip
    means = [{**m, "seeds": ",".join(map(str, m["seeds"]))} for m in result["mean"]]
    write_table(out.with_name(out.stem + "_mean.csv"), means, "halluc.eval.compare-mean", **prov)


ROOT = typer.Option(Path("evals"), "--root", help="Root of the results tree.")
INCLUDE_DRAFTS = typer.Option(
    False, "--include-drafts", help="Count --limit runs (drafts) too; they are flagged."
)


@app.command()
def summarize(
    root: Path = ROOT,
    include_drafts: bool = INCLUDE_DRAFTS,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Tidy CSV (default: <root>/summary.csv)."
    ),
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """One tidy CSV (phase, adapter, task, metric, seed, value, stderr, n) and mean +- sd over seeds."""
    from halluc_lmeval.analysis import mean_sd, missing_seeds, read_cells, tidy_rows
    from ucli.artifacts import check_output_file, write_table

    out = check_output_file(output or root / "summary.csv", force=force)
    cells = read_cells(root, include_drafts)
    rows = tidy_rows(cells)
    write_table(out, rows, "halluc.eval.summary", fieldnames=["phase", "adapter", "task", "metric", "seed", "value",
                "stderr", "n", "draft"], config={"root": str(root), "include_drafts": include_drafts})  # fmt: skip
    gaps = missing_seeds(cells)
    for gap in gaps:
        console.warn(gap)
    stats = mean_sd(rows)
    for s in stats:
        if s["mixed_drafts"]:
            console.warn(f"{s['phase']}/{s['task']}: drafts and full runs mixed in one mean")
    if json_out:
        console.print_json({"output": str(out), "rows": len(rows), "missing": gaps, "summary": stats})
        return
    table = [(s["phase"], s["task"], s["metric"], ",".join(map(str, s["seeds"])),
              f"{s['mean']:.4f} ± {s['sd']:.4f}" if s["sd"] == s["sd"] else f"{s['mean']:.4f}")
             for s in stats]  # fmt: skip
    console.out.print(
        console.table(f"eval summary: {root}", ["phase", "task", "metric", "seeds", "mean ± sd"], table)
    )
    console.out.print(f"wrote {out} ({len(rows)} rows)")


@app.command("compare")
def compare_(
    pre: str = typer.Option(..., "--pre", help="Phase before, e.g. baseline."),
    post: str = typer.Option(..., "--post", help="Phase after, e.g. postqlora/NAME."),
    root: Path = ROOT,
    include_drafts: bool = INCLUDE_DRAFTS,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Per-seed CSV (default: <root>/compare_<post>.csv)."
    ),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """Deltas post - pre per task and metric, with a paired test per seed on the per-sample logs."""
    from halluc_lmeval.analysis import compare, read_cells
    from ucli.artifacts import check_output_file

    out = check_output_file(output or root / f"compare_{post.replace('/', '_')}.csv", force=force)
    check_output_file(out.with_name(out.stem + "_mean.csv"), force=force)
    result = compare(read_cells(root, include_drafts), pre, post, seed)
    _write_compare(out, result, seed=seed, config={"root": str(root), "pre": pre, "post": post,
                                                   "include_drafts": include_drafts})  # fmt: skip
    if json_out:
        console.print_json({"output": str(out), **result})
        return
    table = [(r["task"], r["metric"], r["seed"], f"{r['pre']:.4f}", f"{r['post']:.4f}", f"{r['delta']:+.4f}",
              r["test"], f"{r['p_value']:.3g}") for r in result["per_seed"]]  # fmt: skip
    console.out.print(
        console.table(
            f"{post} vs {pre}",
            ["task", "metric", "seed", "pre", "post", "delta", "test", "p"],
            table,
            key_columns=3,
        )
    )
    for m in result["mean"]:
        console.out.print(
            f"{m['task']} {m['metric']}: mean delta {m['mean_delta']:+.4f} over seeds {m['seeds']}"
        )
    console.out.print(f"wrote {out}")


EXPORT_FILES = ("matrix.md", "recipes.md", "recipes.csv", "deltas.csv")


@app.command()
def export(
    root: Path = ROOT,
    pre: str = typer.Option("baseline", "--pre", help="The phase deltas are taken against."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Folder (default: <root>/export)."),
    include_drafts: bool = INCLUDE_DRAFTS,
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """The experiment matrix (markdown), the adapter recipe table (markdown + CSV) and the delta CSV."""
    from halluc_lmeval.analysis import read_cells
    from halluc_lmeval.reports import delta_summary, matrix_markdown, recipes
    from ucli.artifacts import check_output_file, write_table, write_text

    out = output or root / "export"
    for name in EXPORT_FILES:
        check_output_file(out / name, force=force)
    cells = read_cells(root, include_drafts)
    write_text(out / "matrix.md", matrix_markdown(cells))
    rows = recipes(cells)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    table = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)] if rows else ["(no adapters)"]
    table += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    write_text(out / "recipes.md", "\n".join(table) + "\n")
    prov = {"config": {"root": str(root), "pre": pre, "include_drafts": include_drafts}}
    write_table(out / "recipes.csv", rows, "halluc.eval.recipes", fieldnames=keys, **prov)
    deltas = delta_summary(cells, pre) if any(c.phase != pre for c in cells) else []
    write_table(out / "deltas.csv", deltas, "halluc.eval.deltas",
                fieldnames=["phase", "adapter", "task", "metric", "seeds", "mean_delta", "sd_delta"], **prov)  # fmt: skip
    files = [str(out / name) for name in EXPORT_FILES]
    console.result(
        {"output": str(out), "files": files, "adapters": len(rows), "deltas": len(deltas)},
        json_out,
        lambda: f"wrote matrix.md, recipes.md, recipes.csv and deltas.csv ({len(deltas)} rows) to {out}",
    )


plot = typer.Typer(help="Figures from a results tree.", no_args_is_help=True)
app.add_typer(plot, name="plot")


@plot.command()
def tradeoff(
    root: Path = ROOT,
    x_task: str = typer.Option("truthfulqa_mc2", "--x-task", help="Task on the x axis."),
    y_task: str = typer.Option("arc_easy", "--y-task", help="Task on the y axis."),
    metric: str = typer.Option("acc", "--metric", help="Metric of both tasks."),
    pre: str = typer.Option("baseline", "--pre", help="The phase deltas are taken against."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Figure path without suffix (PNG and SVG)."
    ),
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """Delta of one task against delta of another, per adapter, with seed sd as error bars."""
    from halluc_lmeval.analysis import read_cells
    from halluc_lmeval.reports import delta_summary, plot_tradeoff
    from ucli.artifacts import check_output_file

    stem = output or root / "tradeoff"
    for suffix in (".png", ".svg"):
        check_output_file(stem.with_suffix(suffix), force=force)
    files = plot_tradeoff(delta_summary(read_cells(root), pre), x_task, y_task, metric, stem)
    console.result(
        {"files": [str(f) for f in files]}, json_out, lambda: "wrote " + " and ".join(map(str, files))
    )


@app.command()
def qualitative(
    pre: str = typer.Option(..., "--pre", help="Phase before, e.g. baseline."),
    post: str = typer.Option(..., "--post", help="Phase after, e.g. postqlora/NAME."),
    root: Path = ROOT,
    n: int = typer.Option(20, "--limit", min=1, help="Items per task at most (in the logs' order)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Markdown file (default: <root>/qualitative_<post>.md)."
    ),
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """A markdown file of items where the two phases choose differently: question, choices, target, scores."""
    from halluc_lmeval.analysis import read_cells
    from halluc_lmeval.reports import qualitative_markdown
    from ucli.artifacts import check_output_file, write_text

    out = check_output_file(output or root / f"qualitative_{post.replace('/', '_')}.md", force=force)
    write_text(out, qualitative_markdown(read_cells(root), pre, post, n))
    console.result(
        {"output": str(out), "pre": pre, "post": post, "limit": n}, json_out, lambda: f"wrote {out}"
    )


options.renamed("eval run", {"--output-root": "--root", "--batch-size auto": "--auto-batch-size",
                             "--limit <fraction>": "--limit-fraction <fraction>"})  # fmt: skip
options.renamed("eval qualitative", {"--n": "--limit"})
