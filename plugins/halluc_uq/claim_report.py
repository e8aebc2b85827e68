"""`halluc uq report --level claim`: the claim-scoring estimators judged against claim verdicts.

Unsupported claims are the positives (supported 0, unsupported 1, as LM-Polygraph's claim-level
benchmarks take a fact check's False as the error); unverifiable claims, claims without a verdict
and unaligned claims (no estimator value) are left out and counted. The bootstrap resamples
answers, not claims: the claims of one answer share a model state and a judge's reading, so they
move together (a cluster bootstrap), and every estimator is tested on the same resamples.

The answer-level view is FActScore's (Min et al. 2023) precision per answer: supported claims over
verified claims (supported + unsupported; unverifiable ones left out, since the reference here is
a short list of facts, not a whole article), averaged over the answers with a verified claim.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from ucli.errors import BadInput

VERIFIED = {"supported": 0.0, "unsupported": 1.0}


def claim_matrix(records: list[dict[str, Any]], source: str = "records") -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:  # fmt: skip
    """Estimator names, values [m, E], unsupported [m] and answer index [m] of the verified claims
    every estimator scored, and the counts of the claims by what happened to them."""
    claims = [(i, c) for i, r in enumerate(records) for c in r.get("claims") or []]
    if not claims:
        raise BadInput(
            f"{source}: no claims in the records: score them with `halluc uq score --claims SPLITTER`"
        )
    names = list(dict.fromkeys(n for _, c in claims for n in (c.get("uq") or {})))
    counts = Counter(str(c.get("verdict")) if c.get("verdict") else "no verdict" for _, c in claims)
    rows, wrong, groups = [], [], []
    for i, claim in claims:
        values = [(claim.get("uq") or {}).get(n) for n in names]
        if claim.get("verdict") in VERIFIED and all(v is not None for v in values):
            rows.append(values)
            wrong.append(VERIFIED[claim["verdict"]])
            groups.append(i)
        elif claim.get("verdict") in VERIFIED:
            counts["unaligned"] += 1
    if not names or not rows:
        raise BadInput(f"{source}: no claim has both a supported/unsupported verdict and every estimator's value "
                       f"({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))})")  # fmt: skip
    _, dense = np.unique(np.asarray(groups), return_inverse=True)
    counts.update(claims=len(claims), scored=len(rows))
    return names, np.asarray(rows, dtype=np.float64), np.asarray(wrong), dense, dict(counts)


def answer_precision(records: list[dict[str, Any]]) -> dict[str, Any]:
    """FActScore-style precision per answer and its mean (see the module)."""
    shares = []
    for record in records:
        verdicts = [c.get("verdict") for c in record.get("claims") or []]
        verified = [v for v in verdicts if v in VERIFIED]
        if verified:
            shares.append(verified.count("supported") / len(verified))
    return {"answers": len(records), "answers_verified": len(shares),
            "mean_precision": float(np.mean(shares)) if shares else None,
            "claims_per_answer": float(np.mean([len(r.get("claims") or []) for r in records])) if records else 0.0}  # fmt: skip


def build_claim_report(records: list[dict[str, Any]], *, reference: str | None = None, n_resamples: int = 1000,
                       confidence: float = 0.95, seed: int = 0, source: str = "records") -> dict[str, Any]:  # fmt: skip
    """Per claim-scoring estimator: AUROC, AUPRC (unsupported claims positive), PRR, calibration,
    the paired test against `reference` (default `ccp` where scored, else the first), all on
    answer-level cluster resamples; plus the counts and the answer-level precision."""
    from halluc_uq.report import estimator_rows

    names, values, wrong, groups, counts = claim_matrix(records, source)
    reference = reference or ("ccp" if "ccp" in names else names[0])
    if reference not in names:
        raise BadInput(
            f"--reference: '{reference}' is not among the claim estimators of {source} ({', '.join(names)})"
        )
    if wrong.min() == wrong.max():
        raise BadInput(f"{source}: every one of the {wrong.size} verified claims is "
                       f"{'unsupported' if wrong[0] else 'supported'}: nothing to detect")  # fmt: skip
    rows, rho = estimator_rows(
        names, values, wrong, 1.0 - wrong, reference, n_resamples, confidence, seed, groups
    )
    return {"level": "claim", "n": int(wrong.size), "n_wrong": int(wrong.sum()), "n_answers": int(groups.max()) + 1,
            "counts": counts, "reference": reference, "auroc_against": "verdict (unsupported claims positive)",
            "prr_against": "verdict (supported 1, unsupported 0)", "resampled": "answers (cluster bootstrap)",
            "n_resamples": n_resamples, "confidence": confidence, "seed": seed, "estimators": rows,
            "spearman": {"names": names, "matrix": rho}, "answers": answer_precision(records)}  # fmt: skip
