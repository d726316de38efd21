"""Tests of fancam.identity.faces: detection in person boxes, alignment, quality, embeddings."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import shared_file
from fancam.errors import ModelError
from fancam.identity.faces import (
    SAME_PERSON_SIMILARITY,
    THRESHOLDS_BY_SIZE,
    UNKNOWN_SIMILARITY,
    DlibHogDetector,
    FaceAnalyzer,
    FaceConfig,
    FaceDetections,
    _merge_detections,
    assign_faces,
    chip_sharpness,
    close_up_boxes,
    frontalness,
    l2_normalise,
    make_detector,
    match_thresholds,
    yunet_to_dlib_box,
)
from fancam.identity.gallery import decode_image, pick_face


@pytest.fixture(scope="module")
def hog() -> FaceAnalyzer:
    return FaceAnalyzer(FaceConfig())


@pytest.fixture(scope="module")
def yunet() -> FaceAnalyzer:
    return FaceAnalyzer(FaceConfig(detector="yunet", yunet_model=shared_file("models/yunet_s_640_640.onnx")))


def _gt_boxes(gt: Path, frame: int) -> dict[str, np.ndarray]:
    with open(gt, newline="") as f:
        return {
            r["person"]: np.array([float(r[k]) for k in ("x1", "y1", "x2", "y2")])
            for r in csv.DictReader(f) if int(r["frame"]) == frame
        }


def _frame(clip: Path, index: int) -> np.ndarray:
    with av.open(str(clip)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"frame {index} not in {clip}")


# -- real photos -------------------------------------------------------------------------------------


def _embed_photo(analyzer: FaceAnalyzer, relative: str) -> np.ndarray:
    image = decode_image(shared_file(relative).read_bytes())
    assert image is not None
    face = pick_face(analyzer.faces_in_image(image))
    assert face is not None, relative
    return analyzer.embed([face])[0].embedding


def test_same_person_photos_are_closer_than_different_people(hog: FaceAnalyzer) -> None:
    # Two photos each of three people (id00, id03, id09 in labels.csv).
    names = ["img1", "img2", "img13", "img14", "img26", "img27"]
    with open(shared_file("data/deepface_faces/labels.csv"), newline="") as f:
        labels = {Path(r["file"]).stem: r["identity_id"] for r in csv.DictReader(f)}
    assert len({labels[n] for n in names}) == 3
    emb = np.stack([_embed_photo(hog, f"data/deepface_faces/images/{n}.jpg") for n in names])
    assert emb.shape == (6, 128) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sim = emb @ emb.T
    lab = np.array([labels[n] for n in names])
    same = lab[:, None] == lab[None, :]
    off_diag = ~np.eye(len(names), dtype=bool)
    # Every same-person pair beats every different-person pair, and the thresholds separate them.
    assert sim[same & off_diag].min() > sim[~same].max()
    assert sim[same & off_diag].min() >= UNKNOWN_SIMILARITY
    assert sim[~same].max() < SAME_PERSON_SIMILARITY


def test_dancer_faces_found_in_person_boxes(hog: FaceAnalyzer, gillhung_clip: Path, bench_gt: Path) -> None:
    boxes = _gt_boxes(bench_gt, 150)
    people = ["P1", "P2", "P3"]
    xyxy = np.stack([boxes[p] for p in people])
    found = hog.find_faces(_frame(gillhung_clip, 150), xyxy)
    assert len(found) == 3
    for person in ("P1", "P3"):
        face = found[people.index(person)]
        assert face is not None, f"no face found for {person}"
        box = boxes[person]
        cx, cy = (face.xyxy[0] + face.xyxy[2]) / 2, (face.xyxy[1] + face.xyxy[3]) / 2
        height = box[3] - box[1]
        # The face sits in the top fifth of its own person box, horizontally inside it.
        assert box[0] <= cx <= box[2] and box[1] <= cy <= box[1] + 0.2 * height
        assert 15 <= face.quality.size_px <= 60
        assert face.chip.shape == (150, 150, 3) and face.landmarks.shape == (5, 2)
        assert 0.0 <= face.quality.score <= 1.0


def test_faces_in_boxes_embeds_only_good_faces(gillhung_clip: Path, bench_gt: Path) -> None:
    boxes = _gt_boxes(bench_gt, 150)
    xyxy = np.stack([boxes[p] for p in ("P1", "P2", "P3")])
    frame = _frame(gillhung_clip, 150)
    everything = FaceAnalyzer(FaceConfig(min_quality=0.0)).faces_in_boxes(
        frame, xyxy, frame=150, tracklets=np.array([7, 8, 9])
    )
    kept = [s for s in everything if s is not None]
    assert len(kept) >= 2
    for sample in kept:
        assert sample.frame == 150 and sample.tracklet == 7 + sample.box_index
        assert sample.embedding.shape == (128,)
    nothing = FaceAnalyzer(FaceConfig(min_quality=1.01)).faces_in_boxes(frame, xyxy)
    assert nothing == [None, None, None]


def test_yunet_finds_all_three_dancers(yunet: FaceAnalyzer, gillhung_clip: Path, bench_gt: Path) -> None:
    boxes = _gt_boxes(bench_gt, 300)
    xyxy = np.stack([boxes[p] for p in ("P1", "P2", "P3")])
    found = yunet.find_faces(_frame(gillhung_clip, 300), xyxy)
    # YuNet also finds P2's masked face, which dlib HOG usually misses.
    assert all(f is not None for f in found)
    assert yunet.model_id.startswith("yunet:yunet_s_640_640.onnx")


HAMILTON_CLIP = "data/face_recognition_hamilton/short_hamilton_clip.mp4"


def _best_identity(analyzer: FaceAnalyzer, embedding: np.ndarray) -> str:
    """Name of the hamilton reference identity (photos taken elsewhere) closest to a face embedding."""
    sims = {}
    for folder in sorted(shared_file("data/face_recognition_hamilton/identities").iterdir()):
        photo = next(p for p in sorted(folder.iterdir()) if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
        image = decode_image(photo.read_bytes())
        assert image is not None
        faces = analyzer.faces_in_image(image)
        sims[folder.name] = float(analyzer.embed(faces[:1])[0].embedding @ embedding)
    return max(sims, key=sims.__getitem__)


@pytest.mark.parametrize(
    ("frame", "box", "who"),
    [
        # Alex's close-up (the tracker's box, cut by the frame bottom): his face is at y 81-235.
        (48, [395.6, 0.0, 639.8, 352.8], "alex_lacamoire"),
        # Lin-Manuel Miranda at the piano (the tracker's box, cut by the bottom, height/width 1.15).
        (105, [61.1, 23.3, 350.3, 355.7], "lin_manuel_miranda"),
    ],
)
def test_close_up_faces_are_found(yunet: FaceAnalyzer, frame: int, box: list[float], who: str) -> None:
    """hamilton (640x360 TV): faces of half-body and close-up boxes the full-body head search misses."""
    image = _frame(shared_file(HAMILTON_CLIP), frame)
    xyxy = np.array([box])
    (cand,) = yunet.find_faces(image, xyxy)
    assert cand is not None
    assert cand.quality.score >= yunet.config.min_quality
    (sample,) = yunet.embed([cand])
    assert _best_identity(yunet, sample.embedding) == who
    # Without the close-up search (the top 35% of a full body only): no face. What the test guards.
    full_body_only = FaceAnalyzer(dataclasses.replace(yunet.config, close_up_aspect=0.0, close_up_bottom=-1.0))
    assert full_body_only.find_faces(image, xyxy) == [None]


def test_close_up_search_skips_profiles_and_defocused_background(yunet: FaceAnalyzer) -> None:
    """hamilton frames 30 (Alex in profile) and 60 (only the blurred audience behind him in his box)."""
    clip = shared_file(HAMILTON_CLIP)
    gt = _gt_boxes(Path(__file__).parents[2] / "benchmarks/gt/hamilton_short.csv", 30)["alex_lacamoire"]
    assert yunet.find_faces(_frame(clip, 30), gt[None]) == [None]
    gt = _gt_boxes(Path(__file__).parents[2] / "benchmarks/gt/hamilton_short.csv", 60)["alex_lacamoire"]
    image = _frame(clip, 60)
    assert yunet.find_faces(image, gt[None]) == [None]
    # The audience face is there: with no sharpness floor it is taken for his.
    (blurred,) = FaceAnalyzer(dataclasses.replace(yunet.config, close_up_min_sharpness=0.0)).find_faces(
        image, gt[None])
    assert blurred is not None and blurred.quality.sharpness < 2.0


def test_no_face_in_noise(hog: FaceAnalyzer) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (480, 360, 3), dtype=np.uint8)
    assert hog.faces_in_image(image) == []
    assert hog.find_faces(image, np.array([[50, 40, 250, 460]])) == [None]
    assert hog.find_faces(image, np.zeros((0, 4))) == []


# -- injected detector: coordinate mapping -------------------------------------------------------------


class _FixedFace:
    """Fake detector: one face box at fixed fractions of whatever crop it is given."""

    model_id = "fake"

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, image_rgb: np.ndarray) -> FaceDetections:
        self.shapes.append(image_rgb.shape)
        h, w = image_rgb.shape[:2]
        side = 0.3 * w
        return FaceDetections(np.array([[w / 2 - side / 2, 0.3 * h, w / 2 + side / 2, 0.3 * h + side]]),
                              np.array([0.9]))


def test_head_crop_is_rescaled_and_faces_mapped_back_to_frame() -> None:
    fake = _FixedFace()
    analyzer = FaceAnalyzer(FaceConfig(head_frac=0.14, head_px=100.0, region_frac=0.4), detector=fake)
    frame = np.full((640, 360, 3), 128, np.uint8)
    box = np.array([[100.0, 200.0, 200.0, 550.0]])  # 350 px tall: expected head 49 px
    (cand,) = analyzer.find_faces(frame, box)
    crop_h, crop_w = fake.shapes[0][:2]
    # Region: x 100-200 widened by half a head each side, y from half a head above to 40% of the box.
    region_w, region_h = 100 + 49, 0.4 * 350 + 24.5
    scale = 100.0 / 49.0
    assert crop_w == pytest.approx(region_w * scale, abs=4)
    assert crop_h == pytest.approx(region_h * scale, abs=4)
    assert cand is not None
    cx = (cand.xyxy[0] + cand.xyxy[2]) / 2
    assert cx == pytest.approx(150.0, abs=1.5)  # the crop's centre maps back to the box centre
    assert cand.quality.size_px == pytest.approx(0.3 * region_w, abs=1.5)


# -- pure functions ---------------------------------------------------------------------------------------


def test_assign_faces_one_to_one_by_head_point() -> None:
    boxes = np.array([[0, 0, 100, 400], [80, 0, 180, 400]], float)
    head_h = np.full(2, 56.0)
    faces = np.array([
        [30, 30, 70, 70],      # near box 0's head point (50, 48)
        [110, 30, 150, 70],    # near box 1's head point (130, 48)
        [300, 30, 340, 70],    # outside both boxes
    ], float)
    assert sorted(assign_faces(faces, boxes, head_h)) == [(0, 0), (1, 1)]
    # One face between two boxes goes to one box only.
    assert len(assign_faces(faces[:1], boxes, head_h)) == 1
    # A face in the lower half of the box (a hand, a knee) is not a head.
    assert assign_faces(np.array([[30, 300, 70, 340]], float), boxes[:1], head_h[:1]) == []
    assert assign_faces(np.zeros((0, 4)), boxes, head_h) == []


def test_close_up_faces_assigned_anywhere_in_the_box() -> None:
    boxes = np.array([[0, 0, 200, 240], [300, 0, 400, 400]], float)  # a half-body shot, a full body
    head_h = np.array([34.0, 56.0])
    close_head = np.array([100.0, np.nan])
    low_face = np.array([[60, 140, 140, 220]], float)  # centre (100, 180): lower half of box 0
    assert assign_faces(low_face, boxes, head_h) == []
    assert assign_faces(low_face, boxes, head_h, close_head=close_head) == [(0, 0)]
    # A full body takes no low face even when another box is a close-up.
    assert assign_faces(low_face + [300, 0, 300, 0], boxes, head_h, close_head=close_head) == []
    # Where a full body's head would be, a face wins over a lower one only the close-up reading allows.
    top_face = np.array([[85, 12, 115, 42]], float)
    assert assign_faces(np.concatenate([low_face, top_face]), boxes, head_h, close_head=close_head) == [(0, 1)]


def test_close_up_search_duplicates_give_way_to_the_full_body_search() -> None:
    first = FaceDetections(np.array([[606, 849, 722, 966]], float), np.array([0.7]))  # dance2 frame 669
    # The close-up search's box on the same face: IoU 0.50 but centred inside, and more confident.
    same = FaceDetections(np.array([[604, 865, 688, 949], [100, 100, 150, 150]], float), np.array([0.9, 0.8]))
    faces, sources = _merge_detections([(first, 0), (same, 1)], n_first=1)
    assert faces.xyxy.tolist() == [[606, 849, 722, 966], [100, 100, 150, 150]]
    assert sources == [0, 1]
    # Without the full-body precedence the more confident one wins, as among full-body searches.
    faces, _ = _merge_detections([(first, 0), (same, 1)])
    assert faces.xyxy[0].tolist() == [604, 865, 688, 949]


def test_close_up_boxes() -> None:
    boxes = np.array([
        [0, 0, 100, 350],      # standing, 3.5x taller than wide
        [0, 0, 100, 120],      # wider than 1/1.3 of its height: half-body, sitting, lying
        [0, 100, 100, 355],    # standing but cut by the bottom of a 360 px frame (within 2%)
        [0, 100, 100, 340],    # ends 20 px above the bottom: not cut
    ], float)
    assert close_up_boxes(boxes, 360, 1.3, 0.02).tolist() == [False, True, True, False]


@pytest.mark.parametrize(
    ("nose_x", "expected"),
    [
        (50.0, 1.0),   # nose under the eyes' midpoint: frontal
        (65.0, 0.5),   # nose 0.3 inter-eye distances off: half frontal
        (90.0, 0.0),   # nose beyond an eye: profile
    ],
)
def test_frontalness(nose_x: float, expected: float) -> None:
    # dlib order: two corners of one eye, two of the other, nose base; eyes centred at x=25 and x=75
    # (midpoint 50, inter-eye distance 50).
    points = np.array([[15, 40], [35, 40], [85, 40], [65, 40], [nose_x, 70]], float)
    assert frontalness(points, max_nose_offset=0.6) == pytest.approx(expected, abs=1e-6)


def test_quality_terms_and_helpers() -> None:
    flat = np.full((150, 150, 3), 100, np.uint8)
    noisy = np.random.default_rng(1).integers(0, 256, (150, 150, 3), dtype=np.uint8)
    assert chip_sharpness(flat) == 0.0 < chip_sharpness(noisy)
    unit = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(unit, [[0.6, 0.8], [0.0, 0.0]])
    assert unit.dtype == np.float32
    # A YuNet box (x, y, w, h) becomes a square of 1.09 w, a little below the YuNet centre.
    np.testing.assert_allclose(yunet_to_dlib_box(np.array([[0, 0, 100, 140]])),
                               [[-4.5, 23.9, 104.5, 132.9]], atol=0.01)


def test_detector_choice_errors() -> None:
    with pytest.raises(ValueError, match="unknown face detector 'cnn'"):
        make_detector(FaceConfig(detector="cnn"))
    with pytest.raises(ModelError, match="model file"):
        make_detector(FaceConfig(detector="yunet"))
    with pytest.raises(ModelError, match="not found"):
        make_detector(FaceConfig(detector="yunet", yunet_model=Path("/nonexistent/yunet.onnx")))
    assert isinstance(make_detector(FaceConfig()), DlibHogDetector)
    with pytest.raises(ValueError, match="face boxes but"):
        FaceDetections(np.zeros((2, 4)), np.zeros(1))


def test_match_thresholds_by_face_size() -> None:
    same, unknown = match_thresholds(np.array([10.0, 16.0, 22.5, 40.0, 500.0]))
    np.testing.assert_allclose(same, [0.9525, 0.9525, 0.94875, 0.93, 0.93])
    np.testing.assert_allclose(unknown, [0.8925, 0.8925, 0.9125, 0.93, 0.93])
    # Smaller faces never get a looser "same" threshold, and "unknown" never exceeds "same".
    table = np.asarray(THRESHOLDS_BY_SIZE)
    assert (np.diff(table[:, 1]) <= 0).all() and (table[:, 2] <= table[:, 1]).all()
    assert float(match_thresholds(40.0)[0]) == SAME_PERSON_SIMILARITY
