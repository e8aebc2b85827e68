"""`halluc calibrate`: thin CLI over halluc_rauq (torch loads only when a command runs)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from ucli import console, options

MODEL, SEED = options.MODEL, options.SEED
NUM_EXAMPLES = options.limit("N pairs, drawn with --seed (default: all, in file order).")
CALIBRATION = typer.Option(..., "--calibration", help="Prompt/reference pairs (JSONL, JSON, CSV or TSV).")
BATCH_SIZE = options.batch_size(8, "Sequences per forward pass.")
ALPHA = typer.Option(None, "--alpha", help="RAUQ alpha in [0, 1] (default: 0.5 instruct, 0.2 base).")


def _pairs(path: Path, num_examples: int | None, seed: int, require_reference: bool = True) -> list:
    """N pairs of a file by the one --limit rule (`ucli.data.select`: shuffled with --seed, then the
    first N), saying so when the file holds fewer than asked."""
    from ucli.data import read_prompt_pairs, select

    pairs = read_prompt_pairs(path, require_reference=require_reference)
    if num_examples is not None and num_examples > len(pairs):
        console.warn(f"{path} has {len(pairs)} pairs; using all of them (asked for {num_examples})")
    return select(pairs, num_examples, seed)


def _judge(data_file: Path):
    """Judge answers by the shared benchmark rules, reached through the plugin registry."""
    from ucli import plugins

    bench = plugins.load("benchmarks", "local")(data_file=data_file)
    samples = {s.id: s for s in bench.load("test")}

    def judge(pair, answer: str) -> bool:
        return bench.score(samples[pair.id], answer).correct

    return judge


def load_seeded(model: str, load: Any, seed: int, runner: Any = None):
    """The model, loaded after torch is seeded (`load`: the command's `options.load_options`); with
    Ray `runner` replicas holding the real model, a shell of it (tokenizer, config, fingerprint)."""
    import torch

    from ucli.models import load_model

    torch.manual_seed(seed)
    return load_model(model, load, weights=runner is None or runner.kind == "local")


calibrate = typer.Typer(
    help="Calibrate RAUQ: uncertainty-aware attention heads and trigger thresholds.", no_args_is_help=True
)


@calibrate.command()
@options.bundled
def heads(
    calibration: Path = CALIBRATION,
    output: Path = options.output("heads.json artifact to write.", required=True),
    model: str = MODEL,
    num_examples: int | None = NUM_EXAMPLES,
    mode: str = typer.Option(
        "teacher-forced", "--mode", help="teacher-forced (on the references) or generated (greedy)."
    ),
    layers: str | None = typer.Option(
        None, "--layers", help="Runtime layers, e.g. 10-20 or 3,5,7 (default: middle third)."
    ),
    max_new_tokens: int = typer.Option(
        32, "--max-new-tokens", min=1, help="generated mode: tokens per answer."
    ),
    batch_size: int = BATCH_SIZE,
    load: Any = options.LOAD,
    seed: int = SEED,
    plot: Path | None = typer.Option(
        None, "--plot", help="Draw the L x H heat map with the chosen heads to a PNG."
    ),
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """Choose, per layer, the head that attends most to the previous token over completion tokens."""
    from halluc_rauq.api import HeadsConfig, select_heads
    from halluc_rauq.calibration import plot_heads
    from halluc_signals import HEADS_SCHEMA
    from ucli.artifacts import check_output_file, write_artifact

    config = HeadsConfig(mode=mode, layers=layers, max_new_tokens=max_new_tokens, batch_size=batch_size)
    check_output_file(output, force=force)
    check_output_file(plot, force=force, option="--plot")
    pairs = _pairs(calibration, num_examples, seed, require_reference=mode == "teacher-forced")
    lm = load_seeded(model, load, seed)
    with console.progress("calibrating heads", total=len(pairs)) as advance:
        cal = select_heads(lm, pairs, config=config, progress=advance)
    if cal.skipped_empty:
        console.warn(f"skipped {cal.skipped_empty} example(s) with an empty completion")
    provenance = {"model": model, "calibration": str(calibration), "num_examples": num_examples,
                  **asdict(config), "layers": cal.layers, "device": lm.device}  # fmt: skip
    write_artifact(output, HEADS_SCHEMA, 1, cal.payload(), model=lm.fingerprint, inputs=[calibration],
                   seed=seed, config=provenance)  # fmt: skip
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


@calibrate.command()
@options.bundled
def threshold(
    calibration: Path = CALIBRATION,
    heads_file: Path = typer.Option(
        ..., "--heads", help="heads.json from `halluc calibrate heads` (same model)."
    ),
    output: Path = options.output("theta.json artifact to write.", required=True),
    model: str = MODEL,
    alpha: float | None = ALPHA,
    max_samples: int = typer.Option(
        5000, "--max-samples", min=1, help="Points to fit on (tokens; answers with --labels answer)."
    ),
    signal: str = typer.Option(
        "rauq",
        "--signal",
        help="Token signal: rauq, entropy, margin (top-1 minus top-2 probability), min_token_probability "
        "or a plugin's (`halluc uq list`).",
    ),
    labels: str = typer.Option(
        "answer",
        "--labels",
        help="answer (one point per greedy answer: its peak token signal, is the answer wrong), "
        "sequence (every answer token carries the verdict) or teacher-forced (top-1 != reference).",
    ),
    coverage: float | None = typer.Option(
        None,
        "--coverage",
        help="Theta that leaves this share (0, 1] of calibration points unfired (default: Youden's J).",
    ),
    num_examples: int | None = NUM_EXAMPLES,
    max_new_tokens: int = typer.Option(
        32, "--max-new-tokens", min=1, help="answer and sequence labels: tokens per answer."
    ),
    batch_size: int = BATCH_SIZE,
    load: Any = options.LOAD,
    seed: int = SEED,
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """Fit the trigger threshold on the signal: theta by Youden's J (or --coverage) on answers, tokens."""
    from halluc_rauq.api import ThresholdConfig, calibrate_threshold
    from halluc_rauq.threshold import THETA_SCHEMA
    from halluc_signals import check_heads_file, load_heads
    from ucli.artifacts import check_output_file, sha256_file, write_artifact

    config = ThresholdConfig(signal=signal, labels=labels, coverage=coverage, alpha=alpha, max_samples=max_samples,
                             max_new_tokens=max_new_tokens, batch_size=batch_size)  # fmt: skip
    check_output_file(output, force=force)
    heads_doc = check_heads_file(heads_file)
    pairs = _pairs(calibration, num_examples, seed)
    lm = load_seeded(model, load, seed)
    heads, _ = load_heads(heads_file, lm.fingerprint, heads_doc)
    with console.progress("collecting token signals", total=len(pairs)) as advance:
        fitted = calibrate_threshold(
            lm, pairs, heads=heads, judge=_judge(calibration), config=config, progress=advance
        )
    payload = {**fitted.payload, "heads_sha256": sha256_file(heads_file)}
    provenance = {"model": model, "calibration": str(calibration), "heads": str(heads_file),
                  **asdict(config), "alpha": fitted.alpha, "num_examples": num_examples}  # fmt: skip
    write_artifact(output, THETA_SCHEMA, 1, payload, model=lm.fingerprint, inputs=[calibration, heads_file],
                   seed=seed, config=provenance)  # fmt: skip
    if json_out:
        console.print_json({"output": str(output), **payload})
        return
    _show_threshold(fitted, payload, f"threshold for {lm.fingerprint.name}")
    console.out.print(f"wrote {output}")


def _show_threshold(fitted: Any, payload: dict[str, Any], title: str) -> None:
    fit, labels = fitted.fit, payload["labels"]
    points = "answers" if labels == "answer" else "tokens"
    rows = [
        ("theta", f"{fit.theta:.4f} ({payload['signal']}, fire when {fit.direction})"),
        ("AUROC", f"{fit.auroc:.4f}"),
        ("TPR / FPR at theta", f"{fit.tpr:.3f} / {fit.fpr:.3f}"),
        ("errors", f"{fit.n_positive} of {fitted.n_points} {points} ({payload['positive_rate']:.1%})"),
        ("logistic", f"coef {fit.coef:.4f}, intercept {fit.intercept:.4f}"),
        ("alpha, labels", f"{fitted.alpha}, {labels}"),
    ]
    console.out.print(console.table(title, ["", "value"], rows))


@calibrate.command()
@options.bundled
def score(
    data: Path = typer.Option(
        ..., "--data", "-d", help="Prompts, with references for a `correct` field (JSONL, JSON, CSV, TSV)."
    ),
    output: Path = options.output("scores.jsonl to write (journal beside it while running).", required=True),
    model: str = MODEL,
    heads_file: Path | None = typer.Option(
        None, "--heads", help="Fixed heads (heads.json); default: per-sequence heads."
    ),
    alpha: float | None = ALPHA,
    layers: str | None = typer.Option(
        None, "--layers", help="Layers without --heads, e.g. 10-20 (default: middle third)."
    ),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", min=1, help="Tokens per answer."),
    batch_size: int = BATCH_SIZE,
    limit: int | None = options.limit("N prompts, drawn with --seed (default: all)."),
    resume: bool = options.RESUME,
    force: bool = options.FORCE,
    load: Any = options.LOAD,
    seed: int = SEED,
    runner: Any = options.SCALE_OUT,
    json_out: bool = options.JSON,
) -> None:
    """Greedy-decode every prompt and score it with RAUQ (one JSON line per sample; resumable;
    `--executor ray --workers N` decodes on N model replicas, to the same records)."""
    from halluc_rauq.api import SCORES_SCHEMA
    from halluc_signals import ScoreConfig, check_heads_file, load_heads
    from halluc_signals import score as score_with_rauq
    from ucli.artifacts import write_table
    from ucli.executor import model_replicas
    from ucli.journal import preflight

    config = ScoreConfig(alpha=alpha, layers=layers, max_new_tokens=max_new_tokens, batch_size=batch_size)
    journal_path = preflight(output, resume, folder=False, force=force)
    if journal_path is None:
        console.result(
            {"output": str(output), "complete": True}, json_out, lambda: f"{output}: already complete"
        )
        return
    heads_doc = check_heads_file(heads_file) if heads_file is not None else None
    pairs = _pairs(data, limit, seed, require_reference=False)
    lm = load_seeded(model, load, seed, runner)
    heads = load_heads(heads_file, lm.fingerprint, heads_doc)[0] if heads_file is not None else None
    judge = _judge(data) if any(p.reference is not None for p in pairs) else None
    run_config = {"model": model, "data": str(data), "heads": str(heads_file) if heads_file else None,
                  "limit": limit, "seed": seed}  # fmt: skip
    with (
        console.progress("scoring", total=len(pairs)) as advance,
        model_replicas(runner, lm, model, load) as replicas,
    ):
        scored = score_with_rauq(lm, pairs, journal_path=journal_path, resume=resume, force=force, config=config, heads=heads,
                                 judge=judge, run_config=run_config, progress=advance, replicas=replicas)  # fmt: skip
    write_table(output, scored.records, SCORES_SCHEMA, model=lm.fingerprint, inputs=[p for p in (data, heads_file) if p],
                seed=seed, config={**run_config, **asdict(config), "alpha": scored.alpha, "layers": scored.layers})  # fmt: skip
    journal_path.unlink(missing_ok=True)
    _show_scores(scored, output, lm.fingerprint.name, json_out)


def _show_scores(scored: Any, output: Path, model_name: str, json_out: bool) -> None:
    records = scored.records
    summary = {"output": str(output), "n": len(records), "scored": sum(r["rauq"] is not None for r in records),
               "alpha": scored.alpha, "layers": scored.layers}  # fmt: skip
    if any("correct" in r for r in records):
        summary["accuracy"] = sum(r.get("correct", 0) for r in records) / len(records)
    if json_out:
        console.print_json(summary)
        return
    rows = [(k, v if not isinstance(v, float) else f"{v:.4f}") for k, v in summary.items()]
    console.out.print(console.table(f"RAUQ scores from {model_name}", ["", "value"], rows))
    console.info(console.next_step("stats", "prr", output, "--score", "rauq", "--quality", "correct"))


options.renamed("calibrate heads", {"--num-examples": "--limit", "-n": "--limit", "-c": "--calibration"})
options.renamed("calibrate threshold", {"--num-examples": "--limit", "-n": "--limit", "-c": "--calibration"})
