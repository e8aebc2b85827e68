"""Run lm-eval as a library: every (task, seed) of a model and each adapter, one load per model.

Each cell calls `lm_eval.simple_evaluate` with a prebuilt `HFLM`, the shared `TaskManager`, and an
`EvaluationTracker` that writes lm-eval's own `results_*.json` and `samples_*.jsonl` (samples are
always logged) into the cell's folder; a halluc manifest with provenance is written last, so a
cell with a manifest is complete and `--resume` skips it.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from halluc_lmeval.layout import MANIFEST, MANIFEST_SCHEMA, Cell, adapter_phase, cell_dir, is_complete
from ucli import console
from ucli.errors import BadInput


def task_manager(include_path: str | Path | None) -> Any:
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(include_path) if include_path else None)


def check_tasks(manager: Any, tasks: list[str]) -> None:
    """Unknown task names are bad input, with the closest known names suggested."""
    known = set(manager.all_tasks)
    for task in tasks:
        if task not in known:
            close = difflib.get_close_matches(task, sorted(known), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else " (see `lm_eval --tasks list`)"
            raise BadInput(f"unknown lm-eval task '{task}'{hint}")


def evaluate_cell(hflm: Any, manager: Any, cell: Cell, num_fewshot: int | None, out: Path) -> dict[str, Any]:
    """One lm-eval run; the seed sets every seed lm-eval has (python, numpy, torch, few-shot)."""
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker

    out.mkdir(parents=True, exist_ok=True)
    tracker = EvaluationTracker(output_path=str(out / "results.json"))  # files land in `out` itself
    results = simple_evaluate(
        model=hflm, tasks=[cell.task], num_fewshot=num_fewshot, limit=cell.limit, log_samples=True,
        task_manager=manager, evaluation_tracker=tracker, random_seed=cell.seed, numpy_random_seed=cell.seed,
        torch_random_seed=cell.seed, fewshot_random_seed=cell.seed,
    )  # fmt: skip
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for task_name in results["configs"]:
        tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
    return results


def run_sweep(
    model: str,
    adapters: list[str | None],
    tasks: list[str],
    seeds: list[int],
    output_root: str | Path = "evals",
    num_fewshot: int | None = None,
    batch_size: int | str = 1,
    max_batch_size: int | None = None,
    limit: int | float | None = None,
    include_path: str | Path | None = None,
    resume: bool = False,
    load_options: dict[str, Any] | None = None,
    advance: Callable[[int], None] = lambda n: None,
) -> list[dict[str, Any]]:
    """Every (adapter, task, seed) cell; returns one row per cell (path, status, seconds)."""
    try:
        import lm_eval
    except ImportError:
        raise BadInput("halluc eval needs lm-evaluation-harness: pip install 'halluc[eval]'") from None
    from lm_eval.models.huggingface import HFLM

    from ucli.artifacts import write_artifact
    from ucli.models import load_model

    manager = task_manager(include_path)
    check_tasks(manager, tasks)
    rows = []
    for adapter in adapters:
        phase = adapter_phase(adapter)
        cells = [Cell(phase, task, seed, limit) for task in tasks for seed in seeds]
        todo = []
        for cell in cells:
            path = cell_dir(output_root, cell)
            if is_complete(path) and resume:
                rows.append({"cell": str(path), "status": "skipped (done)", "seconds": 0.0})
                advance(1)
            elif path.exists() and any(path.iterdir()) and not resume:
                raise BadInput(f"{path}: already has results; pass --resume to skip finished cells")
            else:
                todo.append((cell, path))
        if not todo:
            continue
        lm = load_model(model, adapter=adapter, **(load_options or {}))  # once per (base, adapter)
        hflm = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=batch_size,
                    max_batch_size=max_batch_size or 64)  # fmt: skip
        for cell, path in todo:
            start = time.monotonic()
            for stale in path.glob("*") if path.exists() else []:  # an interrupted cell starts over
                stale.unlink()
            results = evaluate_cell(hflm, manager, cell, num_fewshot, path)
            seconds = time.monotonic() - start
            files = sorted(p.name for p in path.iterdir())
            write_artifact(
                path / MANIFEST, MANIFEST_SCHEMA, 1,
                {"phase": cell.phase, "adapter": adapter, "task": cell.task, "seed": cell.seed, "limit": cell.limit,
                 "draft": cell.draft, "num_fewshot": num_fewshot, "lm_eval_version": lm_eval.__version__,
                 "results": results["results"].get(cell.task, {}), "files": files, "seconds": seconds},
                model=lm.fingerprint, seed=cell.seed,
                config={"model": model, "adapter": adapter, "task": cell.task, "batch_size": batch_size,
                        "include_path": str(include_path) if include_path else None},
            )  # fmt: skip
            rows.append({"cell": str(path), "status": "done", "seconds": seconds,
                         "results": results["results"].get(cell.task, {})})  # fmt: skip
            advance(1)
        del hflm, lm
    if any(r["status"] == "done" for r in rows) and limit is not None:
        console.warn(f"--limit {limit}: these are drafts, kept under {Path(output_root) / 'drafts'}")
    return rows
