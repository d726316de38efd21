"""The split score finds where a tracklet's body appearance changes, and calls one look "same"."""

from __future__ import annotations

import numpy as np

from bench_split_score import best_split
from fancam.identity.body import DEFAULT_CONFIG, BodyCalibration


def _looks(rng: np.random.Generator, base: np.ndarray, n: int) -> np.ndarray:
    """``n`` noisy descriptors around ``base``, each block L2-normalised as the body code makes them."""
    out = np.abs(base + 0.05 * rng.standard_normal((n, base.size))).astype(np.float32)
    for s, size in DEFAULT_CONFIG.layout.spans():
        out[:, s : s + size] /= np.linalg.norm(out[:, s : s + size], axis=1, keepdims=True)
    return out


def test_a_change_of_look_is_split_where_it_happens_and_one_look_is_not() -> None:
    rng = np.random.default_rng(0)
    dim = DEFAULT_CONFIG.layout.dim
    first, second = rng.random(dim), rng.random(dim)
    cal = BodyCalibration(slope=40.0, intercept=-36.0)  # p = 0.5 at similarity 0.9
    changed = np.concatenate([_looks(rng, first, 4), _looks(rng, second, 3)])
    at, proto, cross_within = best_split(changed, 2, cal, cal)
    assert at == 4 and proto < -4.0 and cross_within < -4.0
    at, proto, _ = best_split(_looks(rng, first, 7), 2, cal, cal)
    assert 2 <= at <= 5 and proto > 2.0
