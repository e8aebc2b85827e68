"""Benchmark evaluation and ablation grids for the controller, journaled per sample for resume."""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from halluc_rauq.controller import (
    DELIMITERS,
    ControllerConfig,
    ControllerOutput,
    RAUQController,
    RAUQScorer,
    Threshold,
)
from halluc_rauq.outcomes import summarize
from ucli import console
from ucli.artifacts import strict_json
from ucli.errors import BadInput
from ucli.journal import Journal

CONTROL_SCHEMA = "halluc.control.eval"
RECORDS_SCHEMA = "halluc.control.records"  # controller.jsonl, baseline.jsonl (one record per sample)
ABLATION_SCHEMA = "halluc.control.ablation"
BASELINE = "baseline"
CONTROLLER = "controller"
# knobs an ablation grid may vary, and the option of `control ablate` that lists each one's values
GRID_KNOBS = {
    "trigger": "--signals",
    "threshold_type": "--threshold-types",
    "theta": "--thetas",
    "repair": "--repairs",
    "cot_policy": "--cot-policies",
    "rollback": "--rollbacks",
    "rollback_mode": "--rollback-modes",
    "delimiters": "--delimiters",
}


@dataclass
class Thresholds:
    """Learned thetas per signal (theta.json files); `resolve` also builds fixed ones."""

    learned: dict[str, dict[str, Any]]  # signal -> theta artifact
    paths: dict[str, Path]  # signal -> the theta.json it came from
    heads_doc: dict[str, Any] | None = None  # heads.json as read with them (each file is read once)

    def resolve(self, signal: str, threshold_type: str, theta: float | None) -> Threshold:
        if threshold_type == "fixed":
            if theta is None:
                raise BadInput("threshold type 'fixed' needs a theta (--thetas)")
            return Threshold.fixed(theta, signal)
        doc = self.learned.get(signal)
        if doc is None:
            have = ", ".join(sorted(self.learned)) or "none"
            raise BadInput(
                f"no learned threshold for the '{signal}' trigger (--threshold files give: {have}): fit one "
                f"with `halluc calibrate threshold --signal {signal}` and pass it with --threshold, or give "
                "a fixed --theta"
            )
        return Threshold(float(doc["theta"]), doc["direction"], signal, source=str(self.paths[signal]))


def sample_seed(seed: int, sample_id: str) -> int:
    """Thought sampling depends on the seed and the sample alone (not on order, batch or resume)."""
    return (seed * 1_000_003 + zlib.crc32(sample_id.encode())) % 2**63


def sample_record(sample: Any, bench: Any, out: ControllerOutput, arm: str, key: str) -> dict[str, Any]:
    """One journal line: the verdict on the judged answer (neither right nor wrong when abstained),
    whether it reads as an answer, and the controller's accounting."""
    doc = out.to_json()
    correct, rule = (False, "abstained") if out.abstained else _verdict(bench, sample, out.answer)
    return {
        "id": key,
        "sample_id": sample.id,
        "arm": arm,
        "correct": int(correct),
        "abstained": out.abstained,
        "outcome": "abstained" if out.abstained else "right" if correct else "wrong",
        "rule": rule,
        "well_formed": out.abstained or bench.well_formed(sample, out.answer),
        "repaired": out.stats["kept_repairs"] > 0,
        "reference": sample.reference,
        "triggers": out.stats["triggers"],
        "extra_tokens": out.extra_tokens,
        "generated_tokens": out.generated_tokens,
        "completion_tokens": out.stats["completion_tokens"],
        "latency_s": out.latency_s,
        "finish_reason": out.finish_reason,
        "question": sample.prompt,
        "completion": out.completion,
        "answer": out.answer,
        "tokens": [
            t.text for t in out.tokens
        ],  # completion token texts: trigger positions and spans index them
        "token_kinds": [t.kind for t in out.tokens],
        "trigger_events": doc["trigger_events"],
        "rauq_scores": doc["rauq_scores"],
        "signals": doc["signals"],
        "uncertainty": doc["uncertainty"],
    }


