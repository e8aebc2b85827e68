"""`openai`: any OpenAI-compatible chat-completions server (OpenAI, a vLLM server, llama.cpp)."""

from __future__ import annotations

from typing import Any

from halluc_backends.base import APIBackend, Capabilities, Generation, SamplingParams, require_sdk
from halluc_backends.errors import classify


class OpenAIBackend(APIBackend):
    name = "openai"
    capabilities = Capabilities(logprobs=True, top_logprobs=20, seed=True, system_prompt=True)
    env_keys = ("OPENAI_API_KEY",)
    sdk = "openai"
    extra = "api"

    def client(self) -> Any:
        if self._client is None:
            openai = require_sdk("openai", "api")
            self._client = openai.AsyncOpenAI(
                api_key=self.api_key() or "not-needed",  # local servers take any key
                base_url=self.options.get("base_url"),
                timeout=self.options.get("timeout") or 60.0,
                max_retries=0,  # the pilot retries, with its own policy and accounting
            )
        return self._client

    async def agenerate(self, prompt: str, params: SamplingParams) -> Generation:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        if params.seed is not None:
            kwargs["seed"] = params.seed
        if params.top_logprobs:
            kwargs.update(logprobs=True, top_logprobs=params.top_logprobs)
        try:
            resp = await self.client().chat.completions.create(**kwargs)
            choice = resp.choices[0]
        except Exception as exc:  # every failure is classified, none swallowed
            raise classify(exc) from exc
        content = getattr(choice.logprobs, "content", None) if choice.logprobs else None
        positions = None
        if content:
            positions = [
                {"token": c.token, "logprob": c.logprob,
                 "top": [{"token": t.token, "logprob": t.logprob} for t in (c.top_logprobs or [])]}
                for c in content
            ]  # fmt: skip
        usage = resp.usage
        return Generation(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason,
            input_tokens=getattr(usage, "prompt_tokens", None),
            output_tokens=getattr(usage, "completion_tokens", None),
            token_logprobs=positions,
        )
