"""QLoRA (or plain LoRA with `--no-quant`) supervised fine-tuning with the transformers Trainer.

The output folder holds the adapter, `recipe.json` (the resolved recipe with provenance: base
model fingerprint, data hash), `loss.csv` and `loss.png`; `checkpoints/` lets `--resume` continue
with the same step count and data order.

Under `torchrun` / `accelerate launch` the same command trains with DDP (the Trainer reads the
launch's environment): the recipe's batch size is per process, rank 0 alone writes, and each rank
holds its whole model on its own GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from halluc_finetune.recipe import QLoRARecipe, quiet
from halluc_finetune.sft_data import build_examples, collate
from ucli import console
from ucli.errors import BadInput

RECIPE_SCHEMA = "halluc.finetune.recipe"


@dataclass
class TrainResult:
    output: Path
    steps: int
    losses: list[dict[str, Any]]
    writer: bool = True  # this process wrote the files (rank 0 of a distributed launch)


def base_load_options(recipe: QLoRARecipe, device: str) -> Any:
    """How the base model loads: 4-bit NF4 with the recipe's double quantization and compute dtype,
    unless quantization = none. Checked before anything heavy runs (NF4 needs a CUDA GPU)."""
    from ucli.models import LoadOptions, pick_device

    if recipe.quantization != "nf4":
        return LoadOptions(device=device)
    if not pick_device(device).startswith("cuda"):
        raise BadInput("4-bit NF4 (QLoRA) needs a CUDA GPU; pass --no-quant for full-precision LoRA")
    return LoadOptions(device=device, load_in_4bit=True, bnb_4bit_compute_dtype=recipe.compute_dtype,
                       bnb_4bit_double_quant=recipe.double_quant)  # fmt: skip


def read_training_records(recipe: QLoRARecipe) -> list[Any]:
    from ucli.data import Record, load_rows, read_records

    if recipe.data_file:
        return read_records(recipe.data_file)
    rows = load_rows(recipe.dataset, None, recipe.dataset_split, None)
    return [Record(Path(recipe.dataset), None, i, r) for i, r in enumerate(rows)]


def train_qlora(
    *,
    recipe: QLoRARecipe,
    output: str | Path,
    resume: bool = False,
    device: str = "auto",
    recipe_path: str | None = None,
) -> TrainResult:
    """SFT of a LoRA adapter as the recipe says; `resume` continues from the last checkpoint and
    gives the adapter of an uninterrupted run."""
    options = base_load_options(recipe, device)  # NF4 without CUDA is refused before torch loads
    import torch

    from ucli import ranks
    from ucli.artifacts import require_fresh_dir
    from ucli.models import load_model

    out = Path(output)
    checkpoint = last_complete_checkpoint(out / "checkpoints") if resume else None
    if resume and checkpoint is None:
        raise BadInput(f"{out}: nothing to resume (no finished checkpoints/checkpoint-*)")
    if not resume and ranks.is_main():  # the other ranks would find rank 0's checkpoints
        require_fresh_dir(out, resumable=True)
    records = read_training_records(recipe)
    torch.manual_seed(recipe.seed)
    lm = load_model(recipe.base_model, options)
    examples = build_examples(records, lm.tokenizer, recipe)
    model = _peft_model(lm.model, recipe)
    train_set, eval_set = _split(examples, recipe.eval_fraction, recipe.seed)
    trainer = _trainer(model, lm, recipe, out / "checkpoints", train_set, eval_set)
    state = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if not trainer.is_world_process_zero():
        return TrainResult(out, state.global_step, [], writer=False)
    # the base as the user named it (an alias, a hub id, a path), not the cache folder it was loaded from
    model.peft_config["default"].base_model_name_or_path = lm.fingerprint.name
    model.save_pretrained(out)
    losses = _write_losses(trainer, out, recipe.name or out.name)
    counts = {"examples": len(examples), "train_examples": len(train_set), "eval_examples": len(eval_set)}
    _write_recipe(out, recipe, lm, counts, state.global_step, recipe_path)
    console.info(f"adapter written to {out} after {state.global_step} steps")
    return TrainResult(out, state.global_step, losses)


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint the Trainer finished writing: it writes trainer_state.json last, so a
    kill during a save leaves a newer folder without it, which resuming from would fail on."""
    done = [c for c in folder.glob("checkpoint-*") if (c / "trainer_state.json").is_file()]
    return max(done, key=lambda c: int(c.name.rsplit("-", 1)[1]), default=None)


