"""Snapshot: the frame a user clicks on shows the performers that --person N names."""

from __future__ import annotations

import csv

import numpy as np

import fancam
from fancam.io.video import iter_frames
from fancam.report.snapshot import nearest_frame


def test_snapshot_shows_the_frame_and_the_people_of_tracks_csv(gillhung_analysis):
    analysis = gillhung_analysis
    with open(analysis.folder / "tracks.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for t in (0.0, 7.3, 19.9):
        shot = fancam.snapshot(analysis, t)
        assert abs(shot.t - t) <= 0.5 / analysis.info.fps + 1e-6
        assert shot.image.shape == (analysis.info.height, analysis.info.width, 3)
        expected = {r["person"]: [float(r[k]) for k in ("x1", "y1", "x2", "y2")]
                    for r in rows if int(r["frame"]) == shot.frame}
        got = {p.label: box for p, box in shot.people}
        assert sorted(got) == sorted(expected) and len(got) == 3  # all three dancers are on stage
        for label, box in got.items():
            np.testing.assert_allclose(box, expected[label], atol=0.06)  # tracks.csv has 1 decimal
        assert [p.id for p, _ in shot.people] == sorted(p.id for p, _ in shot.people)
    decoded = next(f for f in iter_frames(analysis.info.path) if f.index == shot.frame)
    np.testing.assert_array_equal(decoded.rgb(), shot.image)


def test_nearest_frame_clamps_and_rounds(gillhung_analysis):
    t = gillhung_analysis.timeline.t
    assert nearest_frame(gillhung_analysis, -3.0) == 0
    assert nearest_frame(gillhung_analysis, 1e9) == len(t) - 1
    assert nearest_frame(gillhung_analysis, t[10] + 0.4 * (t[11] - t[10])) == 10
    assert nearest_frame(gillhung_analysis, t[10] + 0.6 * (t[11] - t[10])) == 11
