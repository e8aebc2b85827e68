"""`halluc pilot validate`: everything a long run needs, checked before it starts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from halluc_pilot.config import PilotConfig, Variant
from halluc_pilot.prompts import PilotPrompt

BYTES_PER_TOKEN = 48  # a JSON token entry with its log-prob; top-k alternatives multiply it


def estimate_bytes(config: PilotConfig, prompts: list[PilotPrompt], chosen: list[Variant]) -> int:
    """A generous upper bound of what the journals and results will take (written twice)."""
    total = 0
    for v in chosen:
        tokens = v.model.max_tokens or config.max_tokens
        per_token = BYTES_PER_TOKEN * (1 + v.model.top_logprobs)
        total += len(prompts) * (
            tokens * per_token + 2 * sum(len(p.text) for p in prompts) // max(len(prompts), 1)
        )
    return 2 * total


def validate(
    config: PilotConfig, prompts: list[PilotPrompt], chosen: list[Variant], output: str | os.PathLike
) -> list[dict[str, Any]]:
    """One row per check: what, ok, detail. Keys are reported as set or missing, never shown."""
    from halluc_pilot.runner import backend_for

    rows: list[dict[str, Any]] = [
        {"check": "prompts", "ok": True, "detail": f"{len(prompts)} prompts"},
        {"check": "variants", "ok": True, "detail": ", ".join(f"{v.model.name}/{v.name}" for v in chosen)},
    ]
    for v in {v.model.name: v for v in chosen}.values():
        m = v.model
        try:
            backend = backend_for(config, v)
            detail = backend.describe()
            rows.append({"check": f"model {m.name}", "ok": True, "detail": detail})
        except Exception as exc:  # a model that cannot resolve is a failed check, reported with the rest
            rows.append({"check": f"model {m.name}", "ok": False, "detail": str(exc).splitlines()[0]})
            continue
        rows += [{"check": f"{c.check} {m.name}", "ok": c.ok, "detail": c.detail} for c in backend.checks()]
    out = Path(output)
    probe = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    free = shutil.disk_usage(probe).free
    need = estimate_bytes(config, prompts, chosen)
    rows.append({"check": "disk", "ok": free > need,
                 "detail": f"{free / 1e9:.1f} GB free at {probe}, about {need / 1e6:.1f} MB needed"})  # fmt: skip
    return rows
