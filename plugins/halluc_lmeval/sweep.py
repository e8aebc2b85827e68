"""Run lm-eval as a library: every (task, seed) of a model and each adapter, one load per model.

Each cell calls `lm_eval.simple_evaluate` with a prebuilt `HFLM`, the shared `TaskManager`, and an
`EvaluationTracker` that writes lm-eval's own `results_*.json` and `samples_*.jsonl` (samples are
always logged) into the cell's folder; a halluc manifest with provenance is written last, so a
cell with a manifest is complete and `--resume` skips it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from halluc_lmeval.layout import Cell, adapter_phase, cell_dir, is_complete
from halluc_lmeval.units import SweepConfig, check_tasks, run_unit, task_manager
from ucli import console
from ucli.errors import BadInput


def run_sweep(
    *, config: SweepConfig, resume: bool = False, advance: Callable[[int], None] = lambda n: None,
    executor: Any = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Every (adapter, task, seed) cell; returns one row per cell (path, status, seconds). Each
    (base, adapter) is one unit, run here or, on `executor` (`ucli.executor.Executor`), as a Ray
    task or a SLURM array job (`halluc_lmeval.dispatch`)."""
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        raise BadInput("halluc eval needs lm-evaluation-harness: pip install 'halluc[eval]'") from None

    manager = task_manager(config.include_path)
    check_tasks(manager, list(config.tasks))
    rows: list[dict[str, Any]] = []
    units = []
    for adapter in config.adapters:
        phase = adapter_phase(adapter)
        todo = []
        for cell in (Cell(phase, task, seed, config.limit) for task in config.tasks for seed in config.seeds):
            path = cell_dir(config.root, cell)
            if is_complete(path) and resume:
                rows.append({"cell": str(path), "status": "skipped (done)", "seconds": 0.0})
                advance(1)
            elif path.exists() and any(path.iterdir()) and not resume:
                raise BadInput(f"{path}: already has results; pass --resume to skip finished cells")
            else:
                todo.append((cell, path))
        if todo:
            units.append((adapter, todo))
    if executor is not None and executor.kind != "local":
        from halluc_lmeval.dispatch import run_units

        rows += run_units(config, units, executor, advance)
    else:
        for adapter, todo in units:
            rows += run_unit(config, adapter, todo, manager, advance)
    if any(r["status"] == "done" for r in rows) and config.limit is not None:
        console.warn(f"--limit {config.limit}: these are drafts, kept under {Path(config.root) / 'drafts'}")
    return rows
