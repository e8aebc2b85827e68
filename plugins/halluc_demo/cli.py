"""`halluc demo`: thin CLI over `halluc_demo.run_demo`."""

from __future__ import annotations

from pathlib import Path

import typer

from ucli import console, options


def demo(
    model: str = typer.Option(
        "smollm2-135m", "--model", "-m", help="Model spec: alias, hub id, local folder or .gguf file."
    ),
    benchmark: str = typer.Option(
        "facts", "--benchmark", "-b", help="Registered benchmark to calibrate on and draw questions from."
    ),
    split: str = typer.Option("test", "--split", help="Split the controller is evaluated on."),
    calibration_split: str = typer.Option(
        "train", "--calibration-split", help="Split heads and theta are fitted on."
    ),
    questions: Path | None = typer.Option(
        None,
        "--questions",
        "-q",
        help="Evaluate on your own prompt/reference file (JSONL, JSON, CSV or TSV) instead of --split.",
    ),
    calibration: Path | None = typer.Option(
        None,
        "--calibration",
        "-c",
        help="Calibrate on your own prompt/reference file instead of --calibration-split.",
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Evaluate on N questions (shuffled with --seed)."
    ),
    calibration_limit: int | None = typer.Option(
        None, "--calibration-limit", min=1, help="Calibrate on N questions (default: the whole split)."
    ),
    max_new_tokens: int = typer.Option(
        32, "--max-new-tokens", min=1, help="Token budget per answer, repairs included."
    ),
    batch_size: int = typer.Option(
        8, "--batch-size", min=1, help="Sequences per forward pass (calibration and decoding)."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Run folder to create (default: runs/<run id>)."
    ),
    adapter: Path | None = typer.Option(None, "--adapter", help="PEFT adapter folder to apply to the model."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    seed: int = typer.Option(
        0, "--seed", help="Seed for question order, thought sampling and torch (recorded)."
    ),
    json_out: bool = options.JSON,
) -> None:
    """Calibrate RAUQ on train, answer test with the controller and plain greedy, compare with McNemar."""
    from halluc_demo.run import run_demo

    result = run_demo(
        model, benchmark, split, questions, limit, max_new_tokens, batch_size, output, device, seed, adapter,
        calibration_split, calibration_limit, calibration,
    )  # fmt: skip
    if json_out:
        console.print_json(
            {"run_dir": str(result.run_dir), "summary": result.summary, "answers": result.answers}
        )
        return
    s = result.summary
    fired = [a for a in result.answers if a["triggers"]]
    rows = [
        (_short(a["question"]), a["expected"], _mark(a["baseline"], a["baseline_correct"]),
         _mark(a["controller"], a["controller_correct"]), a["triggers"])
        for a in fired[:8]
    ]  # fmt: skip
    if rows:
        console.out.print(
            console.table(
                f"where the controller fired ({len(fired)} of {s['n']})",
                ["question", "expected", "plain greedy", "controller", "triggers"],
                rows,
            )
        )
    metrics = [("accuracy", "accuracy", "{:.1%}"), ("answers with a trigger", "trigger_rate", "{:.1%}"),
               ("triggers per answer", "avg_triggers", "{:.2f}"), ("tokens per answer", "avg_generated_tokens", "{:.1f}"),
               ("extra tokens per answer", "avg_extra_tokens", "{:.2f}"), (f"latency per answer, s (batches of {batch_size})", "avg_latency_s", "{:.2f}")]  # fmt: skip
    table = [
        (name, fmt.format(s["baseline"][key]), fmt.format(s["controller"][key])) for name, key, fmt in metrics
    ]
    console.out.print(
        console.table(
            f"{s['model']} on {s['benchmark']}/{s['split']} ({s['n']} questions)",
            ["", "plain greedy", "controller"],
            table,
        )
    )
    m = s["mcnemar"]
    console.out.print(
        f"theta {s['theta']:.3f} (RAUQ, fitted on {s['calibration']}, token AUROC {s['theta_auroc']:.3f}); "
        f"McNemar ({m['method']}): controller right where greedy was wrong {m['c']}, the reverse {m['b']}, "
        f"p = {m['p_value']:.3g}; run folder: {result.run_dir}"
    )


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _mark(text: str, correct: bool) -> str:
    from rich.markup import escape

    shown = escape(_short(text))
    return f"[green]{shown}[/green]" if correct else f"[red]{shown}[/red]"
