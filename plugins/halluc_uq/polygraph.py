"""The LM-Polygraph bridge (`pip install halluc[polygraph]`): LM-Polygraph's estimators that halluc
has no version of, fed with the statistics `uq score` already computed (no second generation).

`polygraph_stats(record)` turns one scored record into LM-Polygraph's statistics for a batch of
one; `BRIDGED` holds an `Estimator` per bridged class, named `lmpg_<class in snake case>`, and is
empty when LM-Polygraph is not installed (found without importing it: its import takes seconds,
paid on the first bridged value only). The tests feed the same statistics to LM-Polygraph's
versions of halluc's own estimators and compare the values (docs/uq.md lists the differences).

Only classes whose every input halluc records are bridged: those that read full-vocabulary
distributions, attention maps or training-set embeddings are not.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from typing import Any

from halluc_signals import Estimator

POLYGRAPH = "lm_polygraph"


def polygraph_stats(r: Mapping[str, Any]) -> dict[str, Any]:
    """LM-Polygraph's statistics (batch of one) for what `r` holds: the greedy answer's tokens,
    log-likelihoods and entropies, and as recorded p(True), token relevance (as similarity),
    alternatives with NLI verdicts, samples, the judge's similarity W and its clusters."""
    import numpy as np

    stats: dict[str, Any] = {  # a model behind an API gives token strings, or no tokens at all
        "greedy_tokens": [list(r.get("token_ids", r.get("tokens")) or [])],
        "greedy_texts": [r["completion"]],
        "greedy_log_likelihoods": [np.asarray(r.get("token_logprobs") or [])],
        "entropy": [np.asarray(r.get("token_entropy") or [])],
    }
    if r.get("p_true") is not None:
        stats["p_true"] = [r["p_true"]]
    if r.get("token_relevance") is not None:
        stats["token_similarity"] = [1.0 - np.asarray(r["token_relevance"])]
    if r.get("token_alternatives") is not None:
        steps = r["token_alternatives"]
        stats["greedy_tokens_alternatives"] = [[[(i, lp) for i, lp, *_ in alts] for alts in steps]]
        stats["greedy_tokens_alternatives_nli"] = [[_nli_matrix(alts) for alts in steps]]
    stats.update(_sample_stats(r))
    if r.get("sample_clusters") is not None:
        clusters = list(r["sample_clusters"])
        order = {c: k for k, c in enumerate(dict.fromkeys(clusters))}  # classes numbered as first seen
        stats["semantic_classes_entail"] = {
            "sample_to_class": {0: {i: order[c] for i, c in enumerate(clusters)}},
            "class_to_sample": {0: [[i for i, c in enumerate(clusters) if c == k] for k in order]},
        }
    return stats


def _sample_stats(r: Mapping[str, Any]) -> dict[str, Any]:
    """The samples' statistics: texts, tokens, log-likelihoods where recorded, relevance, and the
    judge's similarity as entailment (its complement as contradiction: no neutral class)."""
    import numpy as np

    stats: dict[str, Any] = {}
    samples = r.get("samples")
    if samples:
        stats.update(
            sample_texts=[[s["answer"] for s in samples]],
            sample_tokens=[[list(s.get("token_ids", s.get("tokens")) or []) for s in samples]],
        )
        if all(s.get("logprobs") is not None for s in samples):
            stats.update(sample_log_likelihoods=[[np.asarray(s["logprobs"]) for s in samples]],
                         sample_log_probs=[[float(np.sum(s["logprobs"])) for s in samples]])  # fmt: skip
        if all("relevance" in s for s in samples):
            stats["sample_token_similarity"] = [[1.0 - np.asarray(s["relevance"]) for s in samples]]
    if r.get("sample_similarity") is not None:
        w = np.asarray(r["sample_similarity"], dtype=np.float64)
        stats["sample_sentence_similarity"] = [w]
        # the judge's similarity as entailment and its complement as contradiction (no neutral class)
        stats["semantic_matrix_entail"] = np.asarray([w])
        stats["semantic_matrix_contra"] = np.asarray([1.0 - w])
    if r.get("greedy_similarity") is not None:
        stats["greedy_sentence_similarity"] = [np.asarray(r["greedy_similarity"], dtype=np.float64)]
    return stats


def _nli_matrix(alts: list[Any]) -> list[list[str]]:
    """LM-Polygraph's per-token NLI matrix: row 0 the chosen word against each, column 0 back."""
    n = len(alts)
    matrix = [["" for _ in range(n)] for _ in range(n)]
    for i, (_, _, forward, backward) in enumerate(alts):
        matrix[0][i], matrix[i][0] = forward, backward
    matrix[0][0] = "entail"
    return matrix


def polygraph_value(cls_name: str, record: Mapping[str, Any], **kwargs: Any) -> float:
    """LM-Polygraph's `cls_name` estimator on `record`'s statistics."""
    import lm_polygraph.estimators as estimators

    return float(getattr(estimators, cls_name)(**kwargs)(polygraph_stats(record))[0])


# LM-Polygraph's class, what it needs of halluc, its reference, its formula as LM-Polygraph computes it
# (MonteCarloSequenceEntropy was bridged until halluc's `mc_sequence_entropy`)
SPECS = (
    ("MonteCarloNormalizedSequenceEntropy", frozenset({"samples", "sample-logprobs"}),
     "length-normalised Monte Carlo sequence entropy (Malinin and Gales 2021)", "-(1/K) sum_i log p(s_i) / |s_i|"),
    ("LabelProb", frozenset({"samples", "judge"}), "one minus the largest cluster's share", "1 - max_c n_c / K"),
)  # fmt: skip


def _bridge(cls_name: str, needs: frozenset[str], reference: str, formula: str) -> Estimator:
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", cls_name).lower()
    return Estimator(f"lmpg_{snake}", lambda r: polygraph_value(cls_name, r), needs,
                     reference=f"LM-Polygraph {cls_name}: {reference}", formula=formula)  # fmt: skip


BRIDGED: tuple[Estimator, ...] = (
    tuple(_bridge(*spec) for spec in SPECS) if importlib.util.find_spec(POLYGRAPH) is not None else ()
)
