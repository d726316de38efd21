"""Choose the angle per moment: score how well each angle shows the performer, then cut on beats.

**Scores.** On the output clock (the frames of the audio video), every angle that has a frame there
gets a score in [0, 1] where the performer is seen in it:

``whole * (w_size*size + w_face*face + w_clear*clear + w_sharp*sharp + w_steady*steady)``

- ``size``: the crop height the framing needs (box height x framing ratio, at most the frame), capped
  at ``enough_px``, relative to the best angle at that moment: more source pixels on her;
- ``whole``: the framing fits in the frame and her box is not cut by the frame's border;
- ``face``: face quality on her head region (:mod:`fancam.multicam.quality`);
- ``clear``: 1 - the largest share of her box covered by someone else's box;
- ``sharp``: sharpness of her box relative to the sharpest angle at that moment;
- ``steady``: ``exp(-camera motion / steady_scale)``.

An angle that covers the moment but does not show her scores ``unseen_score``; an angle without a
frame at that moment cannot be used. Scores are smoothed over ``smooth_s``.

**Edit.** Cuts fall on musical beats of the output's sound (or on a regular grid when it has no
clear beat); an angle that ends forces a cut at its end, which costs ``off_beat_cost_s`` more when it
is off the beat. Never cut while she moves faster than ``jump_speed`` body heights per second in the
angle cut from or to (mid-jump); every shot lasts at least ``min_shot_s``. Among those edits, dynamic
programming finds the one with the highest total score, each cut costing ``cut_cost_s`` seconds of
full score (so the edit does not flicker between two equally good angles).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from fancam.camera.plan import Framing
from fancam.multicam.quality import AngleQuality
from fancam.types import Timeline, TrackTable, frame_step_s

log = logging.getLogger(__name__)

PARTS = ("size", "face", "clear", "sharp", "steady")
"""The weighted score terms, in the order of :attr:`ChooseConfig.weights`."""


@dataclass(frozen=True)
class ChooseConfig:
    """How angles are scored and the edit is cut.

    Attributes:
        weights: Weight of each of :data:`PARTS` (sum 1).
        unseen_score: Score of an angle that does not show the performer.
        enough_px: Crop heights above this give no further benefit (a 1080-pixel-high fancam).
        smooth_s: Scores are averaged over this window.
        steady_scale: Camera motion (frame heights per second) at which ``steady`` falls to 1/e.
        border: A box within this fraction of the frame size from a border is cut by it.
        min_shot_s: Shortest shot.
        cut_cost_s: What a cut costs, in seconds of full score.
        off_beat_cost_s: What a cut off the beat (forced by an angle's end) costs in addition.
        jump_speed: No cut while the performer moves faster than this (body heights per second,
            centre of her box, 5-frame median) in the angle cut from or to. Measured on dancing that
            is not a jump: gillhung_dance (first 10 s) median 0.12, 99th percentile 0.38, max 0.46;
            divyanshu_line_dance (30 s, 5 dancers) median 0.13, 99th percentile 0.57; a jump or a
            run across the frame covers a body height in well under a second.
        grid_s: Cut points when the sound has no clear beat.
        aspect: Output width / height (the largest crop an angle's frame holds).
    """

    weights: tuple[float, ...] = (0.35, 0.20, 0.15, 0.15, 0.15)
    unseen_score: float = -0.5
    enough_px: float = 1080.0
    smooth_s: float = 0.5
    steady_scale: float = 0.5
    border: float = 0.01
    min_shot_s: float = 2.0
    cut_cost_s: float = 0.25
    off_beat_cost_s: float = 0.5
    jump_speed: float = 1.0
    grid_s: float = 0.5
    aspect: float = 9 / 16


@dataclass(frozen=True)
class AngleView:
    """What scoring needs to know about one angle.

    Attributes:
        timeline: The angle's frame times.
        frame_size: Displayed (width, height).
        boxes: (F, 4) the performer's box per frame, NaN where not seen (all NaN if not found).
        others: Boxes of everyone else: the analysis' rows that are not the performer.
        quality: Pixel measurements (None: neutral values).
        offset_s: Output time of the angle's time 0.
        rate: Output seconds per angle second (1 + clock drift).
    """

    timeline: Timeline
    frame_size: tuple[int, int]
    boxes: NDArray[np.float64]
    others: TrackTable
    quality: AngleQuality | None
    offset_s: float
    rate: float

    def source_times(self, t: NDArray) -> NDArray[np.float64]:
        """The angle's times of output times ``t``."""
        return (np.asarray(t, np.float64) - self.offset_s) / self.rate


@dataclass(frozen=True)
class Scores:
    """Per angle and output frame.

    Attributes:
        t: (K,) output times.
        frame: (A, K) source frame of each angle at each output frame, -1 where it has none.
        seen: (A, K) the performer is seen there.
        parts: Each of :data:`PARTS` and ``whole`` as (A, K) in [0, 1] (0 where not seen).
        total: (A, K) the smoothed score; NaN where the angle has no frame.
        speed: (A, K) the performer's speed in body heights per second (0 where not seen).
    """

    t: NDArray[np.float64]
    frame: NDArray[np.int64]
    seen: NDArray[np.bool_]
    parts: dict[str, NDArray[np.float64]]
    total: NDArray[np.float64]
    speed: NDArray[np.float64]

    @property
    def n_angles(self) -> int:
        """Number of angles."""
        return len(self.frame)


def nearest_frames(times: NDArray, source: NDArray, tolerance: float) -> NDArray[np.int64]:
    """Index of the ``source`` time nearest to each of ``times``; -1 when none is within ``tolerance``."""
    source = np.asarray(source, np.float64)
    times = np.asarray(times, np.float64)
    if not len(source):
        return np.full(len(times), -1, np.int64)
    right = np.clip(np.searchsorted(source, times), 0, len(source) - 1)
    left = np.clip(right - 1, 0, len(source) - 1)
    pick = np.where(np.abs(source[left] - times) <= np.abs(source[right] - times), left, right)
    return np.where(np.abs(source[pick] - times) <= tolerance, pick, -1).astype(np.int64)


def bridge_gaps(boxes: NDArray, t: NDArray, max_gap_s: float) -> NDArray[np.float64]:
    """``boxes`` with gaps (NaN rows) of at most ``max_gap_s`` between two seen frames interpolated.

    The camera path bridges such gaps too (``CameraConfig.bridge_gap_s``): a performer lost for a
    moment by the tracker (two dancers merged into one box) is still where the camera looks.
    """
    out = np.array(boxes, np.float64)
    seen = np.flatnonzero(np.isfinite(out).all(axis=1))
    if len(seen) < 2:
        return out
    t = np.asarray(t, np.float64)
    for a, b in zip(seen[:-1], seen[1:], strict=True):
        if b - a > 1 and t[b] - t[a] <= max_gap_s:
            w = ((t[a + 1: b] - t[a]) / (t[b] - t[a]))[:, None]
            out[a + 1: b] = (1 - w) * out[a] + w * out[b]
    return out


def _frame_step(t: NDArray) -> float:
    return frame_step_s(t)


def covered_by(t: NDArray, other: NDArray) -> float:
    """Share of a box covered by the union-free maximum of other boxes (largest single overlap)."""
    x1, y1, x2, y2 = t
    area = max((x2 - x1) * (y2 - y1), 1e-9)
    if not len(other):
        return 0.0
    iw = np.clip(np.minimum(other[:, 2], x2) - np.maximum(other[:, 0], x1), 0, None)
    ih = np.clip(np.minimum(other[:, 3], y2) - np.maximum(other[:, 1], y1), 0, None)
    return float(np.max(iw * ih) / area)


def _occlusion(boxes: NDArray, frames: NDArray, others: TrackTable) -> NDArray[np.float64]:
    order = np.argsort(others.frame, kind="stable")
    sorted_frames = others.frame[order]
    out = np.zeros(len(frames))
    for k, f in enumerate(frames):
        if f < 0 or not np.isfinite(boxes[k]).all():
            continue
        lo, hi = np.searchsorted(sorted_frames, [f, f + 1])
        out[k] = covered_by(boxes[k], others.xyxy[order[lo:hi]].astype(np.float64))
    return out


def _interp(t_samples: NDArray, values: NDArray, t: NDArray, default: float, reach_s: float) -> NDArray:
    """Values at ``t`` from samples (NaN samples ignored); ``default`` farther than ``reach_s`` from any."""
    ok = np.isfinite(values)
    out = np.full(len(t), default, np.float64)
    if not ok.any():
        return out
    ts, vs = t_samples[ok], values[ok]
    near = nearest_frames(t, ts, reach_s)
    inside = near >= 0
    out[inside] = np.interp(t[inside], ts, vs)
    return out


def score_angles(
    t: NDArray, views: Sequence[AngleView], framing: Framing, config: ChooseConfig | None = None
) -> Scores:
    """Score every angle at every output time ``t`` (see the module docstring)."""
    config = config or ChooseConfig()
    t = np.asarray(t, np.float64)
    a_n, k_n = len(views), len(t)
    frame = np.full((a_n, k_n), -1, np.int64)
    box = np.full((a_n, k_n, 4), np.nan)
    crop_h = np.zeros((a_n, k_n))
    sharp = np.zeros((a_n, k_n))
    parts = {name: np.zeros((a_n, k_n)) for name in (*PARTS, "whole")}
    speed = np.zeros((a_n, k_n))
    for a, view in enumerate(views):
        src_t = view.source_times(t)
        frame[a] = nearest_frames(src_t, view.timeline.t, 0.6 * _frame_step(view.timeline.t))
        has = frame[a] >= 0
        box[a, has] = view.boxes[frame[a, has]]
        w, h = view.frame_size
        bh = box[a, :, 3] - box[a, :, 1]
        desired = framing.height_ratio * bh
        max_h = min(h, w / config.aspect)
        crop_h[a] = np.nan_to_num(np.minimum(np.minimum(desired, max_h), config.enough_px))
        fits = np.clip(max_h / np.maximum(desired, 1e-9), 0, 1)
        mx, my = config.border * w, config.border * h
        cut = ((box[a, :, 0] <= mx) | (box[a, :, 2] >= w - mx) | (box[a, :, 1] <= my)
               | (box[a, :, 3] >= h - my))
        parts["whole"][a] = np.nan_to_num(fits * np.where(cut, 0.5, 1.0))
        parts["clear"][a] = 1.0 - np.clip(_occlusion(box[a], frame[a], view.others), 0, 1)
        q = view.quality
        if q is not None:
            parts["face"][a] = _interp(q.t, q.face, src_t, 0.5, 0.6)
            sharp[a] = _interp(q.t, q.sharp, src_t, np.nan, 0.6)
            motion = _interp(q.t, q.motion, src_t, 0.0, 0.6)
            parts["steady"][a] = np.exp(-motion / config.steady_scale)
        else:
            parts["face"][a] = 0.5
            parts["steady"][a] = 1.0
        speed[a] = _speed(box[a], t)
    seen = np.isfinite(box).all(axis=2)
    best_h = np.max(np.where(seen, crop_h, 0), axis=0)
    parts["size"] = np.where(seen, crop_h / np.maximum(best_h, 1e-9), 0.0)
    sharp = np.where(seen & np.isfinite(sharp), sharp, np.nan)
    best_sharp = np.nanmax(np.where(np.isfinite(sharp), sharp, -np.inf), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = sharp / best_sharp
    parts["sharp"] = np.where(np.isfinite(rel), np.clip(rel, 0, 1), np.where(seen, 0.5, 0.0))
    for name in ("face", "clear", "steady", "whole"):
        parts[name] = np.where(seen, parts[name], 0.0)
    raw = sum(wt * parts[name] for wt, name in zip(config.weights, PARTS, strict=True))
    raw = np.where(seen, parts["whole"] * raw, config.unseen_score)
    total = _smooth(np.where(frame >= 0, raw, np.nan), max(1, int(round(config.smooth_s / _frame_step(t)))))
    return Scores(t, frame, seen, parts, total, np.where(seen, speed, 0.0))


def _speed(boxes: NDArray, t: NDArray) -> NDArray[np.float64]:
    """Speed of the box centre in box heights per second (0 where unknown)."""
    centre = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
    height = boxes[:, 3] - boxes[:, 1]
    if len(t) < 3:
        return np.zeros(len(t))
    v = np.gradient(centre, t, axis=0)
    s = np.hypot(v[:, 0], v[:, 1]) / np.maximum(height, 1e-9)
    s = np.where(np.isfinite(s), s, 0.0)
    return np.asarray(ndimage.median_filter(s, size=5, mode="nearest"), np.float64)


def _smooth(values: NDArray, width: int) -> NDArray[np.float64]:
    """Moving average along the last axis, ignoring NaN (NaN stays NaN)."""
    ok = np.isfinite(values)
    num = ndimage.uniform_filter1d(np.where(ok, values, 0.0), width, axis=-1, mode="nearest")
    den = ndimage.uniform_filter1d(ok.astype(np.float64), width, axis=-1, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    return np.where(ok, out, np.nan)


# ----------------------------------------------------------------------------------------- edit
@dataclass(frozen=True)
class Shot:
    """One shot of the edit: output frames ``[start, end)`` from angle ``angle``."""

    start: int
    end: int
    angle: int


def cut_points(
    t: NDArray, beats: NDArray | None, scores: Scores, config: ChooseConfig
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Output frames where a cut may fall, and which of them are on the beat.

    Cuts fall on beats (or a grid when there is none); an angle that ends forces a cut at its last
    frame too (off the beat, unless the edit leaves that angle on an earlier beat). An angle that
    starts is cut to on the next beat.
    """
    t = np.asarray(t, np.float64)
    if beats is not None and len(beats) >= 2:
        times = np.asarray(beats, np.float64)
    else:
        times = np.arange(t[0], t[-1], config.grid_s)
    on_beat = set(nearest_frames(times, t, 0.5 * _frame_step(t)).tolist())
    ends: set[int] = set()
    covered = scores.frame >= 0
    for a in range(scores.n_angles):
        ends.update((np.flatnonzero(covered[a, :-1] & ~covered[a, 1:]) + 1).tolist())
    points = np.array(sorted(p for p in on_beat | ends if 0 < p < len(t)), np.int64)
    return points, np.isin(points, list(on_beat))


def choose_shots(
    scores: Scores, beats: NDArray | None, config: ChooseConfig | None = None, *, forbid_jumps: bool = True
) -> list[Shot]:
    """The best edit (see the module docstring); always returns shots covering every output frame."""
    config = config or ChooseConfig()
    t = scores.t
    k_n, a_n = len(t), scores.n_angles
    if k_n == 0:
        return []
    step = _frame_step(t)
    points, on_beat = cut_points(t, beats, scores, config)
    frames = np.concatenate([[0], points, [k_n]])
    off_beat = np.concatenate([[0.0], np.where(on_beat, 0.0, config.off_beat_cost_s / step), [0.0]])
    big = 1e6
    value = np.where(np.isfinite(scores.total), scores.total, -big)
    prefix = np.concatenate([np.zeros((a_n, 1)), np.cumsum(value, axis=1)], axis=1)
    min_len = int(round(config.min_shot_s / step))
    cut_cost = config.cut_cost_s / step
    jump = scores.speed > config.jump_speed if forbid_jumps else np.zeros_like(scores.seen)
    n = len(frames)
    best = np.full((n, a_n), -np.inf)
    back = np.full((n, a_n, 2), -1, np.int64)  # (previous point, previous angle)
    for i in range(1, n):
        c = frames[i]
        whole = c - frames[0] >= min_len or i == n - 1
        seg_first = prefix[:, c] - prefix[:, frames[0]]
        if whole:
            best[i] = seg_first
        js = np.arange(1, i)
        js = js[c - frames[js] >= min_len]
        if not len(js):
            continue
        cj = frames[js]
        for a in range(a_n):
            prev = best[js].copy()  # (J, A)
            prev[:, a] = -np.inf
            if forbid_jumps:
                blocked = jump[:, cj].T | jump[a, cj][:, None]  # (J, A): moving in the old or new angle
                prev[blocked] = -np.inf
            b = np.argmax(prev, axis=1)
            cand = prev[np.arange(len(js)), b] + prefix[a, c] - prefix[a, cj] - cut_cost - off_beat[js]
            k = int(np.argmax(cand))
            if cand[k] > best[i, a]:
                best[i, a] = cand[k]
                back[i, a] = (js[k], b[k])
    a = int(np.argmax(best[n - 1]))
    if not np.isfinite(best[n - 1, a]):
        if forbid_jumps:
            log.info("no edit avoids cutting mid-jump everywhere; allowing it")
            return choose_shots(scores, beats, config, forbid_jumps=False)
        return [Shot(0, k_n, int(np.nanargmax(np.nansum(scores.total, axis=1))))]
    shots = []
    i = n - 1
    while i > 0:
        j, b = back[i, a]
        start = frames[j] if j >= 0 else 0
        shots.append(Shot(int(start), int(frames[i]), a))
        if j < 0:
            break
        i, a = int(j), int(b)
    return shots[::-1]
