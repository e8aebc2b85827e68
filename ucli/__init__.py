"""halluc core: plugin discovery and the shared services every plugin uses.

Nothing here imports torch or transformers at import time; `halluc --help` stays fast.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    """`ucli.__version__`, looked up on first use (package metadata is slow to read at startup)."""
    if name != "__version__":
        raise AttributeError(name)
    from importlib import metadata

    try:
        version = metadata.version("halluc")
    except metadata.PackageNotFoundError:  # a source tree that is not installed
        version = "0.0.0+unknown"
    globals()["__version__"] = version
    return version
