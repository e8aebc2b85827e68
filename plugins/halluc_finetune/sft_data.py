"""SFT examples: alpaca, prompt/completion or chat `messages` records -> token ids with the loss on
completion tokens only (prompt positions get label -100)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from halluc_finetune.recipe import QLoRARecipe
from ucli.errors import BadInput

IGNORE = -100


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]


def record_format(data: dict[str, Any], loc: str) -> str:
    if "messages" in data:
        return "messages"
    if "instruction" in data and "output" in data:
        return "alpaca"
    if "prompt" in data and "completion" in data:
        return "prompt-completion"
    raise BadInput(f"{loc}: expected instruction/output, prompt/completion or messages")


def prompt_and_completion(
    data: dict[str, Any], fmt: str, tokenizer: Any, recipe: QLoRARecipe, loc: str
) -> tuple[str, str]:
    """The prompt as the model will see it (chat template or recipe template) and the target text."""
    chat = recipe.use_chat_template and bool(getattr(tokenizer, "chat_template", None))
    if fmt == "messages":
        messages = data["messages"]
        if not messages or messages[-1].get("role") != "assistant":
            raise BadInput(f"{loc}: the last message must be the assistant's (the completion)")
        if chat:
            return tokenizer.apply_chat_template(
                messages[:-1], tokenize=False, add_generation_prompt=True
            ), messages[-1]["content"]
        prompt = "\n".join(m["content"] for m in messages[:-1])
        completion = messages[-1]["content"]
    elif fmt == "alpaca":
        prompt = data["instruction"] + (f"\n\n{data['input']}" if data.get("input") else "")
        completion = data["output"]
    else:
        prompt, completion = data["prompt"], data["completion"]
    if chat:
        from ucli.models import chat_prompt

        return chat_prompt(tokenizer, prompt), completion
    try:
        return (recipe.template or "{prompt}\n").format(prompt=prompt), completion
    except (KeyError, IndexError) as exc:
        raise BadInput(
            f"{loc}: the template needs {exc}, which is not a field here (use {{prompt}})"
        ) from None


def build_examples(records: list[Any], tokenizer: Any, recipe: QLoRARecipe) -> list[Example]:
    """Tokenized examples; the completion ends with eos; truncated to max_seq_length."""
    chat = recipe.use_chat_template and bool(getattr(tokenizer, "chat_template", None))
    out = []
    for rec in records:
        fmt = recipe.format if recipe.format != "auto" else record_format(rec.data, rec.loc)
        prompt, completion = prompt_and_completion(rec.data, fmt, tokenizer, recipe, rec.loc)
        p = tokenizer(prompt, add_special_tokens=not chat)["input_ids"]
        c = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = (p + c)[: recipe.max_seq_length]
        labels = ([IGNORE] * len(p) + c if recipe.completion_only_loss else p + c)[: recipe.max_seq_length]
        if all(x == IGNORE for x in labels):
            raise BadInput(f"{rec.loc}: the prompt alone fills max_seq_length {recipe.max_seq_length}")
        out.append(Example(ids, labels))
    return out


def collate(batch: list[Example], pad_id: int) -> dict[str, Any]:
    """Right padding: pads are masked out of attention and of the loss."""
    from ucli.models import right_padded

    ids, mask = right_padded([e.input_ids for e in batch], pad_id)
    labels, _ = right_padded([e.labels for e in batch], IGNORE)
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}
