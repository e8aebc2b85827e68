"""`eval run`'s units off this process: one unit per (base, adapter), its task x seed cells inside
(the model still loads once per unit), as Ray tasks or as a SLURM job array through submitit.

A unit writes its own cells (lm-eval's files, then the manifest last), so cells are never shared
between writers and `--resume` stays cell-exact wherever a unit ran. Units run in the driver's
working directory (lm-eval resolves task data paths from it): on a cluster that is a shared
filesystem, as SLURM users have anyway.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ucli import console
from ucli.errors import HallucError

Unit = tuple[str | None, list[tuple[Any, Path]]]  # (adapter or None, its unfinished (cell, folder)s)


def unit_job(config: Any, adapter: str | None, todo: list[tuple[Any, Path]], cwd: str, threads: int | None,
             gpus: int) -> list[dict[str, Any]]:  # fmt: skip
    """One unit in its own process (a Ray task, an array job): its cells' rows. Given several GPUs,
    the unit's model spreads over them (`ucli.models.spanning_gpus`)."""
    from halluc_lmeval.units import run_unit, task_manager
    from ucli.models import spanning_gpus

    os.chdir(cwd)
    if threads:
        import torch

        torch.set_num_threads(threads)
    with spanning_gpus(gpus):
        return run_unit(config, adapter, todo, task_manager(config.include_path), lambda n: None)


def run_units(config: Any, units: list[Unit], executor: Any, advance: Callable[[int], None]) -> list[dict[str, Any]]:  # fmt: skip
    """Every unit on `executor` (ray or slurm); rows in unit order. A unit that fails does not stop
    the others; the failures are reported together once the rest finished."""
    if not units:  # every cell finished (a resumed sweep): nothing to start
        return []
    run = _on_ray if executor.kind == "ray" else _on_slurm
    rows, failed = run(config, units, executor, advance)
    if failed:
        raise HallucError(
            f"{len(failed)} of {len(units)} eval units failed ({'; '.join(failed)}); the finished cells are "
            "kept, and the same command with --resume runs only the rest"
        )
    return [row for unit_rows in rows for row in unit_rows]


def _name(adapter: str | None) -> str:
    return Path(adapter).name if adapter else "base"


def _reason(exc: BaseException) -> str:
    """An exception in one short line: its type and the first line of its message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


def _on_ray(config: Any, units: list[Unit], executor: Any, advance: Callable[[int], None]):
    """Ray tasks, one per unit, each asking for its CPUs and GPUs; Ray retries a unit whose worker died."""
    from ucli.executor import RETRIES

    ray = executor.ray()
    threads = executor.threads()
    task = ray.remote(unit_job).options(
        num_cpus=threads, num_gpus=executor.gpus_per_worker, max_retries=RETRIES
    )
    gpus = int(executor.gpus_per_worker)
    refs = {task.remote(config, adapter, todo, os.getcwd(), threads, gpus): i
            for i, (adapter, todo) in enumerate(units)}  # fmt: skip
    rows: list[list[dict[str, Any]]] = [[] for _ in units]
    failed, pending = [], list(refs)
    try:
        while pending:
            [ready], pending = ray.wait(pending)
            i = refs[ready]
            try:
                rows[i] = ray.get(ready)
            except ray.exceptions.RayError as exc:
                failed.append(f"{_name(units[i][0])}: {_reason(getattr(exc, 'cause', None) or exc)}")
            advance(len(units[i][1]))
    finally:
        for ref in pending:  # the driver stops (an interrupt): so do its units
            ray.cancel(ref, force=True)
    return rows, failed


def _on_slurm(config: Any, units: list[Unit], executor: Any, advance: Callable[[int], None]):
    """A submitit job array, `--workers` jobs at a time; without SLURM here (no sbatch), submitit's
    local executor runs the same array as processes on this machine."""
    import submitit

    folder = Path(config.root) / ".submitit"
    array = submitit.AutoExecutor(folder=folder)
    if array.cluster != "slurm":
        console.warn(f"no SLURM here: submitit runs the array as {array.cluster} processes on this machine")
    array.update_parameters(name="halluc-eval", timeout_min=executor.slurm_time, gpus_per_node=int(executor.gpus_per_worker),
                            slurm_partition=executor.slurm_partition, slurm_array_parallelism=executor.workers)  # fmt: skip
    n = len(units)
    jobs = array.map_array(unit_job, [config] * n, [a for a, _ in units], [t for _, t in units], [os.getcwd()] * n,
                           [None] * n, [int(executor.gpus_per_worker)] * n)  # fmt: skip
    console.info(f"submitted {n} eval unit(s) as job(s) {', '.join(j.job_id for j in jobs)} (logs: {folder})")
    index = {job.job_id: i for i, job in enumerate(jobs)}
    rows: list[list[dict[str, Any]]] = [[] for _ in units]
    failed = []
    try:
        for job in submitit.helpers.as_completed(jobs):
            i = index[job.job_id]
            try:
                rows[i] = job.result()
            except Exception as exc:  # the unit's own error, raised again here by submitit
                failed.append(f"{_name(units[i][0])}: {_reason(exc)}, log {job.paths.stderr}")
            advance(len(units[i][1]))
    finally:
        for job in jobs:  # the driver stops (an interrupt): so do its unfinished jobs
            if not job.done():
                job.cancel(check=False)
    return rows, failed
