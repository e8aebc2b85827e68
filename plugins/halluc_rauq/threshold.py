"""Fit the trigger threshold theta on a token signal.

Label rules (`collect`):
- `answer` (default): the model answers greedily; each answer gives one point, its peak token
  signal (max; min for a signal that fires below, like the margin), labelled by whether the
  answer is wrong. The online trigger fires on an answer exactly when its peak crosses theta, so
  this calibrates the decision the controller makes: does this answer hold a hallucination?
- `sequence`: every greedy answer token carries its answer's verdict.
- `teacher-forced`: the reference is forced; a token is an error when the model's top-1 differs.
  This measures how close a token's own probability is to the reference, not hallucination: the
  emitted token is always the top-1 during greedy decoding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from halluc_signals import ForcedTokens, check_alpha, rauq_scores, teacher_force
from ucli.data import PromptPair
from ucli.errors import BadInput
from ucli.models import LoadedModel, chat_prompt

THETA_SCHEMA = "halluc.rauq.theta"
LABELS = ("answer", "sequence", "teacher-forced")


@dataclass
class ThresholdFit:
    theta: float  # on the signal's own scale
    direction: str  # "above": fire when signal >= theta; "below": when signal <= theta
    coef: float  # logistic regression of label (1 = error) on the signal
    intercept: float
    auroc: float
    tpr: float  # at theta
    fpr: float
    n_positive: int
    n_negative: int


def token_signal(
    forced: ForcedTokens, signal: str, layers: list[int], heads: dict[int, int], alpha: float
) -> np.ndarray:
    """The per-token trigger signal: the registered estimator's step over every token (RAUQ token
    scores at fixed heads are computed only for a signal that reads attention)."""
    from halluc_signals import TokenStep
    from halluc_signals import token_signal as estimator

    est = estimator(signal)
    rauq = (
        np.asarray(rauq_scores(forced.token_logprobs, forced.attn, layers, alpha, heads).tokens)
        if "attention" in est.needs
        else np.full(len(forced.token_logprobs), np.nan)
    )
    step = TokenStep(np.asarray(forced.token_logprobs), forced.entropy, forced.margin, rauq)
    return np.broadcast_to(np.asarray(est.step(step), dtype=np.float64), rauq.shape)


def fit_threshold(scores, labels, coverage: float | None = None) -> ThresholdFit:
    """Logistic regression (scikit-learn) of the label on the score; theta by Youden's J, or, with
    `coverage` c, the theta at which a share c of the points does not fire (the fewest that do)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score, roc_curve

    x = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if n_pos == 0 or n_neg == 0:
        raise BadInput(
            f"threshold fitting needs both labels; got {n_pos} positive and {n_neg} negative points "
            "(wrong and right answers, or error and other tokens)"
        )
    model = LogisticRegression().fit(x[:, None], y)
    w, b = float(model.coef_[0, 0]), float(model.intercept_[0])
    prob = model.predict_proba(x[:, None])[:, 1]
    fpr, tpr, cuts = roc_curve(y, prob)
    finite = np.isfinite(cuts)
    best = int(np.flatnonzero(finite)[np.argmax((tpr - fpr)[finite])])
    p_star = float(np.clip(cuts[best], 1e-12, 1 - 1e-12))
    direction = "above" if w >= 0 else "below"
    theta = (math.log(p_star / (1 - p_star)) - b) / w if w != 0 else float(np.median(x))
    if coverage is not None:
        theta = coverage_theta(x, direction, coverage)
    fires = x >= theta - 1e-9 if direction == "above" else x <= theta + 1e-9
    return ThresholdFit(
        theta=float(theta),
        direction=direction,
        coef=w,
        intercept=b,
        auroc=float(roc_auc_score(y, prob)),
        tpr=float(fires[y == 1].mean()),
        fpr=float(fires[y == 0].mean()),
        n_positive=n_pos,
        n_negative=n_neg,
    )


def coverage_theta(x: np.ndarray, direction: str, coverage: float) -> float:
    """The theta that leaves unfired at least a share `coverage` of the values and fires on all
    the others it can: values fire at `>= theta` (above) or `<= theta` (below)."""
    if not 0 < coverage <= 1:
        raise BadInput(f"--coverage must be in (0, 1], got {coverage}")
    s = np.sort(x if direction == "above" else -x)
    cut = s[min(math.ceil(coverage * len(s)), len(s) - 1)] if coverage < 1 else np.nextafter(s[-1], math.inf)
    quiet = np.searchsorted(s, cut, side="left")
    if quiet / len(s) < coverage:  # ties at the cut: move past them
        cut = np.nextafter(cut, math.inf)
    return float(cut if direction == "above" else -cut)


