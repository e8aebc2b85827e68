"""`halluc trace`: thin CLI over halluc_trace (torch, transformers and zarr load only when a command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ucli import console, options

app = typer.Typer(
    help="Internal traces (attention, Q/K/V, hidden, residual) to Zarr + Parquet; validate; heat maps.",
    no_args_is_help=True,
)


def _words(values: list[str] | None) -> list[str]:
    """'attn,qkv', 'attn qkv' or repeated options -> ['attn', 'qkv']."""
    return [w for v in values or [] for w in v.replace(",", " ").split()]


@app.command()
@options.bundled
def extract(
    model: str = options.MODEL,
    dataset: str | None = typer.Option(
        None, "--dataset", help="wikitext2, wikitext103, ud_ewt, go_emotions or csqa (from the hub)."
    ),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="Local texts (.txt lines; JSONL/CSV/Parquet with 'text') or CommonsenseQA-format questions.",
    ),
    data_file: Path | None = typer.Option(
        None, "--data-file", help="A local copy of --dataset in the hub's format (offline runs)."
    ),
    split: str = typer.Option("validation", "--split", help="Split of --dataset."),
    limit: int | None = options.limit("First N examples (traces are stored by position; no shuffle)."),
    max_seq_len: str = typer.Option(
        "auto", "--max-seq-len", help="Padded length T, or 'auto' (the longest example). Texts are cut to it."
    ),
    batch_size: int = options.batch_size(8, "Examples per forward pass."),
    capture: list[str] = typer.Option(
        ["attn", "hidden"], "--capture", help="Any of attn, qkv, hidden, resid (comma-separated or repeated)."
    ),
    layers: str | None = typer.Option(
        None, "--layers", help="Layers to store: '0,5,11', '0-3' (default: all)."
    ),
    mode: str = typer.Option("nexttok", "--mode", help="nexttok (texts) or prompt (CommonsenseQA prompts)."),
    encoder_mcq: bool = typer.Option(
        False,
        "--encoder-mcq",
        help="Per-choice traces of a multiple-choice encoder (e.g. `halluc finetune mcq`).",
    ),
    store_dtype: str = typer.Option("float16", "--store-dtype", help="float16 or float32."),
    topk: int = typer.Option(5, "--topk", min=1, help="Top-k next-token predictions kept per position."),
    output: Path | None = options.output("Run folder (default: traces/<RUN_ID>)."),
    resume: bool = options.RESUME,
    force: bool = options.FORCE,
    load: Any = options.LOAD,
    runner: Any = options.SCALE_OUT,
    json_out: bool = options.JSON,
) -> None:
    """Run a model over a data set and store its internals, one example at a time, resumably
    (`--executor ray --workers N`: N model replicas each write their own examples)."""
    from halluc_trace.extract import ExtractConfig, extract_traces
    from ucli.attention import layer_list
    from ucli.errors import BadInput

    if encoder_mcq and mode != "nexttok":
        raise BadInput("--encoder-mcq is its own mode; drop --mode")
    if max_seq_len != "auto" and not max_seq_len.isdigit():
        raise BadInput(f"--max-seq-len: expected a number of tokens or 'auto', got {max_seq_len!r}")
    cfg = options.validated(
        ExtractConfig, model=model, mode="encoder-mcq" if encoder_mcq else mode, dataset=dataset,
        data=str(data) if data else None, data_file=str(data_file) if data_file else None, split=split,
        limit=limit, max_seq_len=None if max_seq_len == "auto" else int(max_seq_len), batch_size=batch_size,
        capture=tuple(_words(capture)), layers=tuple(layer_list(layers)) if layers else None,
        store_dtype=store_dtype, topk=topk, **load.model_dump(include=set(ExtractConfig.model_fields)),
    )  # fmt: skip
    result = extract_traces(config=cfg, output=output, resume=resume, executor=runner, force=force)
    if json_out:
        console.print_json(result)
        return
    if "examples" in result:
        ratio = result["bytes_on_disk"] / max(result["raw_float32_bytes"], 1)
        console.out.print(
            f"{result['examples']} examples, T={result['max_seq_len']}, {result['arrays']} arrays, "
            f"{console.human_bytes(result['bytes_on_disk'])} on disk ({ratio:.2f} of raw float32), "
            f"{result['seconds']:.1f} s -> {result['output']}"
        )
    console.out.print(console.next_step("trace", "index", result["output"], "--validate"))


@app.command()
def index(
    run: Path = typer.Argument(..., help="A trace run folder."),
    validate: bool = typer.Option(
        False, "--validate", help="Read everything and check it (exit 1 on problems)."
    ),
    sample: int = typer.Option(
        8, "--sample", min=1, help="Examples whose attention rows are checked to sum to 1."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of that sample."),
    json_out: bool = options.JSON,
) -> None:
    """Arrays, shapes, dtypes, bytes on disk and example count; --validate lists every problem (exit 1)."""
    from halluc_trace.validate import index_run, validate_run

    info = index_run(run)
    problems = validate_run(run, sample, seed) if validate else None
    if json_out:
        console.print_json({**info, **({"problems": problems} if validate else {})})
    else:
        rows = [(a["array"], "x".join(map(str, a["shape"])), a["dtype"], f"{a['bytes_on_disk'] / 2**20:.2f}")
                for a in info["arrays"]]  # fmt: skip
        title = (f"{info['run']}: {info['examples']} examples, {info['mode']}, model {info['model']}, "
                 f"T={info['max_seq_len']}, layers {info['layers']}")  # fmt: skip
        console.out.print(console.table(title, ["array", "shape", "dtype", "MiB on disk"], rows))
        tokens = info["tokens_error"] or f"tokens.parquet: {info['tokens_rows']} rows"
        console.out.print(f"{tokens}; {console.human_bytes(info['bytes_on_disk'])} of arrays")
        if problems is not None:
            for p in problems:
                console.out.print(console.styled(("problem:", "red"), f" {p}"))
            console.out.print("valid" if not problems else f"{len(problems)} problem(s)")
    if problems or info["tokens_error"]:
        raise typer.Exit(1)


@app.command()
def show(
    run: Path = typer.Argument(..., help="A trace run folder."),
    example: str = typer.Option(..., "--example", help="Example id (see tokens.parquet or `trace index`)."),
    layer: int = typer.Option(..., "--layer", help="Model layer (one the run stored)."),
    head: int = typer.Option(..., "--head", help="Attention head."),
    png: Path = options.output("Image to write (PNG).", required=True),
    choice: int | None = typer.Option(None, "--choice", help="Choice index (encoder multiple-choice runs)."),
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """An attention heat map of one head, with the example's tokens on both axes."""
    from halluc_trace.show import attention_heatmap
    from ucli.artifacts import check_output_file

    check_output_file(png, force=force)
    path = attention_heatmap(run, example, layer, head, png, choice)
    doc = {"output": str(path), "example": example, "layer": layer, "head": head, "choice": choice}
    console.result(doc, json_out, lambda: f"wrote {path}")


options.renamed("trace extract", {"--out-dir": "--output"})
options.renamed("trace show", {"--png": "--output"})
