"""QLoRA recipes: one TOML file says everything a run needs (sections are optional groupings)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ucli.errors import BadInput, invalid

SECTIONS = ("model", "quantization", "lora", "data", "train")


class QLoRARecipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    base_model: str
    # quantization
    quantization: Literal["nf4", "none"] = "nf4"
    double_quant: bool = True
    compute_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    # LoRA
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | str = "all-linear"
    # data
    data_file: str | None = None
    dataset: str | None = None  # a hub dataset name; `data_file` overrides it offline
    dataset_split: str = "train"
    format: Literal["auto", "alpaca", "prompt-completion", "messages"] = "auto"
    template: str | None = None  # without a chat template: e.g. "### Question:\n{prompt}\n### Answer:\n"
    use_chat_template: bool = True
    completion_only_loss: bool = True
    max_seq_length: int = Field(512, ge=8)
    eval_fraction: float = Field(0.0, ge=0, lt=1)
    # training
    epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler: str = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    gradient_checkpointing: bool = False
    seed: int = 42
    logging_steps: int = Field(1, ge=1)
    save_steps: int = Field(50, ge=1)
    eval_steps: int | None = Field(None, ge=1)


def load_recipe(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> QLoRARecipe:
    """A validated recipe from TOML (flat keys, or grouped under [model] [lora] [data] [train])."""
    from ucli.documents import read_document

    p = Path(path)
    raw = read_document(p, "recipe")
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SECTIONS and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    if flat.get("data_file") and not Path(flat["data_file"]).is_absolute():
        flat["data_file"] = str(p.parent / flat["data_file"])  # relative to the recipe, as written
    flat.update(overrides or {})
    try:
        recipe = QLoRARecipe.model_validate(flat)
    except ValidationError as exc:
        raise invalid(exc, str(p), model=QLoRARecipe) from None
    if recipe.data_file is None and recipe.dataset is None:
        raise BadInput(f"{p}: give data_file (local JSONL) or dataset (hub name)")
    return recipe


def quiet(trainer: Any) -> None:
    """No log dicts printed to stdout (`--json` output stays pure); the loss log is kept in files."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
