"""`halluc stats`: thin CLI over the halluc_stats Python API (numpy/scipy load only when a command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ucli import console, options

app = typer.Typer(
    help="Paired statistics: McNemar, bootstrap CIs, paired bootstrap, AUROC/AUPRC, PRR.",
    no_args_is_help=True,
)

FIELD = typer.Option(
    ..., "--field", "-f", help="Per-item value to compare (dotted paths reach nested fields)."
)
KEY = typer.Option(
    None, "--key", "-k", help="Pairing key (default: doc_id for lm-eval samples files, else id)."
)
ALLOW_UNPAIRED = typer.Option(
    False, "--allow-unpaired", help="Use the common items when some have no partner."
)
CONFIDENCE = typer.Option(0.95, "--confidence", min=0.0, max=1.0, help="Confidence level of intervals.")
SEED = typer.Option(0, "--seed", help="Random seed for resampling (recorded in --output).")
OUTPUT = typer.Option(
    None, "--output", "-o", help="Also write the result as a JSON artifact with provenance."
)
PATTERN_HELP = (
    "Result file or quoted glob (one file per seed): lm-eval samples_*.jsonl, halluc JSONL, CSV or Parquet."
)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _unpaired(row: dict) -> str:
    return f"{row['only_a']} / {row['only_b']}" if row.get("only_a") or row.get("only_b") else "-"


def _ci(row: dict, lo: str = "ci_low", hi: str = "ci_high") -> str:
    return "-" if row.get(lo) is None else f"[{_fmt(row[lo])}, {_fmt(row[hi])}]"


def _check_outputs(force: bool, output: Path | None, plot: Path | None = None) -> None:
    """The outputs asked for, checked before any file is read (an existing one needs --force)."""
    from ucli.artifacts import check_output_file

    check_output_file(output, force=force)
    check_output_file(plot, force=force, option="--plot")


def _finish(report: dict, columns: dict[str, Any], output: Path | None, json_out: bool, config: dict) -> None:
    """Write the artifact, surface notes, then print JSON or a table (one row per seed, then pooled)."""
    from halluc_stats.report import rows
    from ucli.artifacts import write_artifact

    every = rows(report)
    for row in every:
        if row.get("note"):
            console.warn(f"{row['label']}: {row['note']}")
        if row.get("only_a") or row.get("only_b"):
            console.warn(
                f"{row['label']}: left out {row['only_a']} item(s) only in A and {row['only_b']} only in B (--allow-unpaired)"
            )
    if output is not None:
        files = sorted({f for row in report["groups"] for f in row["files"]})
        write_artifact(
            output,
            f"halluc.stats.{report['test']}",
            1,
            report,
            inputs=files,
            seed=config.get("seed"),
            config=config,
        )
    if json_out:
        console.print_json(report)
        return
    # One row per quantity, one column per seed (and pooled): fits a terminal for any few seeds.
    cells = {name: [fn(row) for row in every] for name, fn in columns.items()}
    body = [[name, *vals] for name, vals in cells.items() if any(v != "-" for v in vals)]
    console.out.print(
        console.table(f"halluc stats {report['test']}", ["", *(r["label"] for r in every)], body)
    )


@app.command()
def mcnemar(
    a: str | None = typer.Argument(None, help=f"A: {PATTERN_HELP}"),
    b: str | None = typer.Argument(None, help="B: the same for the other system."),
    field: str | None = typer.Option(None, "--field", "-f", help="Per-item 0/1 correctness (e.g. acc)."),
    key: str | None = KEY,
    method: str = typer.Option(
        "auto", "--method", help="exact, chi2, chi2-cc, or auto (exact when b+c < 25, else chi2-cc)."
    ),
    b_count: int | None = typer.Option(
        None, "--b", min=0, help="Discordant count A right / B wrong (instead of files)."
    ),
    c_count: int | None = typer.Option(
        None, "--c", min=0, help="Discordant count A wrong / B right (instead of files)."
    ),
    allow_unpaired: bool = ALLOW_UNPAIRED,
    confidence: float = CONFIDENCE,
    output: Path | None = OUTPUT,
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """McNemar's test for paired right/wrong outcomes of A and B, with accuracies and their difference."""
    _check_outputs(force, output)
    from ucli.errors import BadInput

    config = {"a": a, "b": b, "field": field, "key": key, "method": method, "confidence": confidence}
    if b_count is not None or c_count is not None:
        if a or b or b_count is None or c_count is None:
            raise BadInput("give either two result files with --field, or both --b and --c, not a mix")
        report = _mcnemar_from_counts(b_count, c_count, method, confidence)
        config.update(b_count=b_count, c_count=c_count)
    else:
        if not (a and b and field):
            raise BadInput(
                "give two result files (A and B) and --field, or the discordant counts --b and --c"
            )
        report = _mcnemar_from_files(a, b, field, key, allow_unpaired, method, confidence)
    _finish(report, _mcnemar_columns(confidence), output, json_out, config)


