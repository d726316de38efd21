from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from conftest import shared_file
from fancam.errors import ModelError
from fancam.geometry import iou_matrix
from fancam.io.video import iter_frames
from fancam.models import registry as models
from fancam.tracking.detect import (
    DETECTOR_NAMES,
    DETECTOR_SETTINGS,
    Detector,
    SsdConfig,
    SsdMobilenetDetector,
    YoloxConfig,
    YoloxDetector,
    _merge_views,
    detector_settings,
    make_detector,
    nms,
    square_tiles,
)
from fancam.types import Detections

# Keyframes of the labelled clip spread over the dance (not the P2/P3 merge near f735).
KEYFRAMES = (0, 300, 570, 810)


@pytest.fixture(scope="module")
def detectors() -> dict[str, Detector]:
    return {
        "ssd": make_detector("ssd"),
        "yolox-nano": make_detector("yolox-nano"),  # the shipped file
    }


@pytest.fixture(scope="module")
def keyframes(gillhung_clip, bench_gt) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """frame -> (360x640 RGB image, (3, 4) labelled boxes)."""
    boxes: dict[int, list[list[float]]] = {}
    with open(bench_gt, newline="") as f:
        for row in csv.DictReader(f):
            if int(row["frame"]) in KEYFRAMES:
                box = [float(row[k]) for k in ("x1", "y1", "x2", "y2")]
                boxes.setdefault(int(row["frame"]), []).append(box)
    out = {}
    for frame in iter_frames(gillhung_clip):
        if frame.index in KEYFRAMES:
            out[frame.index] = (frame.rgb(), np.array(boxes[frame.index]))
        if frame.index >= max(KEYFRAMES):
            break
    assert sorted(out) == list(KEYFRAMES) and all(len(b) == 3 for _, b in out.values())
    return out


