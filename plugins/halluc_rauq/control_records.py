"""What the controller records: the tokens it kept, each trigger and what was done about it, and
the output of one decode (`ControllerOutput.to_json` is the record `control run/eval` write)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NAN = float("nan")
Check = Callable[[str], bool]  # does a judged answer read as an answer?


class Budget(Exception):
    """Raised inside a repair when max_new_tokens is spent."""


@dataclass
class Token:
    id: int
    text: str
    kind: str  # greedy | cot | rerank | forced
    logprob: float  # log p under the model (NaN for forced tokens)
    signal: float  # trigger signal (NaN for forced tokens)
    rauq: float  # RAUQ token score (NaN for forced tokens, or without a scorer)
    log_c: np.ndarray | None = field(default=None, repr=False)  # RAUQ state after this token
    entropy: float = NAN  # entropy of the distribution this token was chosen from (nats)


@dataclass
class TriggerEvent:
    position: int  # completion index of the token that fired
    signal: float
    action: str  # cot | rerank | none | abstain
    step: int  # tokens generated so far when it fired
    rollback_target: int | None = None  # completion length kept before the repair
    rollback_depth: int = 0
    clipped: bool = False  # the requested rollback reached past the text (or a kept repair) and was cut
    cot_span: list[int] | None = None  # [start, end) in completion indices, prefix and suffix included
    cot_tokens: int = 0  # sampled thought tokens
    cot_stop: str | None = None  # signal | length | eos | budget
    stable: bool | None = (
        None  # cot (rerank+abstain): whether the stability window passed (None: not reached)
    )
    kept: bool = True  # False once an escalation undid this repair
    escalated_from: int | None = None  # index of the unstable event this one replaces
    candidates: list[dict[str, Any]] | None = None  # rerank: token, text, score
    floor: int = 0  # no rollback from this event went below this completion index
    reason: str | None = None  # abstain: fired | unstable | malformed | no room (to think)


@dataclass
class ControllerOutput:
    completion: str  # everything kept, thoughts included
    answer: str  # the completion without its thought spans (what a benchmark judges)
    tokens: list[Token]
    trigger_events: list[TriggerEvent]
    rauq_scores: list[float]  # per emitted token; NaN for forced tokens
    signals: list[float]
    extra_tokens: int  # generated tokens not in the final completion (repair cost)
    generated_tokens: int
    latency_s: float
    finish_reason: str  # eos | length | abstain
    stats: dict[str, Any]
    abstained: bool = False  # the answer is the abstention text
    # sequence-level uncertainty of the judged answer's own tokens (see `answer_uncertainty`)
    uncertainty: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-safe (NaN becomes null)."""
        from ucli.artifacts import strict_json

        return strict_json(
            {
                "completion": self.completion,
                "answer": self.answer,
                "tokens": [
                    {
                        "id": t.id,
                        "text": t.text,
                        "kind": t.kind,
                        "logprob": t.logprob,
                        "rauq": t.rauq,
                        "signal": t.signal,
                    }
                    for t in self.tokens
                ],
                "trigger_events": self.trigger_events,
                "rauq_scores": self.rauq_scores,
                "signals": self.signals,
                "extra_tokens": self.extra_tokens,
                "generated_tokens": self.generated_tokens,
                "latency_s": self.latency_s,
                "finish_reason": self.finish_reason,
                "stats": self.stats,
                "abstained": self.abstained,
                "uncertainty": self.uncertainty,
            }
        )


@dataclass
class Candidate:
    """The model's next token from the current logits, scored but not yet committed."""

    id: int
    logprob: float
    signal: float
    rauq: float
    log_c: np.ndarray | None
    entropy: float
