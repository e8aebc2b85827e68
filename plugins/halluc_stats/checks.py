"""Argument checks shared by every statistic, so each refuses bad input with the same words."""

from __future__ import annotations

import numpy as np

from ucli.errors import BadInput


def finite_vector(values, name: str) -> np.ndarray:
    """A non-empty 1-D float array without NaN or infinity."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise BadInput(f"{name}: no values (expected a non-empty 1-D array, got shape {x.shape})")
    if not np.all(np.isfinite(x)):
        raise BadInput(f"{name} contains NaN or infinity")
    return x


def paired_vectors(x, y, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Two finite 1-D arrays of one length (item i of one belongs with item i of the other)."""
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xa.shape != ya.shape:
        raise BadInput(
            f"{names[0]} and {names[1]} must be 1-D arrays of one length, got {xa.shape} and {ya.shape}"
        )
    return finite_vector(xa, names[0]), finite_vector(ya, names[1])


def require_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise BadInput(f"confidence must be between 0 and 1, got {confidence}")
