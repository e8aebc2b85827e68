"""`halluc probe`: semantic entropy (Farquhar et al., 2024) and semantic-entropy probes (Kossen et al.,
2024), end to end: sample, cluster by meaning, read hidden states, build, train, evaluate, explore.

Python API: `semantic_entropy` (the formulas), `equivalence` (exact / embedding / NLI judges),
`runs.generate_runs`, `entropy.compute_entropy`, `hidden.trace_hidden`, `dataset.build_dataset`,
`probes.train_probes` / `probes.evaluate_probes`, `analyze.analyze`. What other plugins use:

    from halluc_probe import make_judge, check_judge, JUDGE_KINDS   # when two answers mean the same
    from halluc_probe import cluster_ids, weighted_entropy, discrete_entropy

Names load on first use so that `halluc --help` never imports numpy or torch.
"""

from ucli.lazy import lazy_exports

_EXPORTS = {
    "make_judge": "equivalence",
    "check_judge": "equivalence",
    "JUDGE_KINDS": "equivalence",
    "cluster_ids": "semantic_entropy",
    "weighted_entropy": "semantic_entropy",
    "discrete_entropy": "semantic_entropy",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
