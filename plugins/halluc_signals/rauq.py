"""The RAUQ score from token confidences and previous-token attention (pure numpy).

For generated tokens y_1..y_N with probabilities p_i, a layer l and its head h_l:
    c_l(y_1) = p_1;   c_l(y_i) = alpha * p_i + (1 - alpha) * a_l(i) * c_l(y_{i-1})
where a_l(i) is the attention that head h_l pays, in the step that produces y_i, to the key of
y_{i-1} (that step's query is y_{i-1} itself: the last entry of its attention row in a KV-cached
decode, the diagonal element of y_{i-1}'s row in a teacher-forced pass). The prompt is never used.
Sequence score u = max_l -(1/N) sum_i log c_l(y_i); token score = max_l -log c_l(y_i).
Everything is computed in log space, so alpha = 0 on long answers cannot underflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ucli.errors import BadInput

BASE_ALPHA = 0.2
INSTRUCT_ALPHA = 0.5


@dataclass
class RAUQResult:
    sequence: float  # u: max over layers of the mean negative log confidence
    layers: dict[int, float]  # u_l per selected layer
    tokens: list[float]  # token-level score (the online trigger signal), one per generated token
    heads: dict[int, int]  # layer -> head used
    alpha: float


def default_layers(num_layers: int) -> list[int]:
    """The middle third: L//3 .. ceil(2L/3) inclusive (0-based), clipped to the model."""
    return list(range(num_layers // 3, min(math.ceil(2 * num_layers / 3), num_layers - 1) + 1))


def default_alpha(instruct: bool) -> float:
    return INSTRUCT_ALPHA if instruct else BASE_ALPHA


def check_alpha(alpha: float) -> float:
    if not 0.0 <= alpha <= 1.0 or math.isnan(alpha):
        raise BadInput(f"alpha must be in [0, 1], got {alpha}")
    return float(alpha)


def per_sequence_heads(attn: np.ndarray, layers: list[int]) -> dict[int, int]:
    """The paper's rule: per layer, the head with the largest mean previous-token attention over
    this sequence's own tokens (a(2)..a(N); a(1) does not exist)."""
    if attn.shape[-1] < 2:
        return dict.fromkeys(layers, 0)
    means = attn[:, :, 1:].mean(axis=-1)  # [L_sel, H]
    return {layer: int(np.argmax(means[j])) for j, layer in enumerate(layers)}


def log_confidence(log_p: np.ndarray, prev_attn: np.ndarray, alpha: float) -> np.ndarray:
    """log c_l(y_i) for each selected layer: [L_sel, N] from log p [N] and a_l(i) [L_sel, N]."""
    alpha = check_alpha(alpha)
    n_layers, n = prev_attn.shape
    out = np.empty((n_layers, n), dtype=np.float64)
    if n == 0:
        return out
    log_alpha = math.log(alpha) if alpha > 0 else -math.inf
    log_rest = math.log1p(-alpha) if alpha < 1 else -math.inf
    with np.errstate(divide="ignore"):
        log_a = np.log(np.clip(prev_attn, 0.0, None))
    out[:, 0] = log_p[0]
    for i in range(1, n):
        out[:, i] = np.logaddexp(log_alpha + log_p[i], log_rest + log_a[:, i] + out[:, i - 1])
    return out


def rauq_scores(
    token_logprobs,
    attn,
    layers: list[int],
    alpha: float,
    heads: dict[int, int] | None = None,
) -> RAUQResult:
    """RAUQ from log p_i [N] and previous-token attention [L_sel, H, N] (column i holds a(i+1)'s
    value for token i; column 0 is ignored). `heads` fixes one head per layer (a calibration
    artifact), else the per-sequence rule picks them."""
    log_p = np.asarray(token_logprobs, dtype=np.float64)
    a = np.asarray(attn, dtype=np.float64)
    if a.ndim != 3 or a.shape[0] != len(layers) or a.shape[2] != log_p.shape[0]:
        raise ValueError(
            f"attention must be [layers={len(layers)}, heads, N={log_p.shape[0]}], got {a.shape}"
        )
    if log_p.size == 0:
        raise BadInput("RAUQ needs at least one generated token")
    chosen = heads if heads is not None else per_sequence_heads(a, layers)
    missing = [layer for layer in layers if layer not in chosen]
    if missing:
        raise BadInput(f"no head given for layer(s) {missing}")
    prev = np.stack([a[j, chosen[layer]] for j, layer in enumerate(layers)])  # [L_sel, N]
    log_c = log_confidence(log_p, prev, alpha)
    per_layer = -log_c.mean(axis=1)
    tokens = (-log_c).max(axis=0)
    return RAUQResult(
        sequence=float(per_layer.max()),
        layers={layer: float(per_layer[j]) for j, layer in enumerate(layers)},
        tokens=[float(t) for t in tokens],
        heads={layer: int(chosen[layer]) for layer in layers},
        alpha=float(alpha),
    )


def entropy_confidence(logits) -> np.ndarray:
    """The entropy variant's log confidence: log(log|V| - H_i), from logits [N, V]."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return entropy_log_confidence(-(np.exp(log_probs) * log_probs).sum(axis=-1), z.shape[-1])


def entropy_log_confidence(entropies, vocab_size: int) -> np.ndarray:
    """log(log|V| - H_i) from per-token entropies (nats): the entropy variant's stand-in for log p(y_i)."""
    with np.errstate(divide="ignore"):
        return np.log(np.clip(math.log(vocab_size) - np.asarray(entropies, dtype=np.float64), 0.0, None))


@dataclass(frozen=True)
class RAUQScorer:
    """The online RAUQ recurrence with fixed heads: log c_l(y_i) from log p_i, a_l(i), log c_l(y_{i-1})."""

    layers: list[int]
    heads: dict[int, int]
    alpha: float

    def step(self, log_p: float, attn: np.ndarray | None, prev: np.ndarray | None) -> np.ndarray:
        """log c per layer for a new token; `prev` None restarts the chain (first token, or after a
        forced span), as for y_1: c = p."""
        if prev is None or attn is None:
            return np.full(len(self.layers), log_p)
        a = self.alpha
        with np.errstate(divide="ignore"):
            keep = (math.log(a) if a > 0 else -math.inf) + log_p
            carry = (math.log1p(-a) if a < 1 else -math.inf) + np.log(np.clip(attn, 0.0, None)) + prev
        return np.logaddexp(keep, carry)

    @staticmethod
    def token_score(log_c: np.ndarray) -> float:
        """The RAUQ token score: max over layers of -log c_l (the least confident layer)."""
        return float((-log_c).max())
