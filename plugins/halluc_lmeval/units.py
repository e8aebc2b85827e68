"""One unit of an lm-eval sweep: a (base, adapter) model loaded once and its task x seed cells,
wherever it runs (this process, a Ray task, a SLURM array job); and the config every unit reads."""

from __future__ import annotations

import difflib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from halluc_lmeval.layout import MANIFEST, MANIFEST_SCHEMA, Cell
from ucli.errors import BadInput
from ucli.models import LoadOptions


def task_manager(include_path: str | Path | None) -> Any:
    """lm-eval's task index with `include_path`'s tasks. Indexing every task takes lm-eval 10-15 s,
    so one index is kept per process for each folder as it stands (its files' names, sizes and
    times): a sweep, and every later sweep in the same process, reuses it; an edited folder is
    indexed again."""
    if include_path is None:
        return _indexed(None, ())
    folder = Path(include_path)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "no such folder"
        raise BadInput(f"--include-path {include_path}: {what} (expected a folder of task YAMLs)")
    stamp = tuple(
        sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file())
    )
    return _indexed(str(include_path), stamp)


@functools.lru_cache(maxsize=4)
def _indexed(include_path: str | None, stamp: tuple) -> Any:
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path)


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


@dataclass(frozen=True)
class SweepConfig:
    """One `eval run`: the base model and its adapters (None: the base itself), tasks x seeds."""

    model: str
    tasks: tuple[str, ...]
    adapters: tuple[str | None, ...] = (None,)
    seeds: tuple[int, ...] = (0,)
    root: Path = Path("evals")
    num_fewshot: int | None = None
    batch_size: int | str = 1  # or "auto": lm-eval finds the largest that fits
    max_batch_size: int | None = None
    limit: int | float | None = None  # a draft: N documents, or a share of them
    include_path: Path | None = None
    load: LoadOptions = field(default_factory=LoadOptions)  # its adapter is set per unit


def run_unit(
    config: SweepConfig,
    adapter: str | None,
    todo: list[tuple[Cell, Path]],
    manager: Any,
    advance: Callable[[int], None],
) -> list[dict[str, Any]]:
    """The cells of one (base, adapter): the model loads once; each cell's manifest is written last."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    from ucli.artifacts import write_artifact
    from ucli.models import load_model

    lm = load_model(config.model, config.load.model_copy(update={"adapter": adapter}))
    hflm = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=config.batch_size,
                max_batch_size=config.max_batch_size or 64)  # fmt: skip
    rows = []
    for cell, path in todo:
        start = time.monotonic()
        for stale in path.glob("*") if path.exists() else []:  # an interrupted cell starts over
            stale.unlink()
        results = evaluate_cell(hflm, manager, cell, config.num_fewshot, path)
        seconds = time.monotonic() - start
        files = sorted(p.name for p in path.iterdir())
        write_artifact(
            path / MANIFEST, MANIFEST_SCHEMA, 1,
            {"phase": cell.phase, "adapter": adapter, "task": cell.task, "seed": cell.seed, "limit": cell.limit,
             "draft": cell.draft, "num_fewshot": config.num_fewshot, "lm_eval_version": lm_eval.__version__,
             "results": results["results"].get(cell.task, {}), "files": files, "seconds": seconds},
            model=lm.fingerprint, seed=cell.seed,
            config={"model": config.model, "adapter": adapter, "task": cell.task, "batch_size": config.batch_size,
                    "include_path": str(config.include_path) if config.include_path else None},
        )  # fmt: skip
        rows.append({"cell": str(path), "status": "done", "seconds": seconds,
                     "results": results["results"].get(cell.task, {})})  # fmt: skip
        advance(1)
    return rows
