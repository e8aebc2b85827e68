"""Uncertainty estimators that register themselves (`halluc.estimators`), and `halluc uq`.

The estimators themselves and their registry live in `halluc_signals`. Python API:

    from halluc_uq import score_estimators, build_report         # score once, then compare
    from halluc_uq import fit_normalization, apply_normalization  # raw scores -> [0, 1], saved

Names load on first use so that `halluc --help` never imports torch or scikit-learn.
"""

from ucli.lazy import lazy_exports

_EXPORTS = {
    "score_estimators": "scoring",
    "questions": "scoring",
    "UQ_SCHEMA": "scoring",
    "build_report": "report",
    "fit_normalization": "normalize",
    "apply_normalization": "normalize",
    "normalize_scores": "normalize",
    "NORMALIZATION_SCHEMA": "normalize",
    "calibration_errors": "report",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
