"""The two kinds of failure a user can meet, and the exit code each one maps to."""


class HallucError(Exception):
    """A runtime failure (exit code 1): the input was fine but the work could not be done."""

    exit_code = 1


class BadInput(HallucError):
    """The user's input is wrong (exit code 2): one line naming file, line, field and expectation."""

    exit_code = 2


def where(path, line: int | None = None, field: str | None = None) -> str:
    """Format the `file:line: field 'x'` prefix used by every bad-input message."""
    text = str(path)
    if line is not None:
        text += f":{line}"
    if field is not None:
        text += f": field '{field}'"
    return text


def invalid(exc, where: str = "", *, style: str = "key", names=None, valid_keys=None) -> BadInput:
    """The first problem of a pydantic ValidationError as one BadInput line, in one of three styles:

    - `key` (config files): `FILE: models[0].top_p: <msg> (got 2.0)`; an unknown key lists the
      valid ones when `valid_keys` is given; a secret-looking key never shows its value;
    - `option` (command options): `--max-seq-len: <msg> (got 3)`;
    - `field` (data records): `FILE:LINE: field 'question': <msg>`, `names` mapping a model field
      back to the name the user wrote.
    """
    from ucli.secrets import SECRET_NAME

    err = exc.errors()[0]
    parts = [str(x) for x in err["loc"]]
    msg = str(err["msg"]).removeprefix("Value error, ")
    if style == "option":
        return BadInput(f"--{'-'.join(parts).replace('_', '-')}: {msg} (got {err.get('input')!r})")
    if style == "field":
        if parts and names and parts[0] in names:
            parts[0] = names[parts[0]]
        return BadInput(f"{where}: field '{'.'.join(parts) or 'record'}': {msg.lower()}")
    loc = ".".join(f"[{x}]" if isinstance(x, int) else str(x) for x in err["loc"]).replace(".[", "[")
    if err["type"] == "extra_forbidden" and valid_keys:
        return BadInput(f"{where}: unknown key '{loc}' (valid keys: {', '.join(valid_keys)})")
    shown = "<redacted>" if any(SECRET_NAME.search(p) for p in parts) else repr(err.get("input"))
    return BadInput(f"{where}: {loc}: {msg} (got {shown})")
