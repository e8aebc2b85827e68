"""The backend interface: what a pilot needs from any model, local or behind an API."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any

from ucli.errors import BadInput

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None
    top_logprobs: int = 5  # per generated token, where the backend can return them


@dataclass
class Generation:
    text: str
    finish_reason: str | None
    input_tokens: int | None = None
    output_tokens: int | None = None
    # per position: {"token", "logprob", "top": [{"token", "logprob"}, ...]}, and a local backend's
    # "entropy" and "margin" of the step's whole distribution; None when not returned
    token_logprobs: list[dict[str, Any]] | None = None
    # K sampled answers to the same prompt drawn beside this one (`pilot run --samples`), as records keep them
    samples: list[dict[str, Any]] | None = None

    def usage(self) -> dict[str, int | None]:
        total = (
            None
            if self.input_tokens is None or self.output_tokens is None
            else self.input_tokens + self.output_tokens
        )
        return {"input": self.input_tokens, "output": self.output_tokens, "total": total}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class BackendError(Exception):
    """A failed request, classified: retryable (429, 5xx, timeouts, resets, truncated bodies) or not;
    `auth` errors stop the whole model (a wrong key must not hammer the API), and so do `transport`
    errors that outlast the retries (nothing answered: an unreachable `base_url`, a dead network),
    whose prompts stay undone rather than recorded as failed answers."""

    def __init__(self, message: str, retryable: bool, status: int | None = None,
                 retry_after: float | None = None, auth: bool = False, transport: bool = False):  # fmt: skip
        super().__init__(message)
        self.retryable, self.status, self.retry_after, self.auth = retryable, status, retry_after, auth
        self.transport = transport

    @classmethod
    def from_status(cls, status: int, message: str, retry_after: float | None = None) -> BackendError:
        auth = status in (401, 403)
        return cls(
            f"HTTP {status}: {message}",
            status in RETRYABLE_STATUS or status >= 500,
            status,
            retry_after,
            auth,
        )


def retry_after_seconds(headers: Any) -> float | None:
    """`Retry-After` (seconds or an HTTP date) or `retry-after-ms`, as seconds; None when absent."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        import datetime as dt
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())


@dataclass(frozen=True)
class Capabilities:
    """What a backend can give, declared by its class (architecture rule 13): texts always; the
    chosen token's log-probability and the `top_logprobs` most likely tokens per position (0: none);
    the whole next-token distribution (a local model); a sampling seed; a system prompt."""

    logprobs: bool = False
    top_logprobs: int = 0
    distribution: bool = False
    seed: bool = False
    system_prompt: bool = False

    def statistics(self) -> frozenset[str]:
        """What the estimators may read of this backend, in the signals layer's names (an
        estimator's `needs`): texts give samples, a local equivalence judge, the greedy answer's
        consistency with them and a verbalized confidence; log-probs give the token and sample
        log-likelihoods; the top two per position give the margin and (approximately) the entropy,
        and p(True) from the reply's first token."""
        out = {"samples", "judge", "consistency", "verbalized"}
        if self.logprobs:
            out |= {"logprobs", "sample-logprobs"}
        if self.distribution or self.top_logprobs >= 2:
            out |= {"distributions", "second-prompt"}
        return frozenset(out)

    def describe(self) -> str:
        gives = ["texts"]
        if self.logprobs:
            gives.append(f"log-probs with the top {self.top_logprobs}" if self.top_logprobs else "log-probs")
        if self.distribution:
            gives.append("the whole distribution")
        gives += [
            name for name, has in (("a seed", self.seed), ("a system prompt", self.system_prompt)) if has
        ]
        return ", ".join(gives)


@dataclass(frozen=True)
class Readiness:
    """One thing a backend needs before it can send anything (see `Backend.checks`)."""

    check: str
    ok: bool
    detail: str


class Backend:
    """What every backend shares: a model id, its options, a lazily made client. Subclass
    `APIBackend` (requests, run concurrently under the pilot's rate limits) or `LocalBackend`
    (batches, run in a worker thread)."""

    name: str = ""
    local: bool = False
    env_keys: tuple[str, ...] = ()  # variables that can hold the API key
    sdk: str | None = None  # the module the backend imports on first use
    extra: str | None = None  # the optional extra that installs it
    capabilities: Capabilities = Capabilities()  # what it can give beyond texts

    def __init__(self, model: str, **options: Any):
        self.model = model
        self.options = options
        self._client: Any = None  # the SDK client, engine or loaded model, made on first use

    async def aclose(self) -> None:
        """Close the SDK client, if it has a `close` (awaited when it is a coroutine)."""
        import inspect

        client, self._client = self._client, None
        close = getattr(client, "close", None)
        if close is not None:
            result = close()
            if inspect.isawaitable(result):
                await result

    def checks(self) -> list[Readiness]:
        """What this model needs before its first request, checked without sending one: its SDK and,
        behind an API, a key. A failed check stops the model before it runs (`pilot run`) and is a
        failed row of `pilot validate`."""
        import importlib.util

        out = []
        if self.sdk:
            try:
                found = importlib.util.find_spec(self.sdk) is not None
            except ImportError:  # a parent package is missing (google for google.genai)
                found = False
            missing = f"`{self.sdk}` is not installed: pip install 'halluc[{self.extra}]'"
            out.append(Readiness("sdk", found, f"{self.sdk} installed" if found else missing))
        if self.env_keys or self.options.get("api_key"):
            has_key = bool(self.api_key())
            needed = not self.options.get("base_url")  # a local compatible server takes any key
            names = "/".join(self.env_keys) or "api_key"
            detail = f"{'set' if has_key else 'missing'} ({names})"
            if not has_key and not needed:
                detail += "; not needed with base_url"
            elif not has_key:
                detail += f": set {names} or api_key in the config"
            out.append(Readiness("api key", has_key or not needed, detail))
        return out

    def describe(self) -> str:
        """What this model is, checked without loading it (a local spec that cannot resolve is
        BadInput here, before a run writes anything)."""
        base_url = self.options.get("base_url")
        return f"{self.name}: {self.model}" + (f" at {base_url}" if base_url else "")

    def api_key(self) -> str | None:
        """The key from the config (already ${ENV}-expanded), else the first env variable set."""
        import os

        key = self.options.get("api_key")
        return key or next((os.environ[k] for k in self.env_keys if os.environ.get(k)), None)


class APIBackend(Backend, ABC):
    """A model behind an API: one request per prompt."""

    @abstractmethod
    async def agenerate(self, prompt: str, params: SamplingParams) -> Generation: ...


class LocalBackend(Backend, ABC):
    """A model in this process: prompts in batches."""

    local = True

    @abstractmethod
    def generate_batch(self, prompts: list[str], params: SamplingParams) -> list[Generation]: ...


# Other names users (and the seed pilot config) give the registered backends.
ALIASES = {"local": "hf", "transformers": "hf", "claude": "anthropic", "google": "gemini"}


def backend_class(name: str) -> type[Backend]:
    """A registered backend class by its entry-point name (BadInput lists the known ones)."""
    from ucli import plugins

    cls = plugins.load("backends", ALIASES.get(name, name))
    if not (isinstance(cls, type) and issubclass(cls, (APIBackend, LocalBackend))):
        raise BadInput(f"backend '{name}' is not a halluc APIBackend or LocalBackend class")
    return cls


def require_sdk(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise BadInput(f"this backend needs `{module}`: pip install 'halluc[{extra}]'") from None
