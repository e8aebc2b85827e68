"""Config documents (pilot configs, fine-tuning recipes): one reader for TOML and JSON.

TOML comes from `tomllib` (Python 3.11+) or its backport `tomli` (Python 3.10, a declared
dependency there), so every supported Python reads the same files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ucli.errors import BadInput


def toml_module() -> Any:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib


def read_document(path: str | os.PathLike, what: str = "config") -> dict[str, Any]:
    """The document as a dict: TOML for `.toml`, JSON otherwise; a missing or broken file is one
    BadInput line naming the file (and, for JSON, the line and column)."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{p}: {what} file not found")
    try:
        text = p.read_text(encoding="utf-8-sig")  # a byte-order mark is read past, as data files' are
    except UnicodeDecodeError as exc:
        raise BadInput(f"{p}: not UTF-8 text (byte {exc.start})") from None
    if p.suffix.lower() == ".toml":
        toml = toml_module()
        try:
            return toml.loads(text)
        except toml.TOMLDecodeError as exc:
            raise BadInput(f"{p}: invalid TOML ({exc})") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{p}:{exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(doc, dict):
        raise BadInput(f"{p}: expected a JSON object")
    return doc
