"""`halluc pilot`: thin CLI over halluc_pilot (SDKs and torch load only when a command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ucli import console, options

CONFIG = typer.Option(..., "--config", "-c", help="pilot.toml or pilot.json (the seed's JSON shape works).")
PROMPTS = typer.Option(None, "--prompts", help="Prompt file (overrides prompts_file).")
NUM_PROMPTS = options.limit("First N prompts (a pilot keeps the file's order; no shuffle).")
MODELS = typer.Option(None, "--models", help="Comma list of model names from the config (default: all).")
OUTPUT = options.output("Run folder (default: output_dir from the config).")

app = typer.Typer(help="Run prompt sets through many models, local and API: rate-limited, resumable.",
                  no_args_is_help=True)  # fmt: skip


def _inputs(config_file: Path, prompts: Path | None, num_prompts: int | None, models: str | None):
    from halluc_pilot.config import load_config, variants
    from halluc_pilot.prompts import load_prompts
    from ucli.errors import BadInput

    config, raw, _ = load_config(config_file)
    source = prompts or config.prompts_file
    if source is None:
        raise BadInput(f"{config_file}: no prompts_file, and no --prompts given")
    source_path = Path(source)
    if prompts is None and not source_path.is_absolute():
        source_path = config_file.parent / source_path  # relative to the config, as a user writes it
    chosen = variants(config, [m.strip() for m in models.split(",") if m.strip()] if models else None)
    return config, raw, load_prompts(source_path, num_prompts), chosen, source_path


@app.command()
@options.bundled
def run(
    config_file: Path = CONFIG,
    prompts: Path | None = PROMPTS,
    num_prompts: int | None = NUM_PROMPTS,
    models: str | None = MODELS,
    output: Path | None = OUTPUT,
    samples: int | None = options.samples(
        None,
        "Sampled answers per prompt beside each answer (K; default: the config's samples, 0), at the config's "
        "sample_temperature: what `uq score --from-pilot` scores the sampling estimators on.",
        minimum=0,
    ),
    resume: bool = options.RESUME,
    force: bool = options.FORCE,
    runner: Any = options.SCALE_OUT,
    json_out: bool = options.JSON,
) -> None:
    """Send every prompt to every model variant; journal each answer; write results and a summary
    (`--executor ray --workers N`: local variants on N model replicas; API ones stay on one loop)."""
    from halluc_pilot.runner import run_pilot

    config, raw, prompt_list, chosen, source = _inputs(config_file, prompts, num_prompts, models)
    if samples is not None:
        config, raw = config.model_copy(update={"samples": samples}), {**raw, "samples": samples}
    out = output or Path(config.output_dir)
    result = run_pilot(config, raw, prompt_list, chosen, out, resume=resume, force=force, prompts_file=source,
                       executor=runner)  # fmt: skip
    rows = [s.as_dict() for s in result.stats]
    if json_out:
        console.print_json({"run_id": result.run_id, "output": str(out), "complete": result.complete,
                            "variants": rows})  # fmt: skip
    else:
        _show(result.run_id, rows, out)
    if not result.complete:  # exit 1: a script must not take a partial run for a finished one
        from ucli.errors import HallucError

        raise HallucError(result.incomplete_message())


def _show(run_id: str, rows: list[dict], out: Path) -> None:
    table = [
        (f"{r['model']}/{r['variant']}", f"{r['done']}/{r['prompts']}", r["errors"], r["retries"],
         r["input_tokens"] + r["output_tokens"], f"{r['seconds']:.1f}",
         f"{r['requests_per_minute']:.1f}" if r["requests_per_minute"] else "-", r["stopped"] or "")
        for r in rows
    ]  # fmt: skip
    console.out.print(console.table(f"pilot {run_id}",
                                    ["variant", "done", "errors", "retries", "tokens", "seconds", "req/min", "stopped"],
                                    table))  # fmt: skip
    console.out.print(f"wrote {out / 'results.json'}, {out / 'summary.json'} and {out / 'results'}/")


@app.command("validate")
def validate_(
    config_file: Path = CONFIG,
    prompts: Path | None = PROMPTS,
    num_prompts: int | None = NUM_PROMPTS,
    models: str | None = MODELS,
    output: Path | None = OUTPUT,
    json_out: bool = options.JSON,
) -> None:
    """Check the config, the prompts, the models, the API keys (never shown) and the disk space."""
    from halluc_pilot.checks import validate

    config, _, prompt_list, chosen, _ = _inputs(config_file, prompts, num_prompts, models)
    rows = validate(config, prompt_list, chosen, output or Path(config.output_dir))
    ok = all(r["ok"] for r in rows)
    if json_out:
        console.print_json({"ok": ok, "checks": rows})
    else:
        console.out.print(console.table("pilot validate", ["check", "ok", "detail"],
                                        [(r["check"], "yes" if r["ok"] else console.styled(("NO", "red")), r["detail"]) for r in rows]))  # fmt: skip
    if not ok:
        raise typer.Exit(1)


for _command in ("pilot run", "pilot validate"):
    options.renamed(_command, {"--num-prompts": "--limit", "-n": "--limit", "-p": "--prompts"})
