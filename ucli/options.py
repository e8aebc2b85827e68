"""Typer options shared by many commands, so every command spells them the same way."""

from typing import Any, TypeVar

import typer

M = TypeVar("M")

JSON = typer.Option(False, "--json", help="Print machine-readable JSON on stdout and nothing else there.")


def validated(config_cls: type[M], /, **knobs: Any) -> M:
    """A pydantic config built from command options; the first bad knob becomes one line naming
    its option (`--max-seq-len: ...`)."""
    from pydantic import ValidationError

    from ucli.errors import BadInput

    try:
        return config_cls(**knobs)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "--" + "-".join(str(p) for p in err["loc"]).replace("_", "-")
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise BadInput(f"{name}: {msg} (got {err.get('input')!r})") from None
