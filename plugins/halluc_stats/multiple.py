"""Multiple-comparison corrections for families of tests (several estimators against one reference)."""

from __future__ import annotations

import numpy as np


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979): controls the family-wise error rate without
    assuming independence. The i-th smallest p is multiplied by (m - i), running maxima keep the
    order, and nothing exceeds 1; NaN p-values are left out of the family and stay NaN."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    order = np.argsort(p[ok], kind="stable")
    scaled = np.minimum(1.0, np.maximum.accumulate(p[ok][order] * (m - np.arange(m))))
    adjusted = np.empty(m)
    adjusted[order] = scaled
    out[ok] = adjusted
    return out
