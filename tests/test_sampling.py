"""Sampling picks clear, spread-out moments of each tracklet."""

from __future__ import annotations

import numpy as np

from fancam.people import crowding
from fancam.sampling import SamplingConfig, sample_rows
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
