"""Tests of the body appearance descriptor on synthetic frames and on real gillhung crops."""

from __future__ import annotations

import csv
from dataclasses import replace

import cv2
import numpy as np
import pytest

from fancam.identity import body
from fancam.identity.body import (
    BodyConfig,
    body_prototype,
    body_similarity,
    describe_bodies,
    paired_similarity,
    similarity_matrix,
)
from fancam.io.video import iter_frames

LAST_FRAME = 450  # keyframes 0..450 (15 s) keep decoding short


@pytest.fixture(scope="module")
def gill(gillhung_clip, bench_gt):
    """GT keyframes 0..LAST_FRAME: (frame (N,), person (N,), boxes (N, 4), {frame: RGB image})."""
    with open(bench_gt, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["frame"]) <= LAST_FRAME and r["uncertain"] == "0"]
    frame = np.array([int(r["frame"]) for r in rows])
    person = np.array([r["person"] for r in rows])
    boxes = np.array([[float(r[k]) for k in ("x1", "y1", "x2", "y2")] for r in rows])
    wanted = set(frame.tolist())
    images = {}
    for f in iter_frames(gillhung_clip):
        if f.index in wanted:
            images[f.index] = f.rgb()
        if f.index >= LAST_FRAME:
            break
    assert len(images) == len(wanted)
    return frame, person, boxes, images


def _describe_gt(gill, config=body.DEFAULT_CONFIG, boxes=None):
    frame, _, gt_boxes, images = gill
    boxes = gt_boxes if boxes is None else boxes
    out = np.zeros((len(frame), config.layout.dim), np.float32)
    for f in np.unique(frame):
        rows = np.where(frame == f)[0]
        out[rows] = describe_bodies(images[f], boxes[rows], config=config)
    return out


def _auc(pos, neg):
    pos, neg = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


def _pair_auc(sim, frame, person, a, b):
    """AUC of same- vs different-person pairs among people a and b, pairs from different frames."""
    iu = np.triu_indices(len(frame), 1)
    keep = (frame[iu[0]] != frame[iu[1]]) & np.isin(person[iu[0]], [a, b]) & np.isin(person[iu[1]], [a, b])
    same = person[iu[0]] == person[iu[1]]
    s = sim[iu]
    return _auc(s[keep & same], s[keep & ~same])


def _two_colour_frame():
    """200x400 frame: red left of x=200, blue right of it, with a grey floor band."""
    frame = np.zeros((200, 400, 3), np.uint8)
    frame[:, :200] = (200, 30, 30)
    frame[:, 200:] = (30, 30, 200)
    frame[180:] = (128, 128, 128)
    return frame


# --- contract -------------------------------------------------------------------------------------


def test_descriptor_shape_dtype_and_unit_blocks():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 90, 220], [100, 10, 200, 230], [150, 0, 300, 240]], np.float32)
    desc = describe_bodies(frame, boxes)
    layout = body.DEFAULT_CONFIG.layout
    assert desc.shape == (3, layout.dim) and desc.dtype == np.float32
    for start, size in layout.spans():
        norms = np.linalg.norm(desc[:, start : start + size], axis=1)
        np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    assert np.all(desc >= 0)
    sim = similarity_matrix(desc, desc)
    assert sim.shape == (3, 3)
    assert np.all((sim >= 0) & (sim <= 1 + 1e-9))
    np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-6)
    np.testing.assert_allclose(sim, sim.T, atol=1e-12)


def test_paired_similarity_is_the_matrix_diagonal_pair_by_pair():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 90, 220], [100, 10, 200, 230], [150, 0, 300, 240], [0, 0, 0, 0]], np.float32)
    desc = describe_bodies(frame, boxes)  # the last box is degenerate: an invalid row, NaN similarities
    i, j = np.array([0, 0, 1, 2, 3]), np.array([1, 2, 2, 1, 0])
    full = similarity_matrix(desc, desc)
    np.testing.assert_allclose(paired_similarity(desc[i], desc[j]), full[i, j], atol=1e-12, equal_nan=True)
    assert np.isnan(paired_similarity(desc[3:], desc[:1])[0])


