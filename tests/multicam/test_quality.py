"""Pixel measurements of an angle: background motion that ignores the dancers, and sharpness."""

from __future__ import annotations

import cv2
import numpy as np

from fancam.multicam.quality import background_motion, sharpness


def _texture(seed: int, size: tuple[int, int] = (240, 320)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, (size[0] // 3, size[1] // 3), dtype=np.uint8)
    return cv2.resize(noise, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)


def test_a_panning_camera_moves_the_background() -> None:
    scene = _texture(0, (240, 360))
    before, after = scene[:, 20:340], scene[:, 26:346]  # the camera pans 6 px to the right
    assert abs(background_motion(before, after, np.zeros((0, 4)), 8) - 6.0) < 0.5


def test_a_dancer_moving_on_a_still_background_is_not_camera_motion() -> None:
    background = _texture(1)
    dancer = _texture(2, (120, 60))
    before, after = background.copy(), background.copy()
    before[60:180, 100:160] = dancer
    after[60:180, 130:190] = dancer  # she moves 30 px; the camera does not
    people = np.array([[100, 60, 160, 180], [130, 60, 190, 180]], np.float64)
    assert background_motion(before, after, people, 8) < 0.5


def test_nothing_to_track_is_unknown() -> None:
    flat = np.full((120, 160), 128, np.uint8)
    assert np.isnan(background_motion(flat, flat, np.zeros((0, 4)), 8))


def test_blur_and_upscaling_lower_the_sharpness() -> None:
    image = _texture(3, (400, 300))
    box = np.array([50.0, 40.0, 250.0, 360.0])
    sharp = sharpness(image, box, 128)
    blurred = sharpness(cv2.GaussianBlur(image, (0, 0), 2.0), box, 128)
    small = cv2.resize(image, (75, 100), interpolation=cv2.INTER_AREA)  # the same view from 4x farther
    far = sharpness(small, box / 4, 128)
    assert sharp > 1.5 * blurred and sharp > 1.5 * far
    # Brightness and contrast do not change it.
    brighter = np.clip(image.astype(np.float32) * 0.6 + 60, 0, 255).astype(np.uint8)
    assert abs(sharpness(brighter, box, 128) - sharp) < 0.1 * sharp
