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
