"""One environment snapshot: what the seed repos spread over nvidia-smi dumps and setup scripts."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ucli import __version__
from ucli.models import ALIASES, packaged_path
from ucli.paths import cache_dir
from ucli.secrets import KNOWN_KEY_VARS

KEY_PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "accelerate",
    "peft",
    "bitsandbytes",
    "safetensors",
    "gguf",
    "lm_eval",
    "vllm",
    "trl",
    "datasets",
    "zarr",
    "pyarrow",
    "numpy",
    "scipy",
    "scikit-learn",
    "statsmodels",
    "sentence-transformers",
    "openai",
    "anthropic",
    "google-genai",
    "typer",
    "rich",
    "pydantic",
)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _nvidia_smi() -> dict[str, Any]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return {"available": False}
    try:
        full = subprocess.run([exe], capture_output=True, text=True, timeout=20)
        query = subprocess.run(
            [exe, "--query-gpu=index,name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"available": False, "error": str(exc)}
    return {
        "available": full.returncode == 0,
        "output": full.stdout,
        "query": query.stdout.strip().splitlines(),
    }


def _torch_info() -> dict[str, Any]:
    try:
        import torch
    except ImportError as exc:
        return {"installed": False, "error": str(exc)}
    info: dict[str, Any] = {
        "installed": True,
        "version": torch.__version__,
        "cuda_build": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "mps_available": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
        "num_threads": torch.get_num_threads(),
        "gpus": [],
    }
    if torch.cuda.is_available():
        info["cudnn"] = torch.backends.cudnn.version()
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            info["gpus"].append(
                {
                    "index": i,
                    "name": p.name,
                    "memory_gib": round(p.total_memory / 2**30, 2),
                    "capability": f"{p.major}.{p.minor}",
                    "multiprocessors": p.multi_processor_count,
                    "bf16": torch.cuda.is_bf16_supported(),
                }
            )
    return info


def _bitsandbytes() -> dict[str, Any]:
    version = _version("bitsandbytes")
    if version is None:
        return {"installed": False}
    try:
        import bitsandbytes as bnb
    except Exception as exc:  # a broken native library is exactly what doctor must report
        return {
            "installed": True,
            "version": version,
            "import_ok": False,
            "error": f"{type(exc).__name__}: {exc}",
        }
    lib = getattr(getattr(bnb, "cextension", None), "lib", None)
    # the device types it supports: `supported_torch_devices` since 0.45 (`backends` is a package
    # there), a registry dict of backends before
    devices = getattr(bnb, "supported_torch_devices", None)
    registry = getattr(bnb, "backends", None)
    return {
        "installed": True,
        "version": version,
        "import_ok": True,
        "native_library": type(lib).__name__ if lib is not None else None,
        "backends": sorted(devices)
        if devices is not None
        else sorted(registry)
        if isinstance(registry, dict)
        else [],
    }


def snapshot() -> dict[str, Any]:
    """Everything needed to reproduce or debug a run on this machine (API key values never included)."""
    import psutil

    cache = cache_dir()
    disk = shutil.disk_usage(Path.cwd())
    vm = psutil.virtual_memory()
    return {
        "halluc": __version__,
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "os": {"system": platform.system(), "release": platform.release(), "platform": platform.platform()},
        "cpu": {
            "model": platform.processor() or platform.machine(),
            "logical_cores": psutil.cpu_count(logical=True),
            "physical_cores": psutil.cpu_count(logical=False),
        },
        "memory_gib": {"total": round(vm.total / 2**30, 2), "available": round(vm.available / 2**30, 2)},
        "disk_gib": {
            "path": str(Path.cwd()),
            "total": round(disk.total / 2**30, 1),
            "free": round(disk.free / 2**30, 1),
        },
        "torch": _torch_info(),
        "nvidia_smi": _nvidia_smi(),
        "bitsandbytes": _bitsandbytes(),
        "packages": {name: _version(name) for name in KEY_PACKAGES},
        "api_keys": {name: bool(os.environ.get(name)) for name in KNOWN_KEY_VARS},
        "default_models": {
            alias: {"installed": (p := packaged_path(alias)) is not None, "path": str(p) if p else None}
            for alias in ALIASES
        },
        "cache": {"path": str(cache), "size_mib": round(_folder_size(cache) / 2**20, 1)},
        "env": {
            k: os.environ.get(k)
            for k in ("HALLUC_CACHE", "HALLUC_PLUGINS", "HF_HOME", "HF_HUB_OFFLINE", "CUDA_VISIBLE_DEVICES")
        },
    }
