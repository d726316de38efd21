"""Sampling picks clear, spread-out moments of each tracklet."""

from __future__ import annotations

import numpy as np

from fancam.identity.people import crowding
from fancam.identity.sampling import SamplingConfig, sample_rows
from fancam.types import Timeline, TrackTable


def test_samples_are_spread_unoverlapped_and_dense_first():
    n = 300  # 10 s at 30 fps
    rows = []
    for f in range(n):
        rows.append((f, 1, [100, 50, 200, 350]))
        # tracklet 2 overlaps tracklet 1 during the first 2 s only
        rows.append((f, 2, [150 if f < 60 else 400, 50, 250 if f < 60 else 500, 350]))
    table = TrackTable(
        frame=[r[0] for r in rows], track_id=[r[1] for r in rows], xyxy=[r[2] for r in rows],
        score=np.ones(len(rows)), observed=np.ones(len(rows), bool),
    )
    timeline = Timeline(np.arange(n) / 30.0, np.zeros(1))
    config = SamplingConfig(window_s=1.0, dense_samples=3, sparse_window_s=3.0)
    picked = sample_rows(table, crowding(table), timeline, (640, 400), config)
    assert np.all(np.diff(table.frame[picked]) >= 0)  # sorted by frame
    t = timeline.t[table.frame[picked]]
    for tracklet in (1, 2):
        times = t[table.track_id[picked] == tracklet]
        assert times.min() >= 2.0  # never while the two boxes overlap
        assert 3 <= len(times) <= 5  # 3 dense (1 s) then sparse (3 s) windows over ~8 s


def test_a_tracklet_never_seen_clearly_still_gets_its_least_crowded_sample():
    # Tracklet 2 is always behind tracklet 1 (heavy overlap); without a sample it could never be
    # linked to its other tracklets (regression: the line-dance clip listed 28 "people" instead of 13).
    rows = []
    for f in range(60):
        rows.append((f, 1, [100, 50, 200, 350]))
        rows.append((f, 2, [140 + (f == 30) * 20, 60, 230 + (f == 30) * 20, 340]))
    table = TrackTable(
        frame=[r[0] for r in rows], track_id=[r[1] for r in rows], xyxy=[r[2] for r in rows],
        score=np.ones(len(rows)), observed=np.ones(len(rows), bool),
    )
    timeline = Timeline(np.arange(60) / 30.0, np.zeros(1))
    picked = sample_rows(table, crowding(table), timeline, (640, 400), SamplingConfig())
    mine = picked[table.track_id[picked] == 2]
    assert len(mine) == 1 and table.frame[mine[0]] == 30  # the moment it overlaps least
