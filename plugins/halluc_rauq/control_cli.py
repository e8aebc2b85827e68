"""`halluc control`: thin CLI over halluc_rauq.controller and halluc_rauq.control_eval."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from halluc_rauq.cli import ALPHA, DEVICE, LOAD_4BIT, LOAD_8BIT, MODEL, SEED, _load
from ucli import console, options

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
DATA_FILE, METRIC, STEPS, SIZE = (
    options.BENCH_DATA_FILE,
    options.BENCH_METRIC,
    options.BENCH_STEPS,
    options.BENCH_SIZE,
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
    None, "--signal", help="Trigger on rauq, entropy or margin (default: the theta.json's signal, else rauq)."
)
REPAIR = typer.Option(
    "cot",
    "--repair",
    help="cot, rerank, abstain, cot+abstain, rerank+abstain (abstain when the repair is unstable), "
    "or none (detect and log only).",
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

control = typer.Typer(
    help="Decode with the RAUQ-triggered rollback + micro chain-of-thought controller.", no_args_is_help=True
)


def _config_from(params: dict[str, Any], exclude: tuple[str, ...] = (), **override: Any):
    """The controller's knobs among a command's parameters (same names), validated."""
    from halluc_rauq.controller import ControllerConfig

    knobs = {k: v for k, v in params.items() if k in ControllerConfig.model_fields and k not in exclude}
    return ControllerConfig.build(**{**knobs, **override})


def _read_thresholds(threshold_files: list[Path] | None, heads_file: Path | None, alpha: float | None):
    """The learned thetas per signal, read before any model loads: a missing file, a duplicate
    signal or a bad alpha is refused in a second, not after the load (their fit to the model is
    checked by `_setup` once the model's fingerprint is known)."""
    from halluc_rauq.calibration import check_heads_file
    from halluc_rauq.control_eval import Thresholds
    from halluc_rauq.scorer import check_alpha
    from halluc_rauq.threshold import load_theta
    from ucli.errors import BadInput

    if alpha is not None:
        check_alpha(alpha)
    if heads_file is not None:
        check_heads_file(heads_file)
    learned: dict[str, dict[str, Any]] = {}
    for path in threshold_files or []:
        doc = load_theta(path, None)
        if doc["signal"] in learned:
            raise BadInput(f"{path}: a second theta for the '{doc['signal']}' signal")
        learned[doc["signal"]] = {**doc, "_path": str(path)}
    return Thresholds(learned)


def _setup(
    model: str, device: str, load_in_4bit: bool, load_in_8bit: bool, seed: int,
    heads_file: Path | None, thresholds: Any, alpha: float | None, strict: bool,
):  # fmt: skip
    """Model and scorer, with every cross-check of the artifacts against the model and each other."""
    from halluc_rauq.calibration import load_heads
    from halluc_rauq.controller import RAUQScorer
    from halluc_rauq.scorer import default_alpha
    from halluc_rauq.threshold import load_theta
    from ucli.artifacts import sha256_file
    from ucli.errors import BadInput

    lm = _load(model, device, load_in_4bit, load_in_8bit, seed)
    for doc in thresholds.learned.values():
        load_theta(doc["_path"], lm.fingerprint)

    def disagree(message: str) -> None:
        if strict:
            raise BadInput(message + " (--strict)")
        console.warn(message)

    rauq_doc = thresholds.learned.get("rauq")
    if alpha is None:
        alpha = (
            float(rauq_doc["alpha"])
            if rauq_doc
            else default_alpha(bool(getattr(lm.tokenizer, "chat_template", None)))
        )
    scorer = None
    if heads_file is not None:
        heads, layers = load_heads(heads_file, lm.fingerprint)
        scorer = RAUQScorer(layers, heads, alpha)
        if rauq_doc and rauq_doc.get("heads_sha256") not in (None, sha256_file(heads_file)):
            disagree(f"{rauq_doc['_path']}: theta was fitted with other heads than {heads_file}")
    if rauq_doc and not math.isclose(float(rauq_doc["alpha"]), alpha):
        disagree(
            f"{rauq_doc['_path']}: theta was fitted with alpha {rauq_doc['alpha']}, running with {alpha}"
        )
    return lm, scorer, alpha


def _needs_heads(trigger: str, heads_file: Path | None) -> None:
    from ucli.errors import BadInput

    if trigger == "rauq" and heads_file is None:
        raise BadInput("the rauq trigger needs --heads (heads.json from `halluc calibrate heads`)")


def _threshold(thresholds, trigger: str | None, theta: float | None):
    """The single threshold of `run` and `eval`: --theta, else the learned one for the trigger."""
    trigger = trigger or (next(iter(thresholds.learned)) if len(thresholds.learned) == 1 else "rauq")
    if theta is not None:
        return thresholds.resolve(trigger, "fixed", theta)
    return thresholds.resolve(trigger, "learned", None)


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
def run(
    prompt: str = typer.Option(..., "--prompt", "-p", help="The question, or @FILE to read it from a file."),
    model: str = MODEL,
    heads_file: Path | None = HEADS,
    threshold_files: list[Path] | None = THRESHOLD,
    theta: float | None = THETA,
    alpha: float | None = ALPHA,
    trigger: str | None = TRIGGER,
    repair: str = REPAIR,
    rollback: int = ROLLBACK,
    rollback_mode: str = ROLLBACK_MODE,
    cooldown: int = COOLDOWN,
    max_triggers: int = MAX_TRIGGERS,
    stability_window: int = STABILITY,
    cot_length: int = COT_LENGTH,
    cot_min_tokens: int = COT_MIN,
    cot_temperature: float = COT_TEMPERATURE,
    cot_top_p: float = COT_TOP_P,
    cot_horizon: int = COT_HORIZON,
    cot_policy: str = COT_POLICY,
    cot_prefix: str = COT_PREFIX,
    cot_suffix: str = COT_SUFFIX,
    rerank_k: int = RERANK_K,
    rerank_lookahead: int = LOOKAHEAD,
    abstain_text: str = ABSTAIN_TEXT,
    max_new_tokens: int = MAX_NEW,
    raw: bool = typer.Option(False, "--raw", help="Send the prompt as is (no chat template)."),
    strict: bool = STRICT,
    device: str = DEVICE,
    load_in_4bit: bool = LOAD_4BIT,
    load_in_8bit: bool = LOAD_8BIT,
    seed: int = SEED,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write everything (tokens, events, trace) to JSON."
    ),
    json_out: bool = options.JSON,
) -> None:
    """Answer one prompt with the controller; show where it fired, how it repaired, what is judged."""
    from halluc_rauq.controller import RAUQController
    from ucli.artifacts import require_file_path, write_artifact

    text = _prompt_text(prompt)
    if output is not None:
        require_file_path(output)
    thresholds = _read_thresholds(threshold_files, heads_file, alpha)
    threshold = _threshold(thresholds, trigger, theta)
    config = _config_from(locals(), trigger=threshold.signal)
    _needs_heads(config.trigger, heads_file)
    lm, scorer, alpha = _setup(
        model, device, load_in_4bit, load_in_8bit, seed, heads_file, thresholds, alpha, strict
    )
    out = RAUQController(lm, config, scorer, threshold).generate(text if raw else lm.chat_prompt(text))
    doc = {"prompt": text, "theta": threshold.theta, "direction": threshold.direction, "alpha": alpha,
           "threshold_source": threshold.source, **out.to_json()}  # fmt: skip
    if output is not None:
        write_artifact(
            output, "halluc.control.run", 1, doc, model=lm.fingerprint,
            inputs=[p for p in (heads_file, *(threshold_files or [])) if p], seed=seed,
            config={"model": model, **config.model_dump(), "alpha": alpha, "theta": threshold.theta},
        )  # fmt: skip
    if json_out:
        console.print_json(doc)
        return
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
    if output is not None:
        console.info(f"wrote {output}")