def _completions(
    lm: LoadedModel,
    batch: list[PromptPair],
    labels: str,
    judge: Callable[[PromptPair, str], bool],
    max_new_tokens: int,
) -> tuple[list[list[int]], list[bool | None]]:
    """What is teacher-forced and its verdict: the references (no verdict), or the greedy answers
    with the judge's."""
    if labels == "teacher-forced":
        completions = [lm.tokenizer(p.reference or "", add_special_tokens=False)["input_ids"] for p in batch]
        return completions, [None] * len(batch)
    from ucli.generation import generate

    gens = generate(lm, [chat_prompt(lm.tokenizer, p.prompt) for p in batch], max_new_tokens)
    return [g["token_ids"] for g in gens], [judge(p, g["answer"]) for p, g in zip(batch, gens, strict=True)]


def collect(
    lm: LoadedModel,
    pairs: list[PromptPair],
    heads: dict[int, int],
    layers: list[int],
    alpha: float,
    signal: str,
    labels: str,
    max_samples: int,
    judge: Callable[[PromptPair, str], bool],
    max_new_tokens: int = 32,
    batch_size: int = 8,
    advance: Callable[[int], None] = lambda n: None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Token scores and labels (1 = error) until `max_samples` tokens; also the examples used.

    `teacher-forced`: the reference is forced and a position is an error when the model's top-1
    token differs from the reference token. `sequence`: the model answers greedily and every token
    carries its answer's verdict (`judge`). `answer`: one point per greedy answer, its peak token
    signal (max; min for the margin) with the answer's verdict; `max_samples` counts answers.
    """
    from halluc_signals import token_signal as estimator

    check_alpha(alpha)
    fires = estimator(signal).fires
    if labels not in LABELS:
        raise BadInput(f"unknown --labels '{labels}' (expected one of {', '.join(LABELS)})")
    scores: list[np.ndarray] = []
    marks: list[np.ndarray] = []
    used = total = 0
    for start in range(0, len(pairs), batch_size):
        if total >= max_samples:
            break
        batch = pairs[start : start + batch_size]
        completions, verdicts = _completions(lm, batch, labels, judge, max_new_tokens)
        keep = [(p, c, v) for p, c, v in zip(batch, completions, verdicts, strict=True) if c]
        forced = teacher_force(
            lm, [(lm.prompt_ids(lm.chat_prompt(p.prompt)), c) for p, c, _ in keep], layers, batch_size
        )
        for (_, completion, verdict), f in zip(keep, forced, strict=True):
            s = token_signal(f, signal, layers, heads, alpha)
            if labels == "teacher-forced":
                y = (f.top1 != np.asarray(completion)).astype(np.int64)
            else:
                y = np.full(len(completion), 0 if verdict else 1, dtype=np.int64)
            if labels == "answer":
                s, y = np.array([s.min() if fires == "below" else s.max()]), y[:1]
            scores.append(s)
            marks.append(y)
            total += len(s)
            used += 1
        advance(len(batch))
    if not scores:
        raise BadInput("no completion tokens to fit a threshold on (every completion is empty)")
    return np.concatenate(scores)[:max_samples], np.concatenate(marks)[:max_samples], used


def load_theta(path, model) -> dict[str, Any]:
    """A theta artifact made for this model (refused otherwise), for the controller to trigger on."""
    from halluc_signals import token_signals
    from ucli.artifacts import load_artifact

    doc = load_artifact(path, THETA_SCHEMA, model=model)
    if doc["signal"] not in token_signals() or doc["direction"] not in ("above", "below"):
        raise BadInput(f"{path}: unknown signal '{doc['signal']}' or direction '{doc['direction']}'")
    return doc


def theta_payload(
    fit: ThresholdFit,
    signal: str,
    labels: str,
    alpha: float,
    layers: list[int],
    heads: dict[int, int],
    n_tokens: int,
    n_examples: int,
) -> dict[str, Any]:
    return {
        **asdict(fit),
        "signal": signal,
        "labels": labels,
        "alpha": alpha,
        "layers": layers,
        "heads": {str(k): v for k, v in heads.items()},
        "n_tokens": n_tokens,
        "n_examples": n_examples,
        "positive_rate": fit.n_positive / (fit.n_positive + fit.n_negative),
    }
