"""The close-up composer moves GT boxes with the crop: kept inside, flagged when cut, dropped when out."""

from __future__ import annotations

import numpy as np
import pytest

from clips import GT_DIR
from compose_closeups import (
    MAX_ZOOM,
    Stretch,
    accuracy_by_stretch,
    closeup_window,
    compose,
    compose_gt,
    transform_box,
    where_closeups_went,
)
from conftest import DATA
from fancam.io.tables import GroundTruth, PredictedTracks, load_gt
from fancam.io.video import count_frames, iter_frames, probe

SIZE = (100, 200)  # width, height of the frame
WINDOW = (20.0, 40.0, 70.0, 140.0)  # a 50x100 close-up window: scale 2


def test_box_inside_the_window_is_scaled_whole() -> None:
    box, visible = transform_box(np.array([30.0, 50.0, 50.0, 130.0]), WINDOW, SIZE)
    assert visible == pytest.approx(1.0)
    assert box.tolist() == pytest.approx([20.0, 20.0, 60.0, 180.0])


def test_box_cut_by_the_window_edge_is_clipped_with_its_visible_share() -> None:
    box, visible = transform_box(np.array([60.0, 50.0, 80.0, 130.0]), WINDOW, SIZE)  # half outside on the right
    assert visible == pytest.approx(0.5)
    assert box.tolist() == pytest.approx([80.0, 20.0, 100.0, 180.0])


def test_box_outside_the_window_has_nothing_visible() -> None:
    _, visible = transform_box(np.array([75.0, 50.0, 95.0, 130.0]), WINDOW, SIZE)
    assert visible == 0.0


def test_composed_gt_drops_slivers_and_flags_boxes_cut_by_more_than_half() -> None:
    boxes = np.array([[30, 50, 50, 130], [55, 50, 80, 130], [66, 50, 86, 130], [75, 50, 95, 130], [75, 50, 95, 130]],
                     np.float64)
    gt = GroundTruth("synthetic", np.array([15, 15, 15, 15, 0]), np.array([0.5, 0.5, 0.5, 0.5, 0.0]),
                     np.array(["P1", "P2", "P3", "P4", "P4"]), boxes, np.zeros(5, bool), np.zeros(5, bool),
                     np.zeros(5, bool))
    stretches = [Stretch(0, 9, None, (0.0, 0.0, 100.0, 200.0)), Stretch(10, 19, "P1", WINDOW)]
    rows = compose_gt(gt, stretches, SIZE)
    kept = {(r[0], r[2]): r for r in rows}
    # P1 whole (not occluded); P2 60% inside (kept, not occluded); P3 20% inside (dropped); P4 outside
    # the close-up (dropped) but whole in the wide frame 0.
    assert set(kept) == {("15", "P1"), ("15", "P2"), ("0", "P4")}
    assert kept[("15", "P1")][3:8] == ["20", "20", "60", "180", "0"]
    assert kept[("15", "P2")][7] == "0"
    assert kept[("0", "P4")][3:8] == ["75", "50", "95", "130", "0"]
    cut = compose_gt(gt, [Stretch(0, 19, "P1", (20.0, 40.0, 65.0, 130.0))], (90, 180))
    assert [r[7] for r in cut if r[2] == "P2"] == ["1"]  # 40% inside: kept, cut by more than half


def test_closeup_window_keeps_the_frame_aspect_and_stays_inside() -> None:
    x1, y1, x2, y2 = closeup_window(np.array([80.0, 10.0, 100.0, 190.0]), SIZE)
    assert (x2 - x1) / (y2 - y1) == pytest.approx(SIZE[0] / SIZE[1])
    assert x2 <= SIZE[0] and x1 >= 0 and y1 >= 0 and y2 <= SIZE[1]


def test_composed_clip_keeps_frame_count_rate_and_gt_frames(tmp_path) -> None:
    video = DATA / "fiyud_dance3/dance.mp4"
    plan = compose(video, GT_DIR / "fiyud_dance3.csv", tmp_path, "fiyud", wide_s=1.5, close_s=1.5)
    source, made = probe(video), probe(plan["video"])
    assert (made.width, made.height, made.fps) == (source.width, source.height, source.fps)
    assert count_frames(plan["video"]) == count_frames(video)
    closeups = [s for s in plan["stretches"] if s["person"]]
    assert [s["person"] for s in closeups] == ["P1", "P2", "P3"]
    gt = load_gt(plan["gt"], n_frames=count_frames(video))
    assert set(gt.frame.tolist()) <= set(load_gt(GT_DIR / "fiyud_dance3.csv").frame.tolist())
    first = closeups[0]["first"]
    times = {f.index: f.t for f in iter_frames(plan["video"]) if f.index in (first - 1, first)}
    assert times[first] == pytest.approx(first / source.fps, abs=1e-3)
    # In a close-up, the performer shown fills most of the frame height.
    rows = (gt.frame == first) & (gt.person == "P1")
    assert rows.sum() == 1 and (gt.xyxy[rows, 3] - gt.xyxy[rows, 1])[0] > 0.8 * source.height



def test_closeup_rows_are_sorted_into_own_other_apart_unknown_and_unmatched() -> None:
    # Frames 0 (wide) and 15, 30, 45, 60, 75 (close-ups of P1): P1's rows go to her own name, to P2's, to a
    # name of their own, to unknown, and to no box; P2's row in P1's close-up is not her close-up.
    frames = np.array([0, 0, 15, 30, 45, 60, 75, 15])
    people = np.array(["P1", "P2", "P1", "P1", "P1", "P1", "P1", "P2"])
    boxes = np.tile([10.0, 10.0, 50.0, 150.0], (8, 1))
    gt = GroundTruth("synthetic", frames, frames / 30.0, people, boxes, *(np.zeros(8, bool),) * 3)
    predicted = np.array(["person-1", "person-2", "person-1", "person-2", "person-9", "unknown", "x", "person-2"])
    tracks = PredictedTracks("synthetic", frames, frames / 30.0, np.arange(8), predicted, boxes, np.ones(8))
    match = np.array([0, 1, 2, 3, 4, 5, -1, 7])
    mapping = {"person-1": "P1", "person-2": "P2"}
    stretches = [Stretch(0, 9, None, (0.0, 0.0, 100.0, 200.0)), Stretch(10, 99, "P1", WINDOW)]
    fates = where_closeups_went(gt, tracks, match, mapping, stretches)
    assert fates == {"P1": {"own": 1, "other": 1, "apart": 1, "unknown": 1, "unmatched": 1, "as P2": 1}}
    accuracy = accuracy_by_stretch(gt, tracks, match, mapping, stretches)
    assert accuracy == {"wide": 1.0, "closeup": pytest.approx(2 / 6)}


def test_closeup_of_a_small_box_zooms_at_most_max_zoom() -> None:
    x1, y1, x2, y2 = closeup_window(np.array([40.0, 100.0, 46.0, 120.0]), SIZE)  # 20 px tall: 0.6 x 20 = 12 px
    assert y2 - y1 == pytest.approx(SIZE[1] / MAX_ZOOM)
