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
        "facts", "--benchmark", "-b", help="Registered benchmark to draw questions from."
    ),
    split: str = typer.Option("test", "--split", help="Benchmark split."),
    questions: Path | None = typer.Option(
        None,
        "--questions",
        "-q",
        help="Your own prompt/reference file (JSONL, JSON, CSV or TSV) instead of a benchmark.",
    ),
    limit: int = typer.Option(12, "--limit", min=1, help="How many questions (shuffled with --seed)."),
    max_new_tokens: int = typer.Option(24, "--max-new-tokens", min=1, help="Token budget per answer."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Questions per generation batch."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Run folder to create (default: runs/<run id>)."
    ),
    adapter: Path | None = typer.Option(None, "--adapter", help="PEFT adapter folder to apply to the model."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    seed: int = typer.Option(0, "--seed", help="Seed for the question order and torch, recorded in the run."),
    json_out: bool = options.JSON,
) -> None:
    """Answer factual questions (the `facts` benchmark) with the default model; write a run folder and print a table."""
    from halluc_demo.run import run_demo

    result = run_demo(
        model, benchmark, split, questions, limit, max_new_tokens, batch_size, output, device, seed, adapter
    )
    if json_out:
        console.print_json(
            {"run_dir": str(result.run_dir), "summary": result.summary, "answers": result.answers}
        )
        return
    rows = [
        (
            a["question"],
            a["answer"],
            a["expected"],
            "[green]yes[/green]" if a["correct"] else "[red]no[/red]",
            f"{a['mean_logprob']:.3f}" if a["mean_logprob"] is not None else "-",
        )
        for a in result.answers
    ]
    console.out.print(
        console.table(None, ["question", "answer", "expected", "correct?", "mean log-prob"], rows)
    )
    s = result.summary
    console.out.print(
        f"{s['correct']}/{s['n']} correct ({s['accuracy']:.0%}) with {s['model']}; run folder: {result.run_dir}"
    )
