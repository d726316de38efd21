"""Optimal one-to-one assignment on a cost matrix (Hungarian method via scipy), a pure function."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import linear_sum_assignment


def linear_assignment(
    cost: ArrayLike, max_cost: float
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Match rows to columns one-to-one, minimising the total cost of the accepted pairs.

    A pair is *allowed* when its cost is finite and ``<= max_cost``; forbidden pairs (``inf``,
    ``nan`` or above ``max_cost``) are never returned. Among allowed pairs the result is a minimum-cost
    partial matching: every allowed pair is worth ``max_cost - cost`` and the total worth is maximised,
    so a pair is never accepted only to make the matching larger (unlike solving on the raw matrix and
    dropping bad pairs afterwards, a forbidden pair never displaces a good one).

    Args:
        cost: (R, C) cost matrix; any real values, ``inf``/``nan`` mark forbidden pairs.
        max_cost: Largest acceptable cost of a pair (finite).

    Returns:
        ``(matches, unmatched_rows, unmatched_cols)``: (K, 2) int64 ``(row, col)`` pairs sorted by row,
        and the sorted int64 indices of rows and columns left without a partner.

    Raises:
        ValueError: ``cost`` is not 2-D or ``max_cost`` is not finite.

    Example:
        >>> m, r, c = linear_assignment([[0.1, 0.9], [0.2, np.inf], [0.5, 0.6]], max_cost=0.7)
        >>> m.tolist(), r.tolist(), c.tolist()
        ([[0, 0], [2, 1]], [1], [])
    """
    c = np.array(cost, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError(f"cost must be a 2-D matrix, got shape {c.shape}")
    if not np.isfinite(max_cost):
        raise ValueError(f"max_cost must be finite, got {max_cost!r}")
    n_rows, n_cols = c.shape
    with np.errstate(invalid="ignore"):
        allowed = np.isfinite(c) & (c <= max_cost)
    matches = np.zeros((0, 2), np.int64)
    if allowed.any():
        # Forbidden pairs cost exactly max_cost: choosing one gains nothing over leaving both free.
        solvable = np.where(allowed, c, max_cost)
        rows, cols = linear_sum_assignment(solvable)
        keep = allowed[rows, cols]
        matches = np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)
    unmatched_rows = np.setdiff1d(np.arange(n_rows), matches[:, 0]).astype(np.int64)
    unmatched_cols = np.setdiff1d(np.arange(n_cols), matches[:, 1]).astype(np.int64)
    return matches, unmatched_rows, unmatched_cols
