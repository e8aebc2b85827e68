"""`halluc benchmarks`: list, show, export and re-score benchmarks (thin CLI over halluc_benchmarks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ucli import console, options

app = typer.Typer(
    help="Benchmarks: list, show, export prompt/reference pairs, re-score completions.", no_args_is_help=True
)

SPLIT = typer.Option(
    None, "--split", help="Split to use (default: the benchmark's last split, usually test)."
)
LIMIT = options.limit("N samples, drawn with --seed (default: all).")
SEED = typer.Option(
    None, "--seed", help="Random seed of the --limit draw (default: the first N in file order)."
)


def _bench(name: str, given: dict[str, Any]) -> Any:
    from halluc_benchmarks.registry import get_benchmark

    return get_benchmark(name, **given)


def _split(bench: Any, split: str | None) -> str:
    return split or bench.splits[-1]


@app.command("list")
def list_command(json_out: bool = options.JSON) -> None:
    """Every installed benchmark with its splits and the package that provides it."""
    from ucli import plugins

    rows = []
    for info in plugins.discover("benchmarks"):
        obj = info.obj
        rows.append(
            {
                "name": info.name,
                "description": getattr(obj, "description", "") if info.status == "ok" else "",
                "splits": list(getattr(obj, "splits", ())) if info.status == "ok" else [],
                "provided_by": f"{info.dist} {info.version}",
                "status": info.status,
                "error": info.error,
            }
        )
    if json_out:
        console.print_json({"benchmarks": rows})
        return
    table_rows = [
        (r["name"], ", ".join(r["splits"]), r["description"] or r["error"] or "", r["provided_by"])
        for r in rows
    ]
    console.out.print(
        console.table("halluc benchmarks", ["name", "splits", "description", "provided by"], table_rows)
    )


@app.command()
def measures(json_out: bool = options.JSON) -> None:
    """Every installed quality measure (what `--correct-if MEASURE>=X` can name) and the rule it follows."""
    from ucli import plugins

    rows = [{"name": p.name, "description": getattr(p.obj, "description", ""), "source": getattr(p.obj, "source", ""),
             "provided_by": f"{p.dist} {p.version}", "status": p.status, "error": p.error}
            for p in plugins.discover("metrics")]  # fmt: skip
    if json_out:
        console.print_json({"measures": rows})
        return
    table = [(r["name"], r["description"] or r["error"] or "", r["source"]) for r in rows]
    console.out.print(
        console.table("quality measures", ["name", "what it measures", "rule it follows"], table)
    )


@app.command()
@options.bundled
def show(
    name: str = typer.Argument(..., help="Benchmark name (see `halluc benchmarks list`)."),
    split: str | None = SPLIT,
    limit: int = typer.Option(5, "--limit", min=1, help="How many samples to show."),
    seed: int | None = SEED,
    bench_options: dict[str, Any] = options.BENCHMARK,
    json_out: bool = options.JSON,
) -> None:
    """A few samples of a benchmark (id, prompt, reference and aliases), the first as the model is
    prompted, where its prompt and verdict come from, and the -B options it takes."""
    from halluc_benchmarks.registry import option_table

    bench = _bench(name, bench_options)
    samples = bench.load(_split(bench, split), limit=limit, seed=seed)
    takes = option_table(type(bench))
    about = {
        "source": getattr(bench, "source", "") or "halluc",
        "correct_if": bench.correct_if or "the answer rules (metrics)",
    }
    if json_out:
        console.print_json({"benchmark": name, "split": _split(bench, split), "options": takes, **about,
                            "prompt": bench.chat_message(samples[0]) if samples else None,
                            "samples": [s.as_record() for s in samples]})  # fmt: skip
        return
    rows = [(s.id, _short(s.prompt), s.reference or "-", _short(", ".join(s.aliases))) for s in samples]
    console.out.print(
        console.table(f"{name} / {_split(bench, split)}", ["id", "prompt", "reference", "aliases"], rows)
    )
    if samples:
        console.out.print(
            f"the first sample as a chat model is asked it:\n{bench.chat_message(samples[0])}\n",
            highlight=False,
        )
    console.out.print(
        f"prompt and verdict follow: {about['source']}; right when: {about['correct_if']}", highlight=False
    )
    shown = ", ".join(f"{o['name']} ({o['type']}, default {o['default']})" for o in takes)
    console.out.print(f"options (-B key=value): {shown or 'none'}")


def _short(text: str, width: int = 160) -> str:
    """A table cell: a passage or a story would fill the screen."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command()
