"""Entry-point discovery for command groups, backends and benchmarks.

First-party plugins (shipped in the `halluc` distribution) always load. Third-party ones load
unless `HALLUC_PLUGINS` is set, in which case it is a comma-separated allow-list of entry-point
or distribution names (empty = no third-party plugin). A plugin that fails to import is recorded
with its reason and costs one warning line, never the whole CLI.

Reading every installed distribution's metadata costs more than the rest of `halluc --help`, so
the entry points are kept in an index under `$HALLUC_CACHE`, valid while every `sys.path` folder
and every plugin's `entry_points.txt` keep their modification times: installing, removing or
reinstalling a package, or editing its entry points, rebuilds it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from typing import Any

from ucli.errors import BadInput

GROUPS = {
    "commands": "halluc.commands",
    "backends": "halluc.backends",
    "benchmarks": "halluc.benchmarks",
    "estimators": "halluc.estimators",
    "repairs": "halluc.repairs",
    "stages": "halluc.stages",
    "metrics": "halluc.metrics",
    "claims": "halluc.claims",
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


INDEX_VERSION = 1


def _stamp(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _scan() -> list[dict[str, Any]]:
    """Every halluc entry point of every installed distribution (the slow, authoritative read)."""
    from importlib import metadata

    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for kind, group in GROUPS.items():
        for ep in metadata.entry_points(group=group):
            if (kind, ep.name) in seen:  # an editable install and a stale copy: the first one wins
                continue
            seen.add((kind, ep.name))
            dist = ep.dist
            source = getattr(dist, "_path", None)
            rows.append(
                {
                    "kind": kind,
                    "name": ep.name,
                    "value": ep.value,
                    "dist": dist.name if dist is not None else "unknown",
                    "version": dist.version if dist is not None else "unknown",
                    "file": str(source / "entry_points.txt") if source is not None else None,
                }
            )
    return sorted(rows, key=lambda r: (r["kind"], r["name"]))


def _index() -> list[dict[str, Any]]:
    """The entry points, from the cached index when nothing installed has changed."""
    from ucli.paths import cache_dir

    path_stamps = [[p, _stamp(p)] for p in sys.path if p and os.path.isdir(p)]
    try:
        index_file = cache_dir() / "entry_points.json"
    except OSError:  # no usable cache folder: discovery still works, only slower
        return _scan()
    try:
        cached = json.loads(index_file.read_text())
        if (
            cached["version"] == INDEX_VERSION
            and cached["sys_path"] == path_stamps
            and all(_stamp(f) == stamp for f, stamp in cached["files"])
        ):
            return cached["entries"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    entries = _scan()
    files = sorted({e["file"] for e in entries if e["file"]})
    from ucli.artifacts import write_json

    index = {
        "version": INDEX_VERSION,
        "sys_path": path_stamps,
        "files": [[f, _stamp(f)] for f in files],
        "entries": entries,
    }
    with contextlib.suppress(OSError):  # a read-only cache only costs speed
        write_json(index_file, index)
    return entries


def _load_target(value: str) -> Any:
    """Import `module:attr.sub` (what EntryPoint.load does) without importlib.metadata."""
    module, _, attrs = value.partition(":")
    obj = import_module(module.strip())
    for attr in attrs.split("[")[0].strip().split(".") if attrs else []:
        obj = getattr(obj, attr)
    return obj


@cache
def discover(kind: str) -> tuple[PluginInfo, ...]:
    """Every plugin of one kind, imported, with failures and disabled ones recorded, not raised."""
    if kind not in GROUPS:
        raise ValueError(f"unknown plugin kind {kind!r}")
    allowed = allow_list()
    found = []
    for row in _index():
        if row["kind"] != kind:
            continue
        info = PluginInfo(
            kind=kind, name=row["name"], value=row["value"], dist=row["dist"], version=row["version"]
        )
        if not info.first_party and allowed is not None and not ({info.name, info.dist} & allowed):
            info.status = "disabled"
            info.error = "not in HALLUC_PLUGINS"
        else:
            try:
                info.obj = _load_target(info.value)
            except Exception as exc:  # any import-time failure of a plugin must stay contained
                info.status = "failed"
                info.error = f"{type(exc).__name__}: {exc}"
        found.append(info)
    return tuple(found)


def names(kind: str) -> list[str]:
    """The names of one kind's entry points, none imported (for help texts at `--help` time)."""
    allowed = allow_list()
    return [row["name"] for row in _index() if row["kind"] == kind
            and (row["dist"] == FIRST_PARTY_DIST or allowed is None or {row["name"], row["dist"]} & allowed)]  # fmt: skip


def load(kind: str, name: str) -> Any:
    """One plugin by name, or a BadInput that lists what there is."""
    for p in discover(kind):
        if p.name == name:
            if p.status != "ok":
                raise BadInput(f"{kind[:-1]} '{name}' is unavailable ({p.status}: {p.error})")
            return p.obj
    names = ", ".join(p.name for p in discover(kind) if p.status == "ok") or "none installed"
    raise BadInput(f"unknown {kind[:-1]} '{name}' (available: {names})")
