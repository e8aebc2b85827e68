"""Encoder multiple-choice fine-tuning (AutoModelForMultipleChoice) on CommonsenseQA-format data;
the checkpoint feeds `halluc trace extract --encoder-mcq`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from halluc_finetune.recipe import quiet
from ucli.data import MultipleChoiceItem, read_multiple_choice

METRICS_SCHEMA = "halluc.finetune.mcq"


def read_mcq(path: str | Path) -> list[MultipleChoiceItem]:
    """CommonsenseQA-format training or validation data: every question labelled."""
    return read_multiple_choice(path, require_label=True)


def encode(items: list[MultipleChoiceItem], tokenizer: Any, max_seq_len: int) -> list[dict[str, Any]]:
    import torch

    rows = []
    for item in items:
        enc = tokenizer([item.question] * len(item.choices), item.choices, truncation=True,
                        max_length=max_seq_len, padding="max_length", return_tensors="pt")  # fmt: skip
        row = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        row["labels"] = torch.tensor(item.label)
        rows.append(row)
    return rows


def accuracy(model: Any, rows: list[dict[str, Any]], batch_size: int) -> float:
    import torch

    model.eval()
    right = 0
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            batch = {
                k: torch.stack([r[k] for r in rows[i : i + batch_size]]).to(model.device) for k in rows[0]
            }
            labels = batch.pop("labels")
            right += int((model(**batch).logits.argmax(-1) == labels).sum())
    return right / len(rows)


def train_mcq(
    model: str, train: str | Path, validation: str | Path, output: str | Path, max_seq_len: int = 128,
    lr: float = 2e-5, epochs: float = 2, batch_size: int = 8, gradient_checkpointing: bool = False, seed: int = 42,
) -> dict[str, Any]:  # fmt: skip
    """Fine-tune, then save the model, its tokenizer and `metrics.json` (validation accuracy before
    and after, with provenance). Under torchrun / accelerate: DDP, `batch_size` per process, and
    rank 0 alone writes (the other ranks return `{"writer": False}`)."""
    import torch
    from transformers import Trainer, TrainingArguments

    from ucli import ranks
    from ucli.artifacts import require_fresh_dir, write_artifact
    from ucli.models import load_model

    out = require_fresh_dir(output) if ranks.is_main() else Path(output)
    train_items, val_items = read_mcq(train), read_mcq(validation)
    torch.manual_seed(seed)  # the new choice head is initialised at load
    # float32 weights: the optimizer updates them in place (no mixed-precision master copy here)
    loaded = load_model(model, task="multiple-choice", dtype="float32")
    net, tokenizer = loaded.model, loaded.tokenizer
    if gradient_checkpointing:
        net.gradient_checkpointing_enable()
    train_rows, val_rows = (
        encode(train_items, tokenizer, max_seq_len),
        encode(val_items, tokenizer, max_seq_len),
    )
    before = accuracy(net, val_rows, batch_size)
    args = TrainingArguments(output_dir=str(out / "checkpoints"), per_device_train_batch_size=batch_size,
                             num_train_epochs=epochs, learning_rate=lr, seed=seed, data_seed=seed, report_to=[],
                             save_strategy="no", logging_steps=10, disable_tqdm=True,
                             use_cpu=not torch.cuda.is_available(), ddp_find_unused_parameters=False)  # fmt: skip
    trainer = Trainer(model=net, args=args, train_dataset=train_rows)
    quiet(trainer)
    trainer.train()
    if not trainer.is_world_process_zero():
        return {"output": str(out), "writer": False}
    after = accuracy(net, val_rows, batch_size)
    net.save_pretrained(out)
    tokenizer.save_pretrained(out)
    metrics = {"validation_accuracy_before": before, "validation_accuracy": after, "train_items": len(train_items),
               "validation_items": len(val_items), "choices": len(train_items[0].choices)}  # fmt: skip
    write_artifact(out / "metrics.json", METRICS_SCHEMA, 1, metrics, inputs=[train, validation], seed=seed,
                   config={"model": model, "max_seq_len": max_seq_len, "lr": lr, "epochs": epochs,
                           "batch_size": batch_size, "gradient_checkpointing": gradient_checkpointing})  # fmt: skip
    return {"output": str(out), **metrics}