def _benchmark(name: str, data_file: Path | None, metric: str | None, steps: int | None, size: int | None):
    from halluc_benchmarks import get_benchmark

    return get_benchmark(name, data_file=data_file, metric=metric, steps=steps, size=size)


@control.command("eval")
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
    batch_size: int = BATCH,
    data_file: Path | None = DATA_FILE,
    metric: str | None = METRIC,
    steps: int | None = STEPS,
    size: int | None = SIZE,
    model: str = MODEL,
    heads_file: Path | None = HEADS,
    threshold_files: list[Path] | None = THRESHOLD,
    theta: float | None = THETA,
    alpha: float | None = ALPHA,
    trigger: str | None = TRIGGER,
    repair: str = REPAIR,
    rollback: int = ROLLBACK,
    rollback_mode: str = ROLLBACK_MODE,
    cooldown: int = COOLDOWN,
    max_triggers: int = MAX_TRIGGERS,
    stability_window: int = STABILITY,
    cot_length: int = COT_LENGTH,
    cot_min_tokens: int = COT_MIN,
    cot_temperature: float = COT_TEMPERATURE,
    cot_top_p: float = COT_TOP_P,
    cot_horizon: int = COT_HORIZON,
    cot_policy: str = COT_POLICY,
    cot_prefix: str = COT_PREFIX,
    cot_suffix: str = COT_SUFFIX,
    rerank_k: int = RERANK_K,
    rerank_lookahead: int = LOOKAHEAD,
    abstain_text: str = ABSTAIN_TEXT,
    max_new_tokens: int = MAX_NEW,
    strict: bool = STRICT,
    device: str = DEVICE,
    load_in_4bit: bool = LOAD_4BIT,
    load_in_8bit: bool = LOAD_8BIT,
    seed: int = SEED,
    json_out: bool = options.JSON,
) -> None:
    """Run the controller over a benchmark split: per-sample JSONL, summary, optional plain-greedy arm."""
    from halluc_rauq.control_eval import run_control_eval
    from ucli.errors import BadInput
    from ucli.journal import preflight

    if plot is not None and not baseline:
        raise BadInput("--plot draws the controller against plain greedy: add --baseline")
    preflight(output, resume, folder=True)  # before the model loads (run_control_eval checks again)
    bench = _benchmark(benchmark, data_file, metric, steps, size)
    samples = bench.load(split, limit=limit, seed=seed)
    thresholds = _read_thresholds(threshold_files, heads_file, alpha)
    threshold = _threshold(thresholds, trigger, theta)
    config = _config_from(locals(), trigger=threshold.signal)
    _needs_heads(config.trigger, heads_file)
    lm, scorer, alpha = _setup(
        model, device, load_in_4bit, load_in_8bit, seed, heads_file, thresholds, alpha, strict
    )
    inputs = [p for p in (heads_file, *(threshold_files or []), data_file) if p]
    run_config = {"model": model, "benchmark": benchmark, "benchmark_options": {"metric": metric, "steps": steps, "size": size},
                  "split": split, "limit": limit, "alpha": alpha,
                  "theta": threshold.theta, "direction": threshold.direction, **config.model_dump()}  # fmt: skip
    result = run_control_eval(
        lm,
        bench,
        samples,
        config,
        scorer,
        threshold,
        output,
        baseline,
        resume,
        run_config,
        inputs,
        batch_size,
    )
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
        console.info(
            f"next: halluc stats mcnemar {output / 'baseline.jsonl'} {output / 'controller.jsonl'} "
            "--field correct"
        )


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


