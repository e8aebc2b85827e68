"""`anthropic`: Claude models through the official SDK (extra `api`); no log-probs there."""

from __future__ import annotations

from typing import Any

from halluc_backends.base import APIBackend, Capabilities, Generation, SamplingParams, require_sdk
from halluc_backends.errors import classify


class AnthropicBackend(APIBackend):
    name = "anthropic"
    capabilities = Capabilities(system_prompt=True)
    env_keys = ("ANTHROPIC_API_KEY",)
    sdk = "anthropic"
    extra = "api"

    def client(self) -> Any:
        if self._client is None:
            anthropic = require_sdk("anthropic", "api")
            self._client = anthropic.AsyncAnthropic(
                api_key=self.api_key(), base_url=self.options.get("base_url"),
                timeout=self.options.get("timeout") or 60.0, max_retries=0,
            )  # fmt: skip
        return self._client

    async def agenerate(self, prompt: str, params: SamplingParams) -> Generation:
        sampling: dict[str, Any] = {"temperature": params.temperature}
        if params.top_p < 1.0:
            sampling["top_p"] = params.top_p
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": params.max_tokens,
            "messages": [{"role": "user", "content": prompt}],
            # in the request body as the Messages API defines them (newer SDKs dropped the arguments)
            "extra_body": sampling,
        }
        try:
            resp = await self.client().messages.create(**kwargs)
        except Exception as exc:  # every failure is classified, none swallowed
            raise classify(exc) from exc
        text = "".join(getattr(block, "text", "") for block in resp.content)
        return Generation(
            text=text,
            finish_reason=resp.stop_reason,
            input_tokens=getattr(resp.usage, "input_tokens", None),
            output_tokens=getattr(resp.usage, "output_tokens", None),
        )
