"""Keep secrets out of files and logs: redact by key name and scrub known secret values."""

from __future__ import annotations

import os
import re
from typing import Any

KNOWN_KEY_VARS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "TOGETHER_API_KEY",
    "MISTRAL_API_KEY",
    "GROQ_API_KEY",
    "OPENROUTER_API_KEY",
    "WANDB_API_KEY",
)
# Whole name parts only: `hf_token` and `ANTHROPIC_API_KEY` are secrets, `max_tokens` is not.
SECRET_NAME = re.compile(
    r"(?:^|[_\-.])(?:api[_-]?key|apikey|token|secret|password|passwd|authorization|credentials?|access[_-]?key)"
    r"(?:$|[_\-.])",
    re.I,
)
ENV_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
REDACTED = "<redacted>"


# Secret values this process learnt from a config (`${VAR}` expanded into a secret field, or from
# a secret-named variable): scrubbed from every message, log line and record, however short, down
# to REMEMBERED_MIN characters (a shorter one, such as a local server's dummy key "x", would garble
# every text it is scrubbed from; the field it sits in is still redacted by name).
REMEMBERED: dict[str, str] = {}
REMEMBERED_MIN = 4


def is_secret_name(name: str) -> bool:
    """Whether a variable or field name says it holds a secret (`ANTHROPIC_API_KEY`, `hf_token`)."""
    return name in KNOWN_KEY_VARS or bool(SECRET_NAME.search(name))


def remember(value: str, name: str) -> None:
    """`value` (expanded from `${name}`) is a secret: every later `scrub` replaces it by `${name}`."""
    if len(value.strip()) >= REMEMBERED_MIN:
        REMEMBERED[value] = name


def _secret_values() -> list[tuple[str, str]]:
    """(secret value, the variable that names it), longest value first (a secret that contains
    another is replaced whole): remembered ones, and the values of environment variables whose
    names say they are secrets (long enough to be real)."""
    found = {value: name for name, value in os.environ.items() if is_secret_name(name) and len(value) >= 8}
    return sorted({**found, **REMEMBERED}.items(), key=lambda kv: -len(kv[0]))


def scrub(text: str, secrets: list[tuple[str, str]] | None = None) -> str:
    """`text` with every known secret value replaced by the `${VAR}` that names it (`secrets`: the
    list `_secret_values` gives, when a caller scrubs many texts)."""
    for value, name in _secret_values() if secrets is None else secrets:
        if value in text:
            text = text.replace(value, "${" + name + "}")
    return text


def redact(obj: Any, by_name: bool = True, _secrets: list[tuple[str, str]] | None = None) -> Any:
    """A copy of obj with secret values scrubbed and, with `by_name`, secret-named fields redacted.

    An unexpanded `${VAR}` reference may stay: it names the secret without revealing it. The
    secrets are looked up once per call, so a whole table costs about a copy (nothing without any).
    """
    secrets = _secret_values() if _secrets is None else _secrets
    if not secrets and not by_name:
        return obj  # nothing to scrub: no copy
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if by_name and SECRET_NAME.search(str(key)) and value not in (None, "", False):
                keep = isinstance(value, str) and ENV_REFERENCE.match(value)
                out[key] = value if keep else REDACTED
            else:
                out[key] = redact(value, by_name, secrets) if isinstance(value, _WALKED) else value
        return out
    if isinstance(obj, list | tuple):  # numbers (most of a table) are kept without a call each
        return [redact(v, by_name, secrets) if isinstance(v, _WALKED) else v for v in obj]
    if isinstance(obj, str):
        return scrub(obj, secrets) if secrets else obj
    return obj


_WALKED = (str, dict, list, tuple)  # what may hold a secret


def redact_argv(argv: list[str]) -> list[str]:
    """`--api-key X` and `--api-key=X` lose their value; known secret values are scrubbed anywhere."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        if arg.startswith("-") and SECRET_NAME.search(arg.lstrip("-").split("=", 1)[0]):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=" + REDACTED)
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(scrub(arg))
    return out
