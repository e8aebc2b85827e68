"""`gemini`: Gemini models through the official google-genai SDK (extra `api`)."""

from __future__ import annotations

from typing import Any

from halluc_backends.base import APIBackend, Capabilities, Generation, SamplingParams, require_sdk
from halluc_backends.errors import classify


class GeminiBackend(APIBackend):
    name = "gemini"
    capabilities = Capabilities(logprobs=True, top_logprobs=20, seed=True, system_prompt=True)
    env_keys = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    sdk = "google.genai"
    extra = "api"

    def client(self) -> Any:
        if self._client is None:
            require_sdk("google.genai", "api")
            from google import genai
            from google.genai import types

            http = {"timeout": int((self.options.get("timeout") or 60.0) * 1000)}
            if self.options.get("base_url"):
                http["base_url"] = self.options["base_url"]
            self._client = genai.Client(api_key=self.api_key(), http_options=types.HttpOptions(**http))
        return self._client

    async def agenerate(self, prompt: str, params: SamplingParams) -> Generation:
        from google.genai import types

        config = types.GenerateContentConfig(
            temperature=params.temperature, top_p=params.top_p, max_output_tokens=params.max_tokens,
            seed=params.seed, response_logprobs=bool(params.top_logprobs) or None,
            logprobs=params.top_logprobs or None,
        )  # fmt: skip
        try:
            resp = await self.client().aio.models.generate_content(
                model=self.model, contents=prompt, config=config
            )
            candidate = resp.candidates[0]
        except Exception as exc:  # every failure is classified, none swallowed
            raise classify(exc) from exc
        positions = None
        result = getattr(candidate, "logprobs_result", None)
        if result is not None and result.chosen_candidates:
            tops = result.top_candidates or []
            positions = [
                {"token": c.token, "logprob": c.log_probability,
                 "top": [{"token": t.token, "logprob": t.log_probability}
                         for t in (tops[i].candidates if i < len(tops) else [])]}
                for i, c in enumerate(result.chosen_candidates)
            ]  # fmt: skip
        usage = resp.usage_metadata
        finish = getattr(candidate.finish_reason, "name", candidate.finish_reason)
        return Generation(
            text=resp.text or "",
            finish_reason=str(finish).lower() if finish else None,
            input_tokens=getattr(usage, "prompt_token_count", None),
            output_tokens=getattr(usage, "candidates_token_count", None),
            token_logprobs=positions,
        )
