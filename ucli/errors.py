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


def invalid(exc, where: str = "", *, style: str = "key", names=None, model=None) -> BadInput:
    """The first problem of a pydantic ValidationError as one BadInput line, in one of three styles:

    - `key` (config files): `FILE: models[0].top_p: <msg> (got 2.0)`; an unknown key comes first
      (a misspelt table also makes its right name "missing") and, given the config's pydantic
      `model`, says which key was meant or lists the valid ones; a value never shows a secret;
    - `option` (command options): `--max-seq-len: <msg> (got 3)`, `names` mapping a field to its
      option where the spelling differs;
    - `field` (data records): `FILE:LINE: field 'question': <msg>`, `names` mapping a model field
      back to the name the user wrote.
    """
    from ucli.secrets import SECRET_NAME, redact

    errors = exc.errors()
    err = (
        next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        if style == "key"
        else errors[0]
    )
    parts = [str(x) for x in err["loc"]]
    msg = str(err["msg"]).removeprefix("Value error, ")
    if style == "option":
        option = (names or {}).get(parts[0]) if parts else None
        option = option or f"--{'-'.join(parts).replace('_', '-')}"
        got = repr(redact(err.get("input")))
        return BadInput(f"{option}: {msg}" + ("" if got in msg else f" (got {got})"))
    if style == "field":
        if parts and names and parts[0] in names:
            parts[0] = names[parts[0]]
        return BadInput(f"{where}: field '{'.'.join(parts) or 'record'}': {msg.lower()}")
    loc = ".".join(f"[{x}]" if isinstance(x, int) else str(x) for x in err["loc"]).replace(".[", "[")
    if err["type"] == "extra_forbidden":
        valid = _keys_at(model, err["loc"][:-1]) if model is not None else []
        return BadInput(f"{where}: unknown key '{loc}'{_meant(parts[-1], valid)}")
    if err["type"] == "missing":  # the input is the whole table around the key: nothing to show
        return BadInput(f"{where}: {loc}: {msg}")
    shown = "<redacted>" if any(SECRET_NAME.search(p) for p in parts) else repr(redact(err.get("input")))
    return BadInput(f"{where}: {loc}: {msg} (got {shown})")


def _meant(key: str, valid: list[str]) -> str:
    """`; did you mean 'models'?` for a near miss, else the valid keys (nothing when unknown)."""
    import difflib

    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.75)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f" (valid keys: {', '.join(valid)})" if valid else ""


def _keys_at(model, loc) -> list[str]:
    """The keys a pydantic model accepts at `loc` (list positions skipped), following nested models."""
    import typing

    from pydantic import BaseModel

    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        inner, nested = [field.annotation], []
        while inner:  # list[Model], Model | None, dict[str, Model]: the model inside
            t = inner.pop()
            inner.extend(typing.get_args(t))
            nested += [t] if isinstance(t, type) and issubclass(t, BaseModel) else []
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)