def _mcnemar_from_counts(b_count: int, c_count: int, method: str, confidence: float) -> dict[str, Any]:
    from halluc_stats.contingency import mcnemar_counts
    from ucli.artifacts import strict_json

    result = strict_json(mcnemar_counts(b_count, c_count, method, confidence=confidence))
    return {
        "test": "mcnemar",
        "field": None,
        "groups": [{"label": "counts", "files": [], **result}],
        "pooled": None,
    }


def _mcnemar_from_files(a: str, b: str, field: str, key: str | None, allow_unpaired: bool, method: str,
                        confidence: float) -> dict[str, Any]:  # fmt: skip
    from halluc_stats import contingency as m
    from halluc_stats import inputs
    from halluc_stats.report import paired_report

    pairs = inputs.load_pairs(a, b, field, key, allow_unpaired)
    for p in pairs:
        for side, values, path in (("A", p.a, p.paths[0]), ("B", p.b, p.paths[1])):
            m.require_binary(values, f"{path}: field '{field}' ({side})")
    return paired_report("mcnemar", m.mcnemar, pairs, field, method=method, confidence=confidence)


def _mcnemar_columns(confidence: float) -> dict[str, Any]:
    return {
        "pairs": lambda r: _fmt(r.get("n")),
        "unpaired A / B": _unpaired,
        "both right": lambda r: _fmt(r.get("both_right")),
        "A only (b)": lambda r: _fmt(r["b"]),
        "B only (c)": lambda r: _fmt(r["c"]),
        "both wrong": lambda r: _fmt(r.get("both_wrong")),
        "acc A": lambda r: _fmt(r.get("acc_a")),
        "acc B": lambda r: _fmt(r.get("acc_b")),
        "B - A": lambda r: _fmt(r.get("diff")),
        f"{confidence:.0%} CI": _ci,
        "statistic": lambda r: _fmt(r["statistic"]),
        "p": lambda r: _fmt(r["p_value"]),
        "method": lambda r: r["method"],
    }


