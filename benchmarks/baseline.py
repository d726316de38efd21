"""The seed prototype's decisions, re-implemented on our tracklets so they can be measured.

The seed (shared/seed/torchkpop-README.md) names each whole track once, by a face vote against the
gallery, with no "unknown" answer and duplicates allowed; its camera centres a 0.4W x 0.4H crop on the
eyes and smooths the centre with a trailing median then a trailing mean (causal, hence a lag of about
0.35 s). DESIGN.md lists these as defects; this module reproduces them on *our* tracklets so the
benchmarks can show what each fix buys. Plain functions over numpy arrays, no models: callers supply
the face similarities (or votes) and the target's head points.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from fancam.geometry import head_point
from fancam.io.tables import CropTable, PredictedTracks


# ----------------------------------------------------------------------------------------- identity
def _winner(counts: NDArray, tiebreak: NDArray) -> int:
    """Index with the most votes; ties go to the larger ``tiebreak``, then to the lower index."""
    tied = np.flatnonzero(counts == counts.max())
    return int(tied[np.argmax(tiebreak[tied])])


def name_tracklets_by_votes(
    votes: Mapping[int, Sequence[int] | NDArray], members: Sequence[str]
) -> dict[int, str]:
    """One member per whole tracklet: the member most of its faces voted for (seed behaviour).

    Args:
        votes: Tracklet id -> member index (into ``members``) voted by each of its faces.
        members: Gallery member names.

    Returns:
        Tracklet id -> member name for every tracklet with at least one vote. Never ``unknown``, and
        several tracklets may get the same member at the same time. Ties go to the lower index.
    """
    out = {}
    for tracklet, v in votes.items():
        v = np.asarray(v, np.int64).ravel()
        if len(v) == 0:
            continue
        if v.min() < 0 or v.max() >= len(members):
            raise ValueError(f"tracklet {tracklet}: votes must index the {len(members)} members")
        out[tracklet] = members[_winner(np.bincount(v, minlength=len(members)), np.zeros(len(members)))]
    return out


def name_tracklets_by_face_vote(
    similarities: Mapping[int, NDArray], members: Sequence[str]
) -> dict[int, str]:
    """Seed identity from face similarities: each face votes for its most similar member.

    Args:
        similarities: Tracklet id -> (n_faces, n_members) float similarity of each of its faces to each
            member (e.g. cosine similarity of ArcFace embeddings); tracklets without faces may map to
            an empty array.
        members: Gallery member names, in column order.

    Returns:
        Tracklet id -> member name for every tracklet with at least one face. A tie in votes goes to
        the member with the higher mean similarity over the tracklet's faces. However dissimilar every
        member is, one is chosen (no "unknown"), and duplicates are allowed.
    """
    out = {}
    for tracklet, sims in similarities.items():
        sims = np.asarray(sims, np.float64)
        if sims.size == 0:
            continue
        if sims.ndim != 2 or sims.shape[1] != len(members):
            raise ValueError(f"tracklet {tracklet}: similarities must be (n_faces, {len(members)})")
        counts = np.bincount(np.argmax(sims, axis=1), minlength=len(members))
        out[tracklet] = members[_winner(counts, sims.mean(axis=0))]
    return out


def relabel_tracks(tracks: PredictedTracks, names: Mapping[int, str], *, default: str) -> PredictedTracks:
    """The same rows with ``person`` set from a tracklet -> name map.

    Args:
        tracks: Rows of a ``tracks.csv``.
        names: Tracklet id -> person name (e.g. from :func:`name_tracklets_by_face_vote`).
        default: Name of tracklets missing from ``names`` (the seed had no answer for faceless tracks;
            ``"unknown"`` scores them as abstentions, a member name as a forced guess).
    """
    person = np.array([names.get(t, default) for t in tracks.tracklet.tolist()], dtype=str)
    return dataclasses.replace(tracks, person=person.reshape(-1))


# ----------------------------------------------------------------------------------------- camera
@dataclass(frozen=True)
class SeedCameraConfig:
    """The seed's camera, with an option to give it our aspect ratio for fair comparisons.

    Attributes:
        median_s: Length of the trailing median window, seconds.
        mean_s: Length of the trailing mean window applied after the median, seconds.
        size_frac: Crop height as a fraction of the frame height (and, without ``aspect``, crop width
            as a fraction of the frame width: the seed's 0.4W x 0.4H).
        aspect: Crop width / height (9/16 for a vertical video); None keeps the seed's frame-shaped crop.
    """

    median_s: float = 0.5
    mean_s: float = 0.25
    size_frac: float = 0.4
    aspect: float | None = None


def _trailing(values: NDArray[np.float64], n: int, reduce: str) -> NDArray[np.float64]:
    """Causal ``nanmedian``/``nanmean`` over the last ``n`` samples (F, D); NaN where all are NaN."""
    padded = np.concatenate([np.full((n - 1, values.shape[1]), np.nan), values])
    windows = sliding_window_view(padded, n, axis=0)  # (F, D, n)
    out = np.full(values.shape, np.nan)
    some = np.isfinite(windows).any(axis=2)
    fn = np.nanmedian if reduce == "median" else np.nanmean
    out[some] = fn(windows[some], axis=1)
    return out


def trailing_smooth(
    points: NDArray, fps: float, median_s: float = 0.5, mean_s: float = 0.25
) -> NDArray[np.float64]:
    """The seed's causal smoother: trailing median over ``median_s``, then trailing mean over ``mean_s``.

    Args:
        points: (F, D) per-frame values (e.g. crop centres), NaN where missing.
        fps: Frames per second, to turn the window lengths into frames.
        median_s: Median window, seconds.
        mean_s: Mean window, seconds.

    Returns:
        (F, D) smoothed values; each depends only on the current and earlier frames.
    """
    pts = np.asarray(points, np.float64)
    pts = pts.reshape(len(pts), -1)
    n_median = max(1, int(round(median_s * fps)))
    n_mean = max(1, int(round(mean_s * fps)))
    return _trailing(_trailing(pts, n_median, "median"), n_mean, "mean")


def head_points_per_frame(frames: NDArray, xyxy: NDArray, n_frames: int) -> NDArray[np.float64]:
    """Head points ``(cx, y1 + 0.12 h)`` of one person's boxes spread over every frame.

    Args:
        frames: (M,) distinct frame indices in ``[0, n_frames)``.
        xyxy: (M, 4) boxes of the person at those frames.
        n_frames: Number of frames.

    Returns:
        (n_frames, 2) float64 head points, NaN at frames without a box.
    """
    frames = np.asarray(frames, np.int64)
    if len(np.unique(frames)) != len(frames):
        raise ValueError("head_points_per_frame needs at most one box per frame")
    out = np.full((n_frames, 2), np.nan)
    out[frames] = head_point(xyxy)
    return out


def seed_crop_size(frame_size: tuple[int, int], config: SeedCameraConfig) -> tuple[float, float]:
    """Crop (width, height) in pixels: the seed's 0.4W x 0.4H, or 0.4H tall at ``config.aspect``."""
    fw, fh = frame_size
    if config.aspect is None:
        return config.size_frac * fw, config.size_frac * fh
    h = config.size_frac * fh
    w = h * config.aspect
    if w > fw:  # too wide for the frame: shrink, keeping the aspect
        w, h = fw, fw / config.aspect
    return w, h


def seed_camera(
    head_points: NDArray, t: NDArray, frame_size: tuple[int, int], config: SeedCameraConfig | None = None
) -> CropTable:
    """The seed's camera path for one target: a fixed-size crop centred on the smoothed head point.

    Args:
        head_points: (F, 2) target head point at every frame 0..F-1, NaN where the target is not
            found (see :func:`head_points_per_frame`).
        t: (F,) frame times in seconds (the frame rate is taken from their median step).
        frame_size: Source (width, height) in pixels.
        config: Smoothing and crop shape.

    Returns:
        The camera path over frames 0..F-1: ``follow`` where the target is found (crop shifted to stay
        inside the frame), ``wide`` (whole frame) where it is not, as the seed did.
    """
    config = config or SeedCameraConfig()
    t = np.asarray(t, np.float64)
    fps = 1.0 / float(np.median(np.diff(t))) if len(t) > 1 else 30.0
    raw = np.asarray(head_points, np.float64).reshape(-1, 2)
    centre = trailing_smooth(raw, fps, config.median_s, config.mean_s)
    (w, h), (fw, fh) = seed_crop_size(frame_size, config), frame_size
    found = np.isfinite(raw).all(axis=1)
    x1 = np.clip(centre[:, 0] - w / 2, 0, fw - w)
    y1 = np.clip(centre[:, 1] - h / 2, 0, fh - h)
    xyxy = np.where(found[:, None], np.stack([x1, y1, x1 + w, y1 + h], 1), [0.0, 0.0, fw, fh])
    mode = np.where(found, "follow", "wide")
    return CropTable("seed camera", np.arange(len(raw), dtype=np.int64), t, xyxy, mode)
