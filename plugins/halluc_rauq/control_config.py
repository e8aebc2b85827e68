"""The controller's knobs (`ControllerConfig`, validated and recorded in every artifact) and when
its signal fires (`Threshold`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# named thought delimiters (--cot-prefix, --cot-suffix) that `control ablate --delimiters` compares
DELIMITERS = {
    "wait": (" Wait, let me think. ", " So the answer is"),
    "newline": ("\nLet me think step by step.\n", "\nSo the answer is"),
    "aside": (" (Let me double-check: ", ") So the answer is"),
    "restart": ("\n\nLet me think again. ", "\n\nThe correct answer is"),
}


class ControllerConfig(BaseModel):
    """Every knob of the controller (validated; recorded in every artifact)."""

    model_config = ConfigDict(extra="forbid")

    trigger: str = "rauq"  # a token signal of the estimator registry (`halluc_signals.token_signals`)
    repair: str = "cot"  # a repair of the registry (`halluc_rauq.repairs.repairs`)
    rollback: int = Field(2, ge=0, description="tokens to roll back (fixed mode)")
    rollback_mode: Literal["fixed", "anchor", "sentence"] = "fixed"  # measured best on facts/train
    cooldown: int = Field(5, ge=0, description="greedy tokens after a repair before the next trigger")
    max_triggers: int = Field(5, ge=0)
    stability_window: int = Field(2, ge=0)
    cot_length: int = Field(20, ge=1)
    cot_min_tokens: int = Field(8, ge=0, description="sampled thought tokens before a thought may end")
    cot_temperature: float = Field(0.7, gt=0)
    cot_top_p: float = Field(0.95, gt=0, le=1)
    cot_horizon: int = Field(4, ge=1)
    cot_policy: Literal["rauq", "max20", "unlimited"] = "rauq"
    cot_prefix: str = " Wait, let me think. "
    cot_suffix: str = " So the answer is"
    rerank_k: int = Field(3, ge=2)
    rerank_lookahead: int = Field(5, ge=1)
    abstain_text: str = "I am not sure."
    max_new_tokens: int = Field(64, ge=1)
    seed: int = 0

    @field_validator("trigger")
    @classmethod
    def _known_signal(cls, value: str) -> str:
        from halluc_signals import token_signals

        signals = token_signals()
        if value not in signals:
            raise ValueError(f"unknown signal '{value}' (expected one of {', '.join(signals)})")
        return value

    @field_validator("repair")
    @classmethod
    def _known_repair(cls, value: str) -> str:
        from halluc_rauq.repairs import repairs

        known = repairs()
        if value not in known:
            raise ValueError(f"unknown repair '{value}' (expected one of {', '.join(known)})")
        return value

    @property
    def thinks(self) -> bool:
        """Whether the repair samples thoughts (so the cot knobs matter)."""
        from halluc_rauq.repairs import repair_named

        return repair_named(self.repair).thinks

    @classmethod
    def build(cls, options: dict[str, str] | None = None, **knobs: Any) -> ControllerConfig:
        """Validated config; a bad knob becomes one line naming its option (`trigger` is `--signal`;
        `options` maps other fields to the spelling of the command, e.g. ablate's plurals)."""
        from ucli.options import validated

        return validated(cls, {"trigger": "--signal", **(options or {})}, **knobs)


@dataclass(frozen=True)
class Threshold:
    """When the signal fires: `signal >= theta` (direction above) or `signal <= theta` (below)."""

    theta: float
    direction: str
    signal: str
    source: str = "fixed"  # "fixed" (--theta) or the theta.json it came from
    # the signal's estimator (`halluc_signals.token_signal`), resolved once here and read by every
    # step of the controller
    estimator: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.estimator is None:
            from halluc_signals import token_signal

            object.__setattr__(self, "estimator", token_signal(self.signal))

    @property
    def needs_heads(self) -> bool:
        """Whether the signal reads attention (so the controller needs calibrated heads)."""
        return "attention" in self.estimator.needs

    def fires(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return value >= self.theta if self.direction == "above" else value <= self.theta

    @classmethod
    def fixed(cls, theta: float, signal: str) -> Threshold:
        """A hand-set theta, fired on the side the signal's estimator says (margins when small)."""
        from halluc_signals import token_signal

        estimator = token_signal(signal)
        return cls(float(theta), estimator.fires, signal, estimator=estimator)