def _downsized(image: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    scale = min(1.0, long_side / max(h, w))
    size = (round(w * scale), round(h * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _n_matched(gt: np.ndarray, boxes: np.ndarray, min_iou: float = 0.5) -> int:
    if len(boxes) == 0:
        return 0
    m = iou_matrix(gt, boxes)
    rows, cols = linear_sum_assignment(-m)
    return int((m[rows, cols] >= min_iou).sum())


@pytest.mark.parametrize("name", ["ssd", "yolox-nano"])
def test_finds_the_three_dancers(detectors, keyframes, name):
    det = detectors[name]
    assert isinstance(det, Detector) and det.name == name
    for index, (image, gt) in keyframes.items():
        small, scale = _downsized(image, det.input_long_side)
        found = det(small)
        assert isinstance(found, Detections)
        assert np.all(found.score >= 0.3)
        assert _n_matched(gt, found.xyxy / scale) == 3, f"frame {index}: {found.xyxy / scale}"
        assert len(found) <= 4, f"frame {index}: too many boxes {found.xyxy / scale}"


@pytest.mark.parametrize("name", ["ssd", "yolox-nano"])
def test_wide_frame_of_nine_dancers(detectors, keyframes, name):
    # Three keyframes side by side: a 1080x640 (~16:9) wide shot with 9 labelled dancers. A plain
    # 300x300 squash finds ~70% of them (see notes/detect_report.md); the fold layout must find them all.
    det = detectors[name]
    image, gt = keyframes[300]
    wide = np.concatenate([image] * 3, axis=1)
    wide_gt = np.concatenate([gt + [360 * i, 0, 360 * i, 0] for i in range(3)])
    small, scale = _downsized(wide, det.input_long_side)
    found = det(small)
    assert _n_matched(wide_gt, found.xyxy / scale) >= 8
    assert len(found) <= 10


def test_squash_layout_loses_people_on_wide_frames(keyframes):
    # Why "fold" exists: squashing 16:9 makes people too thin for SSD (measured: recall 0.70 vs 0.996).
    squash = SsdMobilenetDetector(config=SsdConfig(layout="squash"))
    image, gt = keyframes[300]
    wide = np.concatenate([image] * 3, axis=1)
    wide_gt = np.concatenate([gt + [360 * i, 0, 360 * i, 0] for i in range(3)])
    small, scale = _downsized(wide, 480)
    assert _n_matched(wide_gt, squash(small).xyxy / scale) <= 7


@pytest.mark.parametrize("name", ["ssd", "yolox-nano"])
@pytest.mark.parametrize(
    "image",
    [
        np.zeros((640, 360, 3), np.uint8),  # black portrait
        np.zeros((360, 640, 3), np.uint8),  # black landscape (fold path for SSD)
        np.full((300, 300, 3), 128, np.uint8),  # flat grey square
    ],
)
def test_featureless_image_has_no_people(detectors, name, image):
    assert len(detectors[name](image)) == 0


@pytest.mark.parametrize("name", ["ssd", "yolox-nano"])
@pytest.mark.parametrize("wide", [False, True])
def test_boxes_are_in_input_pixels(detectors, keyframes, name, wide):
    # The same content at two sizes (non-square inputs): boxes must scale with the input.
    det = detectors[name]
    image, _ = keyframes[0]
    if wide:
        image = np.concatenate([image] * 3, axis=1)  # 1080x640
    big, big_scale = _downsized(image, det.input_long_side)
    small = cv2.resize(big, (big.shape[1] * 2 // 3, big.shape[0] * 2 // 3), interpolation=cv2.INTER_AREA)
    fx, fy = big.shape[1] / small.shape[1], big.shape[0] / small.shape[0]
    a, b = det(big), det(small)
    assert len(a) >= (9 if wide else 3)
    assert np.all(a.xyxy[:, [0, 2]] <= big.shape[1]) and np.all(a.xyxy[:, [1, 3]] <= big.shape[0])
    assert np.all(b.xyxy[:, [0, 2]] <= small.shape[1]) and np.all(b.xyxy[:, [1, 3]] <= small.shape[0])
    rescaled = b.xyxy * np.array([fx, fy, fx, fy], np.float32)
    assert _n_matched(a.xyxy, rescaled, min_iou=0.7) >= len(a) - 1


def test_yolox_letterbox_padding_does_not_shift_boxes(detectors, keyframes):
    # Padding a frame on the right and bottom (more letterbox pad inside the model) keeps box coordinates.
    det = detectors["yolox-nano"]
    image, gt = keyframes[570]
    padded = np.zeros((800, 500, 3), np.uint8)
    padded[:640, :360] = image
    assert _n_matched(gt, det(padded).xyxy) == 3


def test_threshold_is_configurable(detectors, keyframes):
    image, _ = keyframes[0]
    default = detectors["ssd"](image)  # threshold 0.3: three dancers scored ~0.91-0.97
    strict = make_detector("ssd", score_threshold=0.95)(image)
    assert np.all(default.score >= 0.3) and np.all(strict.score >= 0.95)
    assert 0 < len(strict) < len(default)


def test_names_are_normalised_and_opencv_threads_restored(keyframes):
    before = cv2.getNumThreads()
    det = make_detector(" SSD ", threads=before + 1)
    assert det.name == "ssd"
    assert len(det(keyframes[0][0])) == 3
    assert cv2.getNumThreads() == before


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown person detector 'rcnn'") as err:
        make_detector("rcnn")
    for name in DETECTOR_NAMES:
        assert name in str(err.value)
    # The registry owns the names: every person model it lists, nothing else.
    assert DETECTOR_NAMES == tuple(m.name for m in models.list_models("person"))
    assert set(DETECTOR_SETTINGS) == set(DETECTOR_NAMES)


def test_default_settings_are_the_measured_ones():
    # Whole frame at the model's input size, score >= 0.3; tiles only on landscape wide shots of small
    # people (module docstring: tiles on every frame, 512/640 inputs and lower thresholds won on no
    # labelled clip); the SSD keeps its fold layout.
    nano = detector_settings(models.YOLOX_NANO)
    assert isinstance(nano, YoloxConfig) and nano.score_threshold == 0.3
    assert (nano.tiles, nano.tile_max_height) == (2, 0.2)
    assert nano.tiled(1920, 1080) and not nano.tiled(1080, 1920) and not nano.tiled(1440, 1080)
    assert detector_settings("ssd") == SsdConfig(layout="fold")
    assert detector_settings("yolox-nano", score_threshold=0.5).score_threshold == 0.5
    det = make_detector("yolox-nano")
    assert det.long_side_for(360, 640) == det.long_side_for(1440, 1080) == det.input_long_side == 416
    assert det.long_side_for(1920, 1080) == 740  # each tile (the frame height) at 416 px


def test_square_tiles_cover_the_image_with_overlap():
    assert square_tiles(640, 360, 2) == [(0, 0, 360, 360), (280, 0, 640, 360)]
    three = square_tiles(640, 360, 3)
    assert three == [(0, 0, 360, 360), (140, 0, 500, 360), (280, 0, 640, 360)]
    assert square_tiles(360, 640, 2) == [(0, 0, 360, 360), (0, 280, 360, 640)]
    assert square_tiles(640, 360, 1) == [(0, 0, 640, 360)]
    assert len(square_tiles(1000, 100, 2)) == 13  # 10 squares need 13 to overlap by >= 20%
    assert square_tiles(300, 300, 3) == [(0, 0, 300, 300)]


def test_tiles_find_small_people_in_a_wide_shot(keyframes):
    # Keyframes at half size, 14 side by side on the lower half of a 2520x640 canvas: a wide shot of 42
    # dancers ~27% of the frame tall. The whole frame at 416 px shows them ~28 px tall, the tiles ~110 px.
    halves = [(cv2.resize(img, (180, 320), interpolation=cv2.INTER_AREA), gt / 2)
              for img, gt in (keyframes[k] for k in KEYFRAMES)]
    frames = [halves[i % len(halves)] for i in range(14)]
    wide = np.zeros((640, 2520, 3), np.uint8)
    wide[320:] = np.concatenate([img for img, _ in frames], axis=1)
    wide_gt = np.concatenate([gt + [180 * i, 320, 180 * i, 320] for i, (_, gt) in enumerate(frames)])
    whole = YoloxDetector(models.ensure_model("yolox-nano"), YoloxConfig(tiles=0))
    tiled = make_detector("yolox-nano")  # the default: tiles on wide shots of small people
    assert tiled.config.tiled(2520, 640) and tiled.long_side_for(2520, 640) == 1638
    assert len(square_tiles(1638, 416, 2)) == 5  # 2 asked, 5 needed to overlap
    found = {}
    for name, det in (("whole", whole), ("tiles", tiled)):
        small, scale = _downsized(wide, det.long_side_for(2520, 640))
        found[name] = _n_matched(wide_gt, det(small).xyxy / scale)
    assert found["tiles"] >= 38 and found["tiles"] > found["whole"] + 10, found


def test_tiles_skip_close_shots(keyframes, monkeypatch):
    # A landscape close shot (someone taller than half the frame): only the whole-frame call runs.
    image, gt = keyframes[0]
    close = np.zeros((640, 1280, 3), np.uint8)
    close[:, 460:820] = image
    det = make_detector("yolox-nano")
    calls = []
    real = det._forward
    monkeypatch.setattr(det, "_forward", lambda img: calls.append(img.shape) or real(img))
    assert _n_matched(gt + [460, 0, 460, 0], det(close).xyxy) == 3
    assert calls == [(640, 1280, 3)]


def test_parts_seen_by_another_view_are_dropped():
    # Tile boxes lying inside a better whole-frame box of someone are dropped; a small person in front
    # of someone (under duplicate_min_area of the box) and boxes of the same view are kept.
    cfg = YoloxConfig(tiles=2)
    whole = (np.array([[100, 50, 220, 350]], float), np.array([0.9], np.float32))
    tile = (np.array([[100, 50, 220, 200], [150, 300, 180, 340], [0, 0, 40, 90]], float),
            np.array([0.7, 0.8, 0.6], np.float32))
    views = [(0, 0, 640, 360), (0, 0, 360, 360)]
    merged = _merge_views([whole, tile], views, cfg, 640, 360)
    kept = {tuple(b) for b in merged.xyxy.astype(int).tolist()}
    assert kept == {(100, 50, 220, 350), (150, 300, 180, 340), (0, 0, 40, 90)}


def test_missing_model_files(tmp_path, monkeypatch):
    monkeypatch.setenv("FANCAM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FANCAM_MODEL_MIRROR", raising=False)
    with pytest.raises(ModelError, match="frozen_inference_graph.pb"):
        SsdMobilenetDetector(tmp_path)
    with pytest.raises(ModelError, match="ssd_mobilenet_v2_coco_2018_03_29.pbtxt"):
        (tmp_path / "frozen_inference_graph.pb").write_bytes(b"x")
        make_detector("ssd", model_path=tmp_path / "frozen_inference_graph.pb")
    with pytest.raises(ModelError, match="missing"):
        YoloxDetector(tmp_path / "yolox_nano.onnx")
    with pytest.raises(ModelError, match="fancam models download yolox-s"):
        make_detector("yolox-s")  # not shipped, not cached: never downloaded here


def test_corrupt_model_files(tmp_path):
    (tmp_path / "frozen_inference_graph.pb").write_bytes(b"not a graph")
    (tmp_path / "ssd_mobilenet_v2_coco_2018_03_29.pbtxt").write_text("garbage {")
    with pytest.raises(ModelError, match="OpenCV cannot load"):
        SsdMobilenetDetector(tmp_path)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="onnxruntime cannot load"):
        YoloxDetector(bad)


def test_other_onnx_model_is_rejected():
    # A face detector is a valid ONNX file but not a YOLOX export.
    with pytest.raises(ModelError, match="expected"):
        YoloxDetector(shared_file("models/yunet_s_640_640.onnx"))


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((640, 360), np.uint8),  # greyscale
        np.zeros((640, 360, 4), np.uint8),  # RGBA
        np.zeros((640, 360, 3), np.float32),  # not uint8
        np.zeros((1, 360, 3), np.uint8),  # degenerate
    ],
)
def test_bad_images_are_rejected(detectors, bad):
    with pytest.raises(ValueError, match="image"):
        detectors["ssd"](bad)


@pytest.mark.parametrize(
    ("config", "kwargs"),
    [
        (SsdConfig, {"score_threshold": 1.5}),  # threshold outside [0, 1]
        (SsdConfig, {"layout": "crop"}),  # unknown layout
        (SsdConfig, {"fold_min_aspect": 0.5}),  # would fold portrait frames
        (YoloxConfig, {"nms_iou": -0.1}),  # IoU outside [0, 1]
        (YoloxConfig, {"tiles": -1}),  # negative tile count
        (YoloxConfig, {"tile_min_aspect": 0.9}),  # would tile portrait frames
        (YoloxConfig, {"duplicate_cover": 1.5}),  # share outside [0, 1]
    ],
)
def test_bad_configs_are_rejected(config, kwargs):
    with pytest.raises(ValueError):
        config(**kwargs)


def test_bad_thread_count_is_rejected():
    with pytest.raises(ValueError, match="threads"):
        make_detector("ssd", threads=0)


@pytest.mark.parametrize(
    ("boxes", "scores", "expected"),
    [
        # no boxes
        (np.zeros((0, 4)), np.zeros(0), []),
        # two near-identical boxes: the better one survives
        ([[0, 0, 10, 10], [0, 0, 10, 11]], [0.5, 0.9], [1]),
        # disjoint boxes both survive, best first
        ([[0, 0, 10, 10], [20, 0, 30, 10]], [0.5, 0.9], [1, 0]),
        # a chain: A suppresses B, so C (overlapping only B) survives
        ([[0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10]], [0.9, 0.8, 0.7], [0, 2]),
    ],
)
def test_nms(boxes, scores, expected):
    assert nms(np.asarray(boxes, float), np.asarray(scores, float), 0.4).tolist() == expected


def test_default_ssd_never_touches_opencvs_process_wide_thread_count(monkeypatch, keyframes):
    # The analysis runs OpenCV in its decode thread (cut detection) while the SSD runs in the main
    # thread; toggling the global count under it is a crash hazard (two SSD threads segfaulted).
    def forbidden(n):
        raise AssertionError("cv2.setNumThreads called")

    det = make_detector("ssd")
    monkeypatch.setattr(cv2, "setNumThreads", forbidden)
    assert len(det(keyframes[0][0])) == 3
