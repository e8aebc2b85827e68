"""Terminal output: one stdout console for results, one stderr console for everything else.

`--json` commands print only JSON on stdout; tables, progress bars and warnings go through these
helpers so that the rule holds everywhere. Both consoles print text as written (markup off): a
message such as `pip install 'halluc[eval]'` or a path with brackets must survive. Styled pieces
are built as rich `Text` (see `styled`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ucli.errors import HallucError

_consoles: dict[str, Any] = {}


def _console(name: str) -> Any:
    if name not in _consoles:
        from rich.console import Console

        _consoles[name] = Console(stderr=name == "err", soft_wrap=True, markup=False)
    return _consoles[name]


def __getattr__(name: str) -> Any:
    """`console.out` (stdout) and `console.err` (stderr), built on first use: rich costs startup time."""
    if name not in ("out", "err"):
        raise AttributeError(name)
    return _console(name)


class _State:
    debug = False


state = _State()


def styled(*parts: str | tuple[str, str]) -> Any:
    """Rich `Text` from plain strings and (text, style) pairs: styling without markup parsing."""
    from rich.text import Text

    return Text.assemble(*parts)


def warn(message: str) -> None:
    _console("err").print(styled(("warning:", "yellow"), " ", message), highlight=False)


def route_warnings(debug: bool) -> None:
    """halluc's own warnings reach the user as `warning:` lines; a library's (deprecations, future
    changes of transformers and friends) go to the debug log and the terminal only with --debug."""
    import logging
    import warnings

    log = logging.getLogger("halluc.library")

    def show(
        message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None
    ) -> None:
        where = filename.replace("\\", "/")
        if "/ucli/" in where or "/halluc_" in where:
            warn(str(message))
        elif debug:
            _console("err").print(f"{category.__name__}: {message} ({filename}:{lineno})", markup=False)
        else:
            log.debug("%s: %s (%s:%d)", category.__name__, message, filename, lineno)

    warnings.showwarning = show


def info(message: str) -> None:
    _console("err").print(message, highlight=False)


def print_json(data: Any) -> None:
    """Machine-readable result on stdout (plain `print`, so rich never wraps or colours it)."""
    import json

    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def result(data: Any, json_out: bool, human: Callable[[], Any]) -> None:
    """A command's result: the JSON document with --json, else what `human()` renders for people."""
    if json_out:
        print_json(data)
    else:
        _console("out").print(human())


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Any:
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*("" if v is None else v if hasattr(v, "__rich_console__") else str(v) for v in r))
    return t


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


def report_error(exc: BaseException) -> int:
    """Print a failure for people (one line; a traceback only with --debug) and return its exit code."""
    err = _console("err")
    if state.debug:
        err.print_exception(show_locals=False)
    if isinstance(exc, HallucError):
        err.print(styled(("error:", "red"), f" {exc}"), highlight=False)
        return exc.exit_code
    err.print(
        styled(("error:", "red"), f" {type(exc).__name__}: {exc} (run with --debug for a traceback)"),
        highlight=False,
    )
    return 1
