"""`halluc control`: thin CLI over halluc_rauq.controller and halluc_rauq.control_eval."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from halluc_rauq.cli import ALPHA, MODEL, SEED, load_seeded
from ucli import console, options, plugins

HEADS = typer.Option(
    None, "--heads", help="heads.json from `halluc calibrate heads` (needed by the rauq trigger)."
)
THRESHOLD = typer.Option(
    None, "--threshold", help="theta.json from `halluc calibrate threshold` (repeat for several signals)."
)
STRICT = typer.Option(
    False, "--strict", help="Refuse (instead of warn) when theta was fitted with another alpha or heads."
)
BENCHMARK = typer.Option(
    ..., "--benchmark", "-b", help="Registered benchmark (see `halluc benchmarks list`)."
)
SPLIT = typer.Option("test", "--split", help="Benchmark split.")
LIMIT = options.limit("N samples, drawn with --seed (default: all).")
RESUME = options.RESUME
BATCH = typer.Option(
    8, "--batch-size", min=1, help="Answers decoded together (a triggered one finishes alone)."
)

# the controller's knobs, shared by run and eval
COOLDOWN = typer.Option(5, "--cooldown", min=0, help="Greedy tokens after a repair before another trigger.")
MAX_TRIGGERS = typer.Option(5, "--max-triggers", min=0, help="Triggers per answer at most.")
STABILITY = typer.Option(
    2, "--stability-window", min=0, help="A repair is kept only if the next W tokens do not trigger."
)
COT_LENGTH = typer.Option(20, "--cot-length", min=1, help="Thought tokens at most.")
COT_MIN = typer.Option(
    8, "--cot-min-tokens", min=0, help="Thought tokens before a thought may end (eos masked until then)."
)
ABSTAIN_TEXT = typer.Option(
    "I am not sure.", "--abstain-text", help="The answer given when the controller abstains."
)
COT_TEMPERATURE = typer.Option(0.7, "--cot-temperature", help="Thought sampling temperature (> 0).")
COT_TOP_P = typer.Option(0.95, "--cot-top-p", help="Thought nucleus sampling mass (0, 1].")
COT_HORIZON = typer.Option(4, "--cot-horizon", min=1, help="cot-policy rauq: answer tokens looked ahead.")
COT_PREFIX = typer.Option(" Wait, let me think. ", "--cot-prefix", help="Text that opens a thought.")
COT_SUFFIX = typer.Option(" So the answer is", "--cot-suffix", help="Text that closes a thought.")
RERANK_K = typer.Option(3, "--rerank-k", min=2, help="rerank: candidates at the trigger.")
LOOKAHEAD = typer.Option(
    5, "--rerank-lookahead", min=1, help="rerank: greedy tokens rolled out per candidate."
)
MAX_NEW = typer.Option(64, "--max-new-tokens", min=1, help="Tokens the model may generate, repairs included.")
THETA = typer.Option(None, "--theta", help="Fixed theta (overrides theta.json's value).")
TRIGGER = typer.Option(
    None,
    "--signal",
    help="Trigger on a token signal: rauq, entropy, margin, min_token_probability or a plugin's "
    "(`halluc uq list`; default: the theta.json's signal, else rauq).",
)
REPAIR = typer.Option(
    "cot",
    "--repair",
    help=f"A repair plugin: {', '.join(plugins.names('repairs'))} (`+abstain`: abstain when the repair is "
    "unstable; none: detect and log only).",
)
ROLLBACK = typer.Option(2, "--rollback", min=0, help="Tokens to roll back (--rollback-mode fixed).")
ROLLBACK_MODE = typer.Option(
    "fixed",
    "--rollback-mode",
    help="fixed (--rollback tokens), sentence (back to the start of the sentence that fired) "
    "or anchor (last sentence/clause/line end).",
)
COT_POLICY = typer.Option(
    "rauq", "--cot-policy", help="rauq (stop when the look-ahead is calm), max20 or unlimited."
)


def _artifacts(
    heads_file: Path | None, threshold_files: list[Path] | None, alpha: float | None, strict: bool
):
    """The calibration files a controller command was given (read and checked before any model loads)."""
    from halluc_rauq.api import ControlArtifacts

    return ControlArtifacts(
        heads=heads_file, thresholds=tuple(threshold_files or ()), alpha=alpha, strict=strict
    )


# what every controller command reads from calibration, and the knobs of its repairs and budget
ARTIFACTS = options.Bundle(
    _artifacts,
    heads_file=(Path | None, HEADS),
    threshold_files=(list[Path] | None, THRESHOLD),
    alpha=(float | None, ALPHA),
    strict=(bool, STRICT),
)
KNOBS = options.Bundle(
    dict,
    cooldown=(int, COOLDOWN),
    max_triggers=(int, MAX_TRIGGERS),
    stability_window=(int, STABILITY),
    cot_length=(int, COT_LENGTH),
    cot_min_tokens=(int, COT_MIN),
    cot_temperature=(float, COT_TEMPERATURE),
    cot_top_p=(float, COT_TOP_P),
    cot_horizon=(int, COT_HORIZON),
    cot_prefix=(str, COT_PREFIX),
    cot_suffix=(str, COT_SUFFIX),
    rerank_k=(int, RERANK_K),
    rerank_lookahead=(int, LOOKAHEAD),
    abstain_text=(str, ABSTAIN_TEXT),
    max_new_tokens=(int, MAX_NEW),
)

control = typer.Typer(
    help="Decode with the RAUQ-triggered rollback + micro chain-of-thought controller.", no_args_is_help=True
)


def _single(*, artifacts: Any, signal: str | None, theta: float | None, knobs: dict[str, Any], model: str,
            seed: int, load: Any, runner: Any = None):  # fmt: skip
    """`run` and `eval`: one controller configuration with its threshold (resolved once), on a loaded model."""
    from halluc_rauq.control_config import ControllerConfig

    thresholds = artifacts.read()
    threshold = _threshold(thresholds, signal, theta)
    config = ControllerConfig.build(**knobs, trigger=threshold.signal, seed=seed)
    _needs_heads(threshold, artifacts.heads)
    lm, scorer, alpha = _model(model, seed, load, artifacts, thresholds, runner)
    return lm, config, scorer, threshold, alpha


def _model(model: str, seed: int, load: Any, artifacts: Any, thresholds: Any, runner: Any = None):
    """The model (a shell of it when Ray replicas hold the real one), its RAUQ scorer and alpha."""
    from halluc_rauq.api import setup_controller

    lm = load_seeded(model, load, seed, runner)
    scorer, alpha = setup_controller(lm, artifacts=artifacts, thresholds=thresholds)
    return lm, scorer, alpha


def _needs_heads(threshold: Any, heads_file: Path | None) -> None:
    from ucli.errors import BadInput

    if threshold.needs_heads and heads_file is None:
        raise BadInput(
            f"the {threshold.signal} trigger needs --heads (heads.json from `halluc calibrate heads`)"
        )


def _threshold(thresholds, signal: str | None, theta: float | None):
    """The single threshold of `run` and `eval`: --theta, else the learned one for the signal."""
    signal = signal or (next(iter(thresholds.learned)) if len(thresholds.learned) == 1 else "rauq")
    if theta is not None:
        return thresholds.resolve(signal, "fixed", theta)
    return thresholds.resolve(signal, "learned", None)


def _prompt_text(prompt: str) -> str:
    from ucli.errors import BadInput

    if prompt.startswith("@"):
        path = Path(prompt[1:])
        if not path.is_file():
            raise BadInput(f"{path}: prompt file not found")
        prompt = path.read_text(encoding="utf-8")
    if not prompt.strip():
        raise BadInput("--prompt is empty")
    return prompt


def _render(out, threshold) -> Any:
    """The completion with fired tokens in red, thoughts dimmed and a flag at every trigger."""
    marks = {e.position for e in out.trigger_events if e.kept}
    parts: list[str | tuple[str, str]] = []
    for i, t in enumerate(out.tokens):
        if i in marks:
            parts.append(("⚑", "bold yellow"))
        if t.kind in ("cot", "forced"):
            parts.append((t.text, "dim italic"))
        elif threshold.fires(t.signal):
            parts.append((t.text, "bold red"))
        else:
            parts.append(t.text)
    return console.styled(*parts)


@control.command()
@options.bundled
def run(
    prompt: str = typer.Option(..., "--prompt", "-p", help="The question, or @FILE to read it from a file."),
    model: str = MODEL,
    artifacts: Any = ARTIFACTS,
    theta: float | None = THETA,
    trigger: str | None = TRIGGER,
    repair: str = REPAIR,
    rollback: int = ROLLBACK,
    rollback_mode: str = ROLLBACK_MODE,
    cot_policy: str = COT_POLICY,
    knobs: dict[str, Any] = KNOBS,
    raw: bool = typer.Option(False, "--raw", help="Send the prompt as is (no chat template)."),
    load: Any = options.LOAD,
    seed: int = SEED,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write everything (tokens, events, trace) to JSON."
    ),
    force: bool = options.FORCE,
    json_out: bool = options.JSON,
) -> None:
    """Answer one prompt with the controller; show where it fired, how it repaired, what is judged."""
    from halluc_rauq.controller import RAUQController
    from ucli.artifacts import check_output_file, write_artifact

    text = _prompt_text(prompt)
    check_output_file(output, force=force)
    lm, config, scorer, threshold, alpha = _single(
        artifacts=artifacts, signal=trigger, theta=theta, model=model, seed=seed, load=load,
        knobs={**knobs, "repair": repair, "rollback": rollback, "rollback_mode": rollback_mode, "cot_policy": cot_policy},
    )  # fmt: skip
    out = RAUQController(lm, config, scorer, threshold).generate(text if raw else lm.chat_prompt(text))
    doc = {"prompt": text, "theta": threshold.theta, "direction": threshold.direction, "alpha": alpha,
           "threshold_source": threshold.source, **out.to_json()}  # fmt: skip
    if output is not None:
        write_artifact(
            output, "halluc.control.run", 1, doc, model=lm.fingerprint, inputs=artifacts.files, seed=seed,
            config={"model": model, **config.model_dump(), "alpha": alpha, "theta": threshold.theta},
        )  # fmt: skip
    if json_out:
        console.print_json(doc)
        return
    _show_run(out, threshold)
    if output is not None:
        console.info(f"wrote {output}")


def _show_run(out: Any, threshold: Any) -> None:
    console.out.print(_render(out, threshold))
    judged = "abstained: " + out.answer if out.abstained else out.answer
    console.out.print(console.styled("\n", ("judged answer:", "bold"), f" {judged}"))
    s = out.stats
    console.out.print(
        f"\n{s['triggers']} trigger(s) on {threshold.signal} (fire when {threshold.direction} {threshold.theta:.4g}); "
        f"{out.generated_tokens} tokens generated, {out.extra_tokens} extra; {out.latency_s:.2f} s"
    )
    rows = [
        (i, repr(t.text), t.kind, "-" if math.isnan(t.rauq) else f"{t.rauq:.3f}",
         "-" if math.isnan(t.signal) else f"{t.signal:.3f}")
        for i, t in list(enumerate(out.tokens))[-12:]
    ]  # fmt: skip
    console.out.print(
        console.table("RAUQ trace (last tokens)", ["pos", "token", "kind", "rauq", "signal"], rows)
    )


def _benchmark(name: str, given: dict[str, Any]):
    """The --benchmark through the registry with its options; also the options as provenance records them."""
    from halluc_benchmarks import get_benchmark, recorded_options

    bench = get_benchmark(name, **given)
    return bench, recorded_options(bench)


def _data_file(given: dict[str, Any]) -> list[Path]:
    return [given["data_file"]] if given.get("data_file") else []


@control.command("eval")
@options.bundled
def eval_(
    benchmark: str = BENCHMARK,
    split: str = SPLIT,
    limit: int | None = LIMIT,
    output: Path = typer.Option(
        ..., "--output", "-o", help="Run folder (journal while running, results after)."
    ),
    baseline: bool = typer.Option(False, "--baseline", help="Also decode plain greedy on the same samples."),
    plot: Path | None = typer.Option(
        None,
        "--plot",
        help="Risk-coverage figure (PNG or SVG; needs --baseline): abstain over theta, both arms.",
    ),
    resume: bool = RESUME,
    force: bool = options.FORCE,
    batch_size: int = BATCH,
    bench_options: dict[str, Any] = options.BENCHMARK,
    model: str = MODEL,
    artifacts: Any = ARTIFACTS,
    theta: float | None = THETA,
    trigger: str | None = TRIGGER,
    repair: str = REPAIR,
    rollback: int = ROLLBACK,
    rollback_mode: str = ROLLBACK_MODE,
    cot_policy: str = COT_POLICY,
    knobs: dict[str, Any] = KNOBS,
    load: Any = options.LOAD,
    seed: int = SEED,
    runner: Any = options.SCALE_OUT,
    json_out: bool = options.JSON,
) -> None:
    """Run the controller over a benchmark split: per-sample JSONL, summary, optional plain-greedy arm."""
    from halluc_rauq.control_eval import run_control_eval
    from ucli.artifacts import check_output_file
    from ucli.errors import BadInput
    from ucli.executor import model_replicas
    from ucli.journal import preflight

    if plot is not None and not baseline:
        raise BadInput("--plot draws the controller against plain greedy: add --baseline")
    preflight(output, resume, folder=True)  # before the model loads (run_control_eval checks again)
    check_output_file(plot, force=force, option="--plot")
    bench, benchmark_options = _benchmark(benchmark, bench_options)
    samples = bench.load(split, limit=limit, seed=seed)
    lm, config, scorer, threshold, alpha = _single(
        artifacts=artifacts, signal=trigger, theta=theta, model=model, seed=seed, load=load, runner=runner,
        knobs={**knobs, "repair": repair, "rollback": rollback, "rollback_mode": rollback_mode, "cot_policy": cot_policy},
    )  # fmt: skip
    run_config = {"model": model, "benchmark": benchmark, "benchmark_options": benchmark_options, "split": split,
                  "limit": limit, "alpha": alpha, "theta": threshold.theta, "direction": threshold.direction,
                  **config.model_dump()}  # fmt: skip
    with model_replicas(runner, lm, model, load) as replicas:
        result = run_control_eval(
            lm, bench, samples, config=config, scorer=scorer, threshold=threshold, output=output, baseline=baseline,
            resume=resume, force=force, run_config=run_config, inputs=[*artifacts.files, *_data_file(bench_options)],
            batch_size=batch_size, replicas=replicas,
        )  # fmt: skip
    if plot is not None:
        _plot_eval(result, plot, f"{lm.fingerprint.name} on {bench.name}/{split} ({len(samples)} samples)")
    if json_out:
        console.print_json(result)
        return
    _summary_table(result["summary"], f"control eval: {bench.name}/{split}, {len(samples)} samples")
    if baseline:
        _comparison_lines(result["comparison"])
    console.out.print(f"wrote {output}" + (f" and {plot}" if plot else ""))
    if baseline:
        console.info(console.next_step("stats", "mcnemar", output / "baseline.jsonl", output / "controller.jsonl",
                                       "--field", "correct"))  # fmt: skip


def _summary_table(summary: dict[str, dict[str, Any]], title: str) -> None:
    """One row per arm or configuration, in a width a terminal holds: knobs that every ablation
    row shares move to the title, the rest wrap between knobs."""
    columns = {"accuracy": "acc", "coverage": "cover", "selective_accuracy": "acc ans",
               "wrong": "wrong", "repair_well_formed": "formed", "trigger_rate": "fired",
               "avg_generated_tokens": "tokens", "avg_extra_tokens": "extra", "avg_latency_s": "sec"}  # fmt: skip
    knobs = {arm: arm.split(",") for arm in summary}
    shared = [k for k in next(iter(knobs.values()), []) if "=" in k and all(k in v for v in knobs.values())]
    if len(summary) > 1 and shared:
        title += " (every row: " + ", ".join(shared) + ")"
    rows = [
        (" ".join(k for k in knobs[arm] if k not in shared) or arm,
         *("-" if s.get(c) is None else f"{s[c]:.3g}" for c in columns))
        for arm, s in summary.items()
    ]  # fmt: skip
    console.out.print(console.table(title, ["", *columns.values()], rows, caption=SUMMARY_LEGEND))


SUMMARY_LEGEND = (
    "acc: right / all questions; cover: share answered; acc ans: right / answered; wrong: wrong "
    "answers; formed: repairs that read as answers; fired: share of questions with a kept trigger; "
    "tokens, extra, sec: per answer"
)


def _comparison_lines(comparison: dict[str, Any]) -> None:
    """The paired comparison with plain greedy in two sentences."""
    c, w = comparison, comparison["mcnemar"]
    console.out.print(
        f"against plain greedy: {c['fixed']} fixed, {c['broken']} broken, {c['hallucinations_avoided']} "
        f"wrong answers abstained, {c['correct_lost']} right answers abstained; McNemar on wrong answers "
        f"({w['not_wrong']['c']} fewer, {w['not_wrong']['b']} new) p = {w['not_wrong']['p_value']:.3g}, "
        f"on right answers p = {w['correct']['p_value']:.3g}"
    )


def _plot_eval(result: dict[str, Any], path: Path, title: str) -> None:
    from halluc_rauq.outcomes import plot_risk_coverage

    points = {arm: (s["coverage"], s["selective_accuracy"]) for arm, s in result["summary"].items()}
    plot_risk_coverage(result["risk_coverage"], points, path, title)


def _comma(option: str, raw: str, kind: type) -> list[Any]:
    from ucli.errors import BadInput

    values = []
    for part in raw.split(","):
        try:
            values.append(kind(part.strip()))
        except ValueError:
            what = {int: "an integer", float: "a number"}.get(kind, kind.__name__)
            raise BadInput(f"{option}: '{part}' is not {what}") from None
    return list(dict.fromkeys(values))


# the knobs `ablate` varies: one comma list each
GRID = options.Bundle(
    lambda **params: _grid_values(**params),
    trigger=(str, typer.Option("rauq", "--signals", help="Comma list of token signals (`halluc uq list`).")),
    threshold_type=(
        str,
        typer.Option(
            "learned", "--threshold-types", help="Comma list of learned (theta.json), fixed (--thetas)."
        ),
    ),
    theta=(
        str | None,
        typer.Option(None, "--thetas", help="Comma list of fixed thetas (threshold type fixed)."),
    ),
    repair=(
        str,
        typer.Option(
            "cot", "--repairs", help=f"Comma list of repair plugins ({', '.join(plugins.names('repairs'))})."
        ),
    ),
    cot_policy=(str, typer.Option("rauq", "--cot-policies", help="Comma list of rauq, max20, unlimited.")),
    rollback=(str, typer.Option("2", "--rollbacks", help="Comma list of rollback depths.")),
    rollback_mode=(
        str,
        typer.Option("fixed", "--rollback-modes", help="Comma list of fixed, sentence, anchor."),
    ),
    delimiters=(
        str | None,
        typer.Option(
            None,
            "--delimiters",
            help="Comma list of named thought delimiters (wait, newline, aside, restart); "
            "default: --cot-prefix and --cot-suffix.",
        ),
    ),
)


@control.command()
@options.bundled
def ablate(
    benchmark: str = BENCHMARK,
    split: str = SPLIT,
    limit: int | None = LIMIT,
    output: Path = typer.Option(
        ..., "--output", "-o", help="ablations.json to write (journal beside it while running)."
    ),
    values: dict[str, list[Any]] = GRID,
    plot: Path | None = typer.Option(
        None, "--plot", help="Accuracy among answered against coverage, one point per configuration (PNG)."
    ),
    resume: bool = RESUME,
    force: bool = options.FORCE,
    batch_size: int = BATCH,
    bench_options: dict[str, Any] = options.BENCHMARK,
    model: str = MODEL,
    artifacts: Any = ARTIFACTS,
    knobs: dict[str, Any] = KNOBS,
    load: Any = options.LOAD,
    seed: int = SEED,
    runner: Any = options.SCALE_OUT,
    json_out: bool = options.JSON,
) -> None:
    """Run the grid of every comma-listed knob on the same samples; one summary per configuration."""
    from halluc_rauq.control_config import ControllerConfig
    from halluc_rauq.control_eval import ablate as run_grid_to_file
    from halluc_rauq.control_eval import grid
    from ucli.artifacts import check_output_file
    from ucli.executor import model_replicas
    from ucli.journal import preflight

    journal_path = preflight(output, resume, folder=False, force=force)
    check_output_file(plot, force=force, option="--plot")
    if journal_path is None:
        console.result(
            {"output": str(output), "complete": True}, json_out, lambda: f"{output}: already complete"
        )
        return
    bench, benchmark_options = _benchmark(benchmark, bench_options)
    samples = bench.load(split, limit=limit, seed=seed)
    base = ControllerConfig.build(**knobs, seed=seed)
    thresholds = artifacts.read()
    cells = grid(base, values, thresholds)  # every cell's knobs and threshold, checked before the load
    for cell in cells:
        _needs_heads(cell[2], artifacts.heads)
    lm, scorer, alpha = _model(model, seed, load, artifacts, thresholds, runner)
    run_config = {"model": model, "benchmark": benchmark, "benchmark_options": benchmark_options, "split": split,
                  "limit": limit, "alpha": alpha, "grid": values, "base": base.model_dump()}  # fmt: skip
    with model_replicas(runner, lm, model, load) as replicas:
        payload = run_grid_to_file(
            lm, bench, samples, cells=cells, scorer=scorer, output=output, journal_path=journal_path, split=split,
            resume=resume, force=force, run_config=run_config, inputs=[*artifacts.files, *_data_file(bench_options)],
            seed=seed, batch_size=batch_size, plot=plot, replicas=replicas,
        )  # fmt: skip
    if json_out:
        console.print_json({"output": str(output), **payload})
        return
    _summary_table(
        {r["key"]: r["summary"] for r in payload["configurations"]},
        f"ablation: {bench.name}/{split}, {len(samples)} samples",
    )
    console.out.print(f"wrote {output}" + (f" and {plot}" if plot else ""))


def _grid_values(**params: Any) -> dict[str, list[Any]]:
    """The comma lists of `ablate`, per controller knob."""
    from halluc_rauq.control_eval import GRID_KNOBS
    from ucli.errors import BadInput

    kinds = {"rollback": int, "theta": float}
    values = {knob: _comma(option, params[knob], kinds.get(knob, str))
              for knob, option in GRID_KNOBS.items() if params[knob]}  # fmt: skip
    values.setdefault("theta", [None])
    bad = [t for t in values["threshold_type"] if t not in ("learned", "fixed")]
    if bad:
        raise BadInput(f"--threshold-types: {bad[0]!r} is not learned or fixed")
    return values


options.renamed("control run", {"--trigger": "--signal"})
options.renamed("control eval", {"--trigger": "--signal", **options.BENCH_RENAMED})
options.renamed("control ablate", options.BENCH_RENAMED)
options.renamed("control ablate", {"--trigger": "--signals", "--threshold-type": "--threshold-types", "--theta": "--thetas",
                                   "--repair": "--repairs", "--cot-policy": "--cot-policies", "--rollback": "--rollbacks",
                                   "--rollback-mode": "--rollback-modes"})  # fmt: skip
