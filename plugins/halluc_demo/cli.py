"""`halluc demo`: thin CLI over `halluc_demo.run_demo`."""

from __future__ import annotations

from pathlib import Path

import typer

from ucli import console, options


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
    batch_size: int = options.batch_size(8, "Sequences per forward pass (calibration and decoding)."),
    output: Path | None = options.output("Run folder to create (default: runs/<run id>)."),
    adapter: Path | None = options.ADAPTER,
    device: str = options.DEVICE,
    dtype: str = options.DTYPE,
    load_in_4bit: bool = options.LOAD_4BIT,
    load_in_8bit: bool = options.LOAD_8BIT,
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
    data_file: Path | None = options.BENCH_DATA_FILE,
    metric: str | None = options.BENCH_METRIC,
    steps: int | None = options.BENCH_STEPS,
    size: int | None = options.BENCH_SIZE,
    json_out: bool = options.JSON,
) -> None:
    """Calibrate RAUQ on train; on test, how well it detects wrong answers and what the controller does."""
    from halluc_demo.run import DemoConfig, run_demo

    load = options.load_options(device=device, dtype=dtype, load_in_4bit=load_in_4bit, load_in_8bit=load_in_8bit, adapter=adapter)  # fmt: skip
    config = DemoConfig(
        model=model, benchmark=benchmark, split=split, questions=questions, limit=limit,
        max_new_tokens=max_new_tokens, batch_size=batch_size, output=output, load=load, seed=seed,
        calibration_split=calibration_split, calibration_limit=calibration_limit,
        calibration=calibration, coverage=coverage, repair=repair,
        benchmark_options={"data_file": data_file, "metric": metric, "steps": steps, "size": size},
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