def _comma(name: str, raw: str, kind: type) -> list[Any]:
    from ucli.errors import BadInput

    values = []
    for part in raw.split(","):
        try:
            values.append(kind(part.strip()))
        except ValueError:
            raise BadInput(f"--{name}: '{part}' is not a {kind.__name__}") from None
    return list(dict.fromkeys(values))


@control.command()
def ablate(
    benchmark: str = BENCHMARK,
    split: str = SPLIT,
    limit: int | None = LIMIT,
    output: Path = typer.Option(
        ..., "--output", "-o", help="ablations.json to write (journal beside it while running)."
    ),
    trigger: str = typer.Option("rauq", "--signals", help="Comma list of rauq, entropy, margin."),
    threshold_type: str = typer.Option(
        "learned", "--threshold-types", help="Comma list of learned (theta.json), fixed (--thetas)."
    ),
    theta: str | None = typer.Option(
        None, "--thetas", help="Comma list of fixed thetas (threshold type fixed)."
    ),
    repair: str = typer.Option(
        "cot", "--repairs", help="Comma list of cot, rerank, abstain, cot+abstain, rerank+abstain, none."
    ),
    cot_policy: str = typer.Option("rauq", "--cot-policies", help="Comma list of rauq, max20, unlimited."),
    rollback: str = typer.Option("2", "--rollbacks", help="Comma list of rollback depths."),
    rollback_mode: str = typer.Option(
        "fixed", "--rollback-modes", help="Comma list of fixed, sentence, anchor."
    ),
    delimiters: str | None = typer.Option(
        None,
        "--delimiters",
        help="Comma list of named thought delimiters (wait, newline, aside, restart); "
        "default: --cot-prefix and --cot-suffix.",
    ),
    plot: Path | None = typer.Option(
        None, "--plot", help="Accuracy among answered against coverage, one point per configuration (PNG)."
    ),
    resume: bool = RESUME,
    batch_size: int = BATCH,
    data_file: Path | None = DATA_FILE,
    metric: str | None = METRIC,
    steps: int | None = STEPS,
    size: int | None = SIZE,
    model: str = MODEL,
    heads_file: Path | None = HEADS,
    threshold_files: list[Path] | None = THRESHOLD,
    alpha: float | None = ALPHA,
    cooldown: int = COOLDOWN,
    max_triggers: int = MAX_TRIGGERS,
    stability_window: int = STABILITY,
    cot_length: int = COT_LENGTH,
    cot_min_tokens: int = COT_MIN,
    cot_temperature: float = COT_TEMPERATURE,
    cot_top_p: float = COT_TOP_P,
    cot_horizon: int = COT_HORIZON,
    cot_prefix: str = COT_PREFIX,
    cot_suffix: str = COT_SUFFIX,
    rerank_k: int = RERANK_K,
    rerank_lookahead: int = LOOKAHEAD,
    abstain_text: str = ABSTAIN_TEXT,
    max_new_tokens: int = MAX_NEW,
    strict: bool = STRICT,
    device: str = DEVICE,
    load_in_4bit: bool = LOAD_4BIT,
    load_in_8bit: bool = LOAD_8BIT,
    seed: int = SEED,
    json_out: bool = options.JSON,
) -> None:
    """Run the grid of every comma-listed knob on the same samples; one summary per configuration."""
    from halluc_rauq.control_eval import GRID_KNOBS, grid, run_ablation
    from ucli.artifacts import require_file_path
    from ucli.errors import BadInput
    from ucli.journal import preflight

    require_file_path(output)
    journal_path = preflight(output, resume, folder=False)
    if journal_path is None:
        console.result(
            {"output": str(output), "complete": True}, json_out, lambda: f"{output}: already complete"
        )
        return
    values = {
        "trigger": _comma("signals", trigger, str),
        "threshold_type": _comma("threshold-types", threshold_type, str),
        "repair": _comma("repairs", repair, str),
        "cot_policy": _comma("cot-policies", cot_policy, str),
        "rollback": _comma("rollbacks", rollback, int),
        "rollback_mode": _comma("rollback-modes", rollback_mode, str),
        "theta": _comma("thetas", theta, float) if theta else [None],
    }
    if delimiters:
        values["delimiters"] = _comma("delimiters", delimiters, str)
    bad = [t for t in values["threshold_type"] if t not in ("learned", "fixed")]
    if bad:
        raise BadInput(f"--threshold-types: {bad[0]!r} is not learned or fixed")
    bench = _benchmark(benchmark, data_file, metric, steps, size)
    samples = bench.load(split, limit=limit, seed=seed)
    base = _config_from(locals(), exclude=GRID_KNOBS)
    thresholds = _read_thresholds(threshold_files, heads_file, alpha)
    cells = grid(base, values, thresholds)  # every cell's knobs and threshold, checked before the load
    for cell in cells:
        _needs_heads(cell[1].trigger, heads_file)
    lm, scorer, alpha = _setup(
        model, device, load_in_4bit, load_in_8bit, seed, heads_file, thresholds, alpha, strict
    )
    run_config = {"model": model, "benchmark": benchmark, "benchmark_options": {"metric": metric, "steps": steps, "size": size},
                  "split": split, "limit": limit, "alpha": alpha,
                  "grid": values, "base": base.model_dump()}  # fmt: skip
    payload = run_ablation(
        lm, bench, samples, cells, scorer, output, journal_path, split=split, resume=resume,
        run_config=run_config, inputs=[p for p in (heads_file, *(threshold_files or []), data_file) if p],
        seed=seed, batch_size=batch_size, plot=plot,
    )  # fmt: skip
    results = payload["configurations"]
    if json_out:
        console.print_json({"output": str(output), **payload})
        return
    _summary_table(
        {r["key"]: r["summary"] for r in results}, f"ablation: {bench.name}/{split}, {len(samples)} samples"
    )
    console.out.print(f"wrote {output}" + (f" and {plot}" if plot else ""))


options.renamed("control run", {"--trigger": "--signal"})
options.renamed("control eval", {"--trigger": "--signal"})
options.renamed("control ablate", {"--trigger": "--signals", "--threshold-type": "--threshold-types", "--theta": "--thetas",
                                   "--repair": "--repairs", "--cot-policy": "--cot-policies", "--rollback": "--rollbacks",
                                   "--rollback-mode": "--rollback-modes"})  # fmt: skip
