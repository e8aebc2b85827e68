"""What the controller's answers are worth: abstention-aware summaries, the paired comparison with
plain greedy, the risk-coverage curve over theta, and how well sequence scores detect wrong answers.

Records are the per-sample dicts of `control eval` (`correct`, `abstained`, `uncertainty`, ...).
An abstention is neither right nor wrong: it lowers coverage, never accuracy among answered.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# sequence scores of a plain-greedy decode reported against answer correctness (higher = less trustworthy)
DETECTION_SCORES = {
    "rauq": "RAUQ (sequence u)",
    "max_rauq": "RAUQ, largest token score (what the trigger sees)",
    "msp": "maximum sequence probability (-log P)",
    "mean_nll": "perplexity (mean -log p)",
    "mean_entropy": "mean token entropy",
}


def _share(part: float, whole: float) -> float:
    return part / whole if whole else math.nan


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy overall and among answered, coverage, hallucinations, repair quality, cost, latency."""
    n = len(records)
    if n == 0:
        return {"n": 0}
    correct = sum(r["correct"] for r in records)
    abstained = sum(bool(r.get("abstained")) for r in records)
    answered = n - abstained
    wrong = answered - correct
    repaired = [r for r in records if r.get("repaired") and not r.get("abstained")]
    generated = sum(r["generated_tokens"] for r in records)
    decoded = [r for r in records if not r.get("reused")]
    return {
        "n": n,
        "correct": correct,
        "wrong": wrong,
        "abstained": abstained,
        "accuracy": correct / n,
        "coverage": answered / n,
        "selective_accuracy": _share(correct, answered),
        "hallucination_rate": _share(wrong, answered),
        "repaired": len(repaired),
        "repair_well_formed": _share(sum(bool(r["well_formed"]) for r in repaired), len(repaired)),
        "repaired_correct": sum(r["correct"] for r in repaired),
        "accuracy_per_token": _share(correct, generated),
        "avg_generated_tokens": generated / n,
        "avg_completion_tokens": sum(r["completion_tokens"] for r in records) / n,
        "avg_extra_tokens": sum(r["extra_tokens"] for r in records) / n,
        "avg_triggers": sum(r["triggers"] for r in records) / n,
        "trigger_rate": sum(r["triggers"] > 0 for r in records) / n,
        "avg_latency_s": sum(r["latency_s"] for r in records) / n,
        "reused": n - len(decoded),
    }


def paired_comparison(baseline: list[dict[str, Any]], controller: list[dict[str, Any]]) -> dict[str, Any]:
    """Controller against plain greedy on the same samples (same order): what moved where, and
    McNemar's test on right-vs-not-right and on not-wrong-vs-wrong (hallucinations; `b` counts
    answers only the controller got wrong, `c` wrong greedy answers the controller did not repeat)."""
    from halluc_stats import mcnemar

    def wrong(r: dict[str, Any]) -> int:
        return int(not r["correct"] and not r.get("abstained"))

    pairs = list(zip(baseline, controller, strict=True))
    moves = {
        "fixed": sum(not b["correct"] and c["correct"] for b, c in pairs),
        "broken": sum(b["correct"] and wrong(c) for b, c in pairs),
        "hallucinations_avoided": sum(wrong(b) and bool(c.get("abstained")) for b, c in pairs),
        "correct_lost": sum(b["correct"] and bool(c.get("abstained")) for b, c in pairs),
    }
    tests = {}  # 1 = good: right, or not wrong (abstained counts as not wrong); b = greedy good only
    for name, of in (("correct", lambda r: int(r["correct"])), ("not_wrong", lambda r: 1 - wrong(r))):
        t = mcnemar([of(b) for b, _ in pairs], [of(c) for _, c in pairs])
        tests[name] = {"b": t.b, "c": t.c, "p_value": t.p_value, "method": t.method, "diff": t.diff,
                       "ci": [t.ci_low, t.ci_high]}  # fmt: skip
    return {**moves, "mcnemar": tests}


def risk_coverage(records: list[dict[str, Any]], direction: str) -> dict[str, list[float]]:
    """The abstain repair's operating points over every theta, from plain-greedy records.

    With `--repair abstain` an answer is abstained exactly when its peak trigger signal fires
    (the first firing token stops it; the tokens before are the greedy ones), so for each distinct
    theta this is exact: the answered share (coverage), accuracy among answered, and wrong answers
    left. Points run from full coverage (theta beyond every peak) down."""
    peak = np.array([r["uncertainty"]["peak_signal"] for r in records], dtype=np.float64)
    right = np.array([r["correct"] for r in records], dtype=np.float64)
    sign = 1.0 if direction == "above" else -1.0  # orient so that a larger value fires first
    order = np.argsort(-sign * peak, kind="stable")
    s, y = sign * peak[order], right[order]
    n = len(s)
    thetas, coverage = [math.inf * sign], [1.0]
    accuracy, wrong = [float(y.mean()) if n else math.nan], [float(n - y.sum())]
    removed = 0
    while removed < n:  # abstain on the next group of tied peaks
        step = int(np.count_nonzero(s[removed:] == s[removed]))
        removed += step
        kept = y[removed:]
        thetas.append(float(sign * s[removed - 1]))
        coverage.append((n - removed) / n)
        accuracy.append(float(kept.mean()) if kept.size else math.nan)
        wrong.append(float(kept.size - kept.sum()))
    return {"theta": thetas, "coverage": coverage, "selective_accuracy": accuracy, "wrong": wrong}


def detection(records: list[dict[str, Any]], n_resamples: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """AUROC (wrong answers as positives) and PRR (quality = correct, rejection up to 50%) of each
    sequence score, with bootstrap CIs; from plain-greedy records."""
    from halluc_stats import auroc, prr
    from ucli.errors import BadInput

    wrong = [1 - int(r["correct"]) for r in records]
    rows = []
    for key, name in DETECTION_SCORES.items():
        values = [r["uncertainty"].get(key) for r in records]
        if any(v is None or not math.isfinite(v) for v in values):
            continue  # e.g. RAUQ without heads
        row: dict[str, Any] = {"score": key, "name": name}
        try:
            a = auroc(values, wrong, n_resamples=n_resamples, n_permutations=n_resamples, seed=seed)
            p = prr(values, [1 - w for w in wrong], n_resamples=n_resamples, seed=seed)
        except BadInput as exc:  # one class only, or every answer equally good
            row["note"] = str(exc)
        else:
            row.update(auroc=a.auroc, auroc_ci=[a.auroc_ci_low, a.auroc_ci_high], auroc_p=a.p_value,
                       prr=p.prr, prr_ci=[p.ci_low, p.ci_high])  # fmt: skip
        rows.append(row)
    return rows


def plot_risk_coverage(
    curve: dict[str, list[float]], points: dict[str, tuple[float, float]], path: Any, title: str
) -> Any:
    """Accuracy among answered against coverage: the abstain curve over theta, and labelled points."""
    from ucli.artifacts import new_figure, write_figure

    fig, ax = new_figure(figsize=(6.4, 4.8), dpi=120)
    accuracy = [math.nan if a is None else a for a in curve["selective_accuracy"]]  # none answered: no point
    ax.plot(curve["coverage"], accuracy, drawstyle="steps-post", label="abstain, every theta")
    for label, (cov, acc) in points.items():
        if cov is None or acc is None:
            continue
        ax.scatter([cov], [acc], s=30, zorder=3)
        ax.annotate(label, (cov, acc), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("coverage (share of questions answered)")
    ax.set_ylabel("accuracy among answered")
    ax.set_xlim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return write_figure(fig, path)
