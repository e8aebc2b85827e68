"""`halluc calibrate`: thin CLI over halluc_rauq (torch loads only when a command runs)."""

from __future__ import annotations

from pathlib import Path

import typer

from ucli import console, options

calibrate = typer.Typer(help="Calibrate RAUQ: uncertainty-aware attention heads.", no_args_is_help=True)


@calibrate.command()
def heads(
    calibration: Path = typer.Option(
        ..., "--calibration", "-c", help="Prompt/reference pairs (JSONL, JSON, CSV or TSV)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="heads.json artifact to write."),
    model: str = typer.Option(
        "smollm2-135m", "--model", "-m", help="Model spec: alias, hub id, local folder or .gguf."
    ),
    num_examples: int | None = typer.Option(
        None, "--num-examples", "-n", min=1, help="Use the first N pairs (default: all)."
    ),
    mode: str = typer.Option(
        "teacher-forced", "--mode", help="teacher-forced (on the references) or generated (greedy)."
    ),
    layers: str | None = typer.Option(
        None, "--layers", help="Runtime layers, e.g. 10-20 or 3,5,7 (default: middle third)."
    ),
    max_new_tokens: int = typer.Option(
        32, "--max-new-tokens", min=1, help="generated mode: tokens per answer."
    ),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Sequences per forward pass."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    load_in_4bit: bool = typer.Option(False, "--load-in-4bit", help="4-bit NF4 weights (bitsandbytes)."),
    load_in_8bit: bool = typer.Option(False, "--load-in-8bit", help="8-bit weights (bitsandbytes)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (recorded)."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Draw the L x H heat map with the chosen heads to a PNG."
    ),
    json_out: bool = options.JSON,
) -> None:
    """Choose, per layer, the head that attends most to the previous token over completion tokens."""
    import torch

    from halluc_rauq.calibration import HEADS_SCHEMA, MODES, calibrate_heads, parse_layers, plot_heads
    from ucli.artifacts import require_file_path, write_artifact
    from ucli.data import read_prompt_pairs
    from ucli.errors import BadInput
    from ucli.models import load_model

    if mode not in MODES:
        raise BadInput(f"unknown --mode '{mode}' (expected one of {', '.join(MODES)})")
    require_file_path(output)
    pairs = read_prompt_pairs(calibration, require_reference=mode == "teacher-forced")
    if num_examples is not None and num_examples > len(pairs):
        console.warn(f"{calibration} has {len(pairs)} pairs; using all of them (asked for {num_examples})")
    pairs = pairs[:num_examples]
    torch.manual_seed(seed)
    lm = load_model(model, device=device, load_in_4bit=load_in_4bit, load_in_8bit=load_in_8bit)
    runtime_layers = parse_layers(layers, lm.fingerprint.num_layers)
    with console.progress("calibrating heads", total=len(pairs)) as advance:
        cal = calibrate_heads(lm, pairs, mode, runtime_layers, max_new_tokens, batch_size, advance)
    if cal.skipped_empty:
        console.warn(f"skipped {cal.skipped_empty} example(s) with an empty completion")
    config = {"model": model, "calibration": str(calibration), "num_examples": num_examples, "mode": mode}
    config.update(layers=cal.layers, max_new_tokens=max_new_tokens, batch_size=batch_size, device=lm.device)
    write_artifact(
        output,
        HEADS_SCHEMA,
        1,
        cal.payload(),
        model=lm.fingerprint,
        inputs=[calibration],
        seed=seed,
        config=config,
    )
    if plot is not None:
        plot_heads(cal, plot, f"{lm.fingerprint.name}: previous-token attention (□ runtime layers, × others)")
    summary = {"output": str(output), **{k: v for k, v in cal.payload().items() if k != "mean_attention"}}
    if json_out:
        console.print_json(summary)
        return
    rows = [
        (layer, head, f"{cal.mean_attention[layer, head]:.4f}", "yes" if layer in cal.layers else "")
        for layer, head in cal.heads.items()
    ]
    console.out.print(
        console.table(f"heads of {lm.fingerprint.name}", ["layer", "head", "mean attention", "runtime"], rows)
    )
    console.out.print(
        f"{cal.n_examples} examples, {cal.n_tokens} tokens, mode {cal.mode}; wrote {output}"
        + (f" and {plot}" if plot else "")
    )
