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