def test_texture_layout_adds_blocks():
    config = BodyConfig(texture_weight=0.5)
    frame = _two_colour_frame()
    desc = describe_bodies(frame, [[150, 10, 250, 190]], config=config)
    assert desc.shape == (1, config.layout.dim)
    assert config.layout.dim > body.DEFAULT_CONFIG.layout.dim
    assert body_similarity(desc[0], desc[0], config) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "change",
    [
        {"stripe_weights": (1.0, 1.0)},  # one weight per stripe required
        {"stripes": ((0.5, 0.2),)},  # top must be above bottom
        {"colour_space": "rgb"},  # unknown colour space
        {"overlap_weight": 1.5},  # out of [0, 1]
        {"resample_height": 8},  # too small to describe anything
    ],
)
def test_config_rejects_bad_values(change):
    with pytest.raises(ValueError):
        replace(BodyConfig(), **change)


def test_frame_must_be_uint8_rgb():
    with pytest.raises(ValueError, match="uint8 RGB"):
        describe_bodies(np.zeros((10, 10), np.uint8), [[0, 0, 5, 5]])
    with pytest.raises(ValueError, match="uint8 RGB"):
        describe_bodies(np.zeros((10, 10, 3), np.float32), [[0, 0, 5, 5]])


@pytest.mark.parametrize(
    "box",
    [
        [50, 50, 50, 150],  # zero width
        [50, 50, 80, 50],  # zero height
        [50, 50, 60, 60],  # shorter than min_box_height
        [500, 10, 600, 190],  # entirely right of the frame
        [-100, -300, -10, -20],  # entirely above-left of the frame
        [np.nan, 10, 60, 190],  # not finite
        [10, 10, np.inf, 190],  # not finite
    ],
)
def test_degenerate_boxes_give_invalid_rows(box):
    frame = _two_colour_frame()
    desc = describe_bodies(frame, np.array([box, [150, 10, 250, 190]], np.float64))
    assert not body.is_valid(desc[0]) and body.is_valid(desc[1])
    assert np.isnan(body_similarity(desc[0], desc[1]))


def test_empty_input_and_partly_outside_box():
    frame = _two_colour_frame()
    assert describe_bodies(frame, np.zeros((0, 4))).shape == (0, body.DEFAULT_CONFIG.layout.dim)
    desc = describe_bodies(frame, [[-60, -40, 80, 190]])
    assert body.is_valid(desc[0])
    # The part above the frame is missing: the head stripe is invalid, lower stripes are not.
    present = body.DEFAULT_CONFIG.layout.present(desc)[0]
    assert not present[0] and present[-1]


def test_indices_describe_a_subset_with_the_same_masks():
    frame = _two_colour_frame()
    boxes = np.array([[100, 0, 200, 200], [150, 0, 300, 200], [20, 30, 90, 180]], np.float64)
    full = describe_bodies(frame, boxes)
    part = describe_bodies(frame, boxes, indices=[2, 0])
    np.testing.assert_array_equal(part, full[[2, 0]])


def test_overlapped_region_is_masked():
    frame = _two_colour_frame()
    box_a = [100, 0, 250, 200]  # red on its left 2/3, blue on its right 1/3
    box_b = [200, 0, 350, 200]  # covers the blue part of box_a
    alone = describe_bodies(frame, [box_a])[0]
    masked = describe_bodies(frame, [box_a, box_b], config=BodyConfig(overlap_weight=0.0))[0]
    kept = describe_bodies(frame, [box_a, box_b], config=BodyConfig(overlap_weight=1.0))[0]
    np.testing.assert_allclose(kept, alone, atol=1e-6)
    assert body_similarity(masked, alone) < 0.99
    # Masked, the box looks like pure red (a box on the red half) more than it did alone.
    red = describe_bodies(frame, [[20, 0, 170, 200]])[0]
    assert body_similarity(masked, red) > body_similarity(alone, red) + 0.02
    # The default weight (0.3) lies in between.
    default = describe_bodies(frame, [box_a, box_b])[0]
    assert body_similarity(masked, red) > body_similarity(default, red) > body_similarity(alone, red)


