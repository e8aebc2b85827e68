"""Pilot prompt sets: the seed's `{"prompts": [...]}` JSON, a JSON list, or JSONL (also CSV/TSV)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

from ucli.data import read_records
from ucli.errors import BadInput

TEXT_FIELDS = ("text", "prompt")


@dataclass(frozen=True)
class PilotPrompt:
    id: str
    text: str
    category: str | None = None
    is_synthetic_probe: bool | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # every other field, carried into results


def load_prompts(path: str | os.PathLike, limit: int | None = None) -> list[PilotPrompt]:
    """Every prompt with its id (given, else a hash of the text), text, category, probe flag and the
    rest of its fields; a duplicate id, an empty text or a missing text field is one clear line."""
    prompts: list[PilotPrompt] = []
    seen: dict[str, str] = {}
    for rec in read_records(path):
        data = dict(rec.data)
        key = next((k for k in TEXT_FIELDS if k in data), None)
        if key is None:
            raise BadInput(f"{rec.loc}: missing field 'text' (or 'prompt')")
        text = data.pop(key)
        if not isinstance(text, str) or not text.strip():
            raise BadInput(f"{rec.loc}: field '{key}': empty prompt")
        pid = data.pop("id", None)
        pid = str(pid) if pid not in (None, "") else hashlib.sha256(text.encode()).hexdigest()[:12]
        if pid in seen:
            raise BadInput(f"{rec.loc}: duplicate id '{pid}' (first at {seen[pid]})")
        seen[pid] = rec.loc
        probe = data.pop("is_synthetic_probe", None)
        prompts.append(
            PilotPrompt(pid, text, data.pop("category", None), None if probe is None else bool(probe), data)
        )
    return prompts[:limit]
