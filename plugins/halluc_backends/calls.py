"""Requests to one API model under its limits, retried: what the pilot's answers and the judges'
verdicts share, so that one model keeps one rate limit whoever asks it."""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable
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
    """One model's request pace and token bucket, shared by every `Caller` of that model in this
    process while any holds it: the greedy answers, the samples and a judge asking the same model
    spend one budget. The first caller's limits set it. The token bucket (aiolimiter) is one per
    event loop."""

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


_BUDGETS: weakref.WeakValueDictionary[tuple[str, str, str | None], Budget] = weakref.WeakValueDictionary()


def budget_for(backend: Any, limits: Limits) -> Budget:
    """The budget of `backend`'s model (its name, model id and base URL), made from `limits` when no
    caller holds one."""
    key = (backend.name, backend.model, backend.options.get("base_url"))
    budget = _BUDGETS.get(key)
    if budget is None:
        budget = _BUDGETS[key] = Budget(limits)
    return budget


class Caller:
    """One API model's requests: rate-limited (a bucket of one request per 60/rpm seconds, no
    bursts; tokens per minute by the prompt's rough size plus the answer budget; one `Budget` per
    model), at most `concurrency` in flight, retried when the failure is retryable. `on_request`
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