def test_fully_covered_box_is_invalid_when_overlaps_are_ignored():
    frame = _two_colour_frame()
    inner, outer = [120, 20, 180, 180], [100, 0, 250, 200]
    desc = describe_bodies(frame, [inner, outer], config=BodyConfig(overlap_weight=0.0))
    assert not body.is_valid(desc[0]) and body.is_valid(desc[1])


def test_prototype_median_resists_an_outlier_and_handles_empty():
    frame = _two_colour_frame()
    red = describe_bodies(frame, [[20, 0, 120, 200], [30, 5, 130, 195], [40, 0, 150, 190]])
    blue = describe_bodies(frame, [[250, 0, 350, 200]])
    proto = body_prototype(np.vstack([red, blue, np.zeros_like(blue)]))
    assert proto.n == 4  # the all-zero (invalid) row is dropped
    assert body_similarity(proto.centre, red[0]) > 0.95 > body_similarity(proto.centre, blue[0])
    assert 0 <= proto.spread < 0.1
    empty = body_prototype(np.zeros((2, body.DEFAULT_CONFIG.layout.dim)))
    assert empty.n == 0 and np.isnan(empty.spread)
    assert np.isnan(body.prototype_similarity(empty, proto))
    assert body.prototype_similarity(proto, body_prototype(red)) > 0.95


# --- real crops: gillhung (P1, P3 same outfit, different hair; P2 in a white jacket) ---------------


def test_same_person_closer_than_others_on_real_crops(gill):
    frame, person, _, _ = gill
    desc = _describe_gt(gill)
    assert body.is_valid(desc).all()
    sim = similarity_matrix(desc, desc)
    # P2 (white jacket) is clearly apart from both P1 and P3.
    assert _pair_auc(sim, frame, person, "P1", "P2") > 0.98
    assert _pair_auc(sim, frame, person, "P2", "P3") > 0.98
    # P1 vs P3 (same outfit): still separated, mostly by hair.
    assert _pair_auc(sim, frame, person, "P1", "P3") > 0.95
    # Nearest prototype (first 5 s) identifies every later box.
    early = frame < 150
    people = ["P1", "P2", "P3"]
    protos = np.stack([body_prototype(desc[early & (person == p)]).centre for p in people])
    pred = np.array(people)[np.argmax(similarity_matrix(desc[~early], protos), axis=1)]
    assert np.mean(pred == person[~early]) >= 0.95


def test_hair_stripe_separates_p1_from_p3(gill):
    frame, person, _, _ = gill
    hair_only = BodyConfig(stripe_weights=(1.0, 0.0, 0.0, 0.0, 0.0, 0.0))
    desc = _describe_gt(gill, hair_only)
    sim = similarity_matrix(desc, desc, hair_only)
    assert _pair_auc(sim, frame, person, "P1", "P3") > 0.95


def test_robust_to_box_scaling_and_small_shifts(gill):
    frame, person, boxes, _ = gill
    desc = _describe_gt(gill)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    people = ["P1", "P2", "P3"]
    protos = np.stack([body_prototype(desc[person == p]).centre for p in people])
    for scale, dx, dy in ((1.1, 0.0, 0.0), (0.9, 0.0, 0.0), (1.0, 0.05, 0.03), (1.05, -0.05, -0.03)):
        cx = (boxes[:, 0] + boxes[:, 2]) / 2 + dx * w
        cy = (boxes[:, 1] + boxes[:, 3]) / 2 + dy * h
        moved = np.stack([cx - w * scale / 2, cy - h * scale / 2, cx + w * scale / 2, cy + h * scale / 2], 1)
        desc_moved = _describe_gt(gill, boxes=moved)
        self_sim = np.array([body_similarity(a, b) for a, b in zip(desc, desc_moved, strict=True)])
        assert np.median(self_sim) > 0.95, (scale, dx, dy)
        pred = np.array(people)[np.argmax(similarity_matrix(desc_moved, protos), axis=1)]
        assert np.mean(pred == person) >= 0.95, (scale, dx, dy)


