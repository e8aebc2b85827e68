"""`halluc demo`: the README's main job on the embedded default model, offline.

Python API: `run_demo(config=DemoConfig(...))` returns a `DemoResult`; the CLI only parses, calls and prints.
Names load on first use so that `halluc --help` never imports the model stack.
"""

from ucli.lazy import lazy_exports

__all__ = ["DemoConfig", "DemoResult", "run_demo"]
__getattr__ = lazy_exports(__name__, dict.fromkeys(__all__, "run"))
