"""The first pass (fancam.tracking.scan): which frames are detected, at which size, and what comes out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import shared_file
from fancam.io.video import probe
from fancam.tracking.detect import Detector, make_detector
from fancam.tracking.scan import ScanConfig, detection_size, scan
from fancam.types import Detections


class Recording:
    """A real detector that remembers the size of every image it was given."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.name = detector.name
        self.sizes: list[tuple[int, int]] = []

    @property
    def input_long_side(self) -> int:
        return self.detector.input_long_side

    def long_side_for(self, width: int, height: int) -> int:
        return self.detector.long_side_for(width, height)

    def __call__(self, image: np.ndarray) -> Detections:
        self.sizes.append((image.shape[1], image.shape[0]))
        return self.detector(image)


@pytest.fixture(scope="module")
def hamilton() -> Path:
    """TV clip, 640x360, 29.97 fps, 275 frames, cuts at frames 20, 82 and 211."""
    return shared_file("data/face_recognition_hamilton/short_hamilton_clip.mp4")


def _expected_schedule(n_frames: int, shot_starts: list[int], stride: int, ends: bool) -> list[int]:
    """Every stride-th frame from each shot start, plus (ends) each shot's last frame."""
    bounds = [*shot_starts, n_frames]
    frames: list[int] = []
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        shot = list(range(start, stop, stride))
        if ends and shot[-1] != stop - 1:
            shot.append(stop - 1)
        frames += shot
    return frames


@pytest.mark.parametrize("ends", [True, False])
def test_every_shot_is_detected_to_its_last_frame(hamilton: Path, ends: bool) -> None:
    # Tracklets are only filled between observations: without a detection on a shot's last frame, up to
    # stride - 1 frames before every cut have no boxes (hamilton's keyframe f210, the frame before a cut,
    # was lost that way: detected share .857 -> .905 with it, benchmarks/bench_detect_tracks.py).
    info = probe(hamilton)
    detector = Recording(make_detector("yolox-nano"))
    result = scan(hamilton, info, detector, ScanConfig(detect_shot_ends=ends))
    shot_starts = result.timeline.shot_starts.tolist()
    assert shot_starts == [0, 20, 82, 211] and result.stride == 3
    expected = _expected_schedule(result.timeline.n_frames, shot_starts, result.stride, ends)
    assert result.n_detections == len(detector.sizes) == len(expected)
    # Observed rows only on detected frames, every detected frame of a shot with people has rows.
    detected = set(np.unique(result.raw.frame).tolist())
    assert detected <= set(expected)
    assert (210 in detected) == ends  # 208 is the last frame on the 3-frame grid of the shot 82..210
    # Every image came at the size the detector asked for this frame shape.
    want = detection_size((info.width, info.height), detector.long_side_for(info.width, info.height))
    assert set(detector.sizes) == {want} == {(640, 360)}  # never upscaled (the tiles are, in the model)


def test_portrait_frames_go_to_the_detector_at_its_input_size(gillhung_clip: Path, tmp_path: Path) -> None:
    from conftest import trimmed_copy

    clip = trimmed_copy(gillhung_clip, tmp_path / "short.mp4", 2.0)
    info = probe(clip)
    detector = Recording(make_detector("yolox-nano"))
    result = scan(clip, info, detector, ScanConfig())
    assert set(detector.sizes) == {(234, 416)}
    # The three dancers are tracked on every detected frame after the tracker confirms them.
    counts = np.bincount(result.raw.frame)[np.unique(result.raw.frame)]
    assert np.all(counts[2:] == 3)


class Scripted:
    """A detector answering from a script: call number -> (boxes as fractions of the image, scores)."""

    name = "scripted"
    input_long_side = 416

    def __init__(self, script) -> None:
        self.script = script
        self.calls = 0

    def long_side_for(self, width: int, height: int) -> int:
        return self.input_long_side

    def __call__(self, image: np.ndarray) -> Detections:
        boxes, scores = self.script(self.calls)
        self.calls += 1
        h, w = image.shape[:2]
        return Detections(np.array(boxes, np.float32).reshape(-1, 4) * [w, h, w, h], np.array(scores, np.float32))


def test_tracks_are_written_from_their_first_detection(gillhung_clip: Path, tmp_path: Path) -> None:
    # A dancer enters at call 8 (confident) and a half-hidden one at call 12 (mid score): each track is
    # confirmed a few calls later, and its rows start at the frame of its first detection.
    from conftest import trimmed_copy

    clip = trimmed_copy(gillhung_clip, tmp_path / "short.mp4", 2.0)

    def script(k: int) -> tuple[list, list]:
        people = [([0.1, 0.3, 0.3, 0.8], 0.9)]
        if k >= 8:
            people.append(([0.4, 0.3, 0.6, 0.8], 0.8))
        if k >= 12:
            people.append(([0.7, 0.35, 0.85, 0.75], 0.4))
        return [p[0] for p in people], [p[1] for p in people]

    detector = Scripted(script)
    result = scan(clip, probe(clip), detector, ScanConfig())
    raw = result.raw
    assert result.stride == 3 and result.timeline.shot_starts.tolist() == [0]
    assert np.all(np.diff(raw.frame) >= 0)  # rows stay in frame order
    first = sorted(int(raw.track(t).frame[0]) for t in raw.track_ids().tolist())
    assert first == [0, 8 * 3, 12 * 3]
    # every detected frame from a track's first detection on has its row (no hole where it was tentative)
    detected = _expected_schedule(result.timeline.n_frames, [0], 3, True)
    assert detector.calls == len(detected)
    for t in raw.track_ids().tolist():
        frames = raw.track(t).frame.tolist()
        assert frames == [f for f in detected if f >= frames[0]]
