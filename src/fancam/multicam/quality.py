"""How well one angle shows the performer, measured on its pixels: sharpness, camera steadiness, face.

One decode pass per angle; only sampled frames (every ``sample_s``) are converted:

- **steadiness**: how fast the background moves between a sampled frame and the frame before it, in
  frame heights per second: the median optical flow (pyramidal Lucas-Kanade) of corners found
  *outside every person box* on small grey thumbnails, so dancers filling a zoomed frame do not count
  as camera motion. A tripod shot is near 0, a handheld phone shakes, a broadcast camera pans.
- **sharpness**: in the performer's box, resized to a fixed height, the share of the grey-level
  variance that is high-frequency (Laplacian energy / variance). Resizing to a fixed height makes a
  small, upscaled performer less sharp, as she will look in the fancam; dividing by the variance
  discounts brightness and contrast differences between cameras.
- **face**: the face detector of the analysis on the performer's head region, every ``face_every_s``:
  its quality score (0 = no face found: turned away, hidden, too small).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from fancam.identity.faces import FaceAnalyzer
from fancam.io.progress import Progress, progress_bar
from fancam.io.video import DecodedFrame, iter_frames
from fancam.types import Timeline, TrackTable


@dataclass(frozen=True)
class QualityConfig:
    """Measurement parameters.

    Attributes:
        sample_s: Distance between measured frames (seconds).
        face_every_s: Distance between face checks (seconds; face detection is the costly part).
        thumb_height: Height of the grey thumbnails compared for camera motion.
        min_corners: Fewer background corners than this leave the camera motion unknown.
        sharp_height: The performer's box is resized to this height before measuring sharpness.
    """

    sample_s: float = 0.25
    face_every_s: float = 0.5
    thumb_height: int = 180
    min_corners: int = 8
    sharp_height: int = 128


@dataclass(frozen=True)
class AngleQuality:
    """Measurements of one angle at sampled frames.

    Attributes:
        t: (S,) source times of the samples.
        motion: (S,) camera motion in frame heights per second (NaN where unknown).
        sharp: (S,) sharpness of the performer's box (NaN where she is not seen).
        face: (S,) face quality in [0, 1], 0 when no face was found (NaN where not checked).
    """

    t: NDArray[np.float64]
    motion: NDArray[np.float64]
    sharp: NDArray[np.float64]
    face: NDArray[np.float64]


def sample_frames(timeline: Timeline, step_s: float) -> NDArray[np.int64]:
    """Indices of the first frame at or after each multiple of ``step_s``."""
    t = timeline.t
    if not len(t):
        return np.zeros(0, np.int64)
    grid = np.arange(t[0], t[-1] + 1e-9, step_s)
    return np.unique(np.clip(np.searchsorted(t, grid - 1e-9), 0, len(t) - 1)).astype(np.int64)


def _thumb(frame: DecodedFrame, height: int) -> NDArray[np.uint8]:
    w, h = frame.size
    width = max(2, int(round(w * height / h)))
    return frame.gray(width, height)


def sharpness(gray: NDArray[np.uint8], box: NDArray, height: int) -> float:
    """High-frequency share of the grey-level variance in ``box`` resized to ``height`` (NaN if empty)."""
    h_img, w_img = gray.shape
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w_img, x2), min(h_img, y2)
    if x2 - x1 < 4 or y2 - y1 < 4:
        return float("nan")
    region = gray[y1:y2, x1:x2]
    width = max(4, int(round((x2 - x1) * height / (y2 - y1))))
    inter = cv2.INTER_AREA if y2 - y1 > height else cv2.INTER_CUBIC
    region = cv2.resize(region, (width, height), interpolation=inter).astype(np.float32)
    variance = float(region.var())
    if variance < 1.0:
        return 0.0
    return float(cv2.Laplacian(region, cv2.CV_32F).var() / variance)


def background_motion(
    previous: NDArray[np.uint8], current: NDArray[np.uint8], people: NDArray, min_corners: int
) -> float:
    """Median displacement (pixels) of background corners from ``previous`` to ``current``; NaN if too few.

    Args:
        previous: Grey thumbnail of the earlier frame.
        current: Grey thumbnail of the later frame (same size).
        people: (N, 4) person boxes in thumbnail pixels, masked out (with a margin).
        min_corners: Fewest tracked corners for an answer.
    """
    mask = np.full(previous.shape, 255, np.uint8)
    for x1, y1, x2, y2 in np.asarray(people, np.float64).reshape(-1, 4):
        if np.isfinite([x1, y1, x2, y2]).all():
            mx, my = 0.1 * (x2 - x1), 0.05 * (y2 - y1)
            mask[max(0, int(y1 - my)): int(y2 + my) + 1, max(0, int(x1 - mx)): int(x2 + mx) + 1] = 0
    corners = cv2.goodFeaturesToTrack(previous, maxCorners=200, qualityLevel=0.01, minDistance=5, mask=mask)
    if corners is None or len(corners) < min_corners:
        return float("nan")
    moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, current, corners, corners.copy(), winSize=(15, 15),
                                                 maxLevel=2)
    ok = status.reshape(-1) == 1
    if ok.sum() < min_corners:
        return float("nan")
    flow = (moved - corners).reshape(-1, 2)[ok]
    return float(np.hypot(*np.median(flow, axis=0)))


def measure_angle(  # noqa: PLR0913 - one angle's inputs
    video: Path,
    timeline: Timeline,
    boxes: NDArray,
    people: TrackTable,
    analyzer: FaceAnalyzer | None,
    config: QualityConfig | None = None,
    *,
    progress: Progress = False,
) -> AngleQuality:
    """Measure an angle at sampled frames (see the module docstring).

    Args:
        video: The angle's video.
        timeline: Its frame times (from its analysis).
        boxes: (F, 4) the performer's box per frame, NaN where she is not seen.
        people: Everyone's boxes (masked out of the camera-motion measurement).
        analyzer: Face detector (None: no face check, ``face`` stays NaN).
        config: Measurement parameters.
        progress: Progress bar.
    """
    config = config or QualityConfig()
    samples = sample_frames(timeline, config.sample_s)
    n = len(samples)
    motion, sharp, face = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    position = {int(f): i for i, f in enumerate(samples)}
    before = set((samples - 1).tolist())
    next_face = -np.inf
    previous: tuple[int, NDArray[np.uint8]] | None = None  # (frame index, thumbnail)
    order = np.argsort(people.frame, kind="stable")
    people_frames = people.frame[order]
    last = int(samples[-1]) if n else -1
    with progress_bar(timeline.n_frames, "measure angle", enabled=progress) as bar:
        for frame in iter_frames(video):
            bar.update(1)
            if frame.index > last:
                break
            i = position.get(frame.index)
            if i is None and frame.index not in before:
                continue
            thumb = _thumb(frame, config.thumb_height)
            if i is not None and previous is not None and previous[0] == frame.index - 1:
                lo, hi = np.searchsorted(people_frames, [frame.index - 1, frame.index])
                scale = config.thumb_height / frame.size[1]
                shift = background_motion(previous[1], thumb, people.xyxy[order[lo:hi]] * scale, config.min_corners)
                dt = frame.t - float(timeline.t[frame.index - 1])
                if dt > 0:
                    motion[i] = shift / config.thumb_height / dt
            previous = (frame.index, thumb)
            if i is None:
                continue
            box = boxes[frame.index] if frame.index < len(boxes) else np.full(4, np.nan)
            if not np.isfinite(box).all():
                continue
            sharp[i] = sharpness(frame.gray(), box, config.sharp_height)
            if analyzer is not None and frame.t >= next_face - 1e-6:
                next_face = frame.t + config.face_every_s
                found = analyzer.find_faces(frame.rgb(), np.asarray(box, np.float64)[None])[0]
                face[i] = float(found.quality.score) if found is not None else 0.0
    return AngleQuality(timeline.t[samples], motion, sharp, face)
