"""`vllm`: the offline vLLM engine on a GPU machine (extra `vllm`), with log-probs."""

from __future__ import annotations

from typing import Any

from halluc_backends.base import Capabilities, Generation, LocalBackend, SamplingParams, require_sdk


class VLLMBackend(LocalBackend):
    name = "vllm"
    capabilities = Capabilities(logprobs=True, top_logprobs=20, seed=True, system_prompt=True)
    sdk = "vllm"
    extra = "vllm"

    def llm(self) -> Any:
        """The engine, with the load knobs vLLM has: dtype, in-flight 4-bit bitsandbytes and LoRA
        adapters (8-bit loading of a full-precision checkpoint it has not), and tensor parallelism
        over `tensor_parallel_size` GPUs (default: the GPUs of the replica it runs on, else 1)."""
        if self._client is None:
            from ucli.errors import BadInput
            from ucli.models import gpus_spanned

            if self.options.get("load_in_8bit"):
                raise BadInput("vllm: --load-in-8bit is not supported (use --load-in-4bit or --backend hf)")
            vllm = require_sdk("vllm", "vllm")
            self._client = vllm.LLM(
                model=self.model, seed=self.options.get("seed") or 0, dtype=self.options.get("dtype") or "auto",
                quantization="bitsandbytes" if self.options.get("load_in_4bit") else None,
                enable_lora=bool(self.options.get("adapter")),
                tensor_parallel_size=self.options.get("tensor_parallel_size") or gpus_spanned(),
            )  # fmt: skip
        return self._client

    def _lora(self) -> Any:
        """The adapter as vLLM's per-request LoRA (None without one)."""
        adapter = self.options.get("adapter")
        if not adapter:
            return None
        from vllm.lora.request import LoRARequest

        return LoRARequest("adapter", 1, str(adapter))

    def generate_batch(self, prompts: list[str], params: SamplingParams) -> list[Generation]:
        vllm = require_sdk("vllm", "vllm")
        # One seed per prompt (seed + its position): a per-request seed shared by copies of one prompt
        # would make their samples identical. logprobs=0 still returns each chosen token's log-prob.
        sampling = [
            vllm.SamplingParams(temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_tokens,
                                seed=None if params.seed is None else params.seed + i, logprobs=params.top_logprobs)
            for i in range(len(prompts))
        ]  # fmt: skip
        messages = [[{"role": "user", "content": p}] for p in prompts]
        outputs = self.llm().chat(messages, sampling, use_tqdm=False, lora_request=self._lora())
        eos = getattr(self.llm().get_tokenizer(), "eos_token_id", None)
        result = []
        for out in outputs:
            completion = out.outputs[0]
            ids = list(completion.token_ids)
            if ids and ids[-1] == eos:  # answers end before the end-of-sequence token (as with hf)
                ids = ids[:-1]
            positions = None
            if completion.logprobs:
                positions = []
                for token_id, step in zip(ids, completion.logprobs, strict=False):
                    chosen = step.get(token_id)
                    ranked = sorted(step.values(), key=lambda lp: lp.rank or 0)[: params.top_logprobs]
                    positions.append({
                        "token": chosen.decoded_token if chosen else None,
                        "id": token_id,
                        "logprob": chosen.logprob if chosen else None,
                        "top": [{"token": lp.decoded_token, "logprob": lp.logprob} for lp in ranked],
                    })  # fmt: skip
            result.append(
                Generation(
                    text=completion.text,
                    finish_reason=completion.finish_reason,
                    input_tokens=len(out.prompt_token_ids or []),
                    output_tokens=len(completion.token_ids),
                    token_logprobs=positions,
                )
            )
        return result