@app.command()
def bootstrap(
    files: list[str] = typer.Argument(..., help=PATTERN_HELP),
    field: str = FIELD,
    key: str | None = KEY,
    method: str = typer.Option(
        "percentile", "--method", help="percentile or bca (falls back to percentile when degenerate)."
    ),
    confidence: float = CONFIDENCE,
    n_resamples: int = typer.Option(10_000, "--n-resamples", min=1, help="Bootstrap resamples."),
    seed: int = SEED,
    output: Path | None = OUTPUT,
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """Mean of a per-item value with a bootstrap confidence interval (per file, and pooled)."""
    _check_outputs(force, output)
    from halluc_stats import inputs, resampling
    from halluc_stats.report import table_report

    tables = inputs.load_tables(files, [field], key)
    report = table_report(
        "bootstrap", resampling.bootstrap, tables, [field],
        method=method, confidence=confidence, n_resamples=n_resamples, seed=seed,
    )  # fmt: skip
    columns = {
        "n": lambda r: _fmt(r["n"]),
        "mean": lambda r: _fmt(r["estimate"]),
        f"{confidence:.0%} CI": _ci,
        "std error": lambda r: _fmt(r["std_error"]),
        "method": lambda r: r["method"],
    }
    config = {"files": files, "field": field, "key": key, "method": method, "confidence": confidence}
    _finish(report, columns, output, json_out, {**config, "n_resamples": n_resamples, "seed": seed})


@app.command("paired-bootstrap")
def paired_bootstrap(
    a: str = typer.Argument(..., help=f"A: {PATTERN_HELP}"),
    b: str = typer.Argument(..., help="B: the same for the other system."),
    field: str = FIELD,
    key: str | None = KEY,
    method: str = typer.Option("percentile", "--method", help="percentile or bca."),
    allow_unpaired: bool = ALLOW_UNPAIRED,
    confidence: float = CONFIDENCE,
    n_resamples: int = typer.Option(10_000, "--n-resamples", min=1, help="Bootstrap resamples."),
    seed: int = SEED,
    output: Path | None = OUTPUT,
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """mean(B) - mean(A) over paired items: bootstrap CI, two-sided p-value, Cohen's d_z (continuous scores)."""
    _check_outputs(force, output)
    from halluc_stats import inputs, resampling
    from halluc_stats.report import paired_report

    pairs = inputs.load_pairs(a, b, field, key, allow_unpaired)
    report = paired_report(
        "paired-bootstrap", resampling.paired_bootstrap, pairs, field,
        method=method, confidence=confidence, n_resamples=n_resamples, seed=seed,
    )  # fmt: skip
    columns = {
        "pairs": lambda r: _fmt(r["n"]),
        "unpaired A / B": _unpaired,
        "mean A": lambda r: _fmt(r["mean_a"]),
        "mean B": lambda r: _fmt(r["mean_b"]),
        "B - A": lambda r: _fmt(r["estimate"]),
        f"{confidence:.0%} CI": _ci,
        "p": lambda r: _fmt(r["p_value"]),
        "d_z": lambda r: _fmt(r["effect_size"]),
        "method": lambda r: r["method"],
    }
    config = {"a": a, "b": b, "field": field, "key": key, "method": method, "confidence": confidence}
    _finish(report, columns, output, json_out, {**config, "n_resamples": n_resamples, "seed": seed})


@app.command()
def auroc(
    files: list[str] = typer.Argument(..., help=PATTERN_HELP),
    score: str = typer.Option(..., "--score", "-s", help="Score field (e.g. an uncertainty)."),
    label: str = typer.Option(..., "--label", "-y", help="Binary label field; 1 is the positive class."),
    key: str | None = KEY,
    higher_is_positive: bool = typer.Option(
        True, "--higher-is-positive/--lower-is-positive", help="Whether high scores point to label 1."
    ),
    confidence: float = CONFIDENCE,
    n_resamples: int = typer.Option(2000, "--n-resamples", min=1, help="Bootstrap resamples for the CIs."),
    n_permutations: int = typer.Option(
        2000, "--n-permutations", min=1, help="Label permutations for the p-value."
    ),
    seed: int = SEED,
    output: Path | None = OUTPUT,
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """AUROC and AUPRC of a score against binary labels, bootstrap CIs and a permutation p-value."""
    _check_outputs(force, output)
    from halluc_stats import discrimination, inputs
    from halluc_stats.report import table_report

    tables = inputs.load_tables(files, [score, label], key)
    report = table_report(
        "auroc", discrimination.auroc, tables, [score, label], higher_is_positive=higher_is_positive,
        confidence=confidence, n_resamples=n_resamples, n_permutations=n_permutations, seed=seed,
    )  # fmt: skip
    columns = {
        "n": lambda r: _fmt(r["n"]),
        "positives": lambda r: _fmt(r["n_positive"]),
        "AUROC": lambda r: _fmt(r["auroc"]),
        "AUROC CI": lambda r: _ci(r, "auroc_ci_low", "auroc_ci_high"),
        "AUPRC": lambda r: _fmt(r["auprc"]),
        "AUPRC CI": lambda r: _ci(r, "auprc_ci_low", "auprc_ci_high"),
        "p (perm.)": lambda r: _fmt(r["p_value"]),
    }
    config = {
        "files": files,
        "score": score,
        "label": label,
        "key": key,
        "higher_is_positive": higher_is_positive,
    }
    config.update(confidence=confidence, n_resamples=n_resamples, n_permutations=n_permutations, seed=seed)
    _finish(report, columns, output, json_out, config)


@app.command()
def prr(
    files: list[str] = typer.Argument(..., help=PATTERN_HELP),
    score: str = typer.Option(..., "--score", "-s", help="Uncertainty field (higher = less trustworthy)."),
    quality: str = typer.Option(..., "--quality", help="Quality field (higher = better, e.g. acc)."),
    key: str | None = KEY,
    max_rejection: float = typer.Option(
        0.5, "--max-rejection", min=0.0, max=1.0, help="Largest rejection rate."
    ),
    confidence: float = CONFIDENCE,
    n_resamples: int = typer.Option(2000, "--n-resamples", min=1, help="Bootstrap resamples for the CI."),
    seed: int = SEED,
    plot: Path | None = typer.Option(
        None, "--plot", help="Draw the three rejection curves (all files pooled) to a PNG."
    ),
    output: Path | None = OUTPUT,
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """Prediction rejection ratio of an uncertainty score, with a bootstrap CI and an optional curve plot."""
    _check_outputs(force, output, plot)
    import numpy as np

    from halluc_stats import inputs, rejection
    from halluc_stats.report import table_report

    tables = inputs.load_tables(files, [score, quality], key)
    report = table_report(
        "prr", rejection.prr, tables, [score, quality],
        max_rejection=max_rejection, confidence=confidence, n_resamples=n_resamples, seed=seed,
    )  # fmt: skip
    if plot is not None:
        u = np.concatenate([t.values[score] for t in tables])
        q = np.concatenate([t.values[quality] for t in tables])
        pooled = (report["pooled"] or report["groups"][0])["prr"]
        title = f"{score} against {quality}: PRR = {pooled:.3f}"
        rejection.plot_curves(u, q, max_rejection, plot, title=title)
        report["plot"] = str(plot)
    columns = {
        "n": lambda r: _fmt(r["n"]),
        "PRR": lambda r: _fmt(r["prr"]),
        f"{confidence:.0%} CI": _ci,
        "area unc.": lambda r: _fmt(r["area_uncertainty"]),
        "area oracle": lambda r: _fmt(r["area_oracle"]),
        "area random": lambda r: _fmt(r["area_random"]),
    }
    config = {"files": files, "score": score, "quality": quality, "key": key, "max_rejection": max_rejection}
    _finish(
        report,
        columns,
        output,
        json_out,
        {**config, "confidence": confidence, "n_resamples": n_resamples, "seed": seed},
    )


options.renamed("stats prr", {"-q": "--quality"})
