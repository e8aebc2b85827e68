"""Rows of a hub data set: `datasets.load_dataset` for real, or a local copy in the hub's format."""

from __future__ import annotations

from typing import Any

from ucli.data import load_rows  # noqa: F401 - the benchmarks' loaders import it from here
from ucli.errors import BadInput


def require_fields(row: dict[str, Any], fields: tuple[str, ...], where: str) -> None:
    missing = [f for f in fields if f not in row]
    if missing:
        raise BadInput(
            f"{where}: no field {', '.join(repr(m) for m in missing)} (fields: {', '.join(sorted(row))})"
        )