def test_overlap_masking_changes_an_occluded_real_box(gill):
    frame, person, boxes, images = gill
    rows = np.where(frame == 0)[0]
    p2 = int(np.where(person[rows] == "P2")[0][0])  # P2's box overlaps both neighbours at frame 0
    masked = describe_bodies(images[0], boxes[rows], config=BodyConfig(overlap_weight=0.0))[p2]
    kept = describe_bodies(images[0], boxes[rows], config=BodyConfig(overlap_weight=1.0))[p2]
    alone = describe_bodies(images[0], boxes[rows][[p2]])[0]
    np.testing.assert_allclose(kept, alone, atol=1e-6)
    assert body_similarity(masked, alone) < 0.99


def test_calibration_maps_similarity_to_probability():
    rng = np.random.default_rng(0)
    same = np.clip(rng.normal(0.95, 0.02, 200), 0, 1)
    different = np.clip(rng.normal(0.80, 0.05, 300), 0, 1)
    cal = body.fit_calibration(same, np.append(different, np.nan))  # NaN (incomparable) ignored
    assert 0.85 < cal.threshold < 0.93
    p = cal.p_same(np.array([0.5, 0.8, cal.threshold, 0.95, 1.0]))
    assert np.all(np.diff(p) > 0) and p[0] < 0.01 and p[-1] > 0.99
    assert p[2] == pytest.approx(0.5)
    assert np.isnan(cal.p_same(np.nan))
    with pytest.raises(ValueError, match="same-person and different-person"):
        body.fit_calibration(same, [np.nan])


def test_calibration_fitted_without_identities_holds_on_long_gaps(gill):
    frame, person, _, _ = gill
    desc = _describe_gt(gill)
    sim = similarity_matrix(desc, desc)
    iu = np.triu_indices(len(frame), 1)
    dt = np.abs(frame[:, None] - frame[None])[iu] / 30.0
    same = (person[:, None] == person[None])[iu]
    s = sim[iu]
    # What a pipeline knows without identities: one tracklet (<= 1 s) vs boxes of the same frame.
    cal = body.fit_calibration(s[same & (dt > 0) & (dt <= 1.0)], s[~same & (dt == 0)])
    test = dt >= 5.0
    p = cal.p_same(s[test])
    assert np.mean(p[same[test]] > 0.5) > 0.9
    assert np.mean(p[~same[test]] < 0.5) > 0.9


# --- boxes cut by the frame bottom (close-ups) ------------------------------------------------------


@pytest.mark.parametrize(
    ("box", "face", "expected"),
    [
        ([100, 50, 300, 200], 30.0, [100, 50, 300, 380]),  # touches the bottom, 150 tall, face: 330 tall body
        ([100, 50, 300, 195], 30.0, [100, 50, 300, 380]),  # within 3% of the bottom (detectors stop short)
        ([100, 50, 300, 180], 30.0, [100, 50, 300, 180]),  # above the bottom: a whole (crouching) body
        ([100, 50, 300, 200], 15.0, [100, 50, 300, 200]),  # a face of a 165 px body: whole, feet at the edge
        ([100, 50, 300, 200], np.nan, [100, 50, 300, 200]),  # no face: described as it is
    ],
)
def test_full_body_box_extends_only_boxes_cut_by_the_bottom(box, face, expected):
    np.testing.assert_allclose(body.full_body_box(np.array(box, float), 200, face), expected)


def test_full_body_box_can_be_switched_off():
    box = np.array([100.0, 50.0, 300.0, 200.0])
    np.testing.assert_array_equal(body.full_body_box(box, 200, 30.0, BodyConfig(face_to_body=0.0)), box)


def test_face_sides_must_match_the_described_boxes():
    with pytest.raises(ValueError, match="face_sides"):
        describe_bodies(_two_colour_frame(), [[10, 10, 60, 190], [100, 10, 150, 190]], face_sides=[20.0])


def _banded_person(frame, box, colours):
    """Paint a 'person' in ``box`` (xyxy, may leave the frame): one colour per default stripe."""
    x1, y1, x2, y2 = box
    for (top, bottom), colour in zip(body.DEFAULT_STRIPES, colours, strict=True):
        a, b = int(round(y1 + top * (y2 - y1))), int(round(y1 + bottom * (y2 - y1)))
        frame[max(a, 0) : max(min(b, frame.shape[0]), 0), max(x1, 0) : x2] = colour