@options.bundled
def export(
    name: str = typer.Argument(..., help="Benchmark name."),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Prompt/reference pairs to write (JSONL, or CSV or Parquet by its suffix).",
    ),
    split: str | None = SPLIT,
    limit: int | None = LIMIT,
    seed: int | None = SEED,
    bench_options: dict[str, Any] = options.BENCHMARK,
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """Write prompt/reference pairs (id, prompt, reference, aliases, metadata) in the format calibrate reads."""
    from halluc_benchmarks.registry import recorded_options
    from ucli.artifacts import check_output_file, write_table

    check_output_file(output, force=force)
    bench = _bench(name, bench_options)
    chosen = _split(bench, split)
    samples = bench.load(chosen, limit=limit, seed=seed)
    write_table(
        output,
        # the prompt as the benchmark sends it to a chat model: calibrating on this file, or running it
        # as `-b local`, sends what `-b NAME` sends
        [
            {
                **s.as_record(),
                "prompt": bench.chat_message(s),
                "metadata": {**s.metadata, "benchmark": name, "split": chosen, "question": s.prompt},
            }
            for s in samples
        ],
        "halluc.benchmarks.export",
        inputs=[bench_options["data_file"]] if "data_file" in bench_options else [],
        seed=seed,
        config={
            "benchmark": name,
            "split": chosen,
            "limit": limit,
            **recorded_options(bench),
        },
    )
    summary = {"benchmark": name, "split": chosen, "n": len(samples), "output": str(output)}
    if json_out:
        console.print_json(summary)
    else:
        console.out.print(f"wrote {len(samples)} {name}/{chosen} samples to {output}")


@app.command()
@options.bundled
def score(
    name: str = typer.Argument(..., help="Benchmark name."),
    predictions: Path = typer.Option(..., "--predictions", help="JSONL with `id` and `completion` per line."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Per-item verdicts (default: PREDICTIONS.verdicts.jsonl)."
    ),
    split: str | None = typer.Option(
        None, "--split", help="Look ids up in this split only (default: every split)."
    ),
    bench_options: dict[str, Any] = options.BENCHMARK,
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """Re-score saved completions: accuracy, and a verdict per item (extracted answer and deciding rule)."""
    from halluc_benchmarks.registry import recorded_options
    from halluc_benchmarks.scoring import score_predictions
    from ucli.artifacts import check_output_file, write_table

    target = check_output_file(
        output or predictions.with_name(predictions.stem + ".verdicts.jsonl"), force=force
    )
    bench = _bench(name, bench_options)
    verdicts, summary = score_predictions(bench, predictions, [split] if split else list(bench.splits))
    write_table(target, verdicts, "halluc.benchmarks.verdicts", summary=summary,
                inputs=[p for p in (predictions, bench_options.get("data_file")) if p],
                config={"benchmark": name, "split": split, **recorded_options(bench)})  # fmt: skip
    summary = {"benchmark": name, **summary, "verdicts": str(target)}
    if json_out:
        console.print_json(summary)
        return
    rows = [
        ("items", summary["n"]),
        ("correct", summary["correct"]),
        ("accuracy", f"{summary['accuracy']:.4f}"),
    ]
    rows += [(f"rule: {k}", v) for k, v in summary["rules"].items()]
    console.out.print(console.table(f"{name}: {predictions.name}", ["", "value"], rows))
    console.info(f"verdicts: {target}")


options.renamed("benchmarks score", {"-p": "--predictions"})
for _command in ("show", "export", "score"):
    options.renamed(f"benchmarks {_command}", options.BENCH_RENAMED)
