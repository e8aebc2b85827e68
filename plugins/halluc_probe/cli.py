"""`halluc probe`: thin CLI over halluc_probe (torch, transformers, zarr and sklearn load only when a
command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ucli import console, options

app = typer.Typer(
    help="Semantic entropy and semantic-entropy probes: generate, entropy, trace, build, train, eval, analyze.",
    no_args_is_help=True,
)
RESUME, DEVICE, SEED = options.RESUME, options.DEVICE, options.SEED


@app.command()
@options.bundled
def generate(
    model: str = options.MODEL,
    benchmark: str | None = typer.Option(
        None, "--benchmark", "-b", help="A registered benchmark (e.g. facts)."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="Your prompt/reference file instead of a benchmark."
    ),
    split: str = typer.Option("test", "--split", help="Benchmark split."),
    limit: int | None = options.limit("N questions, drawn with --seed (default: all)."),
    k: int = options.samples(10, minimum=1),
    temperature: float = options.temperature(1.0),  # Farquhar et al.'s setting
    top_p: float = options.TOP_P,
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", min=1, help="Longest answer."),
    backend: str = typer.Option("hf", "--backend", help="hf (local, batched) or vllm (GPU)."),
    batch_size: int = options.batch_size(4, "Questions per step (K + 1 sequences each)."),
    output: Path = typer.Option(..., "--output", "-o", help="runs.jsonl to write."),
    seed: int = SEED,
    resume: bool = RESUME,
    force: bool = options.FORCE,
    load: Any = options.LOAD,
    bench_options: dict[str, Any] = options.BENCHMARK,
    runner: Any = options.SCALE_OUT,
    json_out: bool = options.JSON,
) -> None:
    """K sampled answers per question with token log-likelihoods, plus a judged greedy answer."""
    from halluc_probe.runs import GenerateConfig, generate_runs

    cfg = options.validated(GenerateConfig, model=model, benchmark=benchmark, data=str(data) if data else None,
                            split=split, limit=limit, k=k, temperature=temperature, top_p=top_p,
                            max_new_tokens=max_new_tokens, backend=backend, batch_size=batch_size, seed=seed,
                            **load.model_dump(include=set(GenerateConfig.model_fields)),
                            **GenerateConfig.benchmark_fields(bench_options))  # fmt: skip
    result = generate_runs(cfg, output, resume, runner, force=force)
    console.result(
        result,
        json_out,
        lambda: (
            f"{result['questions']} questions x {k} samples, greedy accuracy {result['accuracy']:.3f} "
            f"-> {output}"
        ),
    )


@app.command()
def entropy(
    runs: Path = typer.Option(..., "--runs", help="`probe generate` output."),
    equivalence: str = options.EQUIVALENCE,
    nli_model: str | None = options.NLI_MODEL,
    strict: bool = options.BIDIRECTIONAL,
    threshold: float = options.MIN_SIMILARITY,
    embedding_model: str | None = options.EMBEDDING_MODEL,
    output: Path = typer.Option(..., "--output", "-o", help="se.jsonl to write."),
    device: str = DEVICE,
    resume: bool = RESUME,
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """Cluster each question's answers by meaning; discrete, likelihood-weighted and naive entropy."""
    from halluc_probe.entropy import EntropyConfig, compute_entropy

    cfg = options.validated(EntropyConfig, equivalence=equivalence, nli_model=nli_model, strict=strict,
                            threshold=threshold, embedding_model=embedding_model, device=device)  # fmt: skip
    result = compute_entropy(cfg, runs, output, resume, force=force)
    console.result(
        result,
        json_out,
        lambda: (
            f"{result['questions']} questions: mean semantic entropy {result['mean_semantic_entropy']:.3f}, "
            f"{result['mean_clusters']:.2f} clusters per question -> {output}"
        ),
    )


