"""The whole story on one model: calibrate RAUQ on `train`, decode `test` with the controller and plain
greedy through the same loop, and report what a researcher needs to judge the method: how well
RAUQ detects wrong answers (against cheap baselines from the same decode), what the controller did
to accuracy, wrong answers and coverage (paired tests), and what its repairs read like.

The demo composes the exported Python API of halluc_rauq (select_heads, calibrate_threshold,
evaluate, outcomes); benchmarks come through the plugin registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from halluc_benchmarks import get_benchmark, judged_pairs, verdict_options
from ucli import console
from ucli.artifacts import require_fresh_dir, run_id, sha256_file, staged_dir, write_artifact, write_table
from ucli.models import DEFAULT_MODEL, LoadOptions, load_model

SCHEMA = "halluc.demo.run"
# chosen on facts/train (docs/control.md): theta leaves this share of the calibration answers
# untriggered, and the repair with the best accuracy among answered at >= 80% coverage
DEFAULT_COVERAGE = 0.85
DEFAULT_REPAIR = "abstain"


@dataclass(frozen=True)
class DemoConfig:
    """What `halluc demo` runs; every field is the option of the same name."""

    model: str = DEFAULT_MODEL
    benchmark: str = "facts"
    benchmark_options: dict[str, Any] = field(default_factory=dict)  # --data-file, --metric, --steps, --size
    split: str = "test"  # the split the controller is evaluated on
    questions: Path | None = None  # your own prompt/reference file instead of `split`
    limit: int | None = None
    calibration_split: str = "train"
    calibration: Path | None = None  # your own prompt/reference file instead of `calibration_split`
    calibration_limit: int | None = None
    coverage: float | None = DEFAULT_COVERAGE  # theta leaves this share untriggered; None: Youden's J
    repair: str = DEFAULT_REPAIR
    max_new_tokens: int = 32
    batch_size: int = 16  # measured: 7:17 against 9:18 at 8 on 2 cores, the same answers and verdicts
    output: Path | None = None  # default: runs/<run id>
    load: LoadOptions = field(default_factory=LoadOptions)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.coverage is not None and not 0 < self.coverage <= 1:
            from ucli.errors import BadInput

            raise BadInput(f"--coverage must be in (0, 1], got {self.coverage}")


@dataclass
class DemoResult:
    run_dir: Path
    summary: dict[str, Any]
    answers: list[dict[str, Any]] = field(default_factory=list)  # one row per test question, both arms


def _calibration_pairs(bench: Any, config: DemoConfig) -> tuple:
    """Prompt/reference pairs to calibrate on, their judge and where they came from."""
    from ucli.data import read_prompt_pairs, select

    split, limit, seed = config.calibration_split, config.calibration_limit, config.seed
    if config.calibration:
        judged = get_benchmark("local", data_file=config.calibration)
        by_id = {s.id: s for s in judged.load("test")}
        pairs = select(read_prompt_pairs(config.calibration), limit, seed)  # the one --limit rule
        return pairs, lambda p, answer: judged.score(by_id[p.id], answer).correct, str(config.calibration)
    pairs, judge = judged_pairs(bench, bench.load(split, limit=limit, seed=seed))
    return pairs, judge, f"{bench.name}/{split}"


def _test_questions(config: DemoConfig) -> tuple[Any, Any, str, list[Any]]:
    """The calibration benchmark, and the benchmark, split and samples the controller is judged on."""
    given = {k: v for k, v in config.benchmark_options.items() if v is not None}
    calib_bench = get_benchmark(config.benchmark, **given)
    bench, split = calib_bench, config.split
    if config.questions:
        bench, split = (
            get_benchmark(
                "local", data_file=config.questions, metric=given.get("metric"), **verdict_options(given)
            ),
            "test",
        )
    return calib_bench, bench, split, bench.load(split, limit=config.limit, seed=config.seed)


def _calibrate(lm: Any, pairs: list[Any], judge: Any, config: DemoConfig) -> tuple[Any, Any]:
    """Heads on the references (teacher forced), then theta on the model's own greedy answers."""
    from halluc_rauq import HeadsConfig, ThresholdConfig, calibrate_threshold, select_heads

    knobs = {"max_new_tokens": config.max_new_tokens, "batch_size": config.batch_size}
    with console.progress("calibrating heads", total=len(pairs)) as advance:
        heads = select_heads(lm, pairs, config=HeadsConfig(**knobs), progress=advance)
    theta = ThresholdConfig(
        signal="rauq", labels="answer", coverage=config.coverage, max_samples=len(pairs), **knobs
    )
    with console.progress("fitting theta on greedy answers", total=len(pairs)) as advance:
        fitted = calibrate_threshold(
            lm, pairs, heads=heads.runtime_heads(), judge=judge, config=theta, progress=advance
        )
    return heads, fitted


