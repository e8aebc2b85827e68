"""Judges: when two answers to one question mean the same (exact, embedding, NLI), the clusters
they make, and the entropies over those clusters. `halluc uq` and `halluc probe` both use them;
and the correctness judges: a model grading an answer against its references, and panels of them.

Python API:

    from halluc_judges import make_judge, check_judge, JUDGE_KINDS   # equivalence judges
    from halluc_judges import cluster_ids, weighted_entropy, discrete_entropy, naive_entropy
    from halluc_judges import Judge, Item, Panel, PROMPTS, FACT_CHECK      # correctness judges

Names load on first use so that `halluc --help` never imports numpy or torch.
"""

from ucli.lazy import lazy_exports

_EXPORTS = {
    "make_judge": "equivalence",
    "check_judge": "equivalence",
    "JUDGE_KINDS": "equivalence",
    "ExactJudge": "equivalence",
    "EmbeddingJudge": "equivalence",
    "NLIJudge": "equivalence",
    "cluster_ids": "clusters",
    "weighted_entropy": "clusters",
    "discrete_entropy": "clusters",
    "naive_entropy": "clusters",
    "best_split_threshold": "clusters",
    "Judge": "correctness",
    "Item": "correctness",
    "FACT_CHECK": "correctness",
    "GradePrompt": "correctness",
    "parse_spec": "correctness",
    "PROMPTS": "correctness",
    "Panel": "panel",
    "fleiss_kappa": "panel",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
