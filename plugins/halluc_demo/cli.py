"""`halluc demo`: thin CLI over `halluc_demo.run_demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ucli import console, options


@options.bundled
def demo(
    model: str = options.MODEL,
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
        help="Calibrate on your own prompt/reference file instead of --calibration-split.",
    ),
    limit: int | None = options.limit("Evaluate on N questions, drawn with --seed (default: all)."),
    calibration_limit: int | None = typer.Option(
        None, "--calibration-limit", min=1, help="Calibrate on N questions (default: the whole split)."
    ),
    max_new_tokens: int = typer.Option(
        32, "--max-new-tokens", min=1, help="Token budget per answer, repairs included."
    ),
    batch_size: int = options.batch_size(16, "Sequences per forward pass (calibration and decoding)."),
    output: Path | None = options.output("Run folder to create (default: runs/<run id>)."),
    load: Any = options.LOAD,
    seed: int = options.SEED,
    # the measured defaults are spelled here, not imported from halluc_demo.run: that import would
    # cost `halluc --help` its startup budget; tests/test_demo.py checks that both agree
    coverage: float = typer.Option(
        0.85, "--coverage", help="Theta leaves this share (0, 1] of calibration answers untriggered."
    ),
    repair: str = typer.Option(
        "abstain",
        "--repair",
        help="The controller's repair: abstain (measured best on facts/train) or another repair plugin "
        "(`halluc control run --help`).",
    ),
    bench_options: dict[str, Any] = options.BENCHMARK,
    json_out: bool = options.JSON,
) -> None:
    """Calibrate RAUQ on train; on test, how well it detects wrong answers and what the controller does."""
    from halluc_demo.run import DemoConfig, run_demo

    config = DemoConfig(
        model=model, benchmark=benchmark, split=split, questions=questions, limit=limit,
        max_new_tokens=max_new_tokens, batch_size=batch_size, output=output, load=load, seed=seed,
        calibration_split=calibration_split, calibration_limit=calibration_limit,
        calibration=calibration, coverage=coverage, repair=repair,
        benchmark_options=bench_options,
    )  # fmt: skip
    result = run_demo(config=config)
    if json_out:
        console.print_json(
            {"run_dir": str(result.run_dir), "summary": result.summary, "answers": result.answers}
        )
        return
    from halluc_demo.report import show

    show(result, batch_size)


options.renamed("demo", {"-c": "--calibration"})
options.renamed("demo", options.BENCH_RENAMED)
