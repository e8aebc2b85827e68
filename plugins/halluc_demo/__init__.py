"""`halluc demo`: the README's main job on the embedded default model, offline.

Python API: `run_demo(...)` returns a `DemoResult`; the CLI only parses, calls and prints.
"""

from halluc_demo.run import DemoResult, answer_matches, run_demo

__all__ = ["DemoResult", "answer_matches", "run_demo"]
