"""Score normalisation: a map from an estimator's raw values to [0, 1], fitted once on scored
answers, saved as an artifact and applied to new scores (answers scored later, another split).

`isotonic` maps a score to P(wrong), by isotonic regression of wrongness on the score (monotone,
so rankings and AUROC are kept up to ties). `minmax` rescales the fitted range to [0, 1],
clipping new scores outside it. Both keep "higher = more uncertain".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from halluc_uq.report import score_matrix
from ucli.errors import BadInput

NORMALIZATION_SCHEMA = "halluc.uq.normalization"
METHODS = ("isotonic", "minmax")


def fit_normalization(records: list[dict[str, Any]], method: str = "isotonic", source: str = "records") -> dict[str, Any]:  # fmt: skip
    """One map per estimator of the records (isotonic needs their `correct` verdicts); `source`
    (the file) starts every message."""
    from sklearn.isotonic import IsotonicRegression

    if method not in METHODS:
        raise BadInput(f"--method: unknown '{method}' (expected one of {', '.join(METHODS)})")
    names, values, correct, _ = score_matrix(records, source=source)
    maps = {}
    for j, name in enumerate(names):
        u = values[:, j]
        if method == "minmax":
            maps[name] = {"min": float(u.min()), "max": float(u.max())}
        else:
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(
                u, 1.0 - correct
            )
            maps[name] = {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    return {"method": method, "n": int(correct.size), "maps": maps}


def normalize_scores(doc: dict[str, Any], name: str, values) -> np.ndarray:
    """New raw values of estimator `name` through the fitted map (isotonic: linear between the
    fitted thresholds and flat beyond them, as scikit-learn predicts)."""
    if name not in doc["maps"]:
        raise BadInput(f"the normalization has no map for '{name}' (it has: {', '.join(doc['maps'])})")
    m, u = doc["maps"][name], np.asarray(values, dtype=np.float64)
    if doc["method"] == "minmax":
        span = m["max"] - m["min"]
        return np.clip((u - m["min"]) / span, 0.0, 1.0) if span > 0 else np.zeros_like(u)
    return np.interp(u, m["x"], m["y"])


def apply_normalization(doc: dict[str, Any], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records with `uq_normalized`: each estimator the maps cover, through its map (None stays None)."""

    def mapped(name: str, value: float | None) -> float | None:
        return None if value is None else float(normalize_scores(doc, name, [value])[0])

    return [
        {**r, "uq_normalized": {n: mapped(n, v) for n, v in r["uq"].items() if n in doc["maps"]}}
        for r in records
    ]
