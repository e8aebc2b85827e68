"""`halluc probe`: semantic entropy (Farquhar et al., 2024) and semantic-entropy probes (Kossen et al.,
2024), end to end: sample, cluster by meaning, read hidden states, build, train, evaluate, explore.

Python API: `runs.generate_runs`, `entropy.compute_entropy`, `hidden.trace_hidden`, `dataset.build_dataset`,
`probes.train_probes` / `probes.evaluate_probes`, `analyze.analyze`. The equivalence judges and
the entropies over their clusters live in `halluc_judges`; the probe plugin exports nothing to others.

Names load on first use so that `halluc --help` never imports numpy or torch.
"""

from ucli.lazy import lazy_exports

_EXPORTS: dict[str, str] = {}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
