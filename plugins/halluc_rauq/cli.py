"""`halluc calibrate`: thin CLI over halluc_rauq (torch loads only when a command runs)."""

from __future__ import annotations

from pathlib import Path

import typer

from ucli import console, options

MODEL, DEVICE, LOAD_4BIT, LOAD_8BIT, SEED = (
    options.MODEL,
    options.DEVICE,
    options.LOAD_4BIT,
    options.LOAD_8BIT,
    options.SEED,
)
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


def _load(model: str, device: str, load_in_4bit: bool, load_in_8bit: bool, seed: int):
    import torch

    from ucli.models import load_model

    torch.manual_seed(seed)
    return load_model(model, device=device, load_in_4bit=load_in_4bit, load_in_8bit=load_in_8bit)


calibrate = typer.Typer(
    help="Calibrate RAUQ: uncertainty-aware attention heads and trigger thresholds.", no_args_is_help=True
)


@calibrate.command()
def heads(
    calibration: Path = CALIBRATION,
    output: Path = typer.Option(..., "--output", "-o", help="heads.json artifact to write."),
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
    device: str = DEVICE,
    load_in_4bit: bool = LOAD_4BIT,
    load_in_8bit: bool = LOAD_8BIT,
    seed: int = SEED,
    plot: Path | None = typer.Option(
        None, "--plot", help="Draw the L x H heat map with the chosen heads to a PNG."
    ),
    json_out: bool = options.JSON,
) -> None:
    """Choose, per layer, the head that attends most to the previous token over completion tokens."""

    from halluc_rauq.calibration import HEADS_SCHEMA, MODES, calibrate_heads, parse_layers, plot_heads
    from ucli.artifacts import require_file_path, write_artifact
    from ucli.errors import BadInput

    if mode not in MODES:
        raise BadInput(f"unknown --mode '{mode}' (expected one of {', '.join(MODES)})")
    require_file_path(output)
    pairs = _pairs(calibration, num_examples, seed, require_reference=mode == "teacher-forced")
    lm = _load(model, device, load_in_4bit, load_in_8bit, seed)
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


