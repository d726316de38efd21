"""Choose the few frames per tracklet worth looking at closely (faces, body appearance).

Face embedding costs ~0.1 s per face on this CPU, so identity looks at a handful of good moments per
tracklet instead of every frame: observed (not interpolated) boxes that are large, confident, not
overlapped by anyone else and not cut by the frame border, spread over time — densely at the start
of a tracklet (to establish who it is), sparsely afterwards (to notice a change).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fancam.types import Timeline, TrackTable


@dataclass(frozen=True)
class SamplingConfig:
    """Which rows to sample.

    Attributes:
        window_s: At most one sample per tracklet per window of this length (dense phase).
        dense_samples: Number of samples taken in the dense phase at a tracklet's start.
        sparse_window_s: Window length after the dense phase.
        max_overlap: Rows whose box has an IoU above this with any other box are not sampled.
        min_height: Smallest box height sampled, as a fraction of the frame height.
        border: Boxes within this fraction of the frame size from the left/right/bottom border
            count as cut by the border and are sampled only when nothing else is available.
    """

    window_s: float = 1.0
    dense_samples: int = 6
    sparse_window_s: float = 3.0
    max_overlap: float = 0.15
    min_height: float = 0.12
    border: float = 0.01


def sample_rows(
    tracks: TrackTable,
    overlap: NDArray[np.float64],
    timeline: Timeline,
    frame_size: tuple[int, int],
    config: SamplingConfig,
) -> NDArray[np.int64]:
    """Row indices of ``tracks`` to sample, sorted by frame; at least one per tracklet when possible.

    Args:
        tracks: Tracklet table.
        overlap: (M,) largest IoU of each row with another box of its frame (``people.crowding``).
        timeline: Frame times.
        frame_size: Displayed (width, height).
        config: Sampling rules.
    """
    width, height = frame_size
    h = tracks.xyxy[:, 3] - tracks.xyxy[:, 1]
    margin_x, margin_y = config.border * width, config.border * height
    clipped = (
        (tracks.xyxy[:, 0] <= margin_x) | (tracks.xyxy[:, 2] >= width - margin_x)
        | (tracks.xyxy[:, 3] >= height - margin_y)
    )
    usable = tracks.observed & (overlap <= config.max_overlap) & (h >= config.min_height * height)
    quality = (h / height) * tracks.score * (1.0 - overlap) * np.where(clipped, 0.5, 1.0)
    chosen: list[NDArray[np.int64]] = []
    for tracklet in tracks.track_ids():
        mine = tracks.track_id == tracklet
        rows = np.flatnonzero(mine & usable)
        if len(rows):
            chosen.append(_spread(rows, tracks.frame, quality, timeline, config))
        else:
            # No clear moment at all (e.g. always half hidden): its least crowded observed row still
            # gives some evidence to link it (overlapped pixels weigh less in the body descriptor).
            fallback = np.flatnonzero(mine & tracks.observed)
            if len(fallback):
                chosen.append(fallback[[np.argmin(overlap[fallback] - 1e-3 * quality[fallback])]])
    if not chosen:
        return np.zeros(0, np.int64)
    out = np.concatenate(chosen)
    return out[np.argsort(tracks.frame[out], kind="stable")]


def _spread(
    rows: NDArray[np.int64],
    frame: NDArray[np.int64],
    quality: NDArray[np.float64],
    timeline: Timeline,
    config: SamplingConfig,
) -> NDArray[np.int64]:
    """The best row of each time window of one tracklet (dense windows first, then sparse)."""
    rows = rows[np.argsort(frame[rows], kind="stable")]
    t = timeline.t[frame[rows]]
    picked: list[int] = []
    start = float(t[0])
    while start <= t[-1]:
        length = config.window_s if len(picked) < config.dense_samples else config.sparse_window_s
        in_window = np.flatnonzero((t >= start) & (t < start + length))
        if len(in_window):
            picked.append(int(rows[in_window[np.argmax(quality[rows[in_window]])]]))
        start += length
    return np.array(picked, np.int64)
