"""The keyword-only Python API that `halluc calibrate`, `halluc control` and `halluc demo` compose.

Each step takes a loaded model (so a caller loads it once for several steps), its inputs and one
config object, and returns what the step found; writing artifacts and printing stay with the
caller. Configs check their knobs when built, so a bad one is refused before a model loads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from halluc_rauq.calibration import MODES, HeadsCalibration, calibrate_heads
from halluc_rauq.control_eval import Thresholds
from halluc_rauq.controller import RAUQScorer
from halluc_rauq.threshold import LABELS, ThresholdFit, collect, fit_threshold, theta_payload
from halluc_signals import Judge, check_alpha, load_heads, model_alpha, parse_layers
from ucli import console
from ucli.data import PromptPair
from ucli.errors import BadInput
from ucli.models import LoadedModel

SCORES_SCHEMA = "halluc.rauq.scores"  # scores.jsonl (its sidecar: scores.jsonl.meta.json)


@dataclass(frozen=True)
class HeadsConfig:
    mode: str = "teacher-forced"  # teacher-forced (on the references) or generated (greedy answers)
    layers: str | None = None  # runtime layers, e.g. "10-20" or "3,5,7"; None: the middle third
    max_new_tokens: int = 32  # generated mode: tokens per answer
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise BadInput(f"unknown --mode '{self.mode}' (expected one of {', '.join(MODES)})")


def select_heads(
    lm: LoadedModel,
    pairs: list[PromptPair],
    *,
    config: HeadsConfig = HeadsConfig(),
    progress: Callable[[int], None] = lambda n: None,
) -> HeadsCalibration:
    """Per layer, the head that attends most to the previous token over completion tokens."""
    layers = parse_layers(config.layers, lm.fingerprint.num_layers)
    return calibrate_heads(lm, pairs, config.mode, layers, config.max_new_tokens, config.batch_size, progress)


@dataclass(frozen=True)
class ThresholdConfig:
    signal: str = "rauq"  # a token signal of the estimator registry (`halluc uq list`)
    labels: str = "answer"  # answer, sequence or teacher-forced (see `collect`)
    coverage: float | None = None  # theta leaving this share unfired; None: Youden's J
    alpha: float | None = None  # None: the model's default (`model_alpha`)
    max_samples: int = 5000  # points to fit on (answers with answer labels, else tokens)
    max_new_tokens: int = 32
    batch_size: int = 8

    def __post_init__(self) -> None:
        from halluc_signals import token_signal

        token_signal(self.signal)
        if self.coverage is not None and not 0 < self.coverage <= 1:
            raise BadInput(f"--coverage must be in (0, 1], got {self.coverage}")
        if self.labels not in LABELS:
            raise BadInput(f"unknown --labels '{self.labels}' (expected one of {', '.join(LABELS)})")
        if self.alpha is not None:
            check_alpha(self.alpha)


@dataclass
class ThresholdResult:
    fit: ThresholdFit
    payload: dict[str, Any]  # the body of theta.json
    n_points: int
    alpha: float


def calibrate_threshold(
    lm: LoadedModel,
    pairs: list[PromptPair],
    *,
    heads: dict[int, int],
    judge: Judge,
    config: ThresholdConfig = ThresholdConfig(),
    progress: Callable[[int], None] = lambda n: None,
) -> ThresholdResult:
    """Theta for the trigger signal, fitted on the model's answers (or tokens) to `pairs`; `heads`
    maps each runtime layer to its head (`load_heads`, `HeadsCalibration.runtime_heads`)."""
    alpha = model_alpha(lm, config.alpha)
    layers = list(heads)
    scores, marks, used = collect(
        lm, pairs, heads, layers, alpha, config.signal, config.labels, config.max_samples, judge,
        config.max_new_tokens, config.batch_size, progress,
    )  # fmt: skip
    fit = fit_threshold(scores, marks, config.coverage)
    payload = theta_payload(fit, config.signal, config.labels, alpha, layers, heads, len(scores), used)
    payload["coverage"] = config.coverage
    return ThresholdResult(fit, payload, len(scores), alpha)


@dataclass(frozen=True)
class ControlArtifacts:
    """What the controller reads from calibration: heads.json, theta.json per signal, alpha."""

    heads: Path | None = None
    thresholds: tuple[Path, ...] = ()
    alpha: float | None = None  # None: the rauq theta's alpha, else the model's default
    strict: bool = False  # refuse, instead of warn, when theta was fitted with other heads or alpha

    def read(self) -> Thresholds:
        """The learned thetas per signal, read before any model loads: a missing file, a duplicate
        signal or a bad alpha is refused in a second (`setup_controller` checks them against the model)."""
        from halluc_rauq.threshold import load_theta
        from halluc_signals import check_heads_file

        if self.alpha is not None:
            check_alpha(self.alpha)
        heads_doc = check_heads_file(self.heads) if self.heads is not None else None
        learned: dict[str, dict[str, Any]] = {}
        paths: dict[str, Path] = {}
        for path in self.thresholds:
            doc = load_theta(path, None)
            if doc["signal"] in learned:
                raise BadInput(f"{path}: a second theta for the '{doc['signal']}' signal")
            learned[doc["signal"]], paths[doc["signal"]] = doc, Path(path)
        return Thresholds(learned, paths, heads_doc)

    @property
    def files(self) -> list[Path]:
        return [p for p in (self.heads, *self.thresholds) if p]


def setup_controller(
    lm: LoadedModel, *, artifacts: ControlArtifacts, thresholds: Thresholds
) -> tuple[RAUQScorer | None, float]:
    """The RAUQ scorer (None without heads) and the alpha it runs with, after every cross-check of
    the artifacts against the model and each other."""
    from halluc_signals import token_signal
    from ucli.artifacts import check_made_for, sha256_file

    for signal, doc in thresholds.learned.items():
        check_made_for(doc, thresholds.paths[signal], lm.fingerprint)

    def disagree(message: str) -> None:
        if artifacts.strict:
            raise BadInput(message + " (--strict)")
        console.warn(message)

    # the theta of a signal that reads attention was fitted at some heads and alpha: check them
    rauq_signal = next((s for s in thresholds.learned if "attention" in token_signal(s).needs), None)
    rauq_doc = thresholds.learned[rauq_signal] if rauq_signal else None
    alpha = artifacts.alpha
    if alpha is None:
        alpha = float(rauq_doc["alpha"]) if rauq_doc else model_alpha(lm, None)
    scorer = None
    if artifacts.heads is not None:
        heads, layers = load_heads(artifacts.heads, lm.fingerprint, thresholds.heads_doc)
        scorer = RAUQScorer(layers, heads, alpha)
        if rauq_doc and rauq_doc.get("heads_sha256") not in (None, sha256_file(artifacts.heads)):
            disagree(
                f"{thresholds.paths[rauq_signal]}: theta was fitted with other heads than {artifacts.heads}"
            )
    if rauq_doc and not math.isclose(float(rauq_doc["alpha"]), alpha):
        disagree(
            f"{thresholds.paths[rauq_signal]}: theta was fitted with alpha {rauq_doc['alpha']}, running with {alpha}"
        )
    return scorer, alpha
