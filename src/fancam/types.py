"""Small frozen data types that flow between pipeline stages.

Conventions for every array here:
- boxes are ``xyxy`` float32 in pixels of the frame *as displayed* (rotation applied), ``x2 > x1``;
- frame numbers are 0-based decode indices (int64);
- times are seconds from the first decoded frame (float64).
No I/O and no model code lives here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray


def _as(array: object, dtype: type, shape_tail: tuple[int, ...], name: str) -> NDArray:
    """Return ``array`` as a C-contiguous array of ``dtype``; check its trailing shape."""
    out: NDArray = np.ascontiguousarray(array, dtype=dtype)
    if out.ndim != 1 + len(shape_tail) or out.shape[1:] != shape_tail:
        raise ValueError(f"{name} must have shape (N, {shape_tail}), got {out.shape}")
    return out


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`fancam.io.video.probe` learns about a video without decoding it all.

    Attributes:
        path: The video file.
        width: Displayed width in pixels (after rotation metadata).
        height: Displayed height in pixels (after rotation metadata).
        rotation: Counter-clockwise quarter turns applied to decoded frames (0..3).
        fps: Average frame rate (frames per second); only a hint, times come from timestamps.
        duration_s: Duration of the video stream in seconds, if known.
        n_frames: Frame count from the container, if known (may be an estimate).
        codec: Video codec name (e.g. ``"h264"``).
        has_audio: Whether the container holds an audio stream.
    """

    path: Path
    width: int
    height: int
    rotation: int
    fps: float
    duration_s: float | None
    n_frames: int | None
    codec: str
    has_audio: bool


@dataclass(frozen=True)
class Detections:
    """People detected in one frame.

    Attributes:
        xyxy: (N, 4) float32 boxes in displayed-frame pixels.
        score: (N,) float32 detector confidences in [0, 1].
    """

    xyxy: NDArray[np.float32]
    score: NDArray[np.float32]

    def __post_init__(self) -> None:
        object.__setattr__(self, "xyxy", _as(self.xyxy, np.float32, (4,), "xyxy"))
        object.__setattr__(self, "score", _as(self.score, np.float32, (), "score"))
        if len(self.score) != len(self.xyxy):
            raise ValueError(f"{len(self.xyxy)} boxes but {len(self.score)} scores")

    @classmethod
    def empty(cls) -> Detections:
        """No detections."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.score)

    def __getitem__(self, index: NDArray | slice) -> Detections:
        """Select rows with a boolean mask, an index array or a slice."""
        return Detections(self.xyxy[index], self.score[index])


@dataclass(frozen=True)
class TrackedDetections:
    """Detections with the tracker's id for each box (what ``Tracker.update`` returns).

    Attributes:
        xyxy: (N, 4) float32 boxes in displayed-frame pixels.
        score: (N,) float32 detector confidences.
        track_id: (N,) int64 track ids, unique within the tracker instance.
    """

    xyxy: NDArray[np.float32]
    score: NDArray[np.float32]
    track_id: NDArray[np.int64]

    def __post_init__(self) -> None:
        object.__setattr__(self, "xyxy", _as(self.xyxy, np.float32, (4,), "xyxy"))
        object.__setattr__(self, "score", _as(self.score, np.float32, (), "score"))
        object.__setattr__(self, "track_id", _as(self.track_id, np.int64, (), "track_id"))
        if not len(self.xyxy) == len(self.score) == len(self.track_id):
            raise ValueError("xyxy, score and track_id must have the same length")

    @classmethod
    def empty(cls) -> TrackedDetections:
        """No tracked boxes."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.track_id)