@calibrate.command()
def threshold(
    calibration: Path = CALIBRATION,
    heads_file: Path = typer.Option(
        ..., "--heads", help="heads.json from `halluc calibrate heads` (same model)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="theta.json artifact to write."),
    model: str = MODEL,
    alpha: float | None = ALPHA,
    max_samples: int = typer.Option(
        5000, "--max-samples", min=1, help="Points to fit on (tokens; answers with --labels answer)."
    ),
    signal: str = typer.Option(
        "rauq", "--signal", help="rauq, entropy or margin (top-1 minus top-2 probability)."
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
    device: str = DEVICE,
    load_in_4bit: bool = LOAD_4BIT,
    load_in_8bit: bool = LOAD_8BIT,
    seed: int = SEED,
    json_out: bool = options.JSON,
) -> None:
    """Fit the trigger threshold on the signal: theta by Youden's J (or --coverage) on answers, tokens."""

    from halluc_rauq.calibration import check_heads_file, load_heads
    from halluc_rauq.scorer import check_alpha, default_alpha
    from halluc_rauq.threshold import LABELS, SIGNALS, THETA_SCHEMA, collect, fit_threshold, theta_payload
    from ucli.artifacts import require_file_path, sha256_file, write_artifact
    from ucli.errors import BadInput

    if signal not in SIGNALS:
        raise BadInput(f"unknown --signal '{signal}' (expected one of {', '.join(SIGNALS)})")
    if coverage is not None and not 0 < coverage <= 1:
        raise BadInput(f"--coverage must be in (0, 1], got {coverage}")
    if labels not in LABELS:
        raise BadInput(f"unknown --labels '{labels}' (expected one of {', '.join(LABELS)})")
    if alpha is not None:
        check_alpha(alpha)
    require_file_path(output)
    check_heads_file(heads_file)
    pairs = _pairs(calibration, num_examples, seed)
    lm = _load(model, device, load_in_4bit, load_in_8bit, seed)
    heads, layers = load_heads(heads_file, lm.fingerprint)
    alpha = alpha if alpha is not None else default_alpha(bool(getattr(lm.tokenizer, "chat_template", None)))
    judge = _judge(calibration)

    with console.progress("collecting token signals", total=len(pairs)) as advance:
        scores, marks, used = collect(
            lm,
            pairs,
            heads,
            layers,
            alpha,
            signal,
            labels,
            max_samples,
            judge,
            max_new_tokens,
            batch_size,
            advance,
        )
    fit = fit_threshold(scores, marks, coverage)
    payload = theta_payload(fit, signal, labels, alpha, layers, heads, len(scores), used)
    payload["coverage"] = coverage
    payload["heads_sha256"] = sha256_file(heads_file)
    config = {
        "model": model,
        "calibration": str(calibration),
        "heads": str(heads_file),
        "alpha": alpha,
        "signal": signal,
    }
    config.update(
        labels=labels, coverage=coverage, max_samples=max_samples, num_examples=num_examples,
        max_new_tokens=max_new_tokens,
    )  # fmt: skip
    write_artifact(
        output,
        THETA_SCHEMA,
        1,
        payload,
        model=lm.fingerprint,
        inputs=[calibration, heads_file],
        seed=seed,
        config=config,
    )
    if json_out:
        console.print_json({"output": str(output), **payload})
        return
    rows = [
        ("theta", f"{fit.theta:.4f} ({signal}, fire when {fit.direction})"),
        ("AUROC", f"{fit.auroc:.4f}"),
        ("TPR / FPR at theta", f"{fit.tpr:.3f} / {fit.fpr:.3f}"),
        (
            "errors",
            f"{fit.n_positive} of {len(scores)} {'answers' if labels == 'answer' else 'tokens'} ({payload['positive_rate']:.1%})",
        ),
        ("logistic", f"coef {fit.coef:.4f}, intercept {fit.intercept:.4f}"),
        ("alpha, labels", f"{alpha}, {labels}"),
    ]
    console.out.print(console.table(f"threshold for {lm.fingerprint.name}", ["", "value"], rows))
    console.out.print(f"wrote {output}")


@calibrate.command()
def score(
    data: Path = typer.Option(
        ..., "--data", "-d", help="Prompts, with references for a `correct` field (JSONL, JSON, CSV, TSV)."
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="scores.jsonl to write (journal beside it while running)."
    ),
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
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="N prompts, drawn with --seed (default: all)."
    ),
    resume: bool = options.RESUME,
    device: str = DEVICE,
    load_in_4bit: bool = LOAD_4BIT,
    load_in_8bit: bool = LOAD_8BIT,
    seed: int = SEED,
    json_out: bool = options.JSON,
) -> None:
    """Greedy-decode every prompt and score it with RAUQ (one JSON line per sample; resumable)."""

    from halluc_rauq.calibration import check_heads_file, load_heads, parse_layers
    from halluc_rauq.scorer import check_alpha, default_alpha
    from halluc_rauq.scoring import score_pairs
    from ucli.artifacts import require_file_path, write_jsonl
    from ucli.journal import Journal, preflight

    if alpha is not None:
        check_alpha(alpha)
    require_file_path(output)
    journal_path = preflight(output, resume, folder=False)
    if journal_path is None:
        console.result(
            {"output": str(output), "complete": True}, json_out, lambda: f"{output}: already complete"
        )
        return
    if heads_file is not None:
        check_heads_file(heads_file)
    pairs = _pairs(data, limit, seed, require_reference=False)
    lm = _load(model, device, load_in_4bit, load_in_8bit, seed)
    if heads_file is not None:
        heads, run_layers = load_heads(heads_file, lm.fingerprint)
    else:
        heads, run_layers = None, parse_layers(layers, lm.fingerprint.num_layers)
    alpha = alpha if alpha is not None else default_alpha(bool(getattr(lm.tokenizer, "chat_template", None)))
    judge = _judge(data) if any(p.reference is not None for p in pairs) else None

    config = {
        "model": model,
        "data": str(data),
        "heads": str(heads_file) if heads_file else None,
        "alpha": alpha,
    }
    config.update(
        layers=run_layers,
        max_new_tokens=max_new_tokens,
        limit=limit,
        seed=seed,
        fingerprint=lm.fingerprint.model_dump(),
    )
    with Journal(journal_path, config=config, resume=resume) as journal:
        with console.progress("scoring", total=len(pairs)) as advance:
            score_pairs(
                lm, pairs, journal, run_layers, alpha, heads, judge, max_new_tokens, batch_size, advance
            )
        by_id = {r["id"]: r for r in journal.records()}
    records = [by_id[p.id] for p in pairs]
    write_jsonl(output, records)
    journal_path.unlink()
    scored = [r for r in records if r["rauq"] is not None]
    summary = {
        "output": str(output),
        "n": len(records),
        "scored": len(scored),
        "alpha": alpha,
        "layers": run_layers,
    }
    if any("correct" in r for r in records):
        summary["accuracy"] = sum(r.get("correct", 0) for r in records) / len(records)
    if json_out:
        console.print_json(summary)
        return
    rows = [(k, v if not isinstance(v, float) else f"{v:.4f}") for k, v in summary.items()]
    console.out.print(console.table(f"RAUQ scores from {lm.fingerprint.name}", ["", "value"], rows))
    console.info(f"next: halluc stats prr {output} --score rauq --quality correct")


options.renamed("calibrate heads", {"--num-examples": "--limit", "-n": "--limit", "-c": "--calibration"})
options.renamed("calibrate threshold", {"--num-examples": "--limit", "-n": "--limit", "-c": "--calibration"})
