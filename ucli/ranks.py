"""Which process of a distributed launch this is: torchrun and `accelerate launch` set RANK,
LOCAL_RANK and WORLD_SIZE for every process they start (a plain run has none: rank 0 of 1)."""

from __future__ import annotations

import os


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank among all processes (0 writes a run's files)."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """This process's rank on its node: the GPU it owns."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def fsdp() -> bool:
    """Whether `accelerate launch` runs this process under FSDP (it sets ACCELERATE_USE_FSDP)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true")
