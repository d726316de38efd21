"""Multi-person tracking by detection, in the OC-SORT family, tuned for dancers and sparse detection.

Each track is a constant-velocity Kalman filter on ``(cx, cy, s, r)`` - box centre, area and aspect
ratio w/h - with velocities of the first three, as in SORT/OC-SORT. Velocities are per *second* and
every noise term is relative to the box size, so one configuration serves any frame rate, detection
stride and resolution. Every :meth:`Tracker.update` call runs:

1. **predict** every track one step (``step_s`` seconds);
2. **first association** of confident detections with all tracks, by Hungarian matching (scipy) on a
   similarity that takes, per pair, the better of two hypotheses:

   - *kept moving*: the IoU with the track's Kalman prediction, on boxes enlarged a little (a
     "buffered" IoU, as in C-BIoU, so a dancer who moved about her own width since the last
     detection still overlaps it; a track seen only once, whose speed is unknown, gets a wider
     buffer), plus **OCM** (observation-centric momentum): a bonus or malus for how well the
     direction from the track's recent observation to the detection agrees with the track's
     observed direction of motion, weighted by how clearly both move;
   - *stopped or turned back*: the IoU with the track's observation of the previous step, minus a
     small margin. Dancers turn around all the time; a constant-velocity prediction then overshoots
     by twice the step's motion and, in a tight line of dancers, lands on the neighbour.

   Every acceptable pair also gets a fixed bonus, so that the matching first explains as many
   detections as possible by existing tracks and only then maximises the similarity;
3. **BYTE stage**: low-confidence detections (often a half-hidden dancer) are matched to the tracks
   still free in the same way (without OCM), so occluded people keep their track;
4. **OCR** (observation-centric recovery): tracks still free - typically lost ones - are matched to
   confident detections still free on the IoU with the track's *last observation*, more buffered,
   which recovers a dancer who stopped while hidden, where the Kalman prediction drifted on;
5. **update** the matched tracks; a track re-found after missed steps gets **ORU**
   (observation-centric re-update): its filter is rolled back to its last observation and re-run
   through a virtual straight path to the new observation, so the drift accumulated while lost is
   discarded;
6. **weak tentative tracks** (started from mid-score detections, below) are matched last, to the
   confident and low-confidence detections that no other track took, so they never take a
   detection from a track that is followed;
7. confident detections left over start tentative tracks; mid-score detections left over (at least
   ``weak_score``; often a half-hidden dancer in a back row) start *weak* tentative tracks, unless
   their box lies (nearly) all inside a box tracked in this step (a second box on a tracked person).
   Tentative tracks end at their first miss, confirmed ones once lost longer than ``max_lost_s``. A
   weak track is confirmed only after ``weak_confirm_s`` of consecutive matches, and only if it is
   then not inside a tracked box either.

A confirmed track re-found after a **hidden loss** ends there and a new tentative track starts from the
detection that re-found it (``hidden_gap_s``): it was lost for a while, the detection lies more than
a box width to the side of where it was lost, and the straight path between them passes behind
another tracked person. Whether she is the one who went behind that person or someone who came out
from behind is not something geometry can tell: the Kalman prediction (or ORU's straight path) may
have carried the track across the stage. The identity stage links the two tracks on appearance,
and no interpolated box sweeps across the people in between.

Only confirmed tracks are reported, with the detection box they matched in each step: a track's
steps before its confirmation are reported late, by :meth:`Tracker.earlier_rows` right after the
update that confirmed it (from after the last step where its box lay inside another track's, if any).

Limits (measured on synthetic dancers, see tests/test_track.py): geometry alone cannot tell a crossing
from two dancers bouncing off each other while their boxes coincide, so ids may be exchanged for the
steps where boxes overlap heavily (the tracklet stage cuts tracks there). Dancers side by side who
move more than about half their spacing between two detections and turn around together can swap;
detecting every 0.1 s (every 3rd frame at 30 fps) keeps 1 box height per second of swaying safe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from fancam.errors import UsageError
from fancam.geometry import intersection_matrix
from fancam.tracking.assign import linear_assignment
from fancam.tracking.kalman import KalmanFilter
from fancam.types import Detections, TrackedDetections

_DIM_X, _DIM_Z = 7, 4
_MIN_AREA = 1.0  # px^2, keeps the box model away from zero/negative areas
_MIN_ASPECT = 0.02
_MAX_EXTRA_BUFFER = 0.5  # cap of the uncertainty buffer, in box sizes


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise UsageError(message)


@dataclass(frozen=True)
class MotionNoise:
    """Noise of the box motion model, relative to the box size (so it is resolution-free).

    Attributes:
        measurement: Std of a detected box's centre, in box heights; the area and the aspect ratio
            get twice this, as fractions of themselves.
        acceleration: Std of the centre's unmodelled acceleration, in box heights per s^2.
        size_change: Std of the unmodelled acceleration of the box area, in fractions of the area
            per s^2 (people walking towards or away from the camera, crouching, jumping).
        aspect_change: Std of the aspect ratio's random walk, in fractions of the ratio per sqrt(s)
            (spins and arm movements change w/h quickly).
        initial_speed: Std of a new track's speed, in box heights per second.
    """

    measurement: float = 0.05
    acceleration: float = 8.0
    size_change: float = 1.5
    aspect_change: float = 0.6
    initial_speed: float = 1.0

    def __post_init__(self) -> None:
        for name in ("measurement", "acceleration", "size_change", "aspect_change", "initial_speed"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value > 0, f"MotionNoise.{name} must be > 0, got {value!r}")


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker settings, in physical units (seconds, fractions of a box).

    Attributes:
        high_score: Detections at or above this confidence start tracks and take part in the
            first association and the recovery round.
        low_score: Detections in ``[low_score, high_score)`` only extend existing tracks (BYTE
            stage); set it equal to ``high_score`` to disable that stage.
        iou_threshold: Smallest (buffered) IoU accepted for a match in any round.
        iou_buffer: Before the IoU of a detection with a track's prediction, each side of both
            boxes is pushed out by this fraction of the box width (left, right) or height (top,
            bottom).
        uncertainty_buffer: ... and, for a track seen only once (its speed is unknown), further
            by this many standard deviations of its predicted centre (at most half the box size),
            so a person who is already moving fast when she appears is not lost at once.
        observation_buffer: The buffer for the IoU of a detection with a track's last observation
            (the "stopped or turned back" hypothesis of the first and BYTE rounds).
        turn_margin: Handicap of that hypothesis against the prediction: a track is assumed to
            keep moving unless the detections fit a stop or a turn clearly better.
        recovery_buffer: The buffer of the recovery (OCR) round, which retries the tracks and
            confident detections still free on last observations.
        match_bonus: Added to the similarity of every acceptable pair before the Hungarian
            matching. Large values make the matching explain as many detections as possible by
            existing tracks before it maximises similarity: in a tight formation that turns
            around, a constant-velocity prediction lands on the neighbour's detection, and only
            "everybody keeps their own detection" explains all of them. 0 maximises similarity.
        inertia: Weight of the motion-direction term (OCM); 0 disables it. The term lies in
            ``[-inertia/2, inertia/2]``.
        direction_window_s: The direction of motion is measured over about this much time.
        direction_min_speed: Speed (box heights per second) from which a direction counts fully;
            slower motion counts proportionally less.
        max_lost_s: A track not matched for longer than this ends.
        confirm_s: A new track is reported once it has been matched on consecutive steps spanning
            at least this long (at least two steps), or at once in the first such span after the
            start (or a reset), so people present at the start are not cut.
        weak_score: Detections in ``[weak_score, high_score)`` that no track takes start weak
            tentative tracks; set it equal to ``high_score`` to disable them. 0.3 is YOLOX's
            score threshold: every kept mid-score box may start one.
        weak_confirm_s: A weak track is confirmed once it has been matched on consecutive steps
            spanning at least this long (also right after the start); 0.3 s = 4 detections at
            the default 10 per second. At 0.5 s, identity with gallery (bench_accuracy): linedance
            .805 -> .868 but miryala .751 -> .721 (its P2 camera lost), so 0.3 s.
        max_cover: A box counts as "on someone else's" when this share (or more) of it lies
            inside the box of another track observed in the same step. Such a mid-score box
            neither starts nor confirms a weak track (a second box on a tracked person), and a
            new track's observations before its confirmation are reported only after the last
            such one. The half-hidden back-row dancers that no track reported (cause ``tracker``
            of benchmarks/bench_detect_misses.py on miryala and linedance) lie 0.55-0.97 inside a
            front dancer's box, so "mostly" is not enough: identity without gallery (fancam
            bench_accuracy, 7 clips) at 0.6 / 0.8 / 0.95: linedance .866 / .857 / .881 (.851
            without weak tracks or late rows), dance2 .891 / .913 / .913 (.891), hamilton .714 /
            .857 / .857 (.810), miryala .746 / .746 / .751 (.756).
        hidden_gap_s: A confirmed track re-found after at least this long lost (seconds between its
            two observations) ends and a new track starts from the detection, when that detection
            lies ``hidden_shift`` or more to the side and the straight path to it lay ``hidden_cover``
            inside another confirmed track's box in some step of the loss. Measured (identity
            without gallery on the 7 labelled clips, cached detections replayed): 0.2-0.5 s give the
            same results.
        hidden_cover: Share of the path's box inside another track's box (0.3-0.75: same results).
        hidden_shift: Horizontal distance between the centres of the last box and the detection, in
            box widths (mean of the two). A person hidden behind a neighbour reappears about where
            she went; a track re-found more than her width away went behind someone, or was carried
            across by its prediction. Measured (identity with / without gallery): 1.0 (to 1.5) ends
            3 tracks on the 7 clips (2 on miryala, 1 on linedance); miryala .736 / .736 -> .741 /
            .776 (.776 / .776 with the gallery's face-quality naming), 4 wrong links -> 2; 0.5:
            miryala .726 / .756, linedance .879 -> .871; no shift condition (every hidden re-find,
            46 on 4 clips): miryala .771 but dance2 .926 -> .900, linedance .833. The new track is
            tentative as any track started from that detection; confirmed at once instead: miryala
            .697 / .726; tentative but not weak: .721 / .751.
        motion: Noise of the Kalman box model.
    """

    high_score: float = 0.5
    low_score: float = 0.1
    iou_threshold: float = 0.3
    iou_buffer: float = 0.1
    uncertainty_buffer: float = 1.0
    observation_buffer: float = 0.3
    turn_margin: float = 0.1
    recovery_buffer: float = 0.5
    match_bonus: float = 1.0
    inertia: float = 0.1
    direction_window_s: float = 0.3
    direction_min_speed: float = 0.3
    max_lost_s: float = 1.0
    confirm_s: float = 0.1
    weak_score: float = 0.3
    weak_confirm_s: float = 0.3
    max_cover: float = 0.95
    hidden_gap_s: float = 0.3
    hidden_cover: float = 0.5
    hidden_shift: float = 1.0
    motion: MotionNoise = field(default_factory=MotionNoise)

    def __post_init__(self) -> None:
        _check(0 < self.high_score <= 1, f"high_score must be in (0, 1], got {self.high_score!r}")
        _check(
            0 <= self.low_score <= self.high_score,
            f"low_score must be in [0, high_score={self.high_score}], got {self.low_score!r}",
        )
        _check(
            0 < self.weak_score <= self.high_score,
            f"weak_score must be in (0, high_score={self.high_score}], got {self.weak_score!r}",
        )
        _check(0 < self.max_cover <= 1, f"max_cover must be in (0, 1], got {self.max_cover!r}")
        _check(0 < self.hidden_cover <= 1, f"hidden_cover must be in (0, 1], got {self.hidden_cover!r}")
        _check(0 < self.iou_threshold < 1, f"iou_threshold must be in (0, 1), got {self.iou_threshold!r}")
        for name in ("iou_buffer", "uncertainty_buffer", "observation_buffer", "turn_margin",
                     "recovery_buffer", "match_bonus", "inertia",
                     "direction_min_speed", "max_lost_s", "confirm_s", "weak_confirm_s", "hidden_gap_s",
                     "hidden_shift"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value >= 0, f"{name} must be >= 0, got {value!r}")
        _check(
            self.inertia / 2 < self.iou_threshold,
            f"inertia/2 must stay below iou_threshold so a match is never won by direction alone, "
            f"got inertia={self.inertia!r}",
        )
        _check(
            self.direction_window_s > 0,
            f"direction_window_s must be > 0, got {self.direction_window_s!r}",
        )


