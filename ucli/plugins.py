"""Entry-point discovery for command groups, backends and benchmarks.

First-party plugins (shipped in the `halluc` distribution) always load. Third-party ones load
unless `HALLUC_PLUGINS` is set, in which case it is a comma-separated allow-list of entry-point
or distribution names (empty = no third-party plugin). A plugin that fails to import is recorded
with its reason and costs one warning line, never the whole CLI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from typing import Any

from ucli.errors import BadInput

GROUPS = {
    "commands": "halluc.commands",
    "backends": "halluc.backends",
    "benchmarks": "halluc.benchmarks",
}
FIRST_PARTY_DIST = "halluc"


@dataclass
class PluginInfo:
    kind: str
    name: str
    value: str
    dist: str
    version: str
    status: str = "ok"  # ok | failed | disabled
    error: str | None = None
    obj: Any = field(default=None, repr=False)

    @property
    def first_party(self) -> bool:
        return self.dist == FIRST_PARTY_DIST

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "target": self.value,
            "distribution": self.dist,
            "version": self.version,
            "first_party": self.first_party,
            "status": self.status,
            "error": self.error,
        }


def allow_list() -> set[str] | None:
    """None when HALLUC_PLUGINS is unset (everything loads), else the allowed names."""
    raw = os.environ.get("HALLUC_PLUGINS")
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _entry_points(kind: str) -> list[metadata.EntryPoint]:
    if kind not in GROUPS:
        raise ValueError(f"unknown plugin kind {kind!r}")
    seen: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=GROUPS[kind]):
        # An editable install and a stale copy can both advertise a name: the first one wins.
        seen.setdefault(ep.name, ep)
    return sorted(seen.values(), key=lambda e: e.name)


@cache
def discover(kind: str) -> tuple[PluginInfo, ...]:
    """Every plugin of one kind, imported, with failures and disabled ones recorded, not raised."""
    allowed = allow_list()
    found = []
    for ep in _entry_points(kind):
        dist = ep.dist.name if ep.dist is not None else "unknown"
        version = ep.dist.version if ep.dist is not None else "unknown"
        info = PluginInfo(kind=kind, name=ep.name, value=ep.value, dist=dist, version=version)
        if not info.first_party and allowed is not None and not ({ep.name, dist} & allowed):
            info.status = "disabled"
            info.error = "not in HALLUC_PLUGINS"
        else:
            try:
                info.obj = ep.load()
            except Exception as exc:  # any import-time failure of a plugin must stay contained
                info.status = "failed"
                info.error = f"{type(exc).__name__}: {exc}"
        found.append(info)
    return tuple(found)


def failures() -> list[PluginInfo]:
    return [p for kind in GROUPS for p in discover(kind) if p.status == "failed"]


def available(kind: str) -> dict[str, Any]:
    """name -> loaded object for the plugins of one kind that loaded."""
    return {p.name: p.obj for p in discover(kind) if p.status == "ok"}


def load(kind: str, name: str) -> Any:
    """One plugin by name, or a BadInput that lists what there is."""
    for p in discover(kind):
        if p.name == name:
            if p.status != "ok":
                raise BadInput(f"{kind[:-1]} '{name}' is unavailable ({p.status}: {p.error})")
            return p.obj
    names = ", ".join(p.name for p in discover(kind) if p.status == "ok") or "none installed"
    raise BadInput(f"unknown {kind[:-1]} '{name}' (available: {names})")
