"""`halluc demo`: the README's main job on the embedded default model, offline.

Python API: `run_demo(...)` returns a `DemoResult`; the CLI only parses, calls and prints.
Names load on first use so that `halluc --help` never imports the model stack.
"""

from typing import Any

__all__ = ["DemoResult", "run_demo"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from halluc_demo import run

        return getattr(run, name)
    raise AttributeError(name)
