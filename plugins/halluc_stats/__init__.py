"""Paired statistics for hallucination experiments: McNemar, bootstrap, paired bootstrap, AUROC/AUPRC, PRR.

Python API (each also behind a `halluc stats` command):

    from halluc_stats import mcnemar, mcnemar_counts, bootstrap, paired_bootstrap, auroc, prr
    from halluc_stats import load_pairs, load_tables      # result files -> paired / per-file arrays
    from halluc_stats import paired_areas, holm           # several scores on shared resamples; Holm
    from halluc_stats import paired_prr                   # PRR of several scores on shared resamples

Names load on first use so that `halluc --help` never imports numpy, scipy or scikit-learn.
"""

from ucli.lazy import lazy_exports

_EXPORTS = {
    "mcnemar": "contingency",
    "mcnemar_counts": "contingency",
    "McNemarResult": "contingency",
    "bootstrap": "resampling",
    "paired_bootstrap": "resampling",
    "BootstrapResult": "resampling",
    "PairedBootstrapResult": "resampling",
    "auroc": "discrimination",
    "DiscriminationResult": "discrimination",
    "paired_areas": "discrimination",
    "holm": "multiple",
    "prr": "rejection",
    "paired_prr": "rejection",
    "rejection_curves": "rejection",
    "PRRResult": "rejection",
    "load_pairs": "inputs",
    "load_tables": "inputs",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