@dataclass(frozen=True)
class TrackTable:
    """All tracked boxes of a video, one row per (frame, track), sorted by frame then track.

    Attributes:
        frame: (M,) int64 decode indices.
        track_id: (M,) int64 track (or tracklet) ids.
        xyxy: (M, 4) float32 boxes in displayed-frame pixels.
        score: (M,) float32 detector confidence; for interpolated rows the interpolated score.
        observed: (M,) bool, True where the box comes from a detection (not interpolation).
    """

    frame: NDArray[np.int64]
    track_id: NDArray[np.int64]
    xyxy: NDArray[np.float32]
    score: NDArray[np.float32]
    observed: NDArray[np.bool_]

    def __post_init__(self) -> None:
        object.__setattr__(self, "frame", _as(self.frame, np.int64, (), "frame"))
        object.__setattr__(self, "track_id", _as(self.track_id, np.int64, (), "track_id"))
        object.__setattr__(self, "xyxy", _as(self.xyxy, np.float32, (4,), "xyxy"))
        object.__setattr__(self, "score", _as(self.score, np.float32, (), "score"))
        object.__setattr__(self, "observed", _as(self.observed, np.bool_, (), "observed"))
        n = len(self.frame)
        if not all(len(a) == n for a in (self.track_id, self.xyxy, self.score, self.observed)):
            raise ValueError("all TrackTable columns must have the same length")

    @classmethod
    def empty(cls) -> TrackTable:
        """A table without rows."""
        return cls(
            np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32), np.zeros(0, bool),
        )

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, index: NDArray | slice) -> TrackTable:
        """Select rows with a boolean mask, an index array or a slice."""
        return TrackTable(
            self.frame[index], self.track_id[index], self.xyxy[index], self.score[index],
            self.observed[index],
        )

    def sorted(self) -> TrackTable:
        """Rows ordered by frame, then track id."""
        return self[np.lexsort((self.track_id, self.frame))]

    def track_ids(self) -> NDArray[np.int64]:
        """Sorted unique track ids."""
        return np.unique(self.track_id)

    def track(self, track_id: int) -> TrackTable:
        """Rows of one track, in frame order."""
        rows = self[self.track_id == track_id]
        return rows[np.argsort(rows.frame, kind="stable")]

    @staticmethod
    def concat(tables: list[TrackTable]) -> TrackTable:
        """Stack tables (rows are not re-sorted)."""
        if not tables:
            return TrackTable.empty()
        return TrackTable(
            np.concatenate([t.frame for t in tables]),
            np.concatenate([t.track_id for t in tables]),
            np.concatenate([t.xyxy for t in tables]),
            np.concatenate([t.score for t in tables]),
            np.concatenate([t.observed for t in tables]),
        )


FALLBACK_FPS = 30.0
"""Frame rate assumed where a video states none and has fewer than two frames to measure one from."""


def frame_step_s(t: NDArray) -> float:
    """Typical seconds between frames: the median step of ``t`` (``1 / FALLBACK_FPS`` for < 2 frames)."""
    return float(np.median(np.diff(t))) if len(t) > 1 else 1.0 / FALLBACK_FPS


@dataclass(frozen=True)
class Timeline:
    """Per-frame timing and shot structure of a decoded video.

    Attributes:
        t: (F,) float64 seconds of each decoded frame from the first one (from timestamps).
        shot_starts: (S,) int64 sorted first frames of each shot; always starts with 0 when F > 0.
    """

    t: NDArray[np.float64]
    shot_starts: NDArray[np.int64]

    def __post_init__(self) -> None:
        object.__setattr__(self, "t", np.ascontiguousarray(self.t, np.float64))
        object.__setattr__(self, "shot_starts", np.ascontiguousarray(self.shot_starts, np.int64))

    @property
    def n_frames(self) -> int:
        """Number of decoded frames."""
        return len(self.t)

    @property
    def step_s(self) -> float:
        """Typical seconds between frames (see :func:`frame_step_s`)."""
        return frame_step_s(self.t)

    def shot_of(self, frame: NDArray[np.int64] | int) -> NDArray[np.int64]:
        """Shot number (0-based) of each frame index."""
        return np.searchsorted(self.shot_starts, frame, side="right") - 1
