"""Classify SDK and transport exceptions into retryable, permanent and authentication failures."""

from __future__ import annotations

import asyncio
import json

from halluc_backends.base import BackendError, retry_after_seconds


def classify(exc: BaseException) -> BackendError:
    """One classification for the openai, anthropic and google-genai SDKs and for httpx itself."""
    if isinstance(exc, BackendError):
        return exc
    status = getattr(exc, "status_code", None) or getattr(exc, "code", None)
    response = getattr(exc, "response", None)
    if isinstance(status, int) and status >= 400:
        message = getattr(exc, "message", None) or str(exc)
        return BackendError.from_status(
            status, _first_line(message), retry_after_seconds(getattr(response, "headers", None))
        )
    name = type(exc).__name__
    if isinstance(exc, TypeError) and "authentication" in str(exc).lower():
        # anthropic's "Could not resolve authentication method": no key reached the SDK
        return BackendError(f"{name}: {_first_line(str(exc))}", retryable=False, auth=True)
    transport = ("Timeout", "Connection", "RemoteProtocol", "ReadError", "WriteError", "NetworkError", "Incomplete",
                 "Payload", "Disconnected")  # fmt: skip
    # httpx, httpcore and aiohttp errors without a status are transport failures (google-genai uses
    # aiohttp when it is installed)
    from_transport = type(exc).__module__.split(".")[0] in ("httpx", "httpcore", "aiohttp")
    if isinstance(exc, json.JSONDecodeError):  # an answer came, cut short
        return BackendError(f"{name}: {_first_line(str(exc))}", retryable=True)
    if (
        isinstance(exc, (asyncio.TimeoutError, TimeoutError, ConnectionError))
        or from_transport
        or any(t in name for t in transport)
    ):
        return BackendError(f"{name}: {_first_line(str(exc))}", retryable=True, transport=True)
    if "ResponseValidation" in name or "UnknownApiResponse" in name:  # a truncated or garbled body
        return BackendError(f"{name}: {_first_line(str(exc))}", retryable=True)
    return BackendError(f"{name}: {_first_line(str(exc))}", retryable=False)


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]
