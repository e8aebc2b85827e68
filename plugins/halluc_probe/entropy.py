"""`halluc probe entropy`: cluster each question's sampled answers by meaning and compute its
semantic entropies (see `semantic_entropy`). One record per question, journaled as it finishes:

    {"id", "n_samples", "cluster_ids", "n_clusters", "semantic_entropy",
     "discrete_semantic_entropy", "naive_entropy", "correct", "few_samples", "empty_answers"}

A question with fewer than 2 samples gets entropies of 0 and `few_samples: true` (counted and
reported). An empty answer has no length-normalised likelihood: it counts in the clusters and the
discrete entropy, not in the likelihood-weighted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from halluc_judges import cluster_ids, discrete_entropy, naive_entropy, weighted_entropy
from halluc_probe.runs import read_runs
from ucli import console

ENTROPY_SCHEMA = "halluc.probe.entropy"


class EntropyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    equivalence: Literal["nli", "embedding", "exact"] = "embedding"
    nli_model: str | None = None
    strict: bool = False
    threshold: float = Field(default=0.9, gt=-1, le=1)
    embedding_model: str | None = None
    device: str = "cpu"


def question_entropy(record: dict[str, Any], judge: Any) -> dict[str, Any]:
    """One question's clusters and entropies, using `judge.matrix(question, answers)`."""
    answers = [s.get("answer") or "" for s in record["samples"]]
    n = len(answers)
    base = {"id": record["id"], "n_samples": n, "correct": record["correct"], "few_samples": n < 2}
    if n < 2:
        return {**base, "cluster_ids": list(range(n)), "n_clusters": n, "semantic_entropy": 0.0,
                "discrete_semantic_entropy": 0.0, "naive_entropy": 0.0, "empty_answers": 0}  # fmt: skip
    same = judge.matrix(record["question"], answers)
    ids = cluster_ids(n, lambda i, j: same[i][j])
    scored = [
        (c, s["loglik"]) for c, s in zip(ids, record["samples"], strict=True) if s.get("loglik") is not None
    ]
    return {
        **base,
        "cluster_ids": ids,
        "n_clusters": len(set(ids)),
        "semantic_entropy": weighted_entropy([c for c, _ in scored], [ll for _, ll in scored]),
        "discrete_semantic_entropy": discrete_entropy(ids),
        "naive_entropy": naive_entropy([ll for _, ll in scored]),
        "empty_answers": n - len(scored),
    }


def _summary(ordered: list[dict[str, Any]], judge_calls: int) -> dict[str, Any]:
    few = sum(r["few_samples"] for r in ordered)
    if few:
        console.warn(f"{few} question(s) have fewer than 2 samples: entropy 0, flagged few_samples")
    return {"questions": len(ordered), "few_samples": few,
            "mean_semantic_entropy": sum(r["semantic_entropy"] for r in ordered) / len(ordered),
            "mean_clusters": sum(r["n_clusters"] for r in ordered) / len(ordered), "judge_calls": judge_calls}  # fmt: skip


def compute_entropy(
    cfg: EntropyConfig, runs: str | Path, output: str | Path, resume: bool = False, force: bool = False
) -> dict[str, Any]:
    """Every question's entropies into `output` (journaled; `force`: replace an existing output, or
    with `resume` go on with a journal of another configuration)."""
    from halluc_judges import make_judge
    from ucli.artifacts import write_table
    from ucli.journal import Journal, preflight

    out = Path(output)
    journal_path = preflight(out, resume, folder=False, force=force)
    if journal_path is None:
        return {"output": str(out), "complete": True}
    records = read_runs(runs)
    judge = make_judge(
        cfg.equivalence, cfg.nli_model, cfg.strict, cfg.threshold, cfg.embedding_model, cfg.device
    )
    journal = Journal(journal_path, config={**cfg.model_dump(mode="json"), "runs": str(runs)}, resume=resume,
                      force=force)  # fmt: skip
    pending = [r for r in records if str(r["id"]) not in journal.done]
    if hasattr(judge, "prepare"):  # embed every distinct answer in full batches first
        judge.prepare([s.get("answer") or "" for r in pending for s in r["samples"]])
    try:
        with console.progress("questions", len(records)) as advance:
            advance(len(records) - len(pending))
            for record in pending:
                journal.append(question_entropy(record, judge))
                advance()
        done = {r["id"]: r for r in journal.records()}
    finally:
        journal.close()
    ordered = [done[str(r["id"])] for r in records]
    summary = _summary(ordered, judge.calls)
    write_table(
        out, ordered, ENTROPY_SCHEMA, summary=summary, inputs=[runs], config=cfg.model_dump(mode="json")
    )
    journal_path.unlink(missing_ok=True)
    return {"output": str(out), **summary}
