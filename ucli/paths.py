"""Where halluc keeps its cache."""

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$HALLUC_CACHE`, else `~/.cache/halluc`; created on first use."""
    path = Path(os.environ.get("HALLUC_CACHE") or Path.home() / ".cache" / "halluc").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