@app.command()
@options.bundled
def trace(
    model: str = typer.Option("smollm2-135m", "--model", "-m", help="The model that generated the runs."),
    runs: Path = typer.Option(..., "--runs", help="`probe generate` output."),
    positions: str = typer.Option(
        "tbg,slt", "--positions", help="Any of tbg, slt, think-end (comma-separated)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="hidden.zarr folder to create."),
    batch_size: int = options.batch_size(8, "Questions per forward pass."),
    load: Any = options.LOAD,
    resume: bool = RESUME,
    force: bool = options.FORCE,
    runner: Any = options.SCALE_OUT,
    json_out: bool = options.JSON,
) -> None:
    """Hidden states of every layer at TBG / SLT / </think>, from prompt + greedy answer
    (`--executor ray --workers N`: on N model replicas, to the same arrays)."""
    from halluc_probe.hidden import HiddenConfig, parse_positions, trace_hidden

    config = HiddenConfig(
        model=model, positions=tuple(parse_positions(positions)), batch_size=batch_size, load=load
    )
    result = trace_hidden(
        config=config, runs=runs, output=output, resume=resume, executor=runner, force=force
    )
    console.result(
        result,
        json_out,
        lambda: (
            f"{result['questions']} questions x {result['layers']} layers x {result['hidden_size']} "
            f"-> {output}"
        ),
    )


@app.command()
def build(
    runs: Path = typer.Option(..., "--runs", help="`probe generate` output."),
    entropy_file: Path = typer.Option(..., "--entropy", help="`probe entropy` output."),
    hidden: Path = typer.Option(..., "--hidden", help="`probe trace` output."),
    output: Path = typer.Option(..., "--output", "-o", help="Data set folder to create."),
    split: str = typer.Option("0.6,0.2,0.2", "--fractions", help="Train, validation, test fractions."),
    seed: int = SEED,
    json_out: bool = options.JSON,
) -> None:
    """Join runs, entropies and hidden states; binarise SE (best split); stratified splits."""
    from halluc_probe.dataset import build_dataset
    from ucli.errors import BadInput

    try:
        fractions = tuple(float(x) for x in split.split(","))
    except ValueError:
        raise BadInput(f"--split: expected three fractions like 0.6,0.2,0.2, got {split!r}") from None
    result = build_dataset(runs, entropy_file, hidden, output, fractions, seed)  # type: ignore[arg-type]
    console.result(
        result,
        json_out,
        lambda: (
            f"{result['questions']} questions {result['sizes']}; SE threshold {result['threshold']:.3f} "
            f"({result['high_se_rate']:.0%} high), accuracy {result['accuracy']:.3f} -> {output}"
        ),
    )


@app.command()
def train(
    dataset: Path = typer.Option(..., "--data", help="`probe build` output."),
    output: Path = typer.Option(..., "--output", "-o", help="Probe folder to create."),
    position: str = typer.Option("slt", "--position", help="Hidden-state position the probes read."),
    c: float = typer.Option(1.0, "--C", help="Inverse L2 regularisation strength."),
    seed: int = SEED,
    json_out: bool = options.JSON,
) -> None:
    """Per-layer logistic probes (accuracy, high SE) and an entropy baseline; best layer block by validation."""
    from halluc_probe.probes import train_probes

    result = train_probes(dataset, output, position, c, seed)
    if json_out:
        console.print_json(result)
        return
    rows = [(kind, f"{result[kind]['block'][0]}-{result[kind]['block'][1]}", f"{result[kind]['validation_auroc']:.3f}")
            for kind in ("accuracy", "se")]  # fmt: skip
    rows.append(("entropy baseline", "-", f"{result['baseline']['validation_auroc']:.3f}"))
    console.out.print(console.table(f"probes at {position}", ["probe", "layers", "validation AUROC"], rows))


@app.command("eval")
def eval_(
    probes: Path = typer.Option(..., "--probes", help="`probe train` output."),
    dataset: Path = typer.Option(..., "--data", help="`probe build` output (its test split is scored)."),
    ood: list[Path] = typer.Option([], "--ood", help="Another data set, scored whole (repeat)."),
    output: Path = typer.Option(..., "--output", "-o", help="Report JSON to write."),
    plot: Path | None = typer.Option(None, "--plot", help="ROC curves (PNG)."),
    resamples: int = typer.Option(
        1000, "--n-resamples", min=100, help="Bootstrap resamples and permutations."
    ),
    seed: int = SEED,
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """AUROC / AUPRC against answer errors with bootstrap CIs and permutation p-values."""
    from halluc_probe.probes import evaluate_probes
    from ucli.artifacts import check_output_file

    check_output_file(output, force=force)
    check_output_file(plot, force=force, option="--plot")
    report = evaluate_probes(probes, dataset, ood, output, plot, resamples, seed)
    if json_out:
        console.print_json(report)
        return
    for name, res in report["sets"].items():
        rows = [(m, f"{r['auroc']:.3f} [{r['auroc_ci_low']:.3f}, {r['auroc_ci_high']:.3f}]", f"{r['auprc']:.3f}",
                 f"{r['p_value']:.4f}") for m, r in res["methods"].items()]  # fmt: skip
        conf = res["mean_confidence"]
        title = (f"{name}: {res['n']} questions, {res['errors']} wrong; mean P(correct) "
                 f"{conf['correct']:.3f} right vs {conf['incorrect']:.3f} wrong")  # fmt: skip
        console.out.print(console.table(title, ["score", "AUROC [CI]", "AUPRC", "p"], rows))


@app.command()
def analyze(
    dataset: Path = typer.Option(..., "--data", help="`probe build` output."),
    probes: Path = typer.Option(..., "--probes", help="`probe train` output."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Parquet to write (open it with examples/probe_explore.py)."
    ),
    seed: int = SEED,
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """One compact Parquet per run: scores, entropies and a 2-D projection per question."""
    from halluc_probe.analyze import analyze as run_analyze

    result = run_analyze(dataset, probes, output, seed, force=force)
    console.result(
        result,
        json_out,
        lambda: (
            f"{result['rows']} rows -> {output}; explore: marimo edit examples/probe_explore.py -- --path {output}"
        ),
    )


options.renamed("probe entropy", {"--strict": "--bidirectional", "--threshold": "--min-similarity"})
options.renamed("probe generate", {"--k": "--samples"})
options.renamed("probe build", {"--split": "--fractions"})
for _command in ("probe train", "probe eval", "probe analyze"):
    options.renamed(_command, {"--dataset": "--data"})
options.renamed("probe eval", {"--resamples": "--n-resamples"})
options.renamed("probe generate", options.BENCH_RENAMED)
