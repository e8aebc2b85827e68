"""`halluc finetune`: thin CLI over halluc_finetune (torch and peft load only when a command runs)."""

from __future__ import annotations

from pathlib import Path

import typer

from ucli import console, options

app = typer.Typer(help="Fine-tune: QLoRA / LoRA SFT from a TOML recipe.", no_args_is_help=True)


@app.command()
def qlora(
    config: Path = typer.Option(..., "--config", "-c", help="Recipe TOML (see examples/configs/)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Adapter folder (default: runs/finetune/<name>)."
    ),
    resume: bool = options.RESUME,
    no_quant: bool = typer.Option(
        False, "--no-quant", help="Full-precision LoRA (no 4-bit base; works on CPU)."
    ),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Override the recipe's max_steps."),
    device: str = options.DEVICE,
    json_out: bool = options.JSON,
) -> None:
    """SFT of a LoRA adapter (on a 4-bit NF4 base unless --no-quant); adapter, recipe, loss log and curve."""
    from halluc_finetune.qlora import train_qlora
    from halluc_finetune.recipe import load_recipe

    overrides: dict = {"quantization": "none"} if no_quant else {}
    if max_steps is not None:
        overrides["max_steps"] = max_steps
    recipe = load_recipe(config, overrides)
    out = output or Path("runs") / "finetune" / (recipe.name or config.stem)
    result = train_qlora(recipe=recipe, output=out, resume=resume, device=device, recipe_path=str(config))
    if not result.writer:  # another rank of a torchrun / accelerate launch: rank 0 reports
        return
    last = next((r["loss"] for r in reversed(result.losses) if r.get("loss") not in (None, "")), None)
    summary = {"output": str(result.output), "steps": result.steps, "final_loss": last}
    if json_out:
        console.print_json(summary)
        return
    console.out.print(
        f"{result.steps} steps, last logged loss {last}; adapter, recipe.json, loss.csv, loss.png in {out}"
    )


@app.command("cot-data")
def cot_data(
    runs: list[Path] = typer.Option(..., "--runs", help="`halluc control eval` output folders (repeat)."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="SFT JSONL to write (prompt, completion, prefix, cot, answer)."
    ),
    max_cot_tokens: int = typer.Option(20, "--max-cot-tokens", min=1, help="Longest thought kept."),
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """SFT records from the controller's successful short repairs, with a report of what was dropped and why."""
    from halluc_finetune.cot_data import collect
    from ucli.artifacts import check_output_file, write_table

    check_output_file(output, force=force)
    records, report = collect([str(r) for r in runs], max_cot_tokens)
    write_table(output, records, "halluc.finetune.cot-data", summary=report,
                config={"runs": [str(r) for r in runs], "max_cot_tokens": max_cot_tokens})  # fmt: skip
    if json_out:
        console.print_json({"output": str(output), **report})
        return
    rows = [("records read", report["records"]), ("kept", report["kept"])]
    rows += [(f"dropped: {reason}", n) for reason, n in report["dropped"].items()]
    console.out.print(console.table("micro-CoT repair data", ["", "count"], rows))
    console.out.print(f"wrote {output}; train with `halluc finetune qlora` (prompt/completion records)")


@app.command()
def mcq(
    model: str = typer.Option(..., "--model", "-m", help="Encoder model: local folder or hub id."),
    train: Path = typer.Option(..., "--train", help="CommonsenseQA-format training file."),
    validation: Path = typer.Option(..., "--validation", help="CommonsenseQA-format validation file."),
    output: Path = typer.Option(..., "--output", "-o", help="Checkpoint folder to create."),
    max_seq_len: int = typer.Option(128, "--max-length", min=8, help="Tokens per (question, choice)."),
    lr: float = typer.Option(2e-5, "--lr", help="Learning rate."),
    epochs: float = typer.Option(2, "--epochs", help="Training epochs."),
    batch_size: int = options.batch_size(8, "Questions per step."),
    gradient_checkpointing: bool = typer.Option(
        False, "--gradient-checkpointing", help="Trade compute for memory."
    ),
    seed: int = typer.Option(42, "--seed", help="Seed (recorded)."),
    json_out: bool = options.JSON,
) -> None:
    """Fine-tune an encoder multiple-choice model; report validation accuracy before and after."""
    from halluc_finetune.mcq import train_mcq

    result = train_mcq(model, train, validation, output, max_seq_len, lr, epochs, batch_size,
                       gradient_checkpointing, seed)  # fmt: skip
    if result.get("writer") is False:  # another rank of a torchrun / accelerate launch: rank 0 reports
        return
    if json_out:
        console.print_json(result)
        return
    console.out.print(f"validation accuracy {result['validation_accuracy_before']:.3f} -> "
                      f"{result['validation_accuracy']:.3f}; checkpoint in {output}")  # fmt: skip


options.renamed("finetune mcq", {"--max-seq-len": "--max-length"})
