"""Tuned ensembles of estimators (`halluc uq ensemble fit` / `apply`, `uq score --ensemble`): one
score from several, learned on a train split's verdicts and saved with provenance, then applied to
other answers as one more estimator (`uq report` pairs it against the rest).

Each member's scores are min-max normalised with the train split's range (values outside it are
clipped to [0, 1] when applied). Two methods:
- `logistic`: logistic regression of "wrong" on the normalised scores (scikit-learn, L2, C = 1);
  the ensemble's value is the predicted probability of a wrong answer;
- `auroc`: UQLM's AUROC-tuned weights: non-negative weights summing to one, chosen to maximise the
  train AUROC of the weighted sum. UQLM searches with Optuna; here a seeded search over the simplex:
  the best of every single estimator, the uniform weights and Dirichlet draws, then greedy moves
  toward one member at a time while the train AUROC rises (deterministic for a seed).

An ensemble is never applied to the answers it was fit on: the same source (benchmark split or
file) is refused, and so is a set whose prompts are mostly among the training prompts.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from ucli.errors import BadInput

ENSEMBLE_SCHEMA = "halluc.uq.ensemble"
METHODS = ("logistic", "auroc")
SEARCH_DRAWS = 2000  # Dirichlet draws of the auroc method's start
STEPS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)  # the shares a greedy move gives one member
MAX_ROUNDS = 100


def _prompt_key(prompt: str) -> str:
    return hashlib.sha256(" ".join(str(prompt).split()).encode()).hexdigest()[:16]


def fit_ensemble(records: list[dict[str, Any]], *, estimators: list[str] | None, method: str, name: str | None,
                 seed: int, source: str | None) -> dict[str, Any]:  # fmt: skip
    """The ensemble's document: members, their train ranges, weights (and intercept), the train
    AUROC of each member and of the ensemble, and the training prompts' hashes."""
    from sklearn.metrics import roc_auc_score

    if method not in METHODS:
        raise BadInput(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    judged = [
        r for r in records if r.get("correct") is not None and any(v is not None for v in r["uq"].values())
    ]
    available = [e for e in dict.fromkeys(k for r in judged for k in r["uq"]) if not e.startswith("ensemble")]
    members = estimators or [e for e in available if all(r["uq"].get(e) is not None for r in judged)]
    unknown = [e for e in members if e not in available]
    if unknown:
        raise BadInput(
            f"--estimators: '{unknown[0]}' is not in these scores (they have: {', '.join(available)})"
        )
    rows = [r for r in judged if all(r["uq"].get(e) is not None for e in members)]
    y = np.array([1 - int(r["correct"]) for r in rows])
    if len(members) < 2 or len(rows) < 10 or y.min() == y.max():
        raise BadInput(f"an ensemble needs at least 2 estimators and 10 answers with values and both verdicts "
                       f"(found {len(members)} estimators, {len(rows)} answers, {int(y.sum())} wrong)")  # fmt: skip
    x = np.array([[r["uq"][e] for e in members] for r in rows], dtype=np.float64)
    lo, hi = x.min(axis=0), x.max(axis=0)
    z = _normalised(x, lo, hi)
    if method == "logistic":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=1.0, max_iter=5000).fit(z, y)
        weights, intercept = model.coef_[0], float(model.intercept_[0])
    else:
        weights, intercept = _auroc_weights(z, y, seed), 0.0
    doc = {"name": name or f"ensemble_{method}", "method": method, "members": members,
           "ranges": {e: [float(a), float(b)] for e, a, b in zip(members, lo, hi, strict=True)},
           "weights": [float(w) for w in weights], "intercept": intercept}  # fmt: skip
    doc["train"] = {
        "source": source, "n": len(rows), "n_wrong": int(y.sum()), "left_out": len(records) - len(rows),
        "auroc": {**{e: float(roc_auc_score(y, x[:, i])) for i, e in enumerate(members)},
                  doc["name"]: float(roc_auc_score(y, _combine(doc, z)))},
        "prompts": sorted({_prompt_key(r["prompt"]) for r in records if "prompt" in r}),
    }  # fmt: skip
    return doc


