"""Metrics of fancam.eval.metrics on hand-made files (values computed by hand below) and on the real GT.

The loaders' own validation is tested in test_tables.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from fancam.errors import InputError, UsageError
from fancam.eval.metrics import crop_scores, evaluate, format_report, is_hit, map_names, match_keyframes
from fancam.io.tables import CropTable, GroundTruth, load_crop, load_gt, load_tracks

GT_HEADER = "frame,t,person,x1,y1,x2,y2,occluded,manual,uncertain\n"
TRACKS_HEADER = "frame,t,tracklet,person,x1,y1,x2,y2,score\n"
CROP_HEADER = "frame,t,x1,y1,x2,y2,mode\n"
FRAME = (200, 120)  # width, height of the (imaginary) video of the hand-made trio

# Three performers, 4 keyframes. Boxes are 40 x 80 (head point at y1 + 9.6) except P1 at f45 (40 x 90).
TRIO_GT = GT_HEADER + """\
0,0.0,P1,10,20,50,100,0,0,0
0,0.0,P2,80,20,120,100,0,0,0
0,0.0,P3,150,20,190,100,0,0,0
15,0.5,P1,10,20,50,100,0,0,0
15,0.5,P2,80,20,120,100,0,0,0
15,0.5,P3,150,20,190,100,0,0,1
30,1.0,P1,10,20,50,100,0,0,0
30,1.0,P2,80,20,120,100,1,0,0
30,1.0,P3,150,20,190,100,0,0,0
45,1.5,P1,0,10,40,100,0,1,0
45,1.5,P2,30,20,70,100,0,0,0
45,1.5,P3,150,20,190,100,0,0,0
"""
# f0: all three right.
# f15: tracklet 1 is shifted 13.5 px right of P1: IoU = 26.5*80 / (2*3200 - 26.5*80) = 0.4953 < 0.5, so
#      GT P1 is unmatched (wrong); tracklet 2 sits on P2 but says P1 (wrong; P1 is used twice in this
#      frame, tracklet 2 scores higher so it keeps the name for IDF1); tracklet 3 sits on the uncertain
#      P3 and says P9: left out of every score.
# f30: tracklet 1 on P1 says P2 (wrong; P2 twice, tracklet 2 keeps it), tracklet 2 on P2 says P2 (right),
#      tracklet 3 on P3 says unknown (wrong for identity accuracy, dropped for IDF1/HOTA).
# f45: P1 and P2 right, P3 has no box (unmatched: wrong).
TRIO_TRACKS = TRACKS_HEADER + """\
0,0.0,1,P1,10,20,50,100,0.9
0,0.0,2,P2,80,20,120,100,0.9
0,0.0,3,P3,150,20,190,100,0.9
15,0.5,1,P1,23.5,20,63.5,100,0.6
15,0.5,2,P1,80,20,120,100,0.9
15,0.5,3,P9,150,20,190,100,0.9
30,1.0,1,P2,10,20,50,100,0.8
30,1.0,2,P2,80,20,120,100,0.9
30,1.0,3,unknown,150,20,190,100,0.9
45,1.5,1,P1,0,10,40,100,0.9
45,1.5,2,P2,30,20,70,100,0.9
"""


def trio_crop() -> str:
    """Camera on P1 for frames 0..45 (crop height 60 everywhere).

    0..14  follow, centre (30, 30), 60 x 60  -> crop [0, 60] x [0, 60]
    15..29 search, same rectangle
    30..44 follow, centre (76, 30), 100 x 60 -> crop [26, 126] x [0, 60]
    45     follow, centre (60, 30), 120 x 60 -> crop [0, 120] x [0, 60]
    """
    rows = []
    for f in range(46):
        if f < 30:
            box, mode = (0, 0, 60, 60), "follow" if f < 15 else "search"
        elif f < 45:
            box, mode = (26, 0, 126, 60), "follow"
        else:
            box, mode = (0, 0, 120, 60), "follow"
        rows.append(f"{f},{f / 30:.4f},{','.join(map(str, box))},{mode}\n")
    return CROP_HEADER + "".join(rows)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture()
def trio(tmp_path: Path) -> tuple[Path, Path, Path]:
    return (
        write(tmp_path, "gt.csv", TRIO_GT),
        write(tmp_path, "tracks.csv", TRIO_TRACKS),
        write(tmp_path, "out.crop.csv", trio_crop()),
    )


def test_trio_identity_accuracy(trio) -> None:
    gt, tracks, _ = trio
    report = evaluate(tracks, gt, named=True)
    ident = report.identity
    # Scored rows: 3 + 2 + 3 + 3 = 11 (the uncertain P3 at f15 is out). Right: 3 (f0) + 0 (f15)
    # + 1 (f30: P2) + 2 (f45) = 6. Unmatched: P1 at f15 (IoU 0.4953), P3 at f45.
    assert (ident.total, ident.correct, ident.unmatched) == (11, 6, 2)
    assert ident.accuracy == pytest.approx(6 / 11)
    assert dict((p, (c, n)) for p, c, n in ident.per_person) == {"P1": (2, 4), "P2": (3, 4), "P3": (1, 3)}
    assert (report.keyframes, report.gt_rows, report.uncertain_rows) == (4, 11, 1)


def test_trio_idf1_drops_unknown_and_uncertain(trio) -> None:
    gt, tracks, _ = trio
    trk = evaluate(tracks, gt, named=True).tracking
    # Predicted ids after the rules: "P1" at f0, f15 (on GT P2), f45 = 3 boxes; "P2" at f0, f30 (on P2),
    # f45 = 3; "P3" at f0 = 1; the losing duplicates (tracklet 1 at f15, IoU 0.4953 with P1; tracklet 1
    # at f30 on P1) are singletons -> 9 boxes. unknown (f30) and the box on the uncertain row are dropped.
    # GT: P1 4, P2 4, P3 3 = 11. Best id pairing: P1-"P1" 2, P2-"P2" 3, P3-"P3" 1 -> IDTP 6, IDFN 5,
    # IDFP 3, IDF1 = 6 / (6 + 2.5 + 1.5) = 0.6. (Keeping unknown or the uncertain box would add an FP:
    # 6 / 10.5 = 0.571.)
    assert trk.idf1 == pytest.approx(0.6)
    assert trk.idp == pytest.approx(6 / 9)
    assert trk.idr == pytest.approx(6 / 11)
    assert (trk.predictions, trk.unknown, trk.duplicates) == (9, 1, 2)
    assert 0 < trk.hota < 1


def test_trio_crop_metrics(trio) -> None:
    gt, tracks, crop = trio
    c = evaluate(tracks, gt, named=True, crop_csv=crop, target="P1", frame_size=FRAME).crop
    # P1 is visible and not occluded at all 4 keyframes.
    # f0: crop centre (30, 30) = P1's clamped head point -> hit (P1 box 80 / crop 60).
    # f15: search mode -> miss, and counts for the wide share.
    # f30: crop [26, 126] holds P1's head (30, 29.6), but for a 100-wide crop the clamped centres are
    #      P1 x=50, P2 x=100: the crop centre 76 is 26 from P1 and 24 from P2 -> miss.
    # f45: P1 head (20, 20.8), P2 head (50, 29.6). For a 120 x 60 crop, x clamps to [60, 140] and y to
    #      [30, 90], so both become (60, 30): a tie with the crop centre (60, 30) -> hit (P1 90 / 60).
    #      Without clamping P2 (10 px away) would beat P1 (40 px away).
    assert (c.visible, c.eligible, c.hits) == (4, 4, 2)
    assert c.hit_rate == pytest.approx(0.5)
    assert c.framing == pytest.approx((80 / 60 + 90 / 60) / 2)
    assert c.wide_share == pytest.approx(0.25)
    # Centre x: 30 on frames 0..29, 76 on 30..44, 60 on 45. Non-zero second differences: frame 29
    # (30 - 60 + 76 = 46), frame 30 (30 - 152 + 76 = -46), frame 44 (76 - 152 + 60 = -16); 44 triples,
    # crop height 60: (46 + 46 + 16) / 60 / 44.
    assert c.jitter == pytest.approx(108 / 60 / 44)


def test_trio_occluded_target_counts_for_wide_share_only(trio) -> None:
    gt, _, crop = trio
    c = crop_scores(load_gt(gt), load_crop(crop), "P2", FRAME)
    # P2 is labelled at 4 keyframes (wide share denominator) but occluded at f30 (3 eligible).
    # f0: crop [0, 60] does not hold P2's head (100, 29.6) -> miss; f15 search -> miss; f45: crop
    # [0, 120] holds P2's head (50, 29.6) and ties with P1 at the clamped (60, 30) -> hit.
    assert (c.visible, c.eligible, c.hits) == (4, 3, 1)
    assert c.wide_share == pytest.approx(0.25)


def test_hit_tie_at_frame_edge_and_near_miss() -> None:
    boxes = np.array([[0, 10, 40, 100], [30, 20, 70, 100]], float)  # heads (20, 20.8), (50, 29.6)
    assert is_hit(np.array([0, 0, 120, 60]), 0, boxes, FRAME)  # both clamp to (60, 30): tie -> hit
    assert is_hit(np.array([0, 0, 120, 60]), 1, boxes, FRAME)  # the tie is a hit for either of them
    # A 60-wide crop clamps x to [30, 170]: heads stay at x 30 and 50; centre 41 is 11 from P1, 9 from P2.
    assert not is_hit(np.array([11, 0, 71, 60]), 0, boxes, FRAME)
    assert is_hit(np.array([9, 0, 69, 60]), 0, boxes, FRAME)  # 9 vs 11 -> hit
    assert not is_hit(np.array([25, 0, 85, 60]), 0, boxes, FRAME)  # head x 20 outside the crop


def test_match_iou_threshold_is_inclusive() -> None:
    gt = load_gt_text(GT_HEADER + "0,0,A,0,0,40,80,0,0,0\n1,0.03,A,0,0,40,80,0,0,0\n")
    tracks = tracks_from_rows([(0, 1, "A", (0, 0, 40, 40)), (1, 1, "A", (0, 0, 40, 39.5))])
    # IoU 1600 / 3200 = 0.5 exactly -> matched; 1580 / 3200 = 0.494 -> not.
    assert match_keyframes(gt, tracks).tolist() == [0, -1]


def test_no_gallery_mapping_is_one_to_one_optimum(tmp_path: Path) -> None:
    # Name "a" is on P1 3 times and on P2 twice, "b" on P1 twice. Greedy would map a->P1 (3 right);
    # the one-to-one optimum maps a->P2, b->P1: 2 + 2 = 4 right of 7 rows.
    gt_rows = [(0, "P1"), (0, "P2"), (1, "P1"), (1, "P2"), (2, "P1"), (3, "P1"), (4, "P1")]
    names = ["a", "a", "a", "a", "a", "b", "b"]
    gt = load_gt_text(GT_HEADER + "".join(
        f"{f},{f / 30},{p},{0 if p == 'P1' else 100},0,{50 if p == 'P1' else 150},100,0,0,0\n"
        for f, p in gt_rows
    ))
    tracks = tracks_from_rows([
        (f, 1 if p == "P1" else 2, n, (0 if p == "P1" else 100, 0, 50 if p == "P1" else 150, 100))
        for (f, p), n in zip(gt_rows, names, strict=True)
    ])
    mapped = evaluate(tracks, gt, named=False).identity
    assert dict(mapped.mapping) == {"a": "P2", "b": "P1"}
    assert (mapped.correct, mapped.total) == (4, 7)
    assert evaluate(tracks, gt, named=True).identity.correct == 0  # names are not GT names
    assert map_names(["P1", "P1"], ["unknown", "unknown"]) == {}


def four_frame_pair(switch_at: int) -> tuple[GroundTruth, list[tuple]]:
    """Two performers over 4 keyframes; predicted boxes exact, names swapped from ``switch_at`` on."""
    boxes = {"A": (0, 0, 50, 100), "B": (100, 0, 150, 100)}
    gt = load_gt_text(GT_HEADER + "".join(
        f"{f},{f / 30},{p},{','.join(map(str, boxes[p]))},0,0,0\n" for f in range(4) for p in "AB"
    ))
    other = {"A": "B", "B": "A"}
    rows = [
        (f, 1 if p == "A" else 2, p if f < switch_at else other[p], boxes[p]) for f in range(4) for p in "AB"
    ]
    return gt, rows


def test_idf1_hota_perfect_and_swapped() -> None:
    gt, rows = four_frame_pair(switch_at=4)
    perfect = evaluate(tracks_from_rows(rows), gt, named=True).tracking
    assert (perfect.idf1, perfect.hota, perfect.deta, perfect.assa) == pytest.approx((1, 1, 1, 1))
    gt, rows = four_frame_pair(switch_at=2)
    swapped = evaluate(tracks_from_rows(rows), gt, named=True)
    # Ids "A" and "B" each cover A twice and B twice: best pairing A-"A", B-"B" gives IDTP 4 of 8 GT and
    # 8 predicted boxes -> IDF1 = 4 / (4 + 2 + 2) = 0.5. HOTA: DetA 1; every true positive pairs ids
    # that share 2 of 4 + 4 boxes -> AssA = 2 / (4 + 4 - 2) = 1/3, HOTA = sqrt(1/3).
    assert swapped.tracking.idf1 == pytest.approx(0.5)
    assert swapped.tracking.hota == pytest.approx(math.sqrt(1 / 3))
    assert swapped.identity.accuracy == pytest.approx(0.5)
    gt, rows = four_frame_pair(switch_at=3)
    assert evaluate(tracks_from_rows(rows), gt, named=True).tracking.idf1 == pytest.approx(6 / 8)


def test_extra_box_named_or_unknown() -> None:
    gt, rows = four_frame_pair(switch_at=4)
    stranger = (200, 0, 250, 100)  # someone GT does not label (a backup dancer)
    unknown = evaluate(tracks_from_rows([*rows, (0, 3, "unknown", stranger)]), gt, named=True).tracking
    assert unknown.idf1 == pytest.approx(1.0)
    named = evaluate(tracks_from_rows([*rows, (0, 3, "P9", stranger)]), gt, named=True).tracking
    assert named.idf1 == pytest.approx(8 / 8.5)  # IDTP 8, IDFP 1


def head_x_path(frames: np.ndarray) -> np.ndarray:
    """A wandering head x, sampled at keyframes every 15 frames."""
    return 300 + 120 * np.sin(frames / 23.0) + 40 * np.cos(frames / 7.0)


def lag_case(shift: int, still: bool = False) -> tuple[GroundTruth, CropTable]:
    """Target keyframes over 0..300 and a camera whose centre x follows them ``shift`` frames late."""
    keys = np.arange(0, 301, 15)
    x = head_x_path(keys)
    gt = load_gt_text(GT_HEADER + "".join(
        f"{f},{f / 30},T,{cx - 20:.3f},100,{cx + 20:.3f},300,0,0,0\n" for f, cx in zip(keys, x, strict=True)
    ))
    frames = np.arange(301)
    cam_x = np.full(301, 300.0) if still else np.interp(frames - shift, keys, x)
    mode = np.where((frames > 100) & (frames < 120), "wide", "follow")  # wide frames are ignored
    cam_x[mode == "wide"] = 320.0
    xyxy = np.stack([cam_x - 90, np.full(301, 40), cam_x + 90, np.full(301, 360)], axis=1)
    return gt, CropTable("cam", frames, frames / 30, xyxy, mode)


@pytest.mark.parametrize("shift", [4, -3, 0, 12])
def test_lag_recovers_known_shift(shift: int) -> None:
    gt, crop = lag_case(shift)
    assert crop_scores(gt, crop, "T", (640, 400)).lag_frames == shift


def test_lag_undefined_when_camera_still() -> None:
    gt, crop = lag_case(0, still=True)
    assert crop_scores(gt, crop, "T", (640, 400)).lag_frames is None


def test_report_json_and_table(trio) -> None:
    gt, tracks, crop = trio
    report = evaluate(tracks, gt, named=False, crop_csv=crop, target="P3", frame_size=FRAME)
    data = json.loads(report.to_json())
    assert data["identity"]["correct"] == 6
    assert data["crop"]["framing"] is None  # P3 never hit: NaN becomes null
    text = format_report(report)
    assert "identity accuracy" in text and "0.545" in text and "camera on P3" in text


def test_crop_needs_target_and_known_name(trio) -> None:
    gt, tracks, crop = trio
    with pytest.raises(UsageError, match="target"):
        evaluate(tracks, gt, named=True, crop_csv=crop)
    with pytest.raises(UsageError, match="P1, P2, P3"):
        evaluate(tracks, gt, named=True, crop_csv=crop, target="P7", frame_size=FRAME)


def test_missing_gt_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nowhere.csv"):
        evaluate(write(tmp_path, "t.csv", TRIO_TRACKS), tmp_path / "nowhere.csv", named=True)


def test_real_gt_as_perfect_tracks_scores_one(bench_gt: Path, tmp_path: Path) -> None:
    gt = load_gt(bench_gt)
    tracks = write(tmp_path, "tracks.csv", TRACKS_HEADER + "".join(
        f"{f},{t:.4f},{p[1:]},{p},{x1:g},{y1:g},{x2:g},{y2:g},0.9\n"
        for f, t, p, (x1, y1, x2, y2) in zip(gt.frame, gt.t, gt.person, gt.xyxy, strict=True)
    ))
    for named in (True, False):
        report = evaluate(tracks, bench_gt, named=named)
        assert report.identity.accuracy == 1.0
        assert report.tracking.idf1 == pytest.approx(1.0)
        assert report.tracking.hota == pytest.approx(1.0)
        assert report.identity.total == 165


def test_real_gt_crop_on_clamped_head_is_all_hits(bench_gt: Path) -> None:
    # A 9:16 crop 256 px tall centred on each target's clamped head point at every keyframe.
    gt = load_gt(bench_gt)
    frame_size = (360, 640)
    for target in gt.names():
        rows = np.flatnonzero(gt.person == target)
        hx = (gt.xyxy[rows, 0] + gt.xyxy[rows, 2]) / 2
        hy = gt.xyxy[rows, 1] + 0.12 * (gt.xyxy[rows, 3] - gt.xyxy[rows, 1])
        cx, cy = np.clip(hx, 72, 360 - 72), np.clip(hy, 128, 640 - 128)
        xyxy = np.stack([cx - 72, cy - 128, cx + 72, cy + 128], axis=1)
        crop = CropTable("crop", gt.frame[rows], gt.t[rows], xyxy, np.full(len(rows), "follow"))
        c = crop_scores(gt, crop, target, frame_size)
        assert (c.hit_rate, c.wide_share) == (1.0, 0.0)
        assert c.eligible == len(rows)
        assert c.lag_frames in (0, None)  # camera x equals head x at every keyframe


# --------------------------------------------------------------------------------------- helpers
def load_gt_text(text: str) -> GroundTruth:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return load_gt(write(Path(d), "gt.csv", text))


def tracks_from_rows(rows: list[tuple]):
    """PredictedTracks from (frame, tracklet, person, (x1, y1, x2, y2)) rows, score 0.9."""
    import tempfile

    text = TRACKS_HEADER + "".join(
        f"{f},{f / 30},{k},{p},{','.join(map(str, box))},0.9\n" for f, k, p, box in rows
    )
    with tempfile.TemporaryDirectory() as d:
        return load_tracks(write(Path(d), "tracks.csv", text))


def test_empty_tracks_score_zero(trio, tmp_path: Path, caplog) -> None:
    gt, _, _ = trio
    report = evaluate(write(tmp_path, "none.csv", TRACKS_HEADER), gt, named=True)
    assert (report.identity.accuracy, report.identity.unmatched) == (0.0, 11)
    assert (report.tracking.idf1, report.tracking.hota) == (0.0, 0.0)
    assert "nobody was tracked" in caplog.text


@pytest.mark.slow
def test_idf1_of_motmetrics_equals_trackeval_on_the_bench_clip(gillhung_analysis, bench_gt: Path) -> None:
    """IDF1 comes from motmetrics (the `eval` extra); trackeval's Identity gives the same numbers."""
    from trackeval.metrics import Identity

    from fancam.eval.metrics import MATCH_IOU, motmetrics_identity, trackeval_data

    gt = load_gt(bench_gt)
    tracks = load_tracks(gillhung_analysis.folder / "tracks.csv")
    for labels in (tracks.person, np.char.add("t", tracks.tracklet.astype(str))):  # names, then tracklets
        variant = dataclasses.replace(tracks, person=np.asarray(labels))
        data, _ = trackeval_data(gt, variant, match_keyframes(gt, variant))
        expected = Identity({"THRESHOLD": MATCH_IOU, "PRINT_CONFIG": False}).eval_sequence(data)
        got = motmetrics_identity(data)
        assert got == pytest.approx((expected["IDF1"], expected["IDP"], expected["IDR"]), abs=1e-9)
    assert 0.5 < got[0] < 1.0, "tracklets are fragments of the performers: a real test of the matching"
