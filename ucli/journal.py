"""The one resume mechanism: an append-only JSONL journal keyed by a stable sample id.

Each record is flushed and fsynced as it is written, so a crash loses at most the record being
written. On reopening, a torn last line is dropped (and truncated away, so the next record starts
on a clean line). The first line is a header holding the run's resolved config: `--resume` with a
different config is refused rather than silently mixing two experiments in one file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ucli import console
from ucli.errors import BadInput
from ucli.secrets import redact

HEADER_KEY = "_halluc_journal"
OPENED: list[Journal] = []  # every journal of this process, for the message after Ctrl-C


def interrupted_message(since: int = 0) -> str:
    """What an interrupted command kept and how to go on: the journals it was writing (those opened
    after the first `since`, so an earlier command of the same process is not counted)."""
    kept = [j for j in OPENED[since:] if j.path.exists()]
    if not kept:
        return "interrupted; nothing was kept (outputs appear only when complete)"
    where = ", ".join(f"{len(j._records)} record(s) in {j.path}" for j in kept)
    return f"interrupted; kept {where}. Rerun the same command with --resume to continue from there"


def preflight(
    output: str | os.PathLike, resume: bool, *, folder: bool, complete: str | None = None,
    name: str = "journal.jsonl",
) -> Path | None:  # fmt: skip
    """The one naming and pre-flight rule of a journaled output, checked before anything loads.

    The journal lives beside a file output (`OUTPUT.journal`) or inside a folder output
    (`OUTPUT/journal.jsonl`, or `name`). Without --resume an existing output is refused (nothing is
    overwritten); with --resume a finished run (the file output, or the folder's `complete` file,
    with no journal left) returns None, and a folder with no journal is refused.
    """
    out = Path(output)
    if not folder:
        journal = out.with_name(out.name + ".journal")
        if out.exists() and not resume:
            raise BadInput(f"{out}: exists; choose another --output, or --resume an interrupted run")
        finished = out.exists()
    else:
        journal = out / name
        if not resume:
            from ucli.artifacts import require_fresh_dir

            require_fresh_dir(out, resumable=True)
        finished = complete is not None and (out / complete).exists()
    if resume and finished and not journal.exists():
        console.info(f"{out}: already complete; nothing to resume")
        return None
    if resume and folder and not journal.exists():
        raise BadInput(f"{out}: nothing to resume (no {name})")
    return journal


class Journal:
    def __init__(
        self,
        path: str | os.PathLike,
        *,
        config: dict[str, Any] | None = None,
        resume: bool = False,
        force: bool = False,
    ):
        """`resume` continues an existing journal; its config must match unless `force` (a warning)."""
        self.path = Path(path)
        self.force = force
        # Round-trip through JSON so a resumed header (lists, strings) compares equal to this config.
        self.config = json.loads(json.dumps(redact(config or {}), default=str))
        self._records: list[dict[str, Any]] = []
        self._done: set[str] = set()
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists and not resume:
            raise BadInput(
                f"{self.path}: a journal already exists; pass --resume to continue it, or choose another output"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if exists:
            self._load()
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        OPENED.append(self)
        if not exists:
            self._write({HEADER_KEY: {"version": 1, "config": self.config}})

    def _load(self) -> None:
        raw = self.path.read_bytes()
        header = None
        pos = good_end = 0
        n = 0
        while pos < len(raw):
            n += 1
            newline = raw.find(b"\n", pos)
            line = raw[pos:] if newline == -1 else raw[pos:newline]
            nxt = len(raw) if newline == -1 else newline + 1
            obj: Any = None
            if line.strip():
                try:
                    obj = json.loads(line)
                except ValueError:
                    obj = None
                if obj is None or newline == -1:  # unparsable, or cut before its newline
                    if nxt == len(raw):
                        console.warn(f"{self.path}:{n}: dropping a torn last record")
                        break
                    raise BadInput(f"{self.path}:{n}: corrupt journal record (not valid JSON)")
                if n == 1 and isinstance(obj, dict) and HEADER_KEY in obj:
                    header = obj[HEADER_KEY]
                elif not isinstance(obj, dict) or "id" not in obj:
                    raise BadInput(f"{self.path}:{n}: journal record without an 'id'")
                else:
                    self._records.append(obj)
                    self._done.add(str(obj["id"]))
            pos = good_end = nxt
        if good_end < len(raw):
            with open(self.path, "rb+") as fh:
                fh.truncate(good_end)
                os.fsync(fh.fileno())
        if header is not None and header.get("config") != self.config:
            old = header.get("config") or {}
            keys = sorted(k for k in set(old) | set(self.config) if old.get(k) != self.config.get(k))
            if self.force:
                console.warn(
                    f"{self.path}: resuming with a changed configuration ({', '.join(keys)}): --force"
                )
                return
            raise BadInput(
                f"{self.path}: --resume with a different configuration (changed: {', '.join(keys)}); "
                "use a new output to run the new configuration"
            )

    def _write(self, obj: dict[str, Any]) -> None:
        self._fh.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    @property
    def done(self) -> set[str]:
        return set(self._done)

    def records(self) -> list[dict[str, Any]]:
        return list(self._records)

    def append(self, record: dict[str, Any]) -> None:
        key = str(record["id"])
        if key in self._done:
            raise ValueError(f"record {key!r} is already in {self.path}")
        self._write(redact(record, by_name=False))
        self._records.append(record)
        self._done.add(key)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