def _normalised(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.clip((x - lo) / span, 0.0, 1.0)


def _combine(doc: dict[str, Any], z: np.ndarray) -> np.ndarray:
    linear = z @ np.asarray(doc["weights"]) + doc["intercept"]
    return 1.0 / (1.0 + np.exp(-linear)) if doc["method"] == "logistic" else linear


def _auroc(y: np.ndarray, score: np.ndarray) -> float:
    """AUROC as the Mann-Whitney statistic on mid-ranks (scikit-learn's value, faster in a search)."""
    from scipy.stats import rankdata

    positives = int(y.sum())
    ranks = rankdata(score)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * (len(y) - positives)))


def _auroc_weights(z: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Simplex weights that maximise the train AUROC: the best of the vertices, the centre and
    seeded Dirichlet draws, then improved by greedy moves toward one member at a time (a share
    of `STEPS` of the weight), the best move each round, until none improves."""
    k = z.shape[1]
    candidates = np.vstack([np.eye(k), np.full((1, k), 1.0 / k),
                            np.random.default_rng(seed).dirichlet(np.ones(k), SEARCH_DRAWS)])  # fmt: skip
    scores = [_auroc(y, z @ w) for w in candidates]
    weights, best = candidates[int(np.argmax(scores))], max(scores)
    for _ in range(MAX_ROUNDS):
        moves = [(1 - a) * weights + a * np.eye(k)[j] for j in range(k) for a in STEPS]
        gains = [_auroc(y, z @ w) for w in moves]
        if max(gains) <= best + 1e-9:
            break
        weights, best = moves[int(np.argmax(gains))], max(gains)
    return weights


def apply_ensemble(doc: dict[str, Any], records: list[dict[str, Any]], *, source: str | None,
                   where: str) -> list[dict[str, Any]]:  # fmt: skip
    """`records` with the ensemble's value in `uq[name]` (None where a member has none); answers
    from the ensemble's own training source or prompts are refused (`check_unseen`)."""
    check_unseen(doc, source, [r["prompt"] for r in records if "prompt" in r], where)
    lo, hi = (np.array([doc["ranges"][e][i] for e in doc["members"]]) for i in (0, 1))
    out = []
    for r in records:
        values = [r["uq"].get(e) for e in doc["members"]]
        value = None
        if all(v is not None for v in values):
            value = float(_combine(doc, _normalised(np.array([values], dtype=np.float64), lo, hi))[0])
        out.append({**r, "uq": {**r["uq"], doc["name"]: value}})
    return out


def check_unseen(doc: dict[str, Any], source: str | None, prompts: list[str], where: str) -> None:
    """Refuse answers from the ensemble's training source, or whose prompts are mostly training prompts."""
    train = doc["train"]
    if source is not None and source == train["source"]:
        raise BadInput(f"{where}: these answers come from {source}, which the ensemble was fit on; "
                       "apply it to another split")  # fmt: skip
    seen = set(train["prompts"])
    overlap = sum(_prompt_key(p) in seen for p in prompts)
    if prompts and overlap * 2 > len(prompts):
        raise BadInput(f"{where}: {overlap} of {len(prompts)} prompts were among the ensemble's training "
                       "prompts; apply it to answers it was not fit on")  # fmt: skip


def scores_source(path: Path) -> str | None:
    """Where a scores file's answers came from (its provenance's `source`), if halluc wrote it."""
    from halluc_uq.scoring import UQ_SCHEMA
    from ucli.artifacts import check_table

    doc = check_table(path, UQ_SCHEMA)
    return ((doc or {}).get("provenance", {}).get("config") or {}).get("source")


def load_ensemble(path: Path, estimators: list[str] | None = None) -> dict[str, Any]:
    """A saved ensemble; with `estimators` (a run's), one whose members they lack is refused."""
    from ucli.artifacts import load_artifact

    doc = load_artifact(path, ENSEMBLE_SCHEMA)
    missing = [e for e in doc["members"] if estimators is not None and e not in estimators]
    if missing:
        raise BadInput(f"--ensemble {path}: its member '{missing[0]}' is not among --estimators; add "
                       f"{','.join(doc['members'])}")  # fmt: skip
    return doc
