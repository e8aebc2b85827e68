"""Rows of a hub data set: `datasets.load_dataset` for real, or a local copy in the hub's format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ucli.data import read_records
from ucli.errors import BadInput, HallucError


def load_rows(
    dataset: str, config: str | None, split: str, data_file: str | Path | None
) -> list[dict[str, Any]]:
    """A local `data_file` (JSONL, JSON, CSV or Parquet with the hub's fields) wins over the hub."""
    if data_file is not None:
        return [r.data for r in read_records(data_file)]
    try:
        import datasets
    except ImportError:
        raise HallucError(
            f"loading {dataset} from the hub needs the datasets package: pip install 'halluc[hub]' "
            "(or pass --data-file with a local copy)"
        ) from None
    try:
        return list(datasets.load_dataset(dataset, config, split=split))
    except Exception as exc:  # offline, missing split, renamed data set: all one actionable message
        raise HallucError(
            f"could not load {dataset} ({config or 'default'}, {split}) from the hub: {type(exc).__name__}: {exc}; "
            "pass --data-file with a local copy"
        ) from None


def require_fields(row: dict[str, Any], fields: tuple[str, ...], where: str) -> None:
    missing = [f for f in fields if f not in row]
    if missing:
        raise BadInput(
            f"{where}: no field {', '.join(repr(m) for m in missing)} (fields: {', '.join(sorted(row))})"
        )