def _verdict(bench: Any, sample: Any, answer: str) -> tuple[bool, str]:
    verdict = bench.score(sample, answer)
    return verdict.correct, verdict.rule


def changed_text(record: dict[str, Any]) -> bool:
    """Whether any repair touched the text (a run with only logged triggers decodes plain greedy)."""
    return any(e["action"] != "none" for e in record["trigger_events"])


@dataclass(frozen=True)
class Arm:
    """One decoding arm (a configuration with its threshold); its journal keys are
    `{prefix}{name}:{sample id}` (the prefix names an ablation cell)."""

    prefix: str
    name: str
    config: ControllerConfig
    threshold: Threshold

    def key(self, sample_id: str) -> str:
        return f"{self.prefix}{self.name}:{sample_id}"


def decode_batch(
    lm: Any, shard: tuple[Arm, list[Any]], bench: Any, scorer: RAUQScorer | None
) -> list[dict[str, Any]]:
    """One batch of one arm decoded and judged, wherever it runs (here or on a model replica)."""
    arm, batch = shard
    outs = RAUQController(lm, arm.config, scorer, arm.threshold).generate_batch(
        [bench.format_prompt(s, lm.tokenizer) for s in batch],
        [sample_seed(arm.config.seed, s.id) for s in batch],
        len(batch),
        checks=[partial(bench.well_formed, s) for s in batch],
    )
    return [sample_record(s, bench, out, arm.name, arm.key(s.id)) for s, out in zip(batch, outs, strict=True)]


def run_arms(
    lm: Any,
    bench: Any,
    samples: list[Any],
    journal: Journal,
    arms: list[Arm],
    scorer: RAUQScorer | None,
    advance: Callable[[int], None],
    batch_size: int = 8,
    reuse: dict[str, dict[str, Any]] | None = None,
    replicas: Any = None,
) -> None:
    """Decode every sample of every arm not yet journaled, here or on `replicas`
    (`ucli.executor.Replicas`). `reuse` maps sample ids to controller records whose text no repair
    changed: the plain-greedy arm would decode them token for token the same, so they are copied
    (marked `reused`) instead. Batches are fixed slices of the samples an arm decodes, and one with
    any unjournaled sample runs again whole, so a resumed or scaled-out run decodes exactly the
    batches an unbroken one does; only this process journals."""
    from ucli.executor import Executor, Replicas

    shards = []
    for arm in arms:
        decode = []
        for sample in samples:
            same = (reuse or {}).get(sample.id)
            if same is None or changed_text(same):
                decode.append(sample)
            elif arm.key(sample.id) not in journal.done:
                journal.append({**same, "id": arm.key(sample.id), "arm": arm.name, "triggers": 0,
                                "trigger_events": [], "reused": True})  # fmt: skip
        keyed = journal.todo_batches(decode, batch_size, key=lambda s, arm=arm: arm.key(s.id))
        shards += [(arm, batch) for _, batch in keyed]
    done = journal.done
    advance(sum(arm.key(s.id) in done for arm in arms for s in samples))
    replicas = replicas or Replicas(Executor(), lm)
    for records in replicas.map(decode_batch, shards, bench, scorer):
        advance(journal.append_new(records))