def _peft_model(model: Any, recipe: QLoRARecipe) -> Any:
    """The base wrapped in LoRA on the recipe's target modules (k-bit preparation for NF4)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if recipe.quantization == "nf4":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=recipe.gradient_checkpointing
        )
    elif recipe.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    lora = LoraConfig(r=recipe.lora_r, lora_alpha=recipe.lora_alpha, lora_dropout=recipe.lora_dropout,
                      target_modules=recipe.target_modules, task_type="CAUSAL_LM")  # fmt: skip
    try:
        return get_peft_model(model, lora)
    except ValueError as exc:
        if "target" not in str(exc).lower():
            raise
        names = sorted(
            {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__.endswith("Linear")}
        )
        raise BadInput(f"target_modules {recipe.target_modules} are not all in {recipe.base_model} "
                       f"(its linear modules: {', '.join(names)})") from None  # fmt: skip


def _split(examples: list[Any], eval_fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """Train and eval examples, by one seeded permutation."""
    import torch

    n_eval = int(len(examples) * eval_fraction)
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed)).tolist()
    return [examples[i] for i in order[n_eval:]], [examples[i] for i in order[:n_eval]]


def _trainer(
    model: Any, lm: Any, recipe: QLoRARecipe, checkpoints: Path, train_set: list, eval_set: list
) -> Any:
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir=str(checkpoints), per_device_train_batch_size=recipe.batch_size,
        per_device_eval_batch_size=recipe.batch_size, gradient_accumulation_steps=recipe.gradient_accumulation_steps,
        num_train_epochs=recipe.epochs, max_steps=recipe.max_steps, learning_rate=recipe.learning_rate,
        lr_scheduler_type=recipe.lr_scheduler, warmup_steps=recipe.warmup_ratio,  # (a float < 1: a ratio)
        logging_steps=recipe.logging_steps,
        save_steps=recipe.save_steps, save_total_limit=2, seed=recipe.seed, data_seed=recipe.seed, report_to=[],
        use_cpu=lm.device == "cpu", eval_strategy="steps" if eval_set else "no",
        eval_steps=recipe.eval_steps or recipe.save_steps, remove_unused_columns=False, disable_tqdm=True,
        ddp_find_unused_parameters=False,  # LoRA trains every adapter weight it adds
    )  # fmt: skip
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else lm.tokenizer.eos_token_id
    trainer = Trainer(model=model, args=args, train_dataset=train_set, eval_dataset=eval_set or None,
                      data_collator=lambda batch: collate(batch, pad))  # fmt: skip
    quiet(trainer)
    return trainer


def _write_losses(trainer: Any, out: Path, title: str) -> list[dict[str, Any]]:
    """loss.csv and loss.png from the Trainer's log (kept in the checkpoints, so a resumed run
    still has every step's loss)."""
    from ucli.artifacts import write_table

    losses = [
        {"step": e["step"], "epoch": e.get("epoch"), "loss": e.get("loss"), "eval_loss": e.get("eval_loss"),
         "learning_rate": e.get("learning_rate")}
        for e in trainer.state.log_history
        if "loss" in e or "eval_loss" in e
    ]  # fmt: skip
    write_table(out / "loss.csv", losses, "halluc.finetune.loss", fieldnames=["step", "epoch", "loss", "eval_loss", "learning_rate"],
                config={"adapter": str(out)})  # fmt: skip
    plot_losses(losses, out / "loss.png", title)
    return losses


def _write_recipe(out: Path, recipe: QLoRARecipe, lm: Any, counts: dict[str, int], steps: int,
                  recipe_path: str | None) -> None:  # fmt: skip
    """recipe.json: the recipe as run, with the example counts, steps, data hash and provenance."""
    from ucli.artifacts import sha256_file, write_artifact

    body = {**recipe.model_dump(), **counts, "steps": steps,
            "data_sha256": sha256_file(recipe.data_file) if recipe.data_file else None}  # fmt: skip
    write_artifact(out / "recipe.json", RECIPE_SCHEMA, 1, body, model=lm.fingerprint,
                   inputs=[p for p in (recipe_path, recipe.data_file) if p], seed=recipe.seed,
                   config=recipe.model_dump())  # fmt: skip


def plot_losses(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    from ucli.artifacts import new_figure, write_figure

    fig, ax = new_figure(figsize=(6, 4), dpi=120)
    train = [(int(r["step"]), float(r["loss"])) for r in rows if r.get("loss") not in (None, "")]
    evals = [(int(r["step"]), float(r["eval_loss"])) for r in rows if r.get("eval_loss") not in (None, "")]
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss")
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    return write_figure(fig, path)
