"""Uncertainty estimators as plugins (entry-point group `halluc.estimators`), and the built-in
single-pass ones: each computes one number per answer, higher = more uncertain, from the
statistics one greedy decode already recorded (`halluc_signals.score`'s records).

A record holds, per generated token: `token_logprobs` (log p of the chosen token), `token_entropy`
(entropy of the step's distribution, nats), `token_margin` (top-1 minus top-2 probability); and
per answer `rauq` and `rauq_entropy` (RAUQ and its entropy variant, from attention captured
during the same decode). An empty answer has no tokens: every estimator gives None for it.

A token-level estimator also has a `step`: its value for one token from that token's `TokenStep`
(log p, entropy, margin, RAUQ token score). The step is what the controller's `--signal` tests
against theta while it decodes and what `calibrate threshold --signal` fits theta on; an answer
fires when its peak step value (max, or min for a signal that `fires` below) crosses theta.

A third-party estimator is one `Estimator` object and one entry point:

    [project.entry-points."halluc.estimators"]
    my_score = "my_pkg.uq:MY_SCORE"
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ucli.errors import BadInput

# what an estimator may need is what the installed stages provide (`halluc_signals.stages`, docs/uq.md)
SINGLE_PASS = frozenset({"logprobs", "distributions", "attention"})  # what one greedy decode feeds


@dataclass(frozen=True)
class TokenStep:
    """One token as the controller sees it when it decides whether to fire: floats while decoding,
    or one numpy array per field over an answer's tokens (so a `step` must be elementwise)."""

    logprob: Any  # log p of the token
    entropy: Any  # entropy of the step's distribution (nats)
    margin: Any  # top-1 minus top-2 probability
    rauq: Any  # RAUQ token score at fixed heads (NaN when no heads were given)


@dataclass(frozen=True)
class Estimator:
    """One uncertainty method: `compute(record)` gives its value (higher = more uncertain) or None;
    `step`, when given, its per-token value, usable as a trigger `signal` that fires `above` or
    `below` theta."""

    name: str
    compute: Callable[[Mapping[str, Any]], float | None]
    needs: frozenset[str] = frozenset({"logprobs"})
    level: str = "sequence"  # "sequence", "token+sequence" with a step, or "claim" (claims only)
    reference: str = ""
    formula: str = ""
    step: Callable[[TokenStep], Any] | None = None
    signal: str = ""  # the trigger's name (default: the estimator's)
    fires: str = "above"
    claims: bool = False  # reads only per-token statistics, so it scores a claim's tokens too (claim_view)
    claim_compute: Callable[[Mapping[str, Any]], float | None] | None = (
        None  # a claim's value, where not `compute`
    )

    def __post_init__(self) -> None:
        if self.fires not in ("above", "below"):
            raise ValueError(f"estimator {self.name!r}: fires must be 'above' or 'below', not {self.fires!r}")
        if self.step is not None:
            object.__setattr__(self, "signal", self.signal or self.name)
            object.__setattr__(self, "level", "token+sequence")

    def __call__(self, record: Mapping[str, Any]) -> float | None:
        if not answered(record):
            return None
        value = self.compute(record)
        return None if value is None or math.isnan(value) else float(value)

    def claim_value(self, view: Mapping[str, Any]) -> float | None:
        """The value over one claim's tokens (`halluc_signals.claim_view`)."""
        if self.claim_compute is None:
            return self(view)
        value = self.claim_compute(view)  # it says itself when the view holds too little
        return None if value is None or math.isnan(value) else float(value)


def answer_scores(record: Mapping[str, Any], estimators: list[Estimator]) -> dict[str, float | None]:
    """Each estimator's value for a whole answer (claim-level-only estimators have none)."""
    return {e.name: e(record) for e in estimators if e.level != "claim"}


def answered(record: Mapping[str, Any]) -> bool:
    """Whether a record holds an answer: tokens where it has them (a local decode's ids, an API's
    token strings), else a non-blank text (an API that returns no tokens)."""
    for key in ("token_ids", "tokens"):
        if key in record:
            return bool(record[key])
    return bool(str(record.get("completion") or "").strip())


def _logprobs(r: Mapping[str, Any]) -> list[float]:
    return list(r["token_logprobs"])


