"""Where a heavy command's model work runs: in this process (`local`, the default) or on model
replicas, Ray actors that each load the model once (`ray`).

The work is a list of shards, the command's own batches, so every shard gives the records it gives
in a single process, wherever it runs. `Replicas.map` yields each shard's result as it completes;
the caller, the driver, alone journals and writes files, so `--resume` after a killed driver sends
only what is missing. A replica that dies is restarted by Ray and its shard retried
(`max_restarts`, `max_task_retries`), so a killed worker loses nothing and counts nothing twice.
No scheduling happens here: Ray's `ActorPool` hands out the shards.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ucli.errors import BadInput

EXECUTORS = ("local", "ray")
RETRIES = 3  # restarts of a dead replica, and retries of its shard


@dataclass(frozen=True)
class Executor:
    kind: str = "local"
    workers: int = 1  # model replicas (ray)
    gpus_per_worker: float = 0.0  # GPUs each replica asks Ray for (0: CPU replicas)
    ray_address: str | None = None  # join a running cluster ("auto" or HOST:PORT); None: start one here

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise BadInput(
                f"--executor: unknown executor '{self.kind}' (expected one of: {', '.join(EXECUTORS)})"
            )
        if self.workers < 1:
            raise BadInput(f"--workers must be >= 1, got {self.workers}")
        if self.gpus_per_worker < 0:
            raise BadInput(f"--gpus-per-worker must be >= 0, got {self.gpus_per_worker}")
        if self.gpus_per_worker > 1:
            raise BadInput("--gpus-per-worker above 1 (a replica spread over GPUs) is not supported yet")
        if self.kind == "local" and (self.workers > 1 or self.ray_address):
            raise BadInput("--workers and --ray-address need --executor ray")
        if self.kind == "ray":
            import importlib.util

            if importlib.util.find_spec("ray") is None:
                raise BadInput("--executor ray needs Ray: pip install 'halluc[ray]'")


class _Replica:
    """One model on one Ray worker (wrapped by `ray.remote` when the pool starts)."""

    def __init__(self, build: Callable[..., Any], build_args: tuple, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.model = build(*build_args)

    def run(self, fn: Callable[..., Any], shard: Any, args: tuple) -> Any:
        return fn(self.model, shard, *args)


class Replicas:
    """The model the work runs on: the driver's own `model` (local; `Replicas(Executor(), model)`),
    or `executor.workers` Ray actors that each build theirs once with `build(*build_args)` (e.g.
    `load_model, spec, load_options`) and run at `threads` torch threads (default: this machine's
    CPUs shared out, or 1)."""

    def __init__(
        self,
        executor: Executor,
        model: Any,
        build: Callable[..., Any] | None = None,
        *build_args: Any,
        threads: int | None = None,
    ) -> None:
        self.executor, self.model, self.build, self.build_args = executor, model, build, build_args
        self.threads = threads or max(1, (os.cpu_count() or 1) // executor.workers)
        self._actors: list[Any] = []

    def map(self, fn: Callable[..., Any], shards: list[Any], *args: Any) -> Iterator[Any]:
        """`fn(model, shard, *args)` for every shard, yielded as each completes (local: in order)."""
        if self.executor.kind == "local":
            for shard in shards:
                yield fn(self.model, shard, *args)
            return
        from ray.util import ActorPool

        pool = ActorPool(self._start())
        yield from pool.map_unordered(lambda actor, shard: actor.run.remote(fn, shard, args), shards)

    def _start(self) -> list[Any]:
        import ray

        if not self._actors:
            if self.build is None:
                raise ValueError("Replicas on Ray need `build`, to load the model on each worker")
            if not ray.is_initialized():
                ray.init(address=self.executor.ray_address, include_dashboard=False, log_to_driver=False)
            remote = ray.remote(_Replica).options(num_cpus=self.threads, num_gpus=self.executor.gpus_per_worker,
                                                  max_restarts=RETRIES, max_task_retries=RETRIES)  # fmt: skip
            self._actors = [
                remote.remote(self.build, self.build_args, self.threads) for _ in range(self.executor.workers)
            ]
        return self._actors

    def close(self) -> None:
        """Stop the replicas (the Ray session stays, for the next command of this process)."""
        if self._actors:
            import ray

            for actor in self._actors:
                ray.kill(actor)
            self._actors = []

    def __enter__(self) -> Replicas:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