def run_demo(*, config: DemoConfig) -> DemoResult:
    """Heads (teacher-forced references) and theta (`answer` labels: the model's own greedy answers,
    their peak RAUQ token score against being wrong; theta leaves `coverage` of them untriggered, or
    Youden's J with None) from the calibration split or file; then the test split (or your
    `questions` file, judged by the `local` benchmark) decoded twice through the same loop:
    controller (default knobs with `repair`) and plain greedy.

    Writes heads.json, theta.json, controller.jsonl, baseline.jsonl and run.json (summary, paired
    comparison, detection table, risk-coverage curve, provenance) into a run folder that appears
    whole or not at all.
    """
    import torch

    from halluc_rauq import BASELINE, CONTROLLER, ControllerConfig, RAUQScorer, Threshold, evaluate
    from ucli.journal import Journal

    controller = ControllerConfig.build(
        max_new_tokens=config.max_new_tokens, seed=config.seed, repair=config.repair
    )
    calib_bench, bench, split, samples = _test_questions(config)
    pairs, judge, calibration_source = _calibration_pairs(calib_bench, config)
    final = require_fresh_dir(config.output or Path("runs") / run_id("demo"))
    torch.manual_seed(config.seed)
    lm = load_model(config.model, config.load)
    heads, fitted = _calibrate(lm, pairs, judge, config)
    scorer = RAUQScorer(heads.layers, heads.runtime_heads(), fitted.alpha)
    threshold = Threshold(fitted.fit.theta, fitted.fit.direction, "rauq", source="theta.json")
    with staged_dir(final) as stage:
        with Journal(stage / "journal.jsonl") as journal:
            arms = evaluate(lm, bench, samples, config=controller, scorer=scorer, threshold=threshold,
                            journal=journal, baseline=True, batch_size=config.batch_size)  # fmt: skip
        (stage / "journal.jsonl").unlink()
        run = {"bench": bench, "split": split, "source": calibration_source, "n": len(samples)}
        summary = _summary(lm, run, heads, fitted, controller, threshold, arms, config)
        _write(stage, lm, run, heads, fitted, controller, arms, summary, config)
    return DemoResult(final, summary, _answers(samples, arms[BASELINE], arms[CONTROLLER]))


def _summary(lm, run, heads, fitted, controller, threshold, arms, config: DemoConfig) -> dict[str, Any]:
    from halluc_rauq import BASELINE, CONTROLLER, summarize, versus_greedy
    from ucli.artifacts import strict_json

    return strict_json(
        {
            "model": lm.fingerprint.name, "benchmark": run["bench"].name, "split": run["split"],
            "calibration": run["source"], "n": run["n"], "theta": fitted.fit.theta,
            "theta_auroc": fitted.fit.auroc, "theta_coverage": config.coverage, "alpha": fitted.alpha,
            "layers": heads.layers, "repair": controller.repair,
            BASELINE: summarize(arms[BASELINE]), CONTROLLER: summarize(arms[CONTROLLER]),
            **versus_greedy(arms[BASELINE], arms[CONTROLLER], threshold),
        }
    )  # fmt: skip


def _write(stage: Path, lm, run, heads, fitted, controller, arms, summary, config: DemoConfig) -> None:
    """heads.json, theta.json, both arms' JSONL and run.json, with one provenance config."""
    from halluc_rauq import BASELINE, CONTROLLER, RECORDS_SCHEMA, THETA_SCHEMA
    from halluc_signals import HEADS_SCHEMA

    common = {"model": lm.fingerprint, "seed": config.seed}
    prov_config = {"model": config.model, "adapter": lm.fingerprint.adapter, "benchmark": run["bench"].name,
                   "split": run["split"], "benchmark_options": {k: str(v) for k, v in config.benchmark_options.items() if v is not None},
                   "questions": str(config.questions) if config.questions else None, "limit": config.limit,
                   "calibration": run["source"], "calibration_limit": config.calibration_limit,
                   "coverage": config.coverage, "device": lm.device, **controller.model_dump(), "alpha": fitted.alpha}  # fmt: skip
    write_artifact(stage / "heads.json", HEADS_SCHEMA, 1, heads.payload(), config=prov_config, **common)
    theta_doc = {**fitted.payload, "heads_sha256": sha256_file(stage / "heads.json")}
    write_artifact(stage / "theta.json", THETA_SCHEMA, 1, theta_doc, config=prov_config, **common)
    for arm in (CONTROLLER, BASELINE):
        write_table(
            stage / f"{arm}.jsonl", arms[arm], RECORDS_SCHEMA, config={**prov_config, "arm": arm}, **common
        )
    files = {
        "heads": "heads.json",
        "theta": "theta.json",
        CONTROLLER: "controller.jsonl",
        BASELINE: "baseline.jsonl",
    }
    write_artifact(
        stage / "run.json", SCHEMA, 3, {"summary": summary, "files": files},
        inputs=[p for p in (config.questions, config.calibration) if p], config=prov_config, **common,
    )  # fmt: skip


def _answers(samples: list[Any], base: list[dict], ctl: list[dict]) -> list[dict[str, Any]]:
    """One row per test question: both arms' answers side by side."""
    by_id = {s.id: s for s in samples}
    return [
        {
            "id": c["sample_id"],
            "question": by_id[c["sample_id"]].prompt,
            "expected": c["reference"],
            "baseline": b["answer"],
            "baseline_correct": bool(b["correct"]),
            "controller": c["answer"],
            "controller_correct": bool(c["correct"]),
            "controller_outcome": c["outcome"],
            "repaired": bool(c["repaired"]),
            "triggers": c["triggers"],
            "completion": c["completion"],
        }
        for b, c in zip(base, ctl, strict=True)
    ]
