"""Lazy package exports, so a plugin's public names cost nothing until used (`halluc --help` stays fast)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` importing `package.<module>` only when one of `names` is first used.

    Usage in a package's `__init__.py`:
        __getattr__ = lazy_exports(__name__, {"run_demo": "run"})
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{names[name]}"), name)

    return __getattr__
