"""The identity timeline: one row per performer, stretches shaded by confidence, with a legend."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fancam.identity.people import Naming, make_people
from fancam.report.timeline import CONFIDENCE_NOTE, plot_identity_timeline
from fancam.types import Timeline, TrackTable


def _cast():
    rows = [(f, 1, [0, 10, 20, 150]) for f in range(0, 60)] + [(f, 2, [0, 10, 20, 150]) for f in range(70, 120)]
    rows += [(f, 3, [50, 10, 80, 150]) for f in range(0, 120)]
    table = TrackTable(frame=[r[0] for r in rows], track_id=[r[1] for r in rows], xyxy=[r[2] for r in rows],
                       score=np.full(len(rows), 0.9), observed=np.ones(len(rows), bool))
    timeline = Timeline(np.arange(120) / 30.0, np.array([0, 80]))
    cluster = np.where(table.track_id == 3, 1, 0)
    cast = make_people(table, cluster, {0: Naming("Bea", "g/Bea", 0.9), 1: Naming("unknown", None, 0.8)},
                       timeline, 300, membership={1: 1.0, 2: 0.2, 3: 1.0})
    return table, timeline, cast


def test_timeline_png_has_the_legend_and_faint_uncertain_stretches(tmp_path: Path):
    table, timeline, cast = _cast()
    bea = next(p for p in cast.people if p.label == "Bea")
    np.testing.assert_allclose([s.confidence for s in cast.stretches_of(bea.id)], [0.9, 0.9 * 0.2])
    out = tmp_path / "timeline.png"
    plot_identity_timeline(out, table, cast, timeline)
    image = cv2.imread(str(out))
    assert image is not None and image.shape[1] == 1000
    # The legend text is drawn below the axes: the bottom band of the figure is not blank.
    bottom = image[-40:]
    assert (bottom < 128).any()
    assert "(0.97) = identity confidence" in CONFIDENCE_NOTE and "uncertain" in CONFIDENCE_NOTE


def test_timeline_of_a_cast_without_stretches(tmp_path: Path):
    from fancam.identity.people import Cast

    table, timeline, cast = _cast()
    bare = Cast(cast.person, cast.people)
    plot_identity_timeline(tmp_path / "t.png", table, bare, timeline)
    assert (tmp_path / "t.png").stat().st_size > 1000
