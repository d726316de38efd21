from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_file
from fancam.io.video import iter_frames, probe
from fancam.tracking.shots import ShotConfig, ShotDetector, thumb_size


def _cuts(path) -> list[int]:
    info = probe(path)
    detector = ShotDetector(fps=info.fps)
    size = thumb_size(info.width, info.height)
    return [f.index for f in iter_frames(path) if detector.update(f.rgb(*size), f.t)]


def test_hamilton_clip_has_its_three_cuts():
    # Four shots in 9 s (checked by eye): cuts at frames 20, 82 and 211.
    assert _cuts(shared_file("data/face_recognition_hamilton/short_hamilton_clip.mp4")) == [20, 82, 211]


def test_continuous_dance_clip_has_no_cut():
    # One handheld-free continuous shot; fast dance moves must not look like cuts.
    assert _cuts(shared_file("data/fiyud_dance3/dance.mp4")) == []


def _solid(value: int) -> np.ndarray:
    return np.full((36, 64, 3), value, np.uint8)


def _left_red() -> np.ndarray:
    image = np.zeros((36, 64, 3), np.uint8)
    image[:, :32] = (255, 0, 0)
    return image


def _bottom_blue() -> np.ndarray:
    image = np.zeros((36, 64, 3), np.uint8)
    image[18:, :] = (0, 0, 255)
    return image


def _run(frames: list[np.ndarray], config: ShotConfig) -> list[int]:
    detector = ShotDetector(config, fps=30)
    return [i for i, image in enumerate(frames) if detector.update(image, i / 30)]


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        # a change of picture (layout and colours) is a cut
        ([_left_red()] * 10 + [_bottom_blue()] * 5, [10]),
        # a global brightness flash on the same grey picture is not (contrast-normalised, same hues)
        ([_solid(30)] * 10 + [_solid(60)] + [_solid(30)] * 5, []),
        # a fade of a flat picture to black is not either (std floor on near-black frames)
        ([_solid(max(0, 40 - 4 * i)) for i in range(15)], []),
    ],
)
def test_synthetic_sequences(frames, expected):
    assert _run(frames, ShotConfig()) == expected


def test_cuts_closer_than_min_shot_are_ignored():
    # a -> b is a cut; b -> a only 0.1 s later is ignored with min_shot_s = 1 s
    frames = [_left_red()] * 5 + [_bottom_blue()] * 3 + [_left_red()] * 40
    assert _run(frames, ShotConfig(min_shot_s=1.0)) == [5]
    assert _run(frames, ShotConfig(min_shot_s=0.05)) == [5, 8]