def evaluate(
    lm: Any,
    bench: Any,
    samples: list[Any],
    *,
    config: ControllerConfig,
    scorer: RAUQScorer | None,
    threshold: Threshold,
    journal: Journal,
    baseline: bool = False,
    batch_size: int = 8,
    replicas: Any = None,
) -> dict[str, list[dict[str, Any]]]:
    """Controller (and, with `baseline`, plain greedy through the same decoding loop) on every
    sample, here or on `replicas`; returns the records per arm in sample order."""
    controller = Arm("", CONTROLLER, config, threshold)
    RAUQController(lm, config, scorer, threshold)  # a bad configuration fails here, before any decode
    with console.progress("controller", total=len(samples)) as advance:
        run_arms(lm, bench, samples, journal, [controller], scorer, advance, batch_size, replicas=replicas)
    by_key = {r["id"]: r for r in journal.records()}
    arms = [controller]
    if baseline:
        done = {s.id: by_key[controller.key(s.id)] for s in samples}
        plain = Arm("", BASELINE, config.model_copy(update={"max_triggers": 0}), threshold)
        with console.progress("plain greedy", total=len(samples)) as advance:
            run_arms(lm, bench, samples, journal, [plain], scorer, advance, batch_size, done, replicas)
        by_key = {r["id"]: r for r in journal.records()}
        arms.append(plain)
    return {arm.name: [by_key[arm.key(s.id)] for s in samples] for arm in arms}


def versus_greedy(
    base: list[dict[str, Any]], ctl: list[dict[str, Any]], threshold: Threshold
) -> dict[str, Any]:
    """The paired comparison with plain greedy, the abstain repair's risk-coverage curve over theta
    and the detection table, all from the same plain-greedy decode."""
    from halluc_rauq.outcomes import detection, paired_comparison, risk_coverage

    return {
        "comparison": paired_comparison(base, ctl),
        "risk_coverage": {
            "signal": threshold.signal,
            "direction": threshold.direction,
            **risk_coverage(base, threshold.direction),
        },
        "detection": detection(base),
    }


def grid(
    base: ControllerConfig, values: dict[str, list[Any]], thresholds: Thresholds
) -> list[tuple[str, ControllerConfig, Threshold, dict[str, Any]]]:
    """Every distinct configuration of the grid: (key, config, threshold, the varied knobs).

    Knobs that cannot matter are pinned before deduplication: cot-policy, rollback and delimiters
    only act with a cot repair, the rollback depth only in fixed mode, and theta only with fixed
    thresholds. Every threshold is resolved here,
    so a missing one fails before any decoding.
    """
    names = [k for k in GRID_KNOBS if k in values]
    seen: dict[str, tuple[str, ControllerConfig, Threshold, dict[str, Any]]] = {}
    for combo in itertools.product(*(values[k] for k in names)):
        knobs = dict(zip(names, combo, strict=True))
        threshold_type = knobs.pop("threshold_type", "learned")
        theta = knobs.pop("theta", None)
        delimiters = knobs.pop("delimiters", None)
        if delimiters is not None:
            if delimiters not in DELIMITERS:
                raise BadInput(
                    f"--delimiters: unknown '{delimiters}' (expected one of {', '.join(DELIMITERS)})"
                )
            knobs["cot_prefix"], knobs["cot_suffix"] = DELIMITERS[delimiters]
        config = ControllerConfig.build(GRID_KNOBS, **{**base.model_dump(), **knobs})
        if not config.thinks:
            pinned = ("cot_policy", "rollback", "rollback_mode", "cot_prefix", "cot_suffix")
            config = config.model_copy(update={k: ControllerConfig.model_fields[k].default for k in pinned})
            delimiters = None
        elif config.rollback_mode != "fixed":  # K tokens matter in fixed mode only
            config = config.model_copy(update={"rollback": ControllerConfig.model_fields["rollback"].default})
        if threshold_type == "learned":
            theta = None
        shown = {"trigger": config.trigger, "threshold_type": threshold_type, "theta": theta,
                 "repair": config.repair}  # fmt: skip
        if config.thinks:
            shown.update(
                cot_policy=config.cot_policy,
                rollback=config.rollback if config.rollback_mode == "fixed" else None,
                rollback_mode=config.rollback_mode,
                delimiters=delimiters,
            )  # fmt: skip
        key = ",".join(f"{k}={v}" for k, v in shown.items() if v is not None)
        if key not in seen:
            seen[key] = (key, config, thresholds.resolve(config.trigger, threshold_type, theta), shown)
    return list(seen.values())


