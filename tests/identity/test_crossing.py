"""The crossing resolver: who is who after look-alike dancers cross, from their motion alone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fancam.errors import UsageError
from fancam.identity.appearance import Appearance
from fancam.identity.crossing import CrossingConfig, Ends, TrackletMotion, crossing_evidence, motion_of
from fancam.identity.faces import EMBEDDING_DIM
from fancam.identity.linking import LinkingConfig, cluster_tracklets, describe_tracklets, pairwise_evidence
from fancam.tracking.tracklets import TrackletInfo
from fancam.types import Timeline, TrackTable

FPS = 30.0
HEIGHT = 200.0  # box height, pixels
SPEED = 150.0  # pixels per second


def _box(cx: float) -> list[float]:
    return [cx - 40, 100, cx + 40, 100 + HEIGHT]


def _ends(rows: list[tuple[float, float, float, float, float, float]], free: bool = True) -> Ends:
    """Ends from (t_first, t_last, start x, end x, start vx, end vx) per tracklet, one shot."""
    arr = np.array(rows, np.float64)
    n = len(rows)
    return Ends(
        t_first=arr[:, 0], t_last=arr[:, 1], shot=np.zeros(n, np.int64),
        start_box=np.array([_box(x) for x in arr[:, 2]]), end_box=np.array([_box(x) for x in arr[:, 3]]),
        motion=TrackletMotion(
            start_velocity=np.stack([arr[:, 4], np.zeros(n)], axis=1),
            end_velocity=np.stack([arr[:, 5], np.zeros(n)], axis=1),
            start_free=np.full(n, free), end_free=np.full(n, free),
        ),
    )


# A walks right, B walks left; both are lost where they overlap (1.0 s - 1.4 s around x = 250).
# 0: A before, 1: B before, 2: the one leaving to the right, 3: the one leaving to the left.
CROSSING = [
    (0.0, 1.0, 100.0, 220.0, SPEED, SPEED),
    (0.0, 1.0, 400.0, 280.0, -SPEED, -SPEED),
    (1.4, 3.0, 280.0, 500.0, SPEED, SPEED),
    (1.4, 3.0, 220.0, 0.0, -SPEED, -SPEED),
]


def test_crossing_dancers_keep_their_direction():
    out = crossing_evidence(_ends(CROSSING), CrossingConfig())
    # Each continues the way she was going; the crossed pairs would both have turned back at once.
    # Not the full +-3: 0.3 box heights apart when lost and found, the pairs differ by 0.6 of a sigma.
    assert out[0, 2] == pytest.approx(1.8) and out[1, 3] == pytest.approx(1.8)
    assert out[0, 3] == pytest.approx(-1.8) and out[1, 2] == pytest.approx(-1.8)
    assert np.array_equal(out, out.T)
    assert out[0, 1] == 0 and out[2, 3] == 0  # two enders (two starters) are never compared


def test_a_crossing_whose_outcomes_move_alike_says_nothing():
    # Both stand still at the same spot before and after: either pairing fits as well.
    still = [(0.0, 1.0, 250.0, 250.0, 0.0, 0.0), (0.0, 1.0, 250.0, 250.0, 0.0, 0.0),
             (1.4, 3.0, 250.0, 250.0, 0.0, 0.0), (1.4, 3.0, 250.0, 250.0, 0.0, 0.0)]
    assert not crossing_evidence(_ends(still), CrossingConfig()).any()


@pytest.mark.parametrize("change", [
    {"free": False},  # boxes touching the frame's side: their centres say little
    {"gap": 2.0},  # lost for 2 s: too long to extrapolate
    {"shot": True},  # the starters are in another shot
])
def test_no_evidence_when_motion_cannot_tell(change):
    rows = [list(r) for r in CROSSING]
    for r in rows[2:]:
        r[0] += change.get("gap", 0.0)
    ends = _ends([tuple(r) for r in rows], free=change.get("free", True))  # type: ignore[misc]
    if change.get("shot"):
        ends = dataclasses.replace(ends, shot=np.array([0, 0, 1, 1]))
    assert not crossing_evidence(ends, CrossingConfig()).any()


def test_someone_who_leaves_gives_no_negative_evidence():
    # A and B cross, but only A is found again: B is not "different" from A's continuation by force.
    out = crossing_evidence(_ends(CROSSING[:3]), CrossingConfig())
    assert out[0, 2] > 1.5
    assert out[1, 2] == 0  # B stays unpaired (she may have left): no opinion on B -> 2


def test_motion_of_follows_the_requested_order_and_edges():
    infos = [TrackletInfo(1, (1,), 0, 9, 10, "track_start", "overlap", (1.0, 2.0), (3.0, 4.0), False, True),
             TrackletInfo(2, (2,), 0, 9, 10, "track_start", "track_end")]
    motion = motion_of(infos, np.array([2, 1]))
    assert motion.end_velocity.tolist() == [[0.0, 0.0], [3.0, 4.0]]
    assert motion.start_velocity.tolist() == [[0.0, 0.0], [1.0, 2.0]]
    assert motion.start_free.tolist() == [True, True] and motion.end_free.tolist() == [True, False]
    with pytest.raises(ValueError, match="not in the tracklet report"):
        motion_of(infos, np.array([3]))


@pytest.mark.parametrize("bad", [{"gate": 0.0}, {"size_scale": 1.0}, {"max_gap_s": -1.0}, {"full_margin": np.nan}])
def test_config_is_validated(bad):
    with pytest.raises(UsageError):
        CrossingConfig(**bad)


def _table(plan: list[tuple[int, float, float, float]]) -> TrackTable:
    """Rows of tracklets (id, t_first, t_last, x at t_first), all walking at their own signed speed."""
    rows = []
    for tid, t0, t1, x0 in plan:
        v = SPEED if tid in (1, 3) else -SPEED
        for f in range(round(t0 * FPS), round(t1 * FPS) + 1):
            rows.append((f, tid, _box(x0 + v * (f / FPS - t0))))
    return TrackTable(frame=[r[0] for r in rows], track_id=[r[1] for r in rows], xyxy=[r[2] for r in rows],
                      score=np.ones(len(rows)), observed=np.ones(len(rows), bool)).sorted()


def test_look_alikes_crossing_are_linked_by_motion():
    # Tracklets 1 (A, walking right) and 2 (B, walking left) are cut where they overlap; 3 leaves to the
    # right and 4 to the left. No appearance evidence at all (identical costumes, no faces).
    table = _table([(1, 0.0, 1.0, 100.0), (2, 0.0, 1.0, 400.0), (3, 1.4, 3.0, 310.0), (4, 1.4, 3.0, 190.0)])
    timeline = Timeline(np.arange(round(3.0 * FPS) + 1) / FPS, np.zeros(1, np.int64))
    appearance = Appearance(
        rows=np.zeros(0, np.int64), frames=np.zeros(0, np.int64), body=np.zeros((0, 8), np.float32),
        face=np.zeros((0, EMBEDDING_DIM), np.float32), face_quality=np.zeros(0, np.float32),
        face_size=np.zeros(0, np.float32),
    )
    cuts = ({3, 4}, {1, 2})
    v = np.array([[SPEED, 0.0], [-SPEED, 0.0], [SPEED, 0.0], [-SPEED, 0.0]])
    motion = TrackletMotion(v, v, np.ones(4, bool), np.ones(4, bool))
    tracklets = describe_tracklets(table, timeline, appearance, cuts, motion)
    evidence = pairwise_evidence(tracklets, appearance, timeline, LinkingConfig())
    labels = cluster_tracklets(tracklets, evidence, LinkingConfig(), expected=2)
    assert labels[0] == labels[2] and labels[1] == labels[3] and labels[0] != labels[1]
    # Without motion the overlap cut leaves nothing to go on.
    blind = describe_tracklets(table, timeline, appearance, cuts)
    assert not pairwise_evidence(blind, appearance, timeline, LinkingConfig()).log_odds.any()
