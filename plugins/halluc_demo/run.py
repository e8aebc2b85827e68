"""The whole story on one model: calibrate RAUQ on `train`, decode `test` with the controller and plain
greedy through the same loop, and report what a researcher needs to judge the method: how well
RAUQ detects wrong answers (against cheap baselines from the same decode), what the controller did
to accuracy, wrong answers and coverage (paired tests), and what its repairs read like.

The demo composes the documented Python APIs of halluc_rauq (calibration, controller, evaluation,
outcomes) and halluc_stats; benchmarks come through the plugin registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from halluc_benchmarks import get_benchmark
from ucli import console
from ucli.artifacts import require_fresh_dir, run_id, sha256_file, staged_dir, write_artifact, write_jsonl
from ucli.models import DEFAULT_MODEL, load_model

SCHEMA = "halluc.demo.run"
# chosen on facts/train (docs/control.md): theta leaves this share of the calibration answers
# untriggered, and the repair with the best accuracy among answered at >= 80% coverage
DEFAULT_COVERAGE = 0.85
DEFAULT_REPAIR = "abstain"


@dataclass
class DemoResult:
    run_dir: Path
    summary: dict[str, Any]
    answers: list[dict[str, Any]] = field(default_factory=list)  # one row per test question, both arms


def _calibration_pairs(bench: Any, split: str, limit: int | None, seed: int, calibration: Any) -> tuple:
    """Prompt/reference pairs to calibrate on, their judge and where they came from."""
    from ucli.data import PromptPair, read_prompt_pairs, select

    if calibration:
        judged = get_benchmark("local", data_file=calibration)
        by_id = {s.id: s for s in judged.load("test")}
        pairs = select(read_prompt_pairs(calibration), limit, seed)  # the one --limit rule
        return pairs, lambda p, answer: judged.score(by_id[p.id], answer).correct, str(calibration)
    samples = bench.load(split, limit=limit, seed=seed)
    by_id = {s.id: s for s in samples}
    pairs = [PromptPair(id=s.id, prompt=bench.chat_message(s), reference=s.reference) for s in samples]
    return pairs, lambda p, answer: bench.score(by_id[p.id], answer).correct, f"{bench.name}/{split}"


def run_demo(
    *,
    model: str = DEFAULT_MODEL,
    benchmark: str = "facts",
    split: str = "test",
    questions: str | Path | None = None,
    limit: int | None = None,
    max_new_tokens: int = 32,
    batch_size: int = 8,
    output: str | Path | None = None,
    device: str = "auto",
    seed: int = 0,
    adapter: str | Path | None = None,
    calibration_split: str = "train",
    calibration_limit: int | None = None,
    calibration: str | Path | None = None,
    coverage: float | None = DEFAULT_COVERAGE,
    repair: str = DEFAULT_REPAIR,
    benchmark_options: dict[str, Any] | None = None,
) -> DemoResult:
    """Heads (teacher-forced references) and theta (`answer` labels: the model's own greedy answers,
    their peak RAUQ token score against being wrong; theta leaves `coverage` of them untriggered, or
    Youden's J with None) from `calibration_split` or your `calibration` file; then `split` (or your
    `questions` file, judged by the `local` benchmark) decoded twice through the same loop:
    controller (default knobs with `repair`) and plain greedy.

    Writes heads.json, theta.json, controller.jsonl, baseline.jsonl and run.json (summary, paired
    comparison, detection table, risk-coverage curve, provenance) into a run folder that appears
    whole or not at all.
    """
    import torch

    from halluc_rauq import (
        BASELINE,
        CONTROLLER,
        HEADS_SCHEMA,
        THETA_SCHEMA,
        ControllerConfig,
        RAUQScorer,
        Threshold,
        calibrate_heads,
        collect,
        default_alpha,
        evaluate,
        fit_threshold,
        summarize,
        theta_payload,
        versus_greedy,
    )
    from ucli.artifacts import strict_json
    from ucli.journal import Journal

    config = ControllerConfig.build(max_new_tokens=max_new_tokens, seed=seed, repair=repair)
    if coverage is not None and not 0 < coverage <= 1:
        from ucli.errors import BadInput

        raise BadInput(f"--coverage must be in (0, 1], got {coverage}")
    given = {k: v for k, v in (benchmark_options or {}).items() if v is not None}
    calib_bench = get_benchmark(benchmark, **given)
    if questions:
        bench, split = get_benchmark("local", data_file=questions, metric=given.get("metric")), "test"
    else:
        bench = calib_bench
    samples = bench.load(split, limit=limit, seed=seed)
    pairs, judge, calibration_source = _calibration_pairs(
        calib_bench, calibration_split, calibration_limit, seed, calibration
    )
    final = require_fresh_dir(output or Path("runs") / run_id("demo"))
    torch.manual_seed(seed)
    lm = load_model(model, device=device, adapter=str(adapter) if adapter else None)
    alpha = default_alpha(bool(getattr(lm.tokenizer, "chat_template", None)))

    with console.progress("calibrating heads", total=len(pairs)) as advance:
        heads_cal = calibrate_heads(lm, pairs, "teacher-forced", None, max_new_tokens, batch_size, advance)
    heads = {layer: heads_cal.heads[layer] for layer in heads_cal.layers}
    with console.progress("fitting theta on greedy answers", total=len(pairs)) as advance:
        scores, labels, used = collect(
            lm, pairs, heads, heads_cal.layers, alpha, "rauq", "answer", len(pairs), judge,
            max_new_tokens, batch_size, advance,
        )  # fmt: skip
    fit = fit_threshold(scores, labels, coverage)
    theta_doc = theta_payload(fit, "rauq", "answer", alpha, heads_cal.layers, heads, len(scores), used)
    theta_doc["coverage"] = coverage
    scorer = RAUQScorer(heads_cal.layers, heads, alpha)
    threshold = Threshold(fit.theta, fit.direction, "rauq", source="theta.json")

    with staged_dir(final) as stage:
        with Journal(stage / "journal.jsonl") as journal:
            arms = evaluate(lm, bench, samples, config, scorer, threshold, journal, True, batch_size)
        (stage / "journal.jsonl").unlink()
        ctl, base = arms[CONTROLLER], arms[BASELINE]
        summary = strict_json(
            {
                "model": lm.fingerprint.name,
                "benchmark": bench.name,
                "split": split,
                "calibration": calibration_source,
                "n": len(samples),
                "theta": fit.theta,
                "theta_auroc": fit.auroc,
                "theta_coverage": coverage,
                "alpha": alpha,
                "layers": heads_cal.layers,
                "repair": config.repair,
                BASELINE: summarize(base),
                CONTROLLER: summarize(ctl),
                **versus_greedy(base, ctl, threshold),
            }
        )
        common = {"model": lm.fingerprint, "seed": seed}
        prov_config = {"model": model, "adapter": lm.fingerprint.adapter, "benchmark": bench.name, "split": split,
                       "benchmark_options": {k: str(v) for k, v in given.items()},
                       "questions": str(questions) if questions else None, "limit": limit,
                       "calibration": calibration_source, "calibration_limit": calibration_limit,
                       "coverage": coverage, "device": lm.device, **config.model_dump(), "alpha": alpha}  # fmt: skip
        write_artifact(
            stage / "heads.json", HEADS_SCHEMA, 1, heads_cal.payload(), config=prov_config, **common
        )
        theta_doc["heads_sha256"] = sha256_file(stage / "heads.json")
        write_artifact(stage / "theta.json", THETA_SCHEMA, 1, theta_doc, config=prov_config, **common)
        write_jsonl(stage / "controller.jsonl", ctl)
        write_jsonl(stage / "baseline.jsonl", base)
        files = {"heads": "heads.json", "theta": "theta.json", CONTROLLER: "controller.jsonl",
                 BASELINE: "baseline.jsonl"}  # fmt: skip
        write_artifact(
            stage / "run.json", SCHEMA, 3, {"summary": summary, "files": files},
            inputs=[p for p in (questions, calibration) if p], config=prov_config, **common,
        )  # fmt: skip
    by_id = {s.id: s for s in samples}
    answers = [
        {
            "id": c["sample_id"],
            "question": by_id[c["sample_id"]].prompt,
            "expected": c["reference"],
            "baseline": b["answer"],
            "baseline_correct": bool(b["correct"]),
            "controller": c["answer"],
            "controller_correct": bool(c["correct"]),
            "controller_outcome": c["outcome"],
            "triggers": c["triggers"],
            "completion": c["completion"],
        }
        for b, c in zip(base, ctl, strict=True)
    ]
    return DemoResult(final, summary, answers)
