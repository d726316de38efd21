"""linear_assignment: optimal partial matching under a cost ceiling, checked by brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fancam.tracking.assign import linear_assignment

INF = np.inf


@pytest.mark.parametrize(
    ("cost", "max_cost", "matches", "free_rows", "free_cols"),
    [
        # nothing to match
        (np.zeros((0, 0)), 1.0, [], [], []),
        # rows without columns / columns without rows
        (np.zeros((2, 0)), 1.0, [], [0, 1], []),
        (np.zeros((0, 3)), 1.0, [], [], [0, 1, 2]),
        # the diagonal is cheapest
        ([[0.1, 0.9], [0.8, 0.2]], 1.0, [[0, 0], [1, 1]], [], []),
        # the anti-diagonal is cheaper in total although (0, 0) is the single best pair
        ([[0.1, 0.2], [0.3, 0.9]], 1.0, [[0, 1], [1, 0]], [], []),
        # more columns than rows: the spare column stays free
        ([[0.5, 0.1, 0.7]], 1.0, [[0, 1]], [], [0, 2]),
        # a pair above max_cost is refused even when it is the only one
        ([[0.6]], 0.5, [], [0], [0]),
        # a pair exactly at max_cost is acceptable
        ([[0.5]], 0.5, [[0, 0]], [], []),
        # inf and nan mark forbidden pairs
        ([[INF, 0.3], [np.nan, INF]], 1.0, [[0, 1]], [1], [0]),
        # all forbidden
        ([[INF, INF], [INF, INF]], 1.0, [], [0, 1], [0, 1]),
        # negative costs (similarities) are fine
        ([[-0.9, -0.35], [-0.35, INF]], 0.0, [[0, 0]], [1], [1]),
        # a good pair is never broken up just to make the matching larger: row 0 keeps column 0
        # (worth 0.9) rather than rows 0-1 and 1-0 (worth 0.35 + 0.35)
        ([[0.1, 0.65], [0.65, INF]], 1.0, [[0, 0]], [1], [1]),
    ],
)
def test_table(cost, max_cost, matches, free_rows, free_cols):
    m, r, c = linear_assignment(cost, max_cost)
    assert m.dtype == r.dtype == c.dtype == np.int64
    assert m.shape == (len(matches), 2)
    assert m.tolist() == matches
    assert r.tolist() == free_rows
    assert c.tolist() == free_cols


def _best_total(cost: np.ndarray, max_cost: float) -> float:
    """Largest total worth (max_cost - cost) over all partial matchings, by enumeration."""
    n, m = cost.shape
    best = 0.0
    for k in range(1, min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                c = cost[list(rows), list(cols)]
                if np.all(np.isfinite(c)) and np.all(c <= max_cost):
                    best = max(best, float(np.sum(max_cost - c)))
    return best


@pytest.mark.parametrize("seed", range(30))
def test_matches_brute_force_on_random_matrices(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 5, size=2)
    cost = rng.uniform(0, 1, size=(n, m))
    cost[rng.uniform(size=(n, m)) < 0.2] = INF
    max_cost = 0.6
    matches, free_rows, free_cols = linear_assignment(cost, max_cost)
    total = float(np.sum(max_cost - cost[matches[:, 0], matches[:, 1]])) if len(matches) else 0.0
    assert total == pytest.approx(_best_total(cost, max_cost))
    # every pair is allowed, rows and columns are used once, and the free lists complete them
    assert np.all(cost[matches[:, 0], matches[:, 1]] <= max_cost)
    assert sorted(matches[:, 0].tolist() + free_rows.tolist()) == list(range(n))
    assert sorted(matches[:, 1].tolist() + free_cols.tolist()) == list(range(m))


def test_input_is_not_modified():
    cost = np.array([[0.2, INF], [0.9, 0.1]])
    before = cost.copy()
    linear_assignment(cost, 0.5)
    np.testing.assert_array_equal(cost, before)


@pytest.mark.parametrize(
    ("cost", "max_cost", "message"),
    [
        ([0.1, 0.2], 1.0, "2-D"),  # a vector is not a cost matrix
        ([[0.1]], INF, "max_cost"),  # the ceiling must be finite
        ([[0.1]], np.nan, "max_cost"),
    ],
)
def test_rejects_bad_input(cost, max_cost, message):
    with pytest.raises(ValueError, match=message):
        linear_assignment(cost, max_cost)
