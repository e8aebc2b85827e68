"""The whole story on one model: calibrate RAUQ on `train`, decode `test` with the controller and plain
greedy through the same loop, compare them with McNemar's test, and keep everything in a run folder.

The demo composes the documented Python APIs of halluc_rauq (calibration, controller, evaluation)
and halluc_stats (McNemar); benchmarks come through the plugin registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ucli import console, plugins
from ucli.artifacts import require_fresh_dir, run_id, sha256_file, staged_dir, write_artifact, write_jsonl
from ucli.models import DEFAULT_MODEL, load_model

SCHEMA = "halluc.demo.run"


@dataclass
class DemoResult:
    run_dir: Path
    summary: dict[str, Any]
    answers: list[dict[str, Any]] = field(default_factory=list)  # one row per test question, both arms


def run_demo(
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
) -> DemoResult:
    """Heads and theta from `calibration_split` or your `calibration` file (teacher-forced references),
    then `split` (or your `questions` file, judged by the `local` benchmark) decoded twice: controller
    and plain greedy, through the same decoding loop.

    Writes heads.json, theta.json, controller.jsonl, baseline.jsonl and run.json (summary and
    McNemar, with provenance) into a run folder that appears whole or not at all.
    """
    import torch

    from halluc_rauq.calibration import HEADS_SCHEMA, calibrate_heads
    from halluc_rauq.control_eval import BASELINE, CONTROLLER, evaluate, summarize
    from halluc_rauq.controller import ControllerConfig, RAUQScorer, Threshold
    from halluc_rauq.scorer import default_alpha
    from halluc_rauq.threshold import THETA_SCHEMA, collect, fit_threshold, theta_payload
    from halluc_stats import mcnemar
    from ucli.data import PromptPair, read_prompt_pairs
    from ucli.journal import Journal

    calib_bench = plugins.load("benchmarks", benchmark)()
    if questions:
        bench, split = plugins.load("benchmarks", "local")(data_file=questions), "test"
    else:
        bench = calib_bench
    samples = bench.load(split, limit=limit, seed=seed)
    if calibration:
        pairs = read_prompt_pairs(calibration)[:calibration_limit]
        calibration_source = str(calibration)
    else:
        calib = calib_bench.load(calibration_split, limit=calibration_limit, seed=seed)
        pairs = [
            PromptPair(id=s.id, prompt=calib_bench.chat_message(s), reference=s.reference) for s in calib
        ]
        calibration_source = f"{calib_bench.name}/{calibration_split}"
    final = require_fresh_dir(output or Path("runs") / run_id("demo"))
    torch.manual_seed(seed)
    lm = load_model(model, device=device, adapter=str(adapter) if adapter else None)
    alpha = default_alpha(bool(getattr(lm.tokenizer, "chat_template", None)))

    with console.progress("calibrating heads", total=len(pairs)) as advance:
        heads_cal = calibrate_heads(lm, pairs, "teacher-forced", None, max_new_tokens, batch_size, advance)
    heads = {layer: heads_cal.heads[layer] for layer in heads_cal.layers}
    with console.progress("fitting theta", total=len(pairs)) as advance:
        scores, labels, used = collect(
            lm, pairs, heads, heads_cal.layers, alpha, "rauq", "teacher-forced", 5000, None,
            max_new_tokens, batch_size, advance,
        )  # fmt: skip
    fit = fit_threshold(scores, labels)
    theta_doc = theta_payload(
        fit, "rauq", "teacher-forced", alpha, heads_cal.layers, heads, len(scores), used
    )
    scorer = RAUQScorer(heads_cal.layers, heads, alpha)
    threshold = Threshold(fit.theta, fit.direction, "rauq", source="theta.json")
    config = ControllerConfig(max_new_tokens=max_new_tokens, seed=seed)

    with staged_dir(final) as stage:
        with Journal(stage / "journal.jsonl") as journal:
            arms = evaluate(lm, bench, samples, config, scorer, threshold, journal, True, batch_size)
        (stage / "journal.jsonl").unlink()
        ctl, base = arms[CONTROLLER], arms[BASELINE]
        test = mcnemar([r["correct"] for r in base], [r["correct"] for r in ctl])
        summary = {
            "model": lm.fingerprint.name,
            "benchmark": bench.name,
            "split": split,
            "calibration": calibration_source,
            "n": len(samples),
            "theta": fit.theta,
            "theta_auroc": fit.auroc,
            "alpha": alpha,
            "layers": heads_cal.layers,
            BASELINE: summarize(base),
            CONTROLLER: summarize(ctl),
            "mcnemar": {
                "b": test.b,
                "c": test.c,
                "statistic": test.statistic,
                "p_value": test.p_value,
                "method": test.method,
                "diff": test.diff,
                "ci": [test.ci_low, test.ci_high],
            },
        }
        common = {"model": lm.fingerprint, "seed": seed}
        prov_config = {"model": model, "adapter": lm.fingerprint.adapter, "benchmark": bench.name, "split": split,
                       "questions": str(questions) if questions else None, "limit": limit,
                       "calibration": calibration_source, "calibration_limit": calibration_limit,
                       "device": lm.device, **config.model_dump(), "alpha": alpha}  # fmt: skip
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
            stage / "run.json", SCHEMA, 2, {"summary": summary, "files": files},
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
            "triggers": c["triggers"],
            "completion": c["completion"],
        }
        for b, c in zip(base, ctl, strict=True)
    ]
    return DemoResult(final, summary, answers)
