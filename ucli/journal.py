"""The one resume mechanism: an append-only JSONL journal keyed by a stable sample id.

Each record is flushed and fsynced as it is written, so a crash loses at most the record being
written. On reopening, a torn last line is dropped (and truncated away, so the next record starts
on a clean line). The first line is a header holding the run's resolved config: `--resume` with a
different config is refused rather than silently mixing two experiments in one file.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ucli import console
from ucli.console import shell_words
from ucli.errors import BadInput
from ucli.secrets import redact

HEADER_KEY = "_halluc_journal"
T = TypeVar("T")
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
    name: str = "journal.jsonl", force: bool = False,
) -> Path | None:  # fmt: skip
    """The one naming and pre-flight rule of a journaled output, checked before anything loads.

    The journal lives beside a file output (`OUTPUT.journal`) or inside a folder output
    (`OUTPUT/journal.jsonl`, or `name`). Without --resume an existing output is refused (a file
    output is replaced under `force`); with --resume a finished run (the file output, or the
    folder's `complete` file, with no journal left) returns None, and a folder with no journal is
    refused.
    """
    out = Path(output)
    if not folder:
        from ucli.artifacts import check_output_file

        journal = out.with_name(out.name + ".journal")
        check_output_file(out, force=force or resume, resumable=True)
        finished = out.exists()
    else:
        journal = out / name
        if out.exists() and not out.is_dir():
            raise BadInput(f"{out}: is a file, expected a run folder (--output)")
        if not resume:
            from ucli.artifacts import require_fresh_dir

            require_fresh_dir(out, resumable=True)
        finished = complete is not None and (out / complete).exists()
    if resume and finished and not journal.exists():
        console.info(f"{out}: already complete; nothing to resume")
        return None
    if resume and folder and not journal.exists():
        raise BadInput(
            f"{out}: nothing to resume (no {name}); run without --resume, into a new or empty --output"
        )
    return journal


@contextmanager
def removed_unless_started(output: str | os.PathLike) -> Iterator[None]:
    """Around a run into `output`: when it fails or is interrupted before any journal under `output`
    took a record, the output it created is removed whole, so the fixed rerun starts clean instead
    of meeting a half-made folder. A run that journaled work keeps it for --resume."""
    out = Path(output)
    existed, since = out.exists(), len(OPENED)
    try:
        yield
    except BaseException:
        started = any(j.wrote and j.path.resolve().is_relative_to(out.resolve()) for j in OPENED[since:])
        if not existed and out.is_dir() and not started:
            shutil.rmtree(out)
        elif not existed and out.exists() and not started:
            out.unlink()
        raise


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
        self._fh: Any = None  # opened at the first record: a run that wrote nothing leaves no journal
        self.wrote = 0  # records appended by this process
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists and not resume:
            raise BadInput(
                f"{self.path}: an unfinished run's journal is here; pass --resume to continue it, "
                f"or remove it to start over ({shell_words('rm', self.path)})"
            )
        if exists:
            self._load()
        OPENED.append(self)

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
            self._changed(header.get("config") or {})

    def _changed(self, old: dict[str, Any]) -> None:
        """A resume under another configuration: refused, or a warning with --force."""
        keys = sorted(k for k in set(old) | set(self.config) if old.get(k) != self.config.get(k))
        if self.force:
            console.warn(f"{self.path}: resuming with a changed configuration ({', '.join(keys)}): --force")
            return
        raise BadInput(
            f"{self.path}: --resume with a different configuration (changed: {', '.join(keys)}); "
            "resume with the first one, run this one in another --output, add --force to go on "
            f"with it here, or remove the journal to start over ({shell_words('rm', self.path)})"
        )

    def _write(self, obj: dict[str, Any]) -> None:
        if self._fh is None:
            new = not self.path.exists() or self.path.stat().st_size == 0
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
            if new:
                self._write({HEADER_KEY: {"version": 1, "config": self.config}})
        self._fh.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    @property
    def done(self) -> set[str]:
        return set(self._done)

    def records(self) -> list[dict[str, Any]]:
        return list(self._records)

    def todo_batches(
        self, items: Sequence[T], size: int, key: Callable[[T], str] = lambda item: item.id
    ) -> list[tuple[int, list[T]]]:
        """The fixed slices `items[start:start + size]` (with their start) that hold any item whose
        `key` is not journaled. A batch is rerun whole, so a resumed or scaled-out run computes
        exactly the batches an unbroken one does (sampling seeded by the start stays the same)."""
        batches = [(start, list(items[start : start + size])) for start in range(0, len(items), size)]
        return [
            (start, batch) for start, batch in batches if any(str(key(x)) not in self._done for x in batch)
        ]

    def append_new(self, records: Iterable[dict[str, Any]]) -> int:
        """Append the records not journaled yet (a rerun batch brings its finished ones again); how many."""
        new = [r for r in records if str(r["id"]) not in self._done]
        for record in new:
            self.append(record)
        return len(new)

    def append(self, record: dict[str, Any]) -> None:
        key = str(record["id"])
        if key in self._done:
            raise ValueError(f"record {key!r} is already in {self.path}")
        self._write(redact(record, by_name=False))
        self._records.append(record)
        self._done.add(key)
        self.wrote += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
