"""A claim's view of a scored record: the record cut to the answer tokens the claim rests on, so that
an estimator that reads only per-token statistics scores the claim as it scores an answer.

Which estimators can: those marked `claims=True` (`Estimator.claims`): the token log-probs, entropies,
margins and CCP's alternatives are per token, so over a claim's tokens `msp` is LM-Polygraph's
MaximumClaimProbability, `perplexity` its PerplexityClaim, `max_token_entropy` its
MaxTokenEntropyClaim, and `ccp` its claim-level CCP (plus 1, as at sequence level). `rauq` scores
a claim by its own rule (`Estimator.claim_compute`): the mean of its tokens' RAUQ scores, each the
max over layers of -log c_l(y_i) with the recurrence run over the whole answer (the sequence value,
max over layers of the mean, needs per-layer token values a record does not keep). Estimators that
read a whole-answer value (the samples, p(True)) are not marked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# the record's fields that hold one value per answer token
PER_TOKEN = ("token_ids", "tokens", "token_probs", "token_logprobs", "token_entropy", "token_margin",
             "token_alternatives", "token_rauq", "token_relevance")  # fmt: skip


def claim_view(record: Mapping[str, Any], tokens: list[int], text: str) -> dict[str, Any]:
    """`record` with every per-token field cut to `tokens` (indices into the answer's tokens) and
    `completion` the claim's text; an unaligned claim (no tokens) has an empty view."""
    view = {key: value for key, value in record.items() if key not in PER_TOKEN}
    for key in PER_TOKEN:
        if record.get(key) is not None:
            view[key] = [record[key][t] for t in tokens]
    view["completion"] = text
    return view


def claim_estimators(available: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The estimators that score claims (`claims=True`), by name."""
    from halluc_signals.estimators import registry

    available = available if available is not None else registry()
    return {name: e for name, e in available.items() if e.claims}
