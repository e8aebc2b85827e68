"""halluc core: plugin discovery and the shared services every plugin uses.

Nothing here imports torch or transformers at import time; `halluc --help` stays fast.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("halluc")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
