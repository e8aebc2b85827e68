"""Offline test bed: tiny random Llama / Qwen2 models with a BPE tokenizer trained on the spot.

Used by halluc's own tests and available to plugin authors. Everything is built locally in a few
seconds; nothing touches a model hub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "The capital of France is Paris. The capital of Italy is Rome. The capital of Spain is Madrid.",
    "Gold has the chemical symbol Au. Silver has the symbol Ag. Water is H2O.",
    "George Orwell wrote 1984. Jane Austen wrote Pride and Prejudice.",
    "Jupiter is the largest planet. Humans landed on the Moon in 1969.",
    "What is the answer? Answer in a few words. The answer is yes, no, maybe.",
    "Alexander Fleming discovered penicillin. The Nile is the longest river in Africa.",
] * 20

# questions whose answers the corpus above holds: what tests ask the tiny models
QUESTIONS = [
    ("What is the capital of France?", "Paris"),
    ("Who wrote 1984?", "George Orwell"),
    ("What is the chemical symbol for gold?", "Au"),
    ("When did humans land on the Moon?", "1969"),
    ("What is water?", "H2O"),
    ("Which planet is the largest?", "Jupiter"),
]

TINY_CONFIGS: dict[str, dict[str, Any]] = {
    # Full multi-head attention.
    "llama": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
    },
    # Grouped-query attention (2 query heads per KV head) and another width, so adapters do not fit across.
    "qwen2": {
        "hidden_size": 48,
        "intermediate_size": 96,
        "num_hidden_layers": 4,
        "num_attention_heads": 6,
        "num_key_value_heads": 2,
    },
}


def train_tokenizer(vocab_size: int = 400) -> Any:
    """A byte-level BPE tokenizer with ChatML special tokens and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_model(kind: str, folder: str | Path, seed: int = 0) -> Path:
    """Save a random `kind` ('llama' or 'qwen2') causal LM with its tokenizer to `folder`."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    tokenizer = train_tokenizer()
    config_cls = {"llama": LlamaConfig, "qwen2": Qwen2Config}[kind]
    config = config_cls(
        vocab_size=len(tokenizer),
        max_position_embeddings=512,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **TINY_CONFIGS[kind],
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_encoder(folder: str | Path, seed: int = 0) -> Path:
    """Save a random two-layer BERT encoder with the same tokenizer to `folder` (for encoder
    multiple-choice fine-tuning: AutoModelForMultipleChoice adds its head on load)."""
    import torch
    from transformers import BertConfig, BertModel

    tokenizer = train_tokenizer()
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    torch.manual_seed(seed)
    folder = Path(folder)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def require(module: str, install: str) -> None:
    """A test dependency that CI must have: missing here skips the test with how to install it;
    missing under CI (the `CI` variable set) fails it, so CI never passes by skipping."""
    import importlib.util
    import os

    import pytest

    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed; CI must run these tests ({install})")
        pytest.skip(f"{module} not installed ({install})")
