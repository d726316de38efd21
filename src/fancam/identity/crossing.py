"""Who is who after a crossing: motion evidence between tracklets that end and start close together.

When two look-alike dancers cross, the tracker may swap them, so the tracklet stage cuts both tracks
at the overlap and appearance alone has to join the pieces again - a coin toss when the costumes are
identical. But people keep moving: the dancer walking right before the crossing is the one walking
right after it. This module pairs the tracklets that *end* near a moment and place with those that
*start* there, by how well their motion agrees, and turns the pairing into log-odds:

1. **Motion cost** of every (ender a, starter b) pair of one shot, b starting at most ``max_gap_s``
   after a ends: a's end is extrapolated at its velocity to b's first frame and b's start back to a's
   last frame, and the mean distance of each prediction from the other's actual centre is measured
   in box heights and divided by the uncertainty ``position_sigma + sigma_growth * gap``. (Not at the
   middle of the gap: crossing dancers meet there, whoever is who; at the two ends they are apart.)
   The change of box height adds ``|log(h_b / h_a)| / log(size_scale)``. Pairs costing more than
   ``gate`` are not candidates. A box touching the left or right side of the frame has no reliable
   centre (the person may be partly outside it), so such ends take no part.
2. **Episodes**: enders and starters connected by candidate pairs form one episode (two dancers
   crossing: two enders, two starters).
3. **Assignment**: in each episode the enders are paired with the starters by minimum total cost
   (Hungarian; anyone may stay unpaired at cost ``gate``: she left, hid, or just arrived).
4. **Evidence** from the margins: a chosen pair gets ``+log_odds * min(1, margin / full_margin)``,
   the margin being how much more the next option of either side costs (staying unpaired included);
   a pair not chosen whose two sides are both paired otherwise (the crossed pair) gets
   ``-log_odds * min(1, extra / full_margin)``, ``extra`` being how much more it costs than the
   dearer of the two chosen pairs. Someone left unpaired gets no negative evidence (she may have
   left), and a crossing whose outcomes move equally well says nothing.

Measured against GT on the 7 labelled clips (202 candidate pairs cut at an overlap whose two sides
GT identifies): 55 pairs got positive evidence, all the same person; 60 got negative evidence, 50
different people and 10 the same (all but one between 0 and -1). The velocity difference of the two ends
did not separate the same from different people (AUC 0.61 alone, lower combined) and is not used.
The result is the linker's continuity cue for pairs the tracklet stage cut at an overlap
(:func:`fancam.identity.linking.pairwise_evidence`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from fancam.errors import UsageError
from fancam.tracking.tracklets import TrackletInfo


@dataclass(frozen=True)
class CrossingConfig:
    """Thresholds of the crossing resolver.

    Attributes:
        max_gap_s: Longest time (seconds) from an ender's last frame to a starter's first frame.
            Overlap episodes of crossing dancers last 0.3-1 s (tiktok_stage_ballet f15-f27 0.4 s,
            miryala_stage_dance f270-f297 0.9 s).
        position_sigma: Uncertainty of a predicted centre at no gap, in box heights.
        sigma_growth: Growth of that uncertainty per second of gap, in box heights (a dancer changes
            direction within a second).
        size_scale: A change of box height by this factor costs one unit (as much as one sigma of
            position). Boxes at an overlap are often cut by the other body, so height counts little:
            on the labelled clips' candidate pairs the AUC (same vs different person) was 0.882 on
            position alone, 0.884 with size_scale 5, 0.866 with 1.5.
        gate: Pairs costing more are not candidates; also the cost of leaving someone unpaired.
            Measured (same / different person among the candidate pairs): cost < 0.5: 53 / 9;
            0.5-1: 13 / 36; 1-1.5: 8 / 21; above 1.5: 5 / 57.
        full_margin: A margin of this much cost gives the full ``log_odds``. (A first version with
            margins of the whole assignment, gate 3 and full margin 2 gave 9 positive pairs of
            different people on dance2, miryala and linedance, and 18 negative pairs of one person.)
        log_odds: Log-odds of a clear pairing (and minus that of a clearly crossed pair); the same
            as a clean continuation (``LinkingConfig.continuity_log_odds``).
    """

    max_gap_s: float = 1.2
    position_sigma: float = 0.3
    sigma_growth: float = 0.5
    size_scale: float = 4.0
    gate: float = 1.5
    full_margin: float = 1.0
    log_odds: float = 3.0

    def __post_init__(self) -> None:
        for name in ("max_gap_s", "sigma_growth", "log_odds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise UsageError(f"CrossingConfig.{name} must be >= 0, got {value!r}")
        for name in ("position_sigma", "gate", "full_margin"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise UsageError(f"CrossingConfig.{name} must be > 0, got {value!r}")
        if not (math.isfinite(self.size_scale) and self.size_scale > 1):
            raise UsageError(f"CrossingConfig.size_scale must be > 1, got {self.size_scale!r}")


@dataclass(frozen=True)
class TrackletMotion:
    """How each tracklet moves at its two ends (T tracklets, in the linker's order).

    Attributes:
        start_velocity: (T, 2) centre velocity at the start, pixels per second.
        end_velocity: (T, 2) centre velocity at the end.
        start_free: (T,) the first box does not touch a side of the frame.
        end_free: (T,) the last box does not touch a side of the frame.
    """

    start_velocity: NDArray[np.float64]
    end_velocity: NDArray[np.float64]
    start_free: NDArray[np.bool_]
    end_free: NDArray[np.bool_]


@dataclass(frozen=True)
class Ends:
    """Where and how each tracklet starts and ends (T tracklets).

    Attributes:
        t_first: (T,) time of the first frame, seconds.
        t_last: (T,) time of the last frame, seconds.
        shot: (T,) shot index.
        start_box: (T, 4) first box, x1 y1 x2 y2 pixels.
        end_box: (T, 4) last box.
        motion: How each tracklet moves at its two ends.
    """

    t_first: NDArray[np.float64]
    t_last: NDArray[np.float64]
    shot: NDArray[np.int64]
    start_box: NDArray[np.float64]
    end_box: NDArray[np.float64]
    motion: TrackletMotion

    def __len__(self) -> int:
        return len(self.t_first)


def motion_costs(ends: Ends, config: CrossingConfig) -> NDArray[np.float64]:
    """(T, T) cost of "ender a continues as starter b" (rows a, columns b); inf where not a candidate."""
    n = len(ends)
    cost = np.full((n, n), np.inf)
    centre_end = (ends.end_box[:, :2] + ends.end_box[:, 2:]) / 2
    centre_start = (ends.start_box[:, :2] + ends.start_box[:, 2:]) / 2
    h_end = np.maximum(ends.end_box[:, 3] - ends.end_box[:, 1], 1.0)
    h_start = np.maximum(ends.start_box[:, 3] - ends.start_box[:, 1], 1.0)
    motion = ends.motion
    for a in np.flatnonzero(motion.end_free):
        gap = ends.t_first - ends.t_last[a]
        for b in np.flatnonzero((gap > 0) & (gap <= config.max_gap_s + 1e-9) & motion.start_free
                                & (ends.shot == ends.shot[a])):
            dt = float(gap[b])
            forward = centre_end[a] + motion.end_velocity[a] * dt - centre_start[b]
            backward = centre_start[b] - motion.start_velocity[b] * dt - centre_end[a]
            height = (h_end[a] + h_start[b]) / 2
            sigma = config.position_sigma + config.sigma_growth * dt
            position = float(np.hypot(*forward) + np.hypot(*backward)) / 2 / height / sigma
            size = abs(math.log(h_start[b] / h_end[a])) / math.log(config.size_scale)
            c = position + size
            if c <= config.gate:
                cost[a, b] = c
    return cost


def crossing_evidence(ends: Ends, config: CrossingConfig) -> NDArray[np.float64]:
    """(T, T) symmetric log-odds "same person" from resolving every crossing episode (0 = no opinion)."""
    n = len(ends)
    out = np.zeros((n, n))
    cost = motion_costs(ends, config)
    for enders, starters in _episodes(cost):
        sub = cost[np.ix_(enders, starters)]
        partner_of_row = dict(_assign(sub, config.gate))
        partner_of_col = {j: i for i, j in partner_of_row.items()}
        for i, j in zip(*np.nonzero(np.isfinite(sub)), strict=True):
            i, j = int(i), int(j)
            if partner_of_row.get(i) == j:
                # Chosen: how much worse the next option of either side is (leaving it unpaired included).
                others = np.r_[np.delete(sub[i], j), np.delete(sub[:, j], i), config.gate]
                margin = float(others.min()) - float(sub[i, j])
                value = config.log_odds * min(1.0, margin / config.full_margin)
            elif i in partner_of_row and j in partner_of_col:
                # Crossed: both sides have a better partner; how much better, on the closer side.
                extra = float(sub[i, j]) - max(float(sub[i, partner_of_row[i]]), float(sub[partner_of_col[j], j]))
                value = -config.log_odds * min(1.0, max(extra, 0.0) / config.full_margin)
            else:
                continue  # one of them is left unpaired: she may have left, hidden or just arrived
            a, b = enders[i], starters[j]
            out[a, b] = out[b, a] = value
    return out


def _episodes(cost: NDArray[np.float64]) -> list[tuple[list[int], list[int]]]:
    """Connected groups (enders, starters) of the candidate pairs (finite costs)."""
    n = len(cost)
    parent = list(range(2 * n))  # node a = ender a, node n + b = starter b

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    rows, cols = np.nonzero(np.isfinite(cost))
    for a, b in zip(rows.tolist(), cols.tolist(), strict=True):
        parent[root(a)] = root(n + b)
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for a in sorted(set(rows.tolist())):
        groups.setdefault(root(a), ([], []))[0].append(a)
    for b in sorted(set(cols.tolist())):
        groups.setdefault(root(n + b), ([], []))[1].append(b)
    return list(groups.values())


def _assign(cost: NDArray[np.float64], unpaired: float) -> list[tuple[int, int]]:
    """Minimum-cost pairs (row, column), anyone staying unpaired at cost ``unpaired`` (inf: never paired)."""
    m, k = cost.shape
    big = unpaired * (m + k + 1) * 10  # never chosen: leaving both unpaired is always cheaper
    full = np.full((m + k, k + m), big)
    full[:m, :k] = np.where(np.isfinite(cost), cost, big)
    full[:m, k:][np.diag_indices(m)] = unpaired
    full[m:, :k][np.diag_indices(k)] = unpaired
    full[m:, k:] = 0.0
    rows, cols = linear_sum_assignment(full)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if r < m and c < k]


def motion_of(infos: Sequence[TrackletInfo], ids: NDArray[np.int64]) -> TrackletMotion:
    """The motion of tracklets ``ids`` (T,) from the tracklet stage's report.

    Raises:
        ValueError: An id has no entry in ``infos``.
    """
    by_id = {i.tracklet_id: i for i in infos}
    missing = [int(t) for t in ids if int(t) not in by_id]
    if missing:
        raise ValueError(f"tracklets {missing[:5]!r} are not in the tracklet report")
    rows = [by_id[int(t)] for t in ids]
    return TrackletMotion(
        np.array([i.start_velocity for i in rows], np.float64).reshape(-1, 2),
        np.array([i.end_velocity for i in rows], np.float64).reshape(-1, 2),
        np.array([not i.start_at_edge for i in rows], bool),
        np.array([not i.end_at_edge for i in rows], bool),
    )
