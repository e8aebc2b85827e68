"""Terminal output: one stdout console for results, one stderr console for everything else.

`--json` commands print only JSON on stdout; tables, progress bars and warnings go through these
helpers so that the rule holds everywhere. Both consoles print text as written (markup off): a
message such as `pip install 'halluc[eval]'` or a path with brackets must survive. Styled pieces
are built as rich `Text` (see `styled`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ucli.errors import HallucError

_consoles: dict[str, Any] = {}


class _Scrubbed:
    """sys.stdout or sys.stderr, as they are when written to, with every known secret value replaced
    by the `${VAR}` that names it (`ucli.secrets.scrub`): nothing a console prints (a message, a
    table cell, an exception's text, a traceback) shows a secret."""

    def __init__(self, stream: str) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        from ucli.secrets import scrub

        return getattr(sys, self.stream).write(scrub(text))

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, flush: the stream's own
        return getattr(getattr(sys, self.stream), name)


def _console(name: str) -> Any:
    if name not in _consoles:
        from rich.console import Console

        stream = _Scrubbed("stderr" if name == "err" else "stdout")
        _consoles[name] = Console(file=stream, soft_wrap=True, markup=False)
    return _consoles[name]


def __getattr__(name: str) -> Any:
    """`console.out` (stdout) and `console.err` (stderr), built on first use: rich costs startup time."""
    if name not in ("out", "err"):
        raise AttributeError(name)
    return _console(name)


class _State:
    debug = False
    # seconds between plain progress lines when stderr is not a terminal (logs, SLURM, CI)
    progress_every = float(os.environ.get("HALLUC_PROGRESS_EVERY", "30"))


state = _State()


def styled(*parts: str | tuple[str, str]) -> Any:
    """Rich `Text` from plain strings and (text, style) pairs: styling without markup parsing."""
    from rich.text import Text

    return Text.assemble(*parts)


def warn(message: str) -> None:
    _console("err").print(styled(("warning:", "yellow"), " ", message), highlight=False)


# Libraries whose log records and progress bars are theirs, not the user's business by default.
LIBRARY_LOGGERS = ("transformers", "lm_eval", "peft", "accelerate", "datasets", "huggingface_hub", "httpx",
                   "httpcore", "google_genai", "openai", "anthropic", "urllib3", "filelock", "torch", "vllm")  # fmt: skip


def _debug_log_handler() -> Any:
    """The one handler library loggers share: it opens `$HALLUC_CACHE/debug.log` (rotated at 2 MB)
    on its first record, so routing costs nothing until a library speaks."""
    global _DEBUG_LOG
    if _DEBUG_LOG is None:
        import logging

        class DebugLog(logging.Handler):
            file: Any = None

            def emit(self, record: logging.LogRecord) -> None:
                if self.file is None:
                    from logging.handlers import RotatingFileHandler

                    from ucli.paths import cache_dir

                    self.file = RotatingFileHandler(
                        cache_dir() / "debug.log", maxBytes=2_000_000, backupCount=1
                    )
                    self.file.setFormatter(
                        logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")
                    )
                from ucli.secrets import scrub

                record.msg, record.args = scrub(record.getMessage()), None  # no secret in the log either
                self.file.emit(record)

        _DEBUG_LOG = DebugLog(logging.DEBUG)
    return _DEBUG_LOG


_DEBUG_LOG: Any = None


def route_warnings(debug: bool) -> None:
    """halluc's own warnings reach the user as `warning:` lines. A library's warnings (deprecations,
    future changes of transformers and friends), its log records (lm-eval's advice) and its tqdm
    bars go to the debug log, `$HALLUC_CACHE/debug.log`; with --debug they reach the terminal."""
    import logging
    import warnings

    log = logging.getLogger("halluc.library")
    if not debug:
        for var in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
            os.environ.setdefault(var, "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # transformers keeps its own stderr handler
        handler = _debug_log_handler()
        for name in (*LIBRARY_LOGGERS, "halluc.library"):
            lib = logging.getLogger(name)
            if handler not in lib.handlers:  # once per process, however many commands it runs
                lib.addHandler(handler)
            lib.propagate = False

    def show(
        message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None
    ) -> None:
        where = filename.replace("\\", "/")
        if "/ucli/" in where or "/halluc_" in where:
            warn(str(message))
        elif debug:
            _console("err").print(f"{category.__name__}: {message} ({filename}:{lineno})", markup=False)
        else:
            log.warning("%s: %s (%s:%d)", category.__name__, message, filename, lineno)

    warnings.showwarning = show


def human_bytes(n: float) -> str:
    """1.2 GiB, 34.5 MiB, 812 KiB, 96 B: a size that never reads as zero."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def shell_words(*words: Any) -> str:
    """A command line to paste into a shell: each word quoted where it must be (a path with spaces
    stays one word)."""
    import shlex

    return shlex.join(str(w) for w in words)


def next_step(*args: Any) -> str:
    """The `next: halluc ...` line a command prints to say what to run after it."""
    return "next: " + shell_words("halluc", *args)


def info(message: str) -> None:
    _console("err").print(message, highlight=False)


def print_json(data: Any) -> None:
    """Machine-readable result on stdout (plain `print`, so rich never wraps or colours it)."""
    import json

    from ucli.secrets import scrub

    sys.stdout.write(scrub(json.dumps(data, indent=2, default=str, ensure_ascii=False)) + "\n")
    sys.stdout.flush()


def result(data: Any, json_out: bool, human: Callable[[], Any]) -> None:
    """A command's result: the JSON document with --json, else what `human()` renders for people."""
    if json_out:
        print_json(data)
    else:
        _console("out").print(human())


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    key_columns: int = 1,
    caption: str | None = None,
) -> Any:
    """A table that holds in 80 columns: no borders, and no cell is ever cut. When the table is
    wider than the screen, the other columns wrap first; the first `key_columns` (what a row is)
    wrap last, between words, keeping each word whole."""
    from rich.table import Table

    cells = [["" if v is None else v if hasattr(v, "__rich_console__") else str(v) for v in r] for r in rows]
    t = Table(title=title, caption=caption, box=None, padding=(0, 1, 0, 0), pad_edge=False, show_lines=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in cells:
        t.add_row(*r)
    texts = [[columns[i], *(r[i] if isinstance(r[i], str) else getattr(r[i], "plain", "") for r in cells)]
             for i in range(len(columns))]  # fmt: skip
    natural = [max(len(line) for x in col for line in (x.splitlines() or [""])) for col in texts]
    longest_word = [max((len(w) for x in col for w in x.split()), default=1) for col in texts]
    # key columns keep whole words; a value column (a long path) may fold inside a word
    shortest = [w if i < key_columns else min(w, 12) for i, w in enumerate(longest_word)]
    return _Fitted(t, natural, shortest, key_columns)


class _Fitted:
    """Render a table at the screen's width, wrapping words even on our soft-wrap consoles (whose
    plain lines stay unbroken so paths can be copied). When the table is too wide, the widest
    value columns give way first (down to 12 characters or their longest word), the key columns
    last (down to their longest word)."""

    def __init__(self, table: Any, natural: list[int], shortest: list[int], key_columns: int):
        self.table, self.natural, self.shortest, self.key_columns = table, natural, shortest, key_columns

    def widths(self, room: int) -> list[int] | None:
        widths = list(self.natural)
        excess = sum(widths) + len(widths) - 1 - room  # one space between columns
        if excess <= 0:
            return None
        for group in (range(self.key_columns, len(widths)), range(self.key_columns)):
            while excess > 0:
                free = [i for i in group if widths[i] > self.shortest[i]]
                if not free:
                    break
                widest = max(free, key=lambda i: widths[i])
                widths[widest] -= 1
                excess -= 1
        return widths

    def __rich_console__(self, console: Any, options: Any) -> Any:
        widths = self.widths(options.max_width)
        for i, column in enumerate(self.table.columns):
            column.width = None if widths is None else widths[i]
        yield from console.render(self.table, options.update(no_wrap=False, overflow=None))


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Any]:
    """A progress bar with count, rate and ETA on stderr; yields `advance(n=1)`."""
    with progress_many([(description, total)]) as bars:
        yield bars[description]


@contextmanager
def progress_many(tasks: list[tuple[str, int | None]]) -> Iterator[dict[str, Any]]:
    """One bar per (label, total), e.g. per model of a pilot; yields {label: advance(n=1)}."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    err = _console("err")
    if not err.is_terminal:
        with _plain_progress(tasks) as bars:
            yield bars
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err, transient=False, disable=not err.is_terminal) as bar:

        def advancer(task: Any) -> Any:
            def advance(n: int = 1) -> None:
                bar.advance(task, n)
                speed = bar.tasks[task].speed
                bar.update(task, rate=f"{speed:.2f}/s" if speed else "")

            return advance

        yield {label: advancer(bar.add_task(label, total=total, rate="")) for label, total in tasks}


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


@contextmanager
def _plain_progress(tasks: list[tuple[str, int | None]]) -> Iterator[dict[str, Any]]:
    """Progress for logs: a line per task every `state.progress_every` seconds while it advances
    (count, percent, rate, elapsed, ETA), and a closing line for tasks that printed one. Short
    runs print nothing."""
    start = time.monotonic()
    every = state.progress_every
    done = {label: 0 for label, _ in tasks}
    first = {label: 0 for label, _ in tasks}  # work skipped at once (resume) is not counted in the rate
    last = {label: start for label, _ in tasks}
    spoke: set[str] = set()

    def line(label: str, total: int | None, now: float) -> None:
        elapsed = now - start
        n = done[label]
        rate = (n - first[label]) / elapsed if elapsed > 0 else 0.0
        parts = [f"{label}: {n}" + (f"/{total} ({n / total:.0%})" if total else "")]
        parts.append(f"{rate:.2f}/s" if rate else "-/s")
        parts.append(f"elapsed {_clock(elapsed)}")
        if total and rate:
            parts.append(f"ETA {_clock((total - n) / rate)}")
        _console("err").print(", ".join(parts), markup=False, highlight=False)

    def advancer(label: str, total: int | None) -> Callable[[int], None]:
        def advance(n: int = 1) -> None:
            now = time.monotonic()
            if done[label] == 0 and now - start < 1.0:
                first[label] += n
            done[label] += n
            if now - last[label] >= every:
                last[label] = now
                spoke.add(label)
                line(label, total, now)

        return advance

    yield {label: advancer(label, total) for label, total in tasks}
    end = time.monotonic()
    for label, total in tasks:
        if label in spoke and end > last[label]:
            line(label, total, end)


def report_error(exc: BaseException) -> int:
    """Print a failure for people (one line; a traceback only with --debug) and return its exit code."""
    err = _console("err")
    if state.debug:  # plain text, not rich's styled traceback: the scrubbed stream sees whole values
        import traceback

        err.print("".join(traceback.format_exception(exc)).rstrip(), highlight=False)
    if isinstance(exc, HallucError):
        err.print(styled(("error:", "red"), f" {exc}"), highlight=False)
        return exc.exit_code
    hint = "" if state.debug else " (run with --debug for a traceback)"
    err.print(styled(("error:", "red"), f" {type(exc).__name__}: {exc}{hint}"), highlight=False)
    return 1