def test_close_up_compares_the_stripes_it_shows_with_the_same_stripes_of_the_full_body():
    colours = [(30, 20, 10), (220, 40, 40), (40, 200, 60), (40, 60, 220), (230, 230, 60), (250, 250, 250)]
    others = [(30, 20, 10), (40, 40, 220), (220, 40, 40), (40, 200, 60), (250, 250, 250), (20, 20, 20)]
    wide = np.full((400, 600, 3), 128, np.uint8)
    _banded_person(wide, (100, 20, 220, 380), colours)  # full body, 3x taller than wide
    _banded_person(wide, (400, 20, 520, 380), others)  # someone else
    full = describe_bodies(wide, [[100, 20, 220, 380], [400, 20, 520, 380]])
    # The close-up: the same person 3x larger (a 1080 px tall body) in a 400 px frame: head to chest.
    close = np.full((400, 600, 3), 128, np.uint8)
    _banded_person(close, (120, 10, 480, 1090), colours)
    box = [[120, 10, 480, 396]]
    now = describe_bodies(close, box, face_sides=[1080 / 11])[0]  # a face of a 1080 px body
    before = describe_bodies(close, box)[0]  # without a face: the box as a whole body
    shown = body.DEFAULT_CONFIG.layout.present(now[None])[0]
    assert shown[:2].all() and not shown[-2:].any()  # head and chest shown, shins and feet below the frame
    assert body_similarity(now, full[0]) > 0.95
    assert body_similarity(now, full[0]) > body_similarity(now, full[1]) + 0.3
    # As a whole body, its bottom rows (the waist) were compared with the feet.
    assert body_similarity(before, full[0]) < body_similarity(now, full[0]) - 0.2


def test_real_close_up_matches_its_own_performer(gill):
    """A waist-up close-up cut from the bench clip (the upper 55% of a GT box, upscaled to the frame
    as music shows do), with a face of its body's size, is most like its own performer's full-body
    prototype, more so than described as a whole body."""
    frame, person, boxes, images = gill
    desc = _describe_gt(gill)
    people = ["P1", "P2", "P3"]
    protos = np.stack([body_prototype(desc[person == p]).centre for p in people])
    right_now, right_before, gains = 0, 0, []
    rows = np.flatnonzero(person != "")[::7]
    for r in rows:
        image = images[frame[r]]
        x1, y1, x2, y2 = boxes[r]
        h_img, w_img = image.shape[:2]
        crop_h = 0.6 * (y2 - y1)
        crop_w = crop_h * w_img / h_img
        left = float(np.clip((x1 + x2) / 2 - crop_w / 2, 0, w_img - crop_w))
        top = float(np.clip(y1 - 0.05 * (y2 - y1), 0, h_img - crop_h))
        zoom = h_img / crop_h
        warp = np.array([[zoom, 0, -left * zoom], [0, zoom, -top * zoom]])
        close = cv2.warpAffine(image, warp, (w_img, h_img), flags=cv2.INTER_LINEAR)
        box = np.array([[(x1 - left) * zoom, (y1 - top) * zoom, (x2 - left) * zoom, h_img - 2.0]])
        box[0, [0, 2]] = np.clip(box[0, [0, 2]], 0, w_img)
        face = [(y2 - y1) * zoom / body.DEFAULT_CONFIG.face_to_body]  # the face of a body that tall
        now, before = describe_bodies(close, box, face_sides=face)[0], describe_bodies(close, box)[0]
        sims_now, sims_before = similarity_matrix(now[None], protos)[0], similarity_matrix(before[None], protos)[0]
        own = people.index(person[r])
        right_now += int(np.argmax(sims_now) == own)
        right_before += int(np.argmax(sims_before) == own)
        gains.append(sims_now[own] - sims_before[own])
    assert right_now >= right_before and right_now >= 0.8 * len(rows)
    assert np.median(gains) > 0.03