MSP = Estimator(
    "msp", lambda r: -sum(_logprobs(r)), frozenset({"logprobs"}),
    reference="Maximum sequence probability (Fadeeva et al. 2023, LM-Polygraph MaximumSequenceProbability)",
    formula="-sum_t log p(y_t | y_<t, x)",
    claims=True,
)  # fmt: skip
PERPLEXITY = Estimator(
    "perplexity", lambda r: -sum(_logprobs(r)) / len(_logprobs(r)), frozenset({"logprobs"}),
    reference="Perplexity (Fomicheva et al. 2020; LM-Polygraph Perplexity: the mean negative log-likelihood)",
    formula="-(1/N) sum_t log p(y_t | y_<t, x)",
    claims=True,
)  # fmt: skip
MEAN_TOKEN_ENTROPY = Estimator(
    "mean_token_entropy", lambda r: sum(r["token_entropy"]) / len(r["token_entropy"]), frozenset({"distributions"}),
    reference="Mean token entropy (Fomicheva et al. 2020; LM-Polygraph MeanTokenEntropy)",
    formula="(1/N) sum_t H(p(. | y_<t, x))",
    claims=True,
)  # fmt: skip
MAX_TOKEN_ENTROPY = Estimator(
    "max_token_entropy", lambda r: max(r["token_entropy"]), frozenset({"distributions"}),
    reference="Maximum token entropy (Fadeeva et al. 2023; the peak of the per-token entropy)",
    formula="max_t H(p(. | y_<t, x))", step=lambda s: s.entropy, signal="entropy",
    claims=True,
)  # fmt: skip
MIN_TOKEN_PROBABILITY = Estimator(
    "min_token_probability", lambda r: 1.0 - math.exp(min(_logprobs(r))), frozenset({"logprobs"}),
    reference="Least likely token (Manakul et al. 2023, SelfCheckGPT's Max(-log p) in probability form)",
    formula="1 - min_t p(y_t | y_<t, x)", step=lambda s: 1.0 - np.exp(s.logprob),
    claims=True,
)  # fmt: skip
TOP2_MARGIN = Estimator(
    "top2_margin", lambda r: 1.0 - min(r["token_margin"]), frozenset({"distributions"}),
    reference="Top-2 probability margin at the least confident token (the controller's margin signal)",
    formula="1 - min_t (p_(1),t - p_(2),t)", step=lambda s: s.margin, signal="margin", fires="below",
    claims=True,
)  # fmt: skip
RAUQ = Estimator(
    "rauq", lambda r: r.get("rauq"), frozenset({"logprobs", "attention"}),
    reference="RAUQ (Vazhentsev et al. 2025): recurrent attention-weighted confidence, max over layers",
    formula="max_l -(1/N) sum_i log c_l(y_i), c_l = a p + (1 - a) attn_l(i, i-1) c_l(y_(i-1))",
    step=lambda s: s.rauq,  # the token score max_l -log c_l(y_i), at the calibrated heads
    claims=True, claim_compute=lambda v: float(np.mean(v["token_rauq"])) if v.get("token_rauq") else None,
)  # fmt: skip
RAUQ_ENTROPY = Estimator(
    "rauq_entropy", lambda r: r.get("rauq_entropy"), frozenset({"distributions", "attention"}),
    reference="RAUQ's entropy variant (Vazhentsev et al. 2025, sec. 3): log(log|V| - H_i) in place of log p",
    formula="RAUQ with log p(y_i) replaced by log(log|V| - H_i)",
)  # fmt: skip

ATTENTION_SCORE = Estimator(
    "attention_score", lambda r: r.get("attention_score"), frozenset({"attention"}),
    reference="Attention score (Sriramanan et al. 2024, LLM-Check; LM-Polygraph AttentionScore gen_only)",
    formula="-(1/H) sum_h sum_(i>=2) log(A_h(i, i) + 1e-12), own-key attention of the answer's tokens at layer L//2",
)  # fmt: skip


def _token_sar(r: Mapping[str, Any]) -> float | None:
    relevance = r.get("token_relevance")
    return None if relevance is None else relevance_weighted_nll(_logprobs(r), relevance)


def relevance_weighted_nll(logprobs: list[float], relevance: list[float]) -> float:
    """TokenSAR: the token NLLs weighted by normalised relevance (uniform when no token is relevant)."""
    weights = np.asarray(relevance, dtype=np.float64)
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(weights), 1.0 / len(weights))
    return float(-(weights * np.asarray(logprobs)).sum())


TOKEN_SAR = Estimator(
    "token_sar", _token_sar, frozenset({"logprobs", "relevance"}),
    reference="TokenSAR (Duan et al. 2024, shifting attention to relevance; LM-Polygraph TokenSAR)",
    formula="-sum_t R~_t log p_t, R_t = 1 - sim(answer, answer without y_t), R~ = R / sum R",
)  # fmt: skip