def run_grid(
    lm: Any,
    bench: Any,
    samples: list[Any],
    cells: list[tuple[str, ControllerConfig, Threshold, dict[str, Any]]],
    scorer: RAUQScorer | None,
    journal: Journal,
    batch_size: int = 8,
    replicas: Any = None,
) -> list[dict[str, Any]]:
    """Run every grid cell on the same samples (all cells' batches at once, here or on `replicas`);
    per cell its knobs, summary and raw per-sample stats."""
    arms = [Arm(f"{key}|", CONTROLLER, config, threshold) for key, config, threshold, _ in cells]
    for arm in arms:  # a bad configuration fails here, before any decode
        RAUQController(lm, arm.config, scorer, arm.threshold)
    with console.progress("ablation", total=len(cells) * len(samples)) as advance:
        run_arms(lm, bench, samples, journal, arms, scorer, advance, batch_size, replicas=replicas)
    by_key, results = {r["id"]: r for r in journal.records()}, []
    for key, _, threshold, shown in cells:
        records = [by_key[f"{key}|{CONTROLLER}:{s.id}"] for s in samples]
        raw = [
            {
                k: r[k]
                for k in ("sample_id", "correct", "abstained", "well_formed", "triggers", "generated_tokens",
                          "extra_tokens", "latency_s")
            }
            for r in records
        ]  # fmt: skip
        results.append(
            {
                "key": key,
                "knobs": shown,
                "theta": threshold.theta,
                "direction": threshold.direction,
                "summary": summarize(records),
                "samples": raw,
            }
        )
    return results


def plot_ablation(results: list[dict[str, Any]], path: str | Path, title: str) -> Path:
    """Two panels, one numbered point per configuration: accuracy among answered against coverage
    (where abstaining configurations sit on the risk-coverage plane), and accuracy over all
    questions against the tokens generated per question (what repairs cost). The numbers are keyed
    below the panels, knobs shared by every configuration in the title, so labels never overlap."""
    from ucli.artifacts import fit_titles, new_figure, write_figure

    knobs = [r["key"].split(",") for r in results]
    shared = [k for k in knobs[0] if all(k in other for other in knobs)] if len(knobs) > 1 else []
    labels = [
        ", ".join(k for k in ks if k not in shared) or r["key"] for ks, r in zip(knobs, results, strict=True)
    ]
    key_height = 0.125 * len(results) + 0.5  # inches: 7-point lines, and the x label above them
    fig, (left, right) = new_figure(ncols=2, figsize=(11, 4.6 + key_height), dpi=120)
    for i, r in enumerate(results, 1):
        s = r["summary"]
        for ax, x, y in (
            (left, s["coverage"], s["selective_accuracy"]),
            (right, s["avg_generated_tokens"], s["accuracy"]),
        ):
            if x is None or y is None:
                continue
            ax.scatter([x], [y], s=30)
            ax.annotate(str(i), (x, y), fontsize=8, xytext=(3, 3), textcoords="offset points")
    left.set_xlabel("coverage (share answered)")
    left.set_ylabel("accuracy among answered")
    right.set_xlabel("tokens generated per question (repairs included)")
    right.set_ylabel("accuracy (right / all questions)")
    fig.suptitle(title + (f"\nevery point: {', '.join(shared)}" if shared else ""), fontsize=9)
    key = "\n".join(f"{i:>2}  {label}" for i, label in enumerate(labels, 1))
    fig.text(0.01, 0.01, key, fontsize=7, family="monospace", va="bottom")
    fit_titles(fig)
    fig.tight_layout(rect=(0, key_height / (4.6 + key_height), 1, 1))
    return write_figure(fig, path, layout=False)