# --- box <-> Kalman state ---------------------------------------------------------------------------


def _observation(xyxy: NDArray) -> NDArray[np.float64]:
    """(4,) xyxy -> (4,) observation ``(cx, cy, area, w/h)``."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    w, h = max(x2 - x1, 1e-3), max(y2 - y1, 1e-3)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, w * h, w / h])


def _box(state: NDArray) -> NDArray[np.float64]:
    """State (or observation) ``(cx, cy, s, r, ...)`` -> (4,) xyxy."""
    s, r = max(state[2], _MIN_AREA), max(state[3], _MIN_ASPECT)
    w = math.sqrt(s * r)
    h = s / w
    return np.array([state[0] - w / 2, state[1] - h / 2, state[0] + w / 2, state[1] + h / 2])


def _height(state: NDArray) -> float:
    return math.sqrt(max(state[2], _MIN_AREA) / max(state[3], _MIN_ASPECT))


def _transition(dt: float) -> NDArray[np.float64]:
    f = np.eye(_DIM_X)
    f[0, 4] = f[1, 5] = f[2, 6] = dt
    return f


_OBSERVATION_MATRIX = np.eye(_DIM_Z, _DIM_X)


def _process_noise(state: NDArray, dt: float, noise: MotionNoise) -> NDArray[np.float64]:
    """White-noise-acceleration covariance for one step of ``dt`` seconds, scaled to the box."""
    q = np.zeros((_DIM_X, _DIM_X))
    acc = np.array([noise.acceleration * _height(state)] * 2 + [noise.size_change * max(state[2], _MIN_AREA)])
    var = acc**2
    for pos, vel, v in ((0, 4, var[0]), (1, 5, var[1]), (2, 6, var[2])):
        q[pos, pos] = v * dt**4 / 4
        q[pos, vel] = q[vel, pos] = v * dt**3 / 2
        q[vel, vel] = v * dt**2
    q[3, 3] = (noise.aspect_change * max(state[3], _MIN_ASPECT)) ** 2 * dt
    return q


def _observation_noise(z: NDArray, noise: MotionNoise) -> NDArray[np.float64]:
    m = noise.measurement
    h = _height(z)
    return np.diag([(m * h) ** 2, (m * h) ** 2, (2 * m * z[2]) ** 2, (2 * m * z[3]) ** 2])


class _Track:
    """One tracked person: Kalman filter plus observation history (mutable, private)."""

    def __init__(self, box: NDArray, score: float, step: int, dt: float, noise: MotionNoise, *, weak: bool) -> None:
        z = _observation(box)
        h = _height(z)
        p0 = np.zeros((_DIM_X, _DIM_X))
        p0[:4, :4] = _observation_noise(z, noise)
        speed = noise.initial_speed * h
        p0[4, 4] = p0[5, 5] = speed**2
        p0[6, 6] = (noise.initial_speed * z[2]) ** 2
        self.kf = KalmanFilter(np.r_[z, 0.0, 0.0, 0.0], p0, _transition(dt), _OBSERVATION_MATRIX)
        self.dt, self.noise = dt, noise
        self.public_id = 0  # 0 while tentative
        self.weak = weak  # started from a mid-score detection (stricter confirmation)
        # Observations not reported yet (while tentative): (step, box, score), and for each whether
        # another track's box covered it in its step (set by the tracker once the step is matched).
        self.pending: list[tuple[int, NDArray[np.float64], float]] = [(step, np.asarray(box, np.float64), score)]
        self.pending_covered: list[bool] = []
        self.hits = 1  # consecutive matched steps
        self.n_obs = 1  # matched steps in all
        self.last_step = step
        self.last_box = np.asarray(box, np.float64)
        self.saved = (self.kf.x, self.kf.P)  # filter state right after the last observation
        self.history: list[tuple[int, NDArray[np.float64]]] = [(step, self.last_box)]
        self.direction = np.zeros(2)  # unit vector of recent observed motion
        self.direction_weight = 0.0  # 0..1, how clearly the track moves

    def predict(self) -> None:
        x = self.kf.x
        if x[2] + self.dt * x[6] <= _MIN_AREA:
            # A shrinking box must not reach zero area: stop the shrinking instead.
            x[6] = 0.0
            self.kf.set_state(x, self.kf.P)
        self.kf.predict(_process_noise(x, self.dt, self.noise))

    @property
    def predicted_box(self) -> NDArray[np.float64]:
        return _box(self.kf.x)

    @property
    def step_std(self) -> NDArray[np.float64]:
        """(2,) std (pixels) of the centre (x, y) predicted one step after the last observation.

        It does not grow while the track is lost: a hidden dancer is most likely still behind her
        neighbour, and a growing search area would let her track grab the neighbour.
        """
        x, p = self.saved
        f = _transition(self.dt)
        p1 = f @ p @ f.T + _process_noise(x, self.dt, self.noise)
        return np.sqrt(np.array([p1[0, 0], p1[1, 1]]))

    def update(self, box: NDArray, score: float, step: int, window_steps: int, min_speed: float) -> None:
        """Correct with the detection ``box`` observed at ``step`` (ORU when steps were missed)."""
        box = np.asarray(box, np.float64)
        if not self.public_id:
            self.pending.append((step, box, score))
        gap = step - self.last_step
        if gap > 1:
            # ORU: roll back to the last observation and re-run through a straight virtual path.
            self.kf.set_state(*self.saved)
            for k in range(1, gap + 1):
                virtual = self.last_box + (box - self.last_box) * (k / gap)
                self.predict()
                z = _observation(virtual)
                self.kf.update(z, _observation_noise(z, self.noise))
        else:
            z = _observation(box)
            self.kf.update(z, _observation_noise(z, self.noise))
        self.hits = self.hits + 1 if gap == 1 else 1
        self.n_obs += 1
        self.saved = (self.kf.x, self.kf.P)
        self.last_step, self.last_box = step, box
        self.history.append((step, box))
        self.history = [(s, b) for s, b in self.history if s >= step - window_steps]
        self._update_direction(min_speed)

    def _update_direction(self, min_speed: float) -> None:
        ref_step, ref_box = self.history[0]
        if ref_step == self.last_step:
            self.direction, self.direction_weight = np.zeros(2), 0.0
            return
        delta = _centre(self.last_box) - _centre(ref_box)
        dist = float(np.hypot(*delta))
        elapsed = (self.last_step - ref_step) * self.dt
        speed = dist / (elapsed * _box_height(self.last_box))
        self.direction = delta / dist if dist > 0 else np.zeros(2)
        self.direction_weight = min(1.0, speed / max(min_speed, 1e-9))

    def reference(self, step: int, window_steps: int) -> tuple[int, NDArray[np.float64]]:
        """Oldest observation within ``window_steps`` before ``step``, else the last observation."""
        for s, b in self.history:
            if s >= step - window_steps:
                return s, b
        return self.last_step, self.last_box


def _centre(box: NDArray) -> NDArray[np.float64]:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def _box_height(box: NDArray) -> float:
    return max(float(box[3] - box[1]), 1e-3)


def buffered_iou(a: NDArray, b: NDArray, buffer: NDArray | float) -> NDArray[np.float64]:
    """IoU of boxes ``a`` (N, 4) and ``b`` (M, 4) after enlarging both boxes of each pair -> (N, M).

    For the pair ``(i, j)`` every side of both boxes is pushed out by row ``i``'s buffer times the
    box's own width (left and right) or height (top and bottom). Identical boxes keep an IoU of 1,
    and boxes that moved apart by up to about twice the buffer get a graded, non-zero value.

    Args:
        a: (N, 4) xyxy boxes.
        b: (M, 4) xyxy boxes.
        buffer: A scalar, (N,) or (N, 2) (horizontal, vertical) buffer per row, in box sizes.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    buf = np.asarray(buffer, np.float64)
    buf = np.broadcast_to(buf[:, None] if buf.ndim == 1 else buf, (len(a), 2))
    pad_a = (a[:, 2:] - a[:, :2])[:, None] * buf[:, None]  # (N, 1, 2)
    pad_b = (b[:, 2:] - b[:, :2])[None] * buf[:, None]  # (N, M, 2)
    lo_a, hi_a = a[:, None, :2] - pad_a, a[:, None, 2:] + pad_a
    lo_b, hi_b = b[None, :, :2] - pad_b, b[None, :, 2:] + pad_b
    overlap = np.clip(np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b), 0, None)
    inter = overlap[..., 0] * overlap[..., 1]
    area_a = np.prod(hi_a - lo_a, axis=-1)
    area_b = np.prod(hi_b - lo_b, axis=-1)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _cover(box: NDArray, others: NDArray) -> float:
    """The largest share of ``box`` (4,) that one of ``others`` (K, 4) covers (0 without others)."""
    if not len(others):
        return 0.0
    area = max(float((box[2] - box[0]) * (box[3] - box[1])), 1e-9)
    return float(np.max(intersection_matrix(box, others))) / area


