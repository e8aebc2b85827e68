"""Requests to one API model under its limits, retried: what the pilot's answers and the judges'
verdicts share, so that one model keeps one rate limit whoever asks it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from halluc_backends.base import BackendError, Generation, SamplingParams


@dataclass(frozen=True)
class Limits:
    """A model's request budget: requests and tokens per minute, requests in flight, and retries
    (jittered exponential backoff from `retry_initial_wait` up to `retry_max_wait` seconds; a
    server's Retry-After wins, capped at `retry_max_wait`)."""

    requests_per_minute: float = 60.0
    tokens_per_minute: float | None = None
    concurrency: int = 4
    max_retries: int = 3
    retry_initial_wait: float = 1.0
    retry_max_wait: float = 60.0


class Pace:
    """One request per `interval` seconds, no bursts (a leaky bucket of one), on the monotonic clock:
    unlike aiolimiter's buckets it holds across event loops, so a judge asked in its own loop after
    the answers' loop keeps the same pace. Slots go in the order they are asked for."""

    def __init__(self, interval: float) -> None:
        self.interval, self.next_at, self.lock = interval, 0.0, threading.Lock()

    async def acquire(self) -> None:
        with self.lock:
            now = time.monotonic()
            at = max(now, self.next_at)
            self.next_at = at + self.interval
        if at > now:
            await asyncio.sleep(at - now)


class Budget:
    """One model's request pace and token bucket. Each `Caller` has its own, except while a run
    holds one for the model (`one_budget`): then every caller of that model (its answers, samples,
    follow-ups and a judge asking the same model) spends that one. The token bucket (aiolimiter)
    is one per event loop."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.rpm = Pace(60 / limits.requests_per_minute)
        self._tpm: tuple[Any, Any] | None = None  # (loop, AsyncLimiter)

    @property
    def tpm(self) -> Any:
        if not self.limits.tokens_per_minute:
            return None
        from aiolimiter import AsyncLimiter

        loop = asyncio.get_running_loop()
        if self._tpm is None or self._tpm[0] is not loop:
            self._tpm = (loop, AsyncLimiter(self.limits.tokens_per_minute, 60))
        return self._tpm[1]


_HELD: dict[tuple[str, str, str | None], Budget] = {}


def _key(backend: Any) -> tuple[str, str, str | None]:
    return (backend.name, backend.model, backend.options.get("base_url"))


@contextmanager
def one_budget(backend: Any, limits: Limits) -> Iterator[Budget]:
    """While open, every `Caller` of `backend`'s model (its name, model id and base URL) in this
    process spends one budget, made from `limits` (or the one an outer block holds)."""
    key = _key(backend)
    outer = _HELD.get(key)
    budget = _HELD[key] = outer or Budget(limits)
    try:
        yield budget
    finally:
        if outer is None:
            del _HELD[key]


def budget_for(backend: Any, limits: Limits) -> Budget:
    """The budget a run holds for `backend`'s model, else a new one from `limits`."""
    return _HELD.get(_key(backend)) or Budget(limits)


class Caller:
    """One API model's requests: rate-limited (a pace of one request per 60/rpm seconds, no
    bursts; tokens per minute by the prompt's rough size plus the answer budget; the `Budget` a run
    holds for the model, if any), at most `concurrency` in flight, retried when the failure is retryable. `on_request`
    counts attempts."""

    def __init__(self, backend: Any, limits: Limits, on_request: Callable[[], None] | None = None) -> None:
        from tenacity import wait_exponential_jitter

        self.backend, self.on_request = backend, on_request
        self.limits, self.budget = limits, budget_for(backend, limits)
        self.gate = asyncio.Semaphore(limits.concurrency)
        self.backoff = wait_exponential_jitter(initial=limits.retry_initial_wait, max=limits.retry_max_wait)

    def wait(self, state: Any) -> float:
        exc = state.outcome.exception()
        if isinstance(exc, BackendError) and exc.retry_after is not None:
            return min(exc.retry_after, max(self.limits.retry_max_wait, 0.0))
        return self.backoff(state)

    async def attempt(self, text: str, params: SamplingParams) -> Generation:
        from halluc_backends.errors import classify

        await self.budget.rpm.acquire()
        tpm = self.budget.tpm
        if tpm is not None:  # within the limiter's capacity
            await tpm.acquire(
                min(self.budget.limits.tokens_per_minute or 0, len(text) / 4 + params.max_tokens)
            )
        if self.on_request is not None:
            self.on_request()
        try:
            return await self.backend.agenerate(text, params)
        except BackendError:
            raise
        except Exception as exc:  # every failure is classified, none swallowed
            raise classify(exc) from exc

    async def answer(self, text: str, params: SamplingParams, tries: list[int]) -> Generation:
        """The generation; `tries[0]` counts the attempts (also when the last one fails)."""
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

        gen = None
        async for state in AsyncRetrying(
            stop=stop_after_attempt(self.limits.max_retries + 1),
            wait=self.wait,
            retry=retry_if_exception(lambda e: isinstance(e, BackendError) and e.retryable),
            reraise=True,
        ):
            with state:
                tries[0] = state.retry_state.attempt_number
                gen = await self.attempt(text, params)
        assert gen is not None
        return gen