def ablate(
    lm: Any, bench: Any, samples: list[Any], *, cells: list[Any], scorer: RAUQScorer | None, output: str | Path,
    journal_path: Path, split: str, resume: bool, run_config: dict[str, Any], inputs: list[Path], seed: int,
    batch_size: int = 8, plot: str | Path | None = None, replicas: Any = None, force: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """`control ablate`: the grid's cells journaled at `journal_path` (from `ucli.journal.preflight`),
    then `output` (ablations.json with provenance), the journal removed, and the optional figure."""
    from ucli.artifacts import write_artifact

    journal_config = {
        **run_config,
        "samples": [s.id for s in samples],
        "fingerprint": lm.fingerprint.model_dump(),
    }
    with Journal(journal_path, config=journal_config, resume=resume, force=force) as journal:
        results = run_grid(lm, bench, samples, cells, scorer, journal, batch_size, replicas)
    payload = strict_json(
        {"benchmark": bench.name, "split": split, "n": len(samples), "configurations": results}
    )
    write_artifact(
        output, ABLATION_SCHEMA, 1, payload, model=lm.fingerprint, inputs=inputs, seed=seed, config=run_config
    )
    journal_path.unlink(missing_ok=True)
    if plot is not None:
        plot_ablation(
            results, plot, f"{lm.fingerprint.name} on {bench.name}/{split} ({len(samples)} samples)"
        )
    return payload


def run_control_eval(
    lm: Any,
    bench: Any,
    samples: list[Any],
    *,
    config: ControllerConfig,
    scorer: RAUQScorer | None,
    threshold: Threshold,
    output: str | Path,
    baseline: bool = False,
    resume: bool = False,
    run_config: dict[str, Any] | None = None,
    inputs: Sequence[Path] = (),
    batch_size: int = 8,
    replicas: Any = None,
    force: bool = False,
) -> dict[str, Any]:
    """`control eval`: journal in `output` while running; then controller.jsonl (+ baseline.jsonl),
    summary.json with provenance, and the journal removed. With `replicas`
    (`ucli.executor.Replicas`) the batches decode there, to the same records. `force` resumes a
    journal of another configuration (a warning)."""
    from ucli.artifacts import write_artifact, write_table
    from ucli.journal import preflight, removed_unless_started

    output = Path(output)
    journal_path = preflight(output, resume, folder=True)  # a finished run removed its journal
    assert journal_path is not None  # no `complete` marker: a finished folder is refused above
    run_config = run_config or {}
    journal_config = {**run_config, "baseline": baseline, "samples": [s.id for s in samples],
                      "fingerprint": lm.fingerprint.model_dump()}  # fmt: skip
    with removed_unless_started(output), Journal(journal_path, config=journal_config, resume=resume, force=force) as journal:  # fmt: skip
        output.mkdir(parents=True, exist_ok=True)
        arms = evaluate(lm, bench, samples, config=config, scorer=scorer, threshold=threshold, journal=journal,
                        baseline=baseline, batch_size=batch_size, replicas=replicas)  # fmt: skip
    files = {}
    for arm, records in arms.items():
        files[arm] = f"{arm}.jsonl"
        write_table(output / files[arm], records, RECORDS_SCHEMA, model=lm.fingerprint, inputs=list(inputs),
                    seed=config.seed, config={**run_config, "arm": arm})  # fmt: skip
    summary = {arm: summarize(records) for arm, records in arms.items()}
    payload = {"benchmark": bench.name, "split": run_config.get("split"), "n": len(samples),
               "summary": summary, "files": files}  # fmt: skip
    if baseline:
        payload.update(versus_greedy(arms[BASELINE], arms[CONTROLLER], threshold))
    payload = strict_json(payload)
    write_artifact(output / "summary.json", CONTROL_SCHEMA, 1, payload, model=lm.fingerprint,
                   inputs=list(inputs), seed=config.seed, config=run_config)  # fmt: skip
    journal_path.unlink()
    return {"output": str(output), **payload}