def _match(similarity: NDArray, gate: NDArray) -> NDArray[np.int64]:
    """Hungarian matching maximising similarity over pairs that pass ``gate`` -> (K, 2) (row, col)."""
    cost = np.where(gate & (similarity > 0), -similarity, np.inf)
    matches, _, _ = linear_assignment(cost, max_cost=0.0)
    return matches


class Tracker:
    """OC-SORT-style multi-person tracker (see the module docstring for the algorithm).

    Args:
        config: Tracker settings.
        step_s: Seconds between successive :meth:`update` calls (``k / fps`` when detection runs
            on every k-th frame).

    Raises:
        UsageError: ``step_s`` is not a positive number.
    """

    def __init__(self, config: TrackerConfig, step_s: float) -> None:
        _check(math.isfinite(step_s) and step_s > 0, f"step_s must be > 0 seconds, got {step_s!r}")
        self.config, self.step_s = config, float(step_s)
        self._max_lost_steps = max(1, int(math.floor(config.max_lost_s / step_s + 1e-9)))
        self._confirm_hits = 1 + max(1, math.ceil(config.confirm_s / step_s - 1e-9))
        self._weak_confirm_hits = 1 + max(1, math.ceil(config.weak_confirm_s / step_s - 1e-9))
        self._window_steps = max(1, int(round(config.direction_window_s / step_s)))
        self._next_id = 1
        self._tracks: list[_Track] = []
        self._step = 0  # steps since the start or the last reset
        self._earlier: list[tuple[int, int, NDArray[np.float64], float]] = []  # (steps back, id, box, score)
        self._hidden_steps = max(2, int(math.ceil(config.hidden_gap_s / step_s - 1e-9)))
        # Boxes of the confirmed tracks observed in each of the last steps (for the hidden re-find test).
        self._seen: dict[int, list[tuple[_Track, NDArray[np.float64]]]] = {}

    def reset(self) -> None:
        """Forget all tracks (e.g. at a shot cut); ids keep increasing, they are never reused."""
        self._tracks = []
        self._step = 0
        self._earlier = []
        self._seen = {}

    def earlier_rows(self) -> list[tuple[int, TrackedDetections]]:
        """The earlier observations of the tracks that the last :meth:`update` confirmed.

        A new track is reported only once confirmed; its observations from before (the detection
        that started it and those that confirmed it) belong to the output as much as the later ones.

        Returns:
            ``(steps_back, rows)`` pairs, oldest first: ``rows`` belong to the update ``steps_back``
            calls before the last one (1 = the one before it), never to an update before a reset.
        """
        out = []
        for back in sorted({b for b, _, _, _ in self._earlier}, reverse=True):
            rows = [(i, box, sc) for b, i, box, sc in self._earlier if b == back]
            out.append((back, TrackedDetections(
                np.array([r[1] for r in rows]).reshape(-1, 4), np.array([r[2] for r in rows]),
                np.array([r[0] for r in rows], np.int64),
            )))
        return out

    def update(self, dets: Detections) -> TrackedDetections:
        """Advance one step with this step's detections.

        Args:
            dets: People detected in the current frame (pixels).

        Returns:
            The detections that belong to confirmed tracks, with their track ids (ids are unique
            within this tracker and increase from 1). The boxes are the detections themselves, not
            the filter's estimate.
        """
        self._step += 1
        self._earlier = []
        cfg = self.config
        for track in self._tracks:
            track.predict()
        boxes = np.asarray(dets.xyxy, np.float64)
        scores = np.asarray(dets.score, np.float64)
        high = np.flatnonzero(scores >= cfg.high_score)
        low = np.flatnonzero((scores >= cfg.low_score) & (scores < cfg.high_score))
        matched: dict[int, int] = {}  # track index -> detection index
        weak = [i for i, t in enumerate(self._tracks) if t.weak and not t.public_id]
        free = [i for i in range(len(self._tracks)) if i not in set(weak)]

        # 1. Confident detections vs predictions, with the motion-direction term.
        free, high = self._associate(boxes, scores, free, high, matched, use_direction=True)
        # 2. BYTE: low-confidence detections vs the tracks still free.
        free, low = self._associate(boxes, scores, free, low, matched, use_direction=False)
        # 3. OCR: confident detections still free vs the last observation of the tracks still free.
        free, high = self._recover(boxes, free, high, matched)
        # 4. Weak tentative tracks: whatever nobody else took.
        rest = np.sort(np.r_[high, low]).astype(np.int64)
        _, rest = self._associate(boxes, scores, weak, rest, matched, use_direction=False)

        updated: list[tuple[_Track, int]] = []  # (track, detection index) observed in this step
        for ti, di in matched.items():
            if self._hidden_refind(self._tracks[ti], boxes[di]):
                self._tracks[ti] = self._restart(boxes[di], float(scores[di]))
            else:
                self._tracks[ti].update(boxes[di], float(scores[di]), self._step, self._window_steps,
                                        cfg.direction_min_speed)
            updated.append((self._tracks[ti], di))
        survivors = [t for i, t in enumerate(self._tracks) if i in matched or self._survives(t)]
        new_high = [int(d) for d in rest if scores[d] >= cfg.high_score]
        for di in new_high:
            track = _Track(boxes[di], float(scores[di]), self._step, self.step_s, cfg.motion, weak=False)
            if self._step < self._confirm_hits:
                self._confirm(track)
            survivors.append(track)
            updated.append((track, di))
        taken = [boxes[di] for _, di in updated]
        for di in sorted(rest.tolist(), key=lambda d: -scores[d]):
            if not cfg.weak_score <= scores[di] < cfg.high_score:
                continue
            if _cover(boxes[di], np.array(taken).reshape(-1, 4)) < cfg.max_cover:
                track = _Track(boxes[di], float(scores[di]), self._step, self.step_s, cfg.motion, weak=True)
                survivors.append(track)
                updated.append((track, int(di)))
                taken.append(boxes[di])
        self._tracks = survivors
        reported = self._report(updated, boxes, scores)
        self._seen[self._step] = [(t, boxes[di]) for t, di in updated if t.public_id]
        self._seen.pop(self._step - self._max_lost_steps - 1, None)
        return reported

    def _hidden_refind(self, track: _Track, box: NDArray) -> bool:
        """Whether ``track``, matched to ``box`` now, is re-found after a hidden loss (module docstring).

        At least ``hidden_gap_s`` since its last observation, ``box`` at least ``hidden_shift`` box
        widths to the side of it, and in some missed step the straight path between them lay
        ``hidden_cover`` inside the box of another confirmed track observed in that step.
        """
        gap = self._step - track.last_step
        if not track.public_id or gap < self._hidden_steps:
            return False
        width = (track.last_box[2] - track.last_box[0] + box[2] - box[0]) / 2
        shift = abs(float(_centre(box)[0] - _centre(track.last_box)[0]))
        if shift < self.config.hidden_shift * max(float(width), 1e-3):
            return False
        for k in range(1, gap):
            others = [b for t, b in self._seen.get(track.last_step + k, ()) if t is not track]
            if not others:
                continue
            path = track.last_box + (np.asarray(box, np.float64) - track.last_box) * (k / gap)
            if _cover(path, np.array(others)) >= self.config.hidden_cover:
                return True
        return False

    def _restart(self, box: NDArray, score: float) -> _Track:
        """A new tentative track from ``box`` (after a hidden re-find: the old track ends there).

        Weak when ``score`` is below ``high_score``, as a track started from that detection would be.
        """
        weak = score < self.config.high_score
        return _Track(box, score, self._step, self.step_s, self.config.motion, weak=weak)

    def _survives(self, track: _Track) -> bool:
        """Unmatched tracks live on until ``max_lost_s``; tentative ones die at their first miss."""
        if not track.public_id:
            return False
        return self._step - track.last_step <= self._max_lost_steps

    def _confirm(self, track: _Track) -> None:
        if not track.public_id:
            track.public_id = self._next_id
            self._next_id += 1

    def _report(
        self, updated: list[tuple[_Track, int]], boxes: NDArray, scores: NDArray
    ) -> TrackedDetections:
        rows: list[tuple[int, int]] = []  # (detection index, public id)
        # Boxes of the tracks that are not weak tentative ones, for the weak tracks' cover test.
        solid = [(t, di) for t, di in updated if t.public_id or not t.weak]
        for track, di in updated:
            if not track.public_id:
                others = np.array([boxes[d] for t, d in solid if t is not track]).reshape(-1, 4)
                track.pending_covered.append(_cover(boxes[di], others) >= self.config.max_cover)
                if self._ready(track, track.pending_covered[-1]):
                    self._confirm(track)
                    self._earlier += self._late_rows(track)
            if track.public_id:
                track.pending, track.pending_covered = [], []
                rows.append((di, track.public_id))
        if not rows:
            return TrackedDetections.empty()
        rows.sort()
        idx = np.array([r[0] for r in rows], np.int64)
        ids = np.array([r[1] for r in rows], np.int64)
        return TrackedDetections(boxes[idx], scores[idx], ids)

    def _ready(self, track: _Track, covered: bool) -> bool:
        """Whether a tentative track is confirmed now (``covered``: its box is mostly on another's)."""
        if not track.weak:
            return track.hits >= self._confirm_hits
        return track.hits >= self._weak_confirm_hits and not covered

    def _late_rows(self, track: _Track) -> list[tuple[int, int, NDArray[np.float64], float]]:
        """(steps back, id, box, score) of a newly confirmed track's earlier observations.

        Only those after the last one that lay mostly on another track's box: while a person
        emerges from someone else's box (or stands mostly behind her) the detection may still be of
        the other person, so only the stretch where she stood clear of others is reported.
        """
        earlier = list(zip(track.pending[:-1], track.pending_covered[:-1], strict=True))
        while earlier and any(covered for _, covered in earlier):
            earlier.pop(0)
        return [(self._step - s, track.public_id, b, sc) for (s, b, sc), _ in earlier]

    def _associate(
        self, boxes: NDArray, scores: NDArray, free: list[int], dets: NDArray, matched: dict[int, int],
        *, use_direction: bool,
    ) -> tuple[list[int], NDArray[np.int64]]:
        """Match detections ``dets`` to tracks ``free``; returns the tracks and detections left free.

        Each track offers two hypotheses: its Kalman prediction (it kept moving; the direction term
        applies) and, if it was observed in the previous step, that observation (it stopped or
        turned back - frequent in dance, where a constant-velocity prediction overshoots at every
        turn; this hypothesis is handicapped by ``turn_margin``). A pair's similarity is the better
        of the hypotheses that pass the IoU threshold.
        """
        if not free or not len(dets):
            return free, dets
        cfg = self.config
        tracks = [self._tracks[t] for t in free]
        predicted = np.array([t.predicted_box for t in tracks])
        sizes = np.maximum(predicted[:, 2:] - predicted[:, :2], 1e-3)
        # Only a track seen once has an unknown speed; later its prediction is trusted as is.
        extra = np.array([t.step_std if t.n_obs == 1 else np.zeros(2) for t in tracks]) / sizes
        track_buffer = cfg.iou_buffer + np.minimum(cfg.uncertainty_buffer * extra, _MAX_EXTRA_BUFFER)
        iou_moving = buffered_iou(predicted, boxes[dets], track_buffer)
        sim_moving = iou_moving.copy()
        if use_direction and cfg.inertia > 0:
            sim_moving += self._direction_term(free, boxes[dets], scores[dets])
        last = np.array([t.last_box for t in tracks])
        iou_turned = buffered_iou(last, boxes[dets], cfg.observation_buffer)
        # A lost track's last observation is stale: it only gets its chance in the recovery round,
        # after every track that is still being followed has been served.
        iou_turned[np.array([t.last_step < self._step - 1 for t in tracks])] = 0.0
        similarity = np.maximum(
            np.where(iou_moving >= cfg.iou_threshold, sim_moving, -np.inf),
            np.where(iou_turned >= cfg.iou_threshold, iou_turned - cfg.turn_margin, -np.inf),
        )
        pairs = _match(similarity + cfg.match_bonus, np.isfinite(similarity))
        return self._apply(pairs, free, dets, matched)

    def _recover(
        self, boxes: NDArray, free: list[int], dets: NDArray, matched: dict[int, int]
    ) -> tuple[list[int], NDArray[np.int64]]:
        """OCR round: leftovers matched on the tracks' last observations with a wider buffer."""
        if not free or not len(dets):
            return free, dets
        last = np.array([self._tracks[t].last_box for t in free])
        iou = buffered_iou(last, boxes[dets], self.config.recovery_buffer)
        pairs = _match(iou + self.config.match_bonus, iou >= self.config.iou_threshold)
        return self._apply(pairs, free, dets, matched)

    @staticmethod
    def _apply(
        pairs: NDArray, free: list[int], dets: NDArray, matched: dict[int, int]
    ) -> tuple[list[int], NDArray[np.int64]]:
        for r, c in pairs:
            matched[free[r]] = int(dets[c])
        taken_rows = set(pairs[:, 0].tolist())
        taken_cols = set(pairs[:, 1].tolist())
        still_free = [t for i, t in enumerate(free) if i not in taken_rows]
        rest = np.array([d for j, d in enumerate(dets) if j not in taken_cols], np.int64)
        return still_free, rest

    def _direction_term(
        self, free: list[int], det_boxes: NDArray, det_scores: NDArray
    ) -> NDArray[np.float64]:
        """OCM: (T, D) agreement of the track->detection direction with each track's motion."""
        cfg = self.config
        out = np.zeros((len(free), len(det_boxes)))
        centres = (det_boxes[:, :2] + det_boxes[:, 2:]) / 2
        for i, t in enumerate(free):
            track = self._tracks[t]
            if track.direction_weight <= 0:
                continue
            ref_step, ref_box = track.reference(self._step, self._window_steps)
            vec = centres - _centre(ref_box)
            dist = np.hypot(vec[:, 0], vec[:, 1])
            unit = vec / np.maximum(dist, 1e-9)[:, None]
            cos = np.clip(unit @ track.direction, -1.0, 1.0)
            angle_term = (np.pi / 2 - np.arccos(cos)) / np.pi  # +0.5 same direction, -0.5 opposite
            speed = dist / ((self._step - ref_step) * self.step_s * _box_height(ref_box))
            det_weight = np.minimum(1.0, speed / max(cfg.direction_min_speed, 1e-9))
            out[i] = cfg.inertia * track.direction_weight * det_weight * angle_term * det_scores
        return out
