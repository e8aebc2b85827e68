"""`halluc eval`: thin CLI over halluc_lmeval (lm_eval and torch load only when a command runs)."""

from __future__ import annotations

from pathlib import Path

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
def run(
    model: str = typer.Option(..., "--model", "-m", help="Base model spec (alias, folder, .gguf, hub id)."),
    adapter: list[str] | None = typer.Option(
        None, "--adapter", help="PEFT adapter folder (repeat); runs post-QLoRA phases."
    ),
    skip_baseline: bool = typer.Option(False, "--skip-baseline", help="With --adapter: only the adapters."),
    tasks: str = typer.Option(..., "--tasks", "-t", help="Comma list of lm-eval task names."),
    seeds: str = typer.Option("0", "--seeds", help="Comma list of seeds (each sets all of lm-eval's seeds)."),
    num_fewshot: int | None = typer.Option(
        None, "--num-fewshot", min=0, help="Few-shot examples (default: the task's)."
    ),
    batch_size: str = typer.Option("1", "--batch-size", help="auto, auto:N or a number."),
    max_batch_size: int | None = typer.Option(
        None, "--max-batch-size", min=1, help="Cap for --batch-size auto."
    ),
    limit: float | None = typer.Option(
        None, "--limit", help="Documents per task (a number, or a fraction < 1): a draft."
    ),
    include_path: Path | None = typer.Option(None, "--include-path", help="Folder of extra task YAMLs."),
    output_root: Path = typer.Option(Path("evals"), "--output-root", help="Root of the results tree."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    load_in_4bit: bool = typer.Option(False, "--load-in-4bit", help="4-bit NF4 base (bitsandbytes)."),
    load_in_8bit: bool = typer.Option(False, "--load-in-8bit", help="8-bit base (bitsandbytes)."),
    resume: bool = typer.Option(False, "--resume", help="Skip cells that are already complete."),
    json_out: bool = options.JSON,
) -> None:
    """Evaluate the base model and each adapter on every task and seed; lm-eval's own files per cell."""
    from halluc_lmeval.sweep import run_sweep

    task_list = [t.strip() for t in tasks.split(",") if t.strip()]
    seed_list = _ints("seeds", seeds)
    size: int | str = int(batch_size) if batch_size.isdigit() else batch_size
    adapters: list[str | None] = ([] if skip_baseline and adapter else [None]) + list(adapter or [])
    lim = None if limit is None else (int(limit) if limit >= 1 else limit)
    total = len(adapters) * len(task_list) * len(seed_list)
    with console.progress("eval cells", total=total) as advance:
        rows = run_sweep(model, adapters, task_list, seed_list, output_root, num_fewshot, size, max_batch_size,
                         lim, include_path, resume, {"device": device, "load_in_4bit": load_in_4bit,
                                                     "load_in_8bit": load_in_8bit}, advance)  # fmt: skip
    if json_out:
        console.print_json({"cells": rows})
        return
    table = []
    for r in rows:
        metrics = ", ".join(f"{k.split(',')[0]} {v:.4f}" for k, v in (r.get("results") or {}).items()
                            if isinstance(v, float) and "stderr" not in k)  # fmt: skip
        table.append((r["cell"], r["status"], f"{r['seconds']:.1f}", metrics))
    console.out.print(console.table("halluc eval run", ["cell", "status", "seconds", "metrics"], table))
