"""Where a heavy command's model work runs: in this process (`local`, the default), on model
replicas, Ray actors that each load the model once (`ray`), or, for `eval run`'s units, as a SLURM
job array through submitit (`slurm`).

The work is a list of shards, the command's own batches, so every shard gives the records it gives
in a single process, wherever it runs. `Replicas.map` yields each shard's result as it completes;
the caller, the driver, alone journals and writes files, so `--resume` after a killed driver sends
only what is missing. A replica that dies is restarted by Ray and its shard retried
(`max_restarts`, `max_task_retries`), so a killed worker loses nothing and counts nothing twice.
No scheduling happens here: Ray's `ActorPool` hands out the shards.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ucli.errors import BadInput

EXECUTORS = ("local", "ray", "slurm")
REPLICA_EXECUTORS = ("local", "ray")  # what commands that run on model replicas accept
SLURM_MINUTES = 240  # default time limit of an array job: a unit of a 7B sweep fits
RETRIES = 3  # restarts of a dead replica, and retries of its shard
EXTRAS = {"ray": "ray", "slurm": "submitit"}  # executor -> the module it needs (in the extra of its name)
# What `ray.init(address=...)` takes: auto (the cluster this machine joined), or a head's HOST:PORT
# (host name, IPv4 or [IPv6]), optionally as a Ray Client address.
RAY_ADDRESS = re.compile(
    r"auto|(?:ray://)?(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):\d{1,5}"
)


@dataclass(frozen=True)
class Executor:
    kind: str = "local"
    workers: int = 1  # model replicas (ray), or array jobs at once (slurm)
    gpus_per_worker: float = 0.0  # GPUs each replica or job asks for (0: CPU only)
    ray_address: str | None = None  # join a running cluster ("auto" or HOST:PORT); None: start one here
    slurm_partition: str | None = None  # None: the cluster's default partition
    slurm_time: int = SLURM_MINUTES  # minutes each array job may run
    allowed: tuple[str, ...] = EXECUTORS  # what the command can run on

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise BadInput(
                f"--executor: unknown executor '{self.kind}' (expected one of: {', '.join(self.allowed)})"
            )
        if self.kind not in self.allowed:
            raise BadInput(
                f"--executor {self.kind}: this command runs on {' or '.join(self.allowed)} (on a SLURM "
                "cluster, start Ray in the allocation and pass --executor ray --ray-address auto)"
            )
        if self.workers < 1:
            raise BadInput(f"--workers must be >= 1, got {self.workers}")
        if self.gpus_per_worker < 0:
            raise BadInput(f"--gpus-per-worker must be >= 0, got {self.gpus_per_worker}")
        if self.gpus_per_worker > 1 and self.gpus_per_worker != int(self.gpus_per_worker):
            raise BadInput(f"--gpus-per-worker above 1 must be whole GPUs, got {self.gpus_per_worker}")
        if self.kind == "local" and (self.workers > 1 or self.ray_address):
            raise BadInput("--workers and --ray-address need --executor ray")
        if self.kind != "slurm" and self.slurm_partition:
            raise BadInput("--slurm-partition needs --executor slurm")
        if self.kind == "slurm" and self.gpus_per_worker != int(self.gpus_per_worker):
            raise BadInput(f"--gpus-per-worker: SLURM gives whole GPUs, got {self.gpus_per_worker}")
        if self.slurm_time < 1:
            raise BadInput(f"--slurm-time must be >= 1 minute, got {self.slurm_time}")
        if self.ray_address is not None and not RAY_ADDRESS.fullmatch(self.ray_address):
            raise BadInput(
                f"--ray-address: expected auto, HOST:PORT or ray://HOST:PORT, got {self.ray_address!r}"
            )
        if self.kind in EXTRAS:
            import importlib.util

            if importlib.util.find_spec(EXTRAS[self.kind]) is None:
                raise BadInput(
                    f"--executor {self.kind} needs {EXTRAS[self.kind]}: pip install 'halluc[{self.kind}]'"
                )

    def threads(self) -> int:
        """Torch threads per replica or unit on this machine: its CPUs shared out (at least 1)."""
        return max(1, (os.cpu_count() or 1) // self.workers)

    def ray(self) -> Any:
        """The Ray module, connected: to `ray_address`, or to a session this process starts."""
        import ray

        if not ray.is_initialized():
            try:
                ray.init(address=self.ray_address, include_dashboard=False, log_to_driver=False)
            except ConnectionError as exc:  # Ray's own message names its `--address` flag, not ours
                raise BadInput(
                    f"--ray-address {self.ray_address}: no Ray cluster answers there ({str(exc).split('.')[0]}); "
                    "start one with `ray start --head`, or leave out --ray-address to start one here"
                ) from None
        return ray


class _Replica:
    """One model on one Ray worker (wrapped by `ray.remote` when the pool starts)."""

    def __init__(self, build: Callable[..., Any], build_args: tuple, threads: int, gpus: float) -> None:
        import torch

        from ucli.models import spanning_gpus

        torch.set_num_threads(threads)
        with spanning_gpus(int(gpus)):  # K GPUs: one model over all of them
            self.model = build(*build_args)

    def run(self, fn: Callable[..., Any], shard: Any, args: tuple) -> Any:
        return fn(self.model, shard, *args)


def fingerprint_of(model: Any, _shard: Any = None) -> Any:
    """A loaded model's fingerprint, or that of the model a backend or tracer holds (`.lm`)."""
    found = getattr(model, "fingerprint", None)
    return found if found is not None else getattr(getattr(model, "lm", None), "fingerprint", None)


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
        self.threads = threads or executor.threads()
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

    def fingerprint(self) -> Any:
        """The fingerprint of the model the work runs on: on Ray a replica's, loaded on the replicas'
        own devices, so provenance names what ran (the driver may hold only a shell of the model)."""
        if self.executor.kind == "local":
            return fingerprint_of(self.model)
        ray = self.executor.ray()
        return ray.get(self._start()[0].run.remote(fingerprint_of, None, ()))

    def _start(self) -> list[Any]:
        if not self._actors:
            if self.build is None:
                raise ValueError("Replicas on Ray need `build`, to load the model on each worker")
            ray = self.executor.ray()
            remote = ray.remote(_Replica).options(num_cpus=self.threads, num_gpus=self.executor.gpus_per_worker,
                                                  max_restarts=RETRIES, max_task_retries=RETRIES)  # fmt: skip
            self._actors = [
                remote.remote(self.build, self.build_args, self.threads, self.executor.gpus_per_worker)
                for _ in range(self.executor.workers)
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


@contextmanager
def model_replicas(executor: Executor, lm: Any, spec: str, load: Any) -> Iterator[Replicas]:
    """Replicas of a `ucli.models` model: `lm` here, or Ray actors that each load `spec` with `load`.
    `lm` (on Ray, the driver's shell) then carries a replica's fingerprint: provenance names the
    model as it ran, on the replicas' own devices."""
    from ucli.models import load_model

    with Replicas(executor, lm, load_model, spec, load) as replicas:
        lm.fingerprint = replicas.fingerprint()
        yield replicas
