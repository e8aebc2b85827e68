"""`hf`: a local transformers model through `ucli.models` (any spec, quantization), batched."""

from __future__ import annotations

from typing import Any

from halluc_backends.base import Capabilities, Generation, LocalBackend, SamplingParams


class HFBackend(LocalBackend):
    name = "hf"
    capabilities = Capabilities(
        logprobs=True, top_logprobs=20, distribution=True, seed=True, system_prompt=True
    )

    def describe(self) -> str:
        from ucli.models import resolve

        resolved = resolve(self.model)
        return f"{self.name}: {resolved.source} {resolved.name}"

    @property
    def lm(self) -> Any:
        if self._client is None:
            from ucli.models import load_model

            self._client = load_model(
                self.model,
                device=self.options.get("device") or "auto",
                dtype=self.options.get("dtype") or "auto",
                load_in_4bit=bool(self.options.get("load_in_4bit")),
                load_in_8bit=bool(self.options.get("load_in_8bit")),
                adapter=self.options.get("adapter"),
            )
        return self._client

    def generate_batch(self, prompts: list[str], params: SamplingParams) -> list[Generation]:
        """One padded batch with the chat template; sampled batches are seeded from `params.seed`."""
        import torch

        from ucli.generation import generate

        lm = self.lm
        if params.seed is not None:
            torch.manual_seed(params.seed)
        rows = generate(
            lm, [lm.chat_prompt(p) for p in prompts], params.max_tokens, params.temperature, params.top_p,
            params.top_logprobs,
        )  # fmt: skip
        out = []
        for row in rows:
            tops = row.get("top_logprobs") or [[]] * len(row["tokens"])
            positions = [
                {"token": tok, "id": tid, "logprob": lp, "entropy": h, "margin": m,
                 "top": [{"token": t, "logprob": v} for t, v in top]}
                for tok, tid, lp, h, m, top in zip(
                    row["tokens"], row["token_ids"], row["logprobs"], row["entropies"], row["margins"], tops, strict=True
                )
            ]  # fmt: skip
            out.append(
                Generation(
                    text=row["answer"],
                    finish_reason="stop" if row["finish_reason"] == "eos" else "length",
                    input_tokens=row["prompt_tokens"],
                    output_tokens=row["generated_tokens"],
                    token_logprobs=positions,
                )
            )
        return out