def _p_true(r: Mapping[str, Any]) -> float | None:
    if r.get("p_true") is None:
        return None
    return -float(r["p_true"] - np.logaddexp(r["p_true"], r["p_false"]))


P_TRUE = Estimator(
    "p_true", _p_true, frozenset({"second-prompt"}),
    reference="P(True) (Kadavath et al. 2022, LM-Polygraph PTrue's prompt), over the two answers True and False",
    formula="-log [p(True) / (p(True) + p(False))] as the reply's first token",
    claims=True, claim_compute=_p_true,  # a claim's view holds the claim's own p_true (the claim as the answer)
)  # fmt: skip


def _combined(forward: str, backward: str) -> str:
    """One verdict from NLI(a, b) and NLI(b, a), as LM-Polygraph's CCP: agreement wins; entail with
    contra is neutral; otherwise entail or contra over neutral."""
    if forward == backward:
        return forward
    if {forward, backward} == {"entail", "contra"}:
        return "neutral"
    return next((v for v in ("entail", "contra") if v in (forward, backward)), "neutral")


def _ccp(r: Mapping[str, Any]) -> float | None:
    steps = r.get("token_alternatives")
    if steps is None:
        return None
    total = 0.0
    for alts in steps:
        # the chosen token entails itself
        verdicts = ["entail", *(_combined(f, b) for _, _, f, b in alts[1:])]
        entail = [lp for (_, lp, *_), v in zip(alts, verdicts, strict=True) if v == "entail"]
        contra = [lp for (_, lp, *_), v in zip(alts, verdicts, strict=True) if v == "contra"]
        total += np.logaddexp.reduce(entail) - np.logaddexp.reduce(entail + contra)
    return 1.0 - math.exp(total)


CCP = Estimator(
    "ccp", _ccp, frozenset({"distributions", "judge", "alternatives"}),
    reference="Claim-conditioned probability (Fadeeva et al. 2024; LM-Polygraph CCP, which is this minus 1)",
    formula="1 - prod_t sum_(w entails y_t) p(w) / sum_(w entails or contradicts y_t) p(w), over the top-10 words w at t",
    claims=True,
)  # fmt: skip

BUILT_IN = (MSP, PERPLEXITY, MEAN_TOKEN_ENTROPY, MAX_TOKEN_ENTROPY, MIN_TOKEN_PROBABILITY, TOP2_MARGIN, RAUQ,
            RAUQ_ENTROPY, ATTENTION_SCORE, TOKEN_SAR, P_TRUE, CCP)  # fmt: skip


def registry() -> dict[str, Estimator]:
    """Every estimator that loaded, by name (entry points `halluc.estimators`, each one `Estimator`
    or a tuple of them, as the LM-Polygraph bridge; a failed one is listed by `halluc plugins`)."""
    from ucli import plugins

    found = {}
    for info in plugins.discover("estimators"):
        if info.status != "ok":
            continue
        for estimator in info.obj if isinstance(info.obj, tuple) else (info.obj,):
            if isinstance(estimator, Estimator):
                found[estimator.name if isinstance(info.obj, tuple) else info.name] = estimator
    return found


def token_signals(available: dict[str, Estimator] | None = None) -> dict[str, Estimator]:
    """The estimators with a per-token step, by signal name: what `--signal` may name."""
    available = available if available is not None else registry()
    return {e.signal: e for e in available.values() if e.step is not None}


def token_signal(name: str) -> Estimator:
    """The estimator behind a trigger signal, or one line naming the ones there are."""
    signals = token_signals()
    if name not in signals:
        raise BadInput(f"--signal: unknown signal '{name}' (expected one of {', '.join(signals)})")
    return signals[name]


def choose(spec: str, available: dict[str, Estimator] | None = None) -> list[Estimator]:
    """`single-pass` (what one greedy decode feeds), `all`, or a comma list of names in the order
    given; an unknown name lists the known ones."""
    available = available if available is not None else registry()
    answers = [e for e in available.values() if e.level != "claim"]  # claim-only ones are named
    if spec.strip() == "all":
        return answers
    if spec.strip() == "single-pass":
        return [e for e in answers if e.needs <= SINGLE_PASS]
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in available]
    if unknown or not names:
        raise BadInput(f"--estimators: unknown estimator {unknown[0] if unknown else spec!r} "
                       f"(available: {', '.join(available)}, or single-pass, or all)")  # fmt: skip
    return [available[n] for n in dict.fromkeys(names)]
