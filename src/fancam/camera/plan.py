"""Camera path planning: one performer's boxes -> a smooth crop rectangle for every frame.

The path is planned offline over the whole timeline, so it has no lag. Per shot (a path is never
smoothed or interpolated across a cut):

1. Frames where the target is seen are grouped into *segments*; gaps up to ``bridge_gap_s`` are
   bridged by interpolating the box, and segments shorter than ``min_follow_s`` (detector flicker) are
   ignored. A longer gap is bridged too when the target is **hidden** behind others meanwhile (their
   boxes cover her interpolated position, :class:`SceneBoxes`): the camera holds where she is instead of
   going wide, and those frames are flagged (:attr:`CropPath.hidden`). Bridged frames are ``follow``:
   the camera is on the target's estimated position.
2. In each segment, the crop height, then the crop centre x and y are planned on a ~10 Hz grid by an
   L1-optimal path (Grundmann et al., CVPR 2011): minimise the L1 norm of the first, second and third
   differences of the path plus an L1 distance to the target with a dead zone, subject to the crop
   staying inside the frame and the head point staying inside the crop. L1 costs make the optimum
   piecewise constant / linear / parabolic: the camera holds exactly still while the performer
   sways inside the dead zone, pans at constant speed, and does not overshoot. The grid path is
   resampled to every frame with a monotone cubic (PCHIP).
3. In longer gaps the camera holds where the target was lost for ``hold_s`` (mode ``follow``: a
   dancer lost inside the picture is most likely still there, occluded or missed by the detector),
   eases out to the widest crop of the output aspect, and eases back in so that it is on the target
   ``hold_s`` before she is found again (offline: it holds there too). A target lost at the frame's
   left or right edge may have left the picture: the camera holds only ``exit_hold_s``, in ``search``
   mode. In a shot without the target, the widest crop frames the other people on screen (a
   landscape frame is wider than that crop: not an arbitrary slice of it).

Framing: :func:`choose_framing` picks the ``auto`` preset per performer - full body where that crop is
clearly narrower than the group on screen, otherwise upper body, so that the performer is the
subject of the shot.

Framing follows the head point ``(cx, y1 + 0.12 h)`` (DESIGN.md) and the box height: the crop height is
``framing.height_ratio * box height`` and the head point sits ``framing.head_y`` of the crop height
below the crop's top. Borders: the crop is always inside the frame and has the exact output aspect;
when the framing asks for a crop larger than the frame, the crop is *shrunk* to the largest one of
that aspect that fits (never letterboxed), and a crop near an edge is shifted inwards, not padded.
"""

from __future__ import annotations

import logging
import types
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.interpolate import PchipInterpolator
from scipy.ndimage import maximum_filter1d, minimum_filter1d
from scipy.optimize import linprog

from fancam.errors import UsageError
from fancam.geometry import head_point
from fancam.io.tables import CROP_MODES, CropTable, write_crop
from fancam.types import Timeline, frame_step_s

log = logging.getLogger(__name__)



# ----------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class Framing:
    """How large the performer appears and where the head sits.

    Attributes:
        name: Preset name.
        height_ratio: Crop height / person box height (1.25 = whole body with margins).
        head_y: Head point's distance from the crop's top, as a fraction of the crop height.
    """

    name: str
    height_ratio: float
    head_y: float


FRAMINGS = types.MappingProxyType(
    {
        # Whole body: the box fills 80% of the crop height, ~10% headroom (classic vertical fancam).
        "full": Framing("full", 1.25, 0.18),
        # Head and torso down to about the hips.
        "upper": Framing("upper", 0.70, 0.30),
        # Close-up: the head is about a third of the crop height.
        "face": Framing("face", 0.36, 0.42),
    }
)
"""Framing presets by name."""

AUTO = "auto"
"""Framing name that lets :func:`choose_framing` pick ``full`` or ``upper`` per performer."""

ASPECTS = types.MappingProxyType({"9:16": 9 / 16, "4:5": 4 / 5, "1:1": 1.0, "16:9": 16 / 9})
"""Named output aspects (width / height)."""


def framing_preset(name: str) -> Framing:
    """The framing preset called ``name``: ``full``, ``upper`` or ``face``.

    ``auto`` is not a preset: :func:`choose_framing` picks one per performer.

    Raises:
        UsageError: Unknown name (the message lists the choices).
    """
    if name not in FRAMINGS:
        choices = ", ".join([AUTO, *FRAMINGS]) if name != AUTO else ", ".join(FRAMINGS)
        raise UsageError(f"unknown framing {name!r}; choose one of {choices}")
    return FRAMINGS[name]


def check_framing(name: str) -> str:
    """``name`` if it is ``auto`` or a preset name.

    Raises:
        UsageError: Unknown name (the message lists the choices).
    """
    if name != AUTO and name not in FRAMINGS:
        raise UsageError(f"unknown framing {name!r}; choose one of {', '.join([AUTO, *FRAMINGS])}")
    return name


def parse_aspect(text: str) -> float:
    """Output aspect ``"W:H"`` (e.g. ``"9:16"``) -> width / height.

    Raises:
        UsageError: Not two positive numbers separated by a colon.
    """
    parts = str(text).split(":")
    try:
        w, h = (float(p) for p in parts)
    except ValueError:
        w = h = -1.0
    if len(parts) != 2 or not (0 < w < 1e5 and 0 < h < 1e5):
        raise UsageError(f"bad aspect {text!r}: use W:H, e.g. one of {', '.join(ASPECTS)}")
    return w / h


@dataclass(frozen=True)
class PathSmoothing:
    """Weights of the L1-optimal path of one coordinate, in units of crop heights and seconds.

    The cost is ``sum dt*(max(|p - target| - dead_zone, 0) + centring*|p - target|) + velocity*sum|dp|
    + acceleration*sum|d2p|/dt + jerk*sum|d3p|/dt^2`` (a continuous-time integral, so independent of
    the frame rate).

    Attributes:
        dead_zone: Target offsets below this (fraction of the crop height) cost only ``centring``.
        centring: Weight of the offset inside the dead zone (keeps a still camera centred).
        velocity: Seconds a displacement must last before following it is worth a move.
        acceleration: Weight (s^2) of speed changes: larger means longer, gentler ramps.
        jerk: Weight (s^3) of acceleration changes: smooths the start and end of pans.
    """

    dead_zone: float
    centring: float
    velocity: float
    acceleration: float
    jerk: float


@dataclass(frozen=True)
class CameraConfig:
    """Camera planning parameters (physical units).

    Attributes:
        framing: Framing preset (see :data:`FRAMINGS`).
        aspect: Output width / height (see :func:`parse_aspect`).
        min_crop_px: Smallest crop height in source pixels (a tiny performer is not blown up further).
        keep_in_crop: Largest offset of the crop centre from its target while following, as fractions
            of the crop (width, height); keeps the head point well inside the crop.
        bridge_gap_s: Gaps in the target track up to this long are bridged by interpolation.
        hold_s: A target lost inside the picture (not at its left or right edge: occluded, turned
            away, in the dark, missed by the detector) is most likely still where she was lost: the
            camera holds there, following (mode ``follow``), for this long; and, planning offline, it
            is already where she is found again this long before she is (also when she comes in at the
            side). A gap between two such sightings up to twice this long is bridged (interpolated)
            whole.
        exit_hold_s: A target lost at the frame's left or right edge may have left the picture: the
            camera holds for this long (mode ``search``) before easing out.
        lost_zoom: While the camera follows an estimate of the target's position (bridged, held or
            hidden frames) at least ``lost_zoom_after_s`` from any sighting, the crop asks to be this
            many times larger: she may have moved meanwhile, a slightly wider shot keeps her in it.
        lost_zoom_after_s: See ``lost_zoom``.
        ease_s: Duration of the ease out to the wide crop and of the ease back in.
        min_follow_s: Segments (seen runs with their bridged gaps) shorter than this are ignored.
        position: Smoothing of the crop centre.
        zoom: Smoothing of the crop height (strong: no zoom pumping).
        plan_rate_hz: Rate of the planning grid (the path is resampled to every frame).
        window_s: Longest span solved at once (longer segments are solved in overlapping windows).
        hidden_cover: In a frame of a gap, the target counts as hidden when this share of her
            interpolated box lies inside someone else's box.
        hidden_share: A gap is held as hidden when the target counts as hidden in this share of its
            frames.
        hidden_max_s: Longest gap held as hidden (longer ones ease out to the wide crop).
        in_place_max_s: A target lost for up to this long and found again where she was lost is
            bridged too: the camera holds there (dancers on the ground, in a pile-up, in the dark:
            the five of gillhung_dance2 are lost for 2.3-5.2 s in its pile-up, f265-f420, with YOLOX-nano
            tracks, up to 6.3 s with the SSD's) ...
        in_place_shift: ... when the boxes before and after the gap are at most this many box heights
            apart ...
        in_place_edge_s: ... and, when a box touches the frame's left or right edge (she may have left
            the picture), the gap lasts at most this long (gillhung_dance2: P4 at the left edge, head
            out of the picture, merged into his neighbour's box for 1.4 s, f175-f215).
    """

    framing: Framing = FRAMINGS["full"]
    aspect: float = 9 / 16
    min_crop_px: float = 96.0
    # Height 0.12 (was 0.22, which let the head of an upper-body shot reach 8% below the top): on
    # gillhung_dance2 (crouching, standing up) P2's crop hit 0.917 -> 0.958 and P5's 0.975 -> 1.0 at a
    # jitter of 0.0003-0.0006 crop heights per frame^2 (benchmarks/bench_crophit.py).
    keep_in_crop: tuple[float, float] = (0.30, 0.12)
    bridge_gap_s: float = 1.0
    # Measured with benchmarks/bench_crophit.py on the seven labelled clips (GT keyframes where the
    # target is visible but has no box): holding 1 s turned 9 such misses into hits (bench P2 at its
    # end 0.945 -> 0.982, hamilton's obama after a cut 0.5 -> 1.0, miryala P2 0.778 -> 0.889, P5 0.875
    # -> 0.917, linedance P1, P4, P6); 1.5 s gained 2 more keyframes, so 1 s it is (the shorter guess).
    hold_s: float = 1.0
    exit_hold_s: float = 0.5
    # bench_crophit.py: in 24 missed keyframes where the camera held on an estimate, a crop 1.25x as
    # large would have framed her in 5 (1.5x: 6, 2x: 7); with the zoom's stiff smoothing it turned 2 into
    # hits (gillhung_dance2 P3, miryala P1) without changing any other clip.
    lost_zoom: float = 1.25
    lost_zoom_after_s: float = 0.5
    ease_s: float = 1.0
    min_follow_s: float = 0.4
    # Measured on the bench clip (benchmarks/bench_render.py): a 4% dead zone made the path trail the
    # dancers by 8-17 frames under DESIGN.md's lag metric; 1% with centring 1.0 keeps |lag| <= 4 frames
    # at a jitter of 0.0004 crop heights per frame^2 (tests/pipeline/test_produce.py pins both).
    position: PathSmoothing = field(default_factory=lambda: PathSmoothing(
        dead_zone=0.01, centring=1.0, velocity=0.5, acceleration=0.15, jerk=0.02))
    # Deliberately much stiffer than the position (10% dead zone, 3 s before a change of size is worth
    # it): a fancam must not zoom with every raised arm. The exact values are not measured yet.
    zoom: PathSmoothing = field(default_factory=lambda: PathSmoothing(
        dead_zone=0.10, centring=0.25, velocity=3.0, acceleration=1.0, jerk=0.1))
    plan_rate_hz: float = 10.0
    window_s: float = 60.0
    hidden_cover: float = 0.5
    hidden_share: float = 0.6
    hidden_max_s: float = 10.0
    in_place_max_s: float = 8.0
    in_place_shift: float = 0.75
    in_place_edge_s: float = 2.0


# ----------------------------------------------------------------------------------------- path type
@dataclass(frozen=True)
class CropPath:
    """The crop rectangle of every frame of a video.

    Attributes:
        xyxy: (F, 4) float32 crop rectangles in displayed-frame pixels, inside the frame, all with the
            same aspect (width / height).
        mode: (F,) str, one of :data:`~fancam.io.tables.CROP_MODES` per frame.
        hidden: (F,) bool, True where the target is hidden behind others and the camera holds on her
            estimated position (mode ``follow``); all False when not given (or empty).
    """

    xyxy: NDArray[np.float32]
    mode: NDArray[np.str_]
    hidden: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, bool))

    def __post_init__(self) -> None:
        xyxy = np.ascontiguousarray(self.xyxy, np.float32)
        mode = np.asarray(self.mode, dtype="<U6")
        hidden = np.asarray(self.hidden, bool)
        if hidden.size == 0:  # not given
            hidden = np.zeros(len(mode), bool)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4 or mode.shape != (len(xyxy),) or hidden.shape != mode.shape:
            raise ValueError(f"CropPath needs xyxy (F, 4), mode (F,) and hidden (F,), got {xyxy.shape}, "
                             f"{mode.shape}, {hidden.shape}")
        if not np.isin(mode, CROP_MODES).all():
            raise ValueError(f"CropPath modes must be in {CROP_MODES}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "hidden", hidden)

    def __len__(self) -> int:
        return len(self.mode)

    @property
    def height(self) -> NDArray[np.float32]:
        """(F,) crop heights in pixels."""
        return self.xyxy[:, 3] - self.xyxy[:, 1]

    @property
    def centre(self) -> NDArray[np.float32]:
        """(F, 2) crop centres (x, y) in pixels."""
        return ((self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2).astype(np.float32)


@dataclass(frozen=True)
class SceneBoxes:
    """Boxes of the other people on screen (possible occluders, the group), any number per frame.

    Attributes:
        frame: (M,) int64 frame indices (sorted on construction).
        xyxy: (M, 4) float64 boxes in displayed-frame pixels.
    """

    frame: NDArray[np.int64]
    xyxy: NDArray[np.float64]

    def __post_init__(self) -> None:
        frame = np.asarray(self.frame, np.int64).reshape(-1)
        xyxy = np.asarray(self.xyxy, np.float64).reshape(-1, 4)
        if len(frame) != len(xyxy):
            raise ValueError(f"SceneBoxes has {len(frame)} frames but {len(xyxy)} boxes")
        order = np.argsort(frame, kind="stable")
        object.__setattr__(self, "frame", frame[order])
        object.__setattr__(self, "xyxy", xyxy[order])

    @classmethod
    def empty(cls) -> SceneBoxes:
        """Nobody else."""
        return cls(np.zeros(0, np.int64), np.zeros((0, 4)))

    def between(self, a: int, b: int) -> SceneBoxes:
        """The rows of frames ``a <= frame < b``, with frames counted from ``a``."""
        lo, hi = np.searchsorted(self.frame, [a, b])
        return SceneBoxes(self.frame[lo:hi] - a, self.xyxy[lo:hi])


@dataclass(frozen=True)
class _Frame:
    """Frame size and the crop sizes allowed in it (internal)."""

    width: float
    height: float
    aspect: float
    min_h: float

    @property
    def max_h(self) -> float:
        """Tallest crop of this aspect that fits in the frame."""
        return min(self.height, self.width / self.aspect)

    def crop(self, cx: NDArray, cy: NDArray, h: NDArray) -> NDArray[np.float64]:
        """Crops (N, 4) of height ``h`` centred as near as possible to (cx, cy), inside the frame."""
        h = np.clip(np.asarray(h, np.float64), min(self.min_h, self.max_h), self.max_h)
        w = h * self.aspect
        cx = np.clip(cx, w / 2, self.width - w / 2)
        cy = np.clip(cy, h / 2, self.height - h / 2)
        return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


# ----------------------------------------------------------------------------------------- planning
def plan_camera(
    boxes: NDArray,
    frame_size: tuple[int, int],
    timeline: Timeline,
    config: CameraConfig | None = None,
    others: SceneBoxes | None = None,
) -> CropPath:
    """Plan the crop of every frame so that the camera follows one performer.

    Args:
        boxes: (F, 4) float person boxes xyxy in displayed-frame pixels, one row per frame of the
            timeline; rows with NaN where the target is not seen.
        frame_size: Displayed (width, height) of the source frames.
        timeline: Frame times and shot starts (the path never crosses a shot start).
        config: Planning parameters (default :class:`CameraConfig`).
        others: Everybody else's boxes (to hold on a hidden target, and to frame the people on
            screen in a shot without her); None = nobody else is known.

    Returns:
        The :class:`CropPath` (F rows).

    Raises:
        ValueError: ``boxes`` does not have one row per timeline frame.
    """
    config = config or CameraConfig()
    boxes = np.asarray(boxes, np.float64)
    n = timeline.n_frames
    if boxes.shape != (n, 4):
        raise ValueError(f"boxes must have shape ({n}, 4) (one row per frame), got {boxes.shape}")
    frame = _Frame(float(frame_size[0]), float(frame_size[1]), config.aspect, config.min_crop_px)
    others = others if others is not None else SceneBoxes.empty()
    xyxy = np.empty((n, 4), np.float64)
    mode = np.empty(n, "<U6")
    hidden = np.zeros(n, bool)
    for a, b in _shot_ranges(timeline):
        xyxy[a:b], mode[a:b], hidden[a:b] = _plan_shot(
            boxes[a:b], timeline.t[a:b], frame, config, others.between(a, b))
    return CropPath(xyxy.astype(np.float32), mode, hidden)


def _shot_ranges(timeline: Timeline) -> list[tuple[int, int]]:
    """[start, end) frame ranges of the shots."""
    n = timeline.n_frames
    starts = np.unique(np.concatenate([[0], timeline.shot_starts]))
    starts = starts[(starts >= 0) & (starts < n)]
    ends = np.append(starts[1:], n)
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True) if b > a]


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[start, end) ranges of the True runs of a 1-D mask."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def _plan_shot(
    boxes: NDArray, t: NDArray, frame: _Frame, config: CameraConfig, others: SceneBoxes
) -> tuple[NDArray[np.float64], NDArray[np.str_], NDArray[np.bool_]]:
    """Crops (n, 4), modes (n,) and the hidden mask (n,) of one shot (``others`` counted from its start)."""
    n = len(t)
    seen = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, hidden = _hidden_gaps(boxes, seen, t, others, config)
    filled, in_segment = _bridge(boxes, seen | hidden, t, frame, config)
    for a, b in _runs(in_segment):
        if (a, b) != (0, n) and _span(t, a, b) < config.min_follow_s:  # flicker: not worth a zoom-in
            in_segment[a:b] = False
    hidden &= in_segment
    filled, held = _hold_ends(filled, in_segment, t, frame, config)
    in_segment |= held
    xyxy = np.empty((n, 4))
    mode = np.full(n, "follow", "<U6")
    segments = _runs(in_segment)
    if not segments:
        cx, cy = _people_centre(others, frame)
        full = np.ones(n)
        xyxy[:] = frame.crop(full * cx, full * cy, full * frame.max_h)
        mode[:] = "wide"
        return xyxy, mode, hidden
    lost = _time_to_sighting(seen, t)
    for a, b in segments:
        xyxy[a:b] = _plan_segment(filled[a:b], t[a:b], frame, config, lost[a:b])
    bounds = [0] + [x for seg in segments for x in seg] + [n]
    for k in range(0, len(bounds), 2):
        a, b = bounds[k], bounds[k + 1]
        if b > a:
            prev = xyxy[a - 1] if a > 0 else None
            nxt = xyxy[b] if b < n else None
            hold = 0.0 if a > 0 and held[a - 1] else config.exit_hold_s  # held already, or she left
            xyxy[a:b], mode[a:b] = _ease_gap(t, (a, b), (prev, nxt), frame, replace(config, hold_s=hold))
    return xyxy, mode, hidden


def _hidden_gaps(
    boxes: NDArray, seen: NDArray[np.bool_], t: NDArray, others: SceneBoxes, config: CameraConfig
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Fill the gaps in which the target is hidden behind others with her estimated box.

    A gap between two sightings in the shot, at most ``hidden_max_s`` long, is hidden when in at least
    ``hidden_share`` of its frames ``hidden_cover`` of the straight-line (interpolated) box lies
    inside one other person's box. A gap at the shot's start or end has one sighting only: her box
    there is held for as long as someone else's box keeps covering it (at most ``hidden_max_s``).

    Returns:
        Boxes (n, 4) with the hidden gaps filled, and the (n,) mask of those frames.
    """
    n = len(t)
    filled = boxes.copy()
    hidden = np.zeros(n, bool)
    if not len(others.frame):
        return filled, hidden
    for a, b in _runs(~seen):
        if a == 0 and b == n:
            continue
        if a > 0 and b < n:
            if t[b] - t[a - 1] > config.hidden_max_s + 1e-9:
                continue
            w = ((t[a:b] - t[a - 1]) / (t[b] - t[a - 1]))[:, None]
            path = (1 - w) * boxes[a - 1] + w * boxes[b]
            covered = _covered(path, a, others) >= config.hidden_cover
            if np.mean(covered) >= config.hidden_share - 1e-9:
                filled[a:b], hidden[a:b] = path, True
            continue
        # One sighting: hold her box outwards from it while someone keeps covering it.
        held = np.repeat((boxes[a - 1] if a > 0 else boxes[b])[None], b - a, axis=0)
        away = (t[a:b] - t[a - 1]) if a > 0 else (t[b] - t[a:b])
        ok = (_covered(held, a, others) >= config.hidden_cover) & (away <= config.hidden_max_s + 1e-9)
        outwards = ok if a > 0 else ok[::-1]
        run = len(outwards) if outwards.all() else int(np.argmin(outwards))
        keep = np.arange(b - a) < run
        keep = keep if a > 0 else keep[::-1]
        filled[a:b][keep], hidden[a:b][keep] = held[keep], True
    return filled, hidden


def _covered(path: NDArray, a: int, others: SceneBoxes) -> NDArray[np.float64]:
    """Per frame ``a + i``, the largest share of the box ``path[i]`` inside someone else's box."""
    lo, hi = np.searchsorted(others.frame, [a, a + len(path)])
    rel = others.frame[lo:hi] - a
    mine = path[rel]
    area = np.maximum((mine[:, 2] - mine[:, 0]) * (mine[:, 3] - mine[:, 1]), 1e-9)
    cover = np.zeros(len(path))
    np.maximum.at(cover, rel, _intersection(mine, others.xyxy[lo:hi]) / area)
    return cover


def _intersection(a: NDArray, b: NDArray) -> NDArray[np.float64]:
    """Intersection areas of the box pairs ``a[i]``, ``b[i]`` (N, 4) each -> (N,)."""
    w = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    h = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def _people_centre(others: SceneBoxes, frame: _Frame) -> tuple[float, float]:
    """Where to centre the widest crop of a shot without the target: on the people in it.

    Of the crops centred on someone's head point, the one that holds the most head points over the
    shot, each weighted by its box height (near, prominent people count most); the frame's centre when
    nobody is there. The crop stays still for the whole shot.
    """
    if not len(others.frame):
        return frame.width / 2, frame.height / 2
    heads = head_point(others.xyxy)
    weight = np.maximum(others.xyxy[:, 3] - others.xyxy[:, 1], 0.0)
    step = max(1, len(heads) // _MAX_CANDIDATES)
    candidates = heads[::step]
    crops = frame.crop(candidates[:, 0], candidates[:, 1], np.full(len(candidates), frame.max_h))
    inside = ((crops[:, None, 0] <= heads[None, :, 0]) & (heads[None, :, 0] <= crops[:, None, 2])
              & (crops[:, None, 1] <= heads[None, :, 1]) & (heads[None, :, 1] <= crops[:, None, 3]))
    best = crops[int(np.argmax(inside @ weight))]
    return float(best[0] + best[2]) / 2, float(best[1] + best[3]) / 2


_MAX_CANDIDATES = 400
"""At most this many head points are tried as the centre of a shot's widest crop."""


def _span(t: NDArray, a: int, b: int) -> float:
    """Duration in seconds of frames [a, b) (one frame interval per frame)."""
    step = frame_step_s(t)
    return float(t[b - 1] - t[a]) + step


def _bridge(
    boxes: NDArray, seen: NDArray[np.bool_], t: NDArray, frame: _Frame, config: CameraConfig
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Interpolate short gaps, and gaps after which the target is found again in place.

    A gap between two sightings is bridged when it is at most ``bridge_gap_s`` long, when she is found
    again where she was lost (:func:`_in_place`), or when she was lost and found inside the picture
    (not at its left or right edge) at most ``2 * hold_s`` apart (:func:`_hold_ends` would hold both
    ends of such a gap anyway: one move across it is smoother than a hold, a pan and a hold). Gaps at
    the shot's ends up to ``exit_hold_s`` are extended (the nearest box held).

    Returns:
        Boxes (n, 4) filled where bridged, and the (n,) mask of frames that belong to a segment.
    """
    filled = boxes.copy()
    in_segment = seen.copy()
    n = len(t)
    for a, b in _runs(~seen):
        if a == 0 and b == n:
            break
        lost = _span(t, a, b)
        inside = a > 0 and b < n
        if inside and (lost <= config.bridge_gap_s or _in_place(boxes[a - 1], boxes[b], lost, frame, config)
                       or (lost <= 2 * config.hold_s + 1e-9
                           and not _at_side(boxes[a - 1], frame) and not _at_side(boxes[b], frame))):
            w = ((t[a:b] - t[a - 1]) / (t[b] - t[a - 1]))[:, None]
            filled[a:b] = (1 - w) * boxes[a - 1] + w * boxes[b]
        elif (a == 0 or b == n) and lost <= config.exit_hold_s:
            filled[a:b] = boxes[b] if a == 0 else boxes[a - 1]
        else:
            continue
        in_segment[a:b] = True
    return filled, in_segment


def _hold_ends(
    boxes: NDArray, in_segment: NDArray[np.bool_], t: NDArray, frame: _Frame, config: CameraConfig
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Hold the target's last and next box for ``hold_s`` into each gap that is left.

    The last box is not held when it touches the frame's left or right edge (she may have left the
    picture). Offline, the next box is held *before* she is found again: undetected is not absent, and
    one who walks in at the side is partly in the picture before the detector finds her (gillhung_dance2
    P4: 1.2 s). Between two sightings, at least ``ease_s`` is left for the move from one to the other (the holds
    are shortened in a shorter gap), so the camera never whips across.

    Returns:
        Boxes (n, 4) filled where held, and the (n,) mask of the held frames.
    """
    filled = boxes.copy()
    held = np.zeros(len(t), bool)
    n = len(t)
    for a, b in _runs(~in_segment):
        if a == 0 and b == n:
            break
        after = config.hold_s if a > 0 and not _at_side(boxes[a - 1], frame) else 0.0
        before = config.hold_s if b < n else 0.0  # coming in at the edge: the camera is there to meet her
        if a > 0 and b < n and after + before > 0:
            room = max(float(t[b] - t[a - 1]) - config.ease_s, 0.0)
            scale = min(1.0, room / (after + before))
            after, before = after * scale, before * scale
        if after > 0:
            keep = a + int(np.searchsorted(t[a:b], t[a - 1] + after + 1e-9))
            filled[a:keep], held[a:keep] = boxes[a - 1], True
        if before > 0:
            keep = a + int(np.searchsorted(t[a:b], t[b] - before - 1e-9))
            filled[keep:b], held[keep:b] = boxes[b], True
    return filled, held


def _at_side(box: NDArray, frame: _Frame) -> bool:
    """Whether a box touches the frame's left or right edge (its person may be leaving or entering)."""
    margin = _SIDE_MARGIN * frame.width
    return bool(box[0] <= margin or box[2] >= frame.width - margin)


def _in_place(before: NDArray, after: NDArray, lost_s: float, frame: _Frame, config: CameraConfig) -> bool:
    """Whether a target lost for ``lost_s`` seconds was found again where she was lost."""
    at_edge = _at_side(before, frame) or _at_side(after, frame)
    if lost_s > (config.in_place_edge_s if at_edge else config.in_place_max_s):
        return False
    height = max((before[3] - before[1] + after[3] - after[1]) / 2, 1e-9)
    shift = np.hypot(*((after[:2] + after[2:] - before[:2] - before[2:]) / 2))
    return bool(shift <= config.in_place_shift * height)


_SIDE_MARGIN = 0.01
"""A box within this fraction of the frame width from its left or right edge touches that edge."""


def _smootherstep(x: NDArray) -> NDArray[np.float64]:
    """C2 ease curve 0 -> 1 on [0, 1] (clamped outside)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6 * x - 15) + 10)


def _ease_gap(
    t: NDArray,
    gap: tuple[int, int],
    ends: tuple[NDArray | None, NDArray | None],
    frame: _Frame,
    config: CameraConfig,
) -> tuple[NDArray[np.float64], NDArray[np.str_]]:
    """Crops and modes of an unbridged gap [a, b): hold, ease out to wide, ease back in.

    ``ends`` are the crops (4,) just before and just after the gap (None at a shot end).
    """
    (a, b), (prev, nxt) = gap, ends
    tt = t[a:b]
    up = _smootherstep((tt - t[a - 1] - config.hold_s) / config.ease_s) if prev is not None else 1.0
    down = _smootherstep((t[b] - tt) / config.ease_s) if nxt is not None else 1.0
    weight = (up * down * np.ones(len(tt)))[:, None]
    if prev is not None and nxt is not None:
        s = _smootherstep((tt - t[a - 1]) / (t[b] - t[a - 1]))[:, None]
        base = (1 - s) * prev + s * nxt
    else:
        only = prev if prev is not None else nxt
        assert only is not None
        base = np.tile(only, (len(tt), 1))
    centre = (base[:, :2] + base[:, 2:]) / 2
    wide = frame.crop(centre[:, 0], centre[:, 1], np.full(len(tt), frame.max_h))
    crops = (1 - weight) * base + weight * wide
    mode = np.where(weight[:, 0] > 1 - 1e-6, "wide", "search").astype("<U6")
    return crops, mode


def _time_to_sighting(seen: NDArray[np.bool_], t: NDArray) -> NDArray[np.float64]:
    """(n,) seconds from each frame to the nearest frame where the target is seen (inf: never)."""
    idx = np.arange(len(t))
    last = np.maximum.accumulate(np.where(seen, idx, -1))
    nxt = np.minimum.accumulate(np.where(seen, idx, len(t))[::-1])[::-1]
    since = np.where(last >= 0, t - t[np.maximum(last, 0)], np.inf)
    until = np.where(nxt < len(t), t[np.minimum(nxt, len(t) - 1)] - t, np.inf)
    return np.minimum(since, until)


def _plan_segment(
    boxes: NDArray, t: NDArray, frame: _Frame, config: CameraConfig, lost: NDArray | None = None
) -> NDArray[np.float64]:
    """Crops (n, 4) following fully known boxes (n, 4) over one segment.

    ``lost`` (n,): seconds from each frame to the nearest sighting (0 where seen); where the boxes are
    an estimate (bridged, held, hidden) at least ``lost_zoom_after_s`` from one, the crop asks for
    ``lost_zoom`` times its size (the smoothed zoom follows only when that lasts).
    """
    head = head_point(boxes)
    knots, bins = _grid(t, config.plan_rate_hz)
    lost = np.zeros(len(t)) if lost is None else np.asarray(lost, np.float64)
    signals = (head[:, 0], head[:, 1], boxes[:, 3] - boxes[:, 1], lost)
    hx, hy, bh, lost_k = (_bin_median(v, bins, len(knots)) for v in signals)
    lo_h, hi_h = min(frame.min_h, frame.max_h), frame.max_h
    widen = np.where(lost_k >= config.lost_zoom_after_s - 1e-9, config.lost_zoom, 1.0)
    target_h = np.clip(config.framing.height_ratio * bh * widen, lo_h, hi_h)
    dt = float(np.median(np.diff(knots))) if len(knots) > 1 else 1.0 / config.plan_rate_hz
    solver = _Solver(dt=dt, scale=float(np.median(target_h)), window_s=config.window_s)
    h_limits = (np.full_like(target_h, lo_h), np.full_like(target_h, hi_h))
    h = solver.follow(target_h, h_limits, np.inf, config.zoom)
    w = h * frame.aspect
    keep_x, keep_y = config.keep_in_crop
    cx = solver.follow(hx, (w / 2, frame.width - w / 2), keep_x * w, config.position)
    ty = hy + (0.5 - config.framing.head_y) * h
    cy = solver.follow(ty, (h / 2, frame.height - h / 2), keep_y * h, config.position)
    path = np.stack([cx, cy, h], axis=1)
    if len(knots) > 1:
        path = PchipInterpolator(knots, path, axis=0, extrapolate=False)(np.clip(t, knots[0], knots[-1]))
    else:
        path = np.repeat(path, len(t), axis=0)
    # The grid is coarser than the frames: in a very fast move the head could leave the crop between
    # two knots. Keep it in frame by frame (inactive otherwise), with a smooth correction.
    reach = _REACH_SLACK * np.array(config.keep_in_crop) * path[:, 2:] * [frame.aspect, 1.0]
    aim = np.column_stack([head[:, 0], head[:, 1] + (0.5 - config.framing.head_y) * path[:, 2]])
    half = max(1, int(round(_CLAMP_EASE_S / frame_step_s(t))))
    for k in range(2):
        p, lo, hi = path[:, k], aim[:, k] - reach[:, k], aim[:, k] + reach[:, k]
        # The eased correction must not carry the camera past where the target is (no overshoot).
        env_lo = np.minimum(p, minimum_filter1d(aim[:, k], 2 * half + 1, mode="nearest"))
        env_hi = np.maximum(p, maximum_filter1d(aim[:, k], 2 * half + 1, mode="nearest"))
        moved = p.copy()
        # Easing one frame's correction into its neighbours may push them too far the other way (a
        # crouch right after the head was high): correct what is left with narrower ramps, and in the
        # end the frame-level limit is hard.
        for width in (half, max(1, half // 2), max(1, half // 4)):
            moved = np.clip(moved + _smooth_correction(np.clip(moved, lo, hi) - moved, width), env_lo, env_hi)
        path[:, k] = np.clip(moved, lo, hi)
    return frame.crop(path[:, 0], path[:, 1], path[:, 2])


_CLAMP_EASE_S = 0.2
"""Half-width of the ramp that eases a frame-level correction of the path in and out."""


def _smooth_correction(needed: NDArray, half: int) -> NDArray[np.float64]:
    """A smooth correction at least as large as ``needed`` (n,) (signed) wherever that is non-zero.

    Each sign's magnitude is max-filtered then averaged over the same window of ``2 * half + 1`` frames:
    every value averaged at a frame is at least the need there, so the constraint still holds, and a
    one-frame need becomes a gentle bump instead of a one-frame jump.
    """
    size = 2 * half + 1
    kernel = np.ones(size) / size
    out = np.zeros(len(needed))
    for sign in (1.0, -1.0):
        part = np.clip(sign * needed, 0.0, None)
        if part.any():
            wide = maximum_filter1d(part, size, mode="nearest")
            out += sign * np.convolve(np.pad(wide, half, mode="edge"), kernel, mode="valid")
    return out


_REACH_SLACK = 1.15
"""Frame-level limit of the crop centre's offset from its aim, relative to ``keep_in_crop``."""


def _grid(t: NDArray, rate_hz: float) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Bin frame times on a grid of about ``rate_hz``.

    Returns:
        Knot times (K,) (mean time of each non-empty bin) and the bin (0..K-1) of every frame (n,).
    """
    raw = np.floor((t - t[0]) * rate_hz + 1e-9).astype(np.int64)
    _, bins = np.unique(raw, return_inverse=True)
    knots = np.bincount(bins, weights=t) / np.bincount(bins)
    return knots, bins


def _bin_median(values: NDArray, bins: NDArray, k: int) -> NDArray[np.float64]:
    """Median of ``values`` in each of the ``k`` bins (every bin non-empty)."""
    order = np.argsort(bins, kind="stable")
    splits = np.searchsorted(bins[order], np.arange(1, k))
    return np.array([np.median(part) for part in np.split(values[order], splits)])


# ----------------------------------------------------------------------------------------- auto framing
AUTO_MAX_OTHERS = 0.5
"""``auto`` frames the whole body unless a full-body crop would show, on average over the frames the
performer is seen, at least this many other people (their head points inside the crop). Measured
(YOLOX-nano tracks, 9:16 crops): 0.8-2.0 in the groups of gillhung (3 dancers filling a 360 px wide
frame), fiyud_dance3 (3) and gillhung_dance2 (5 in a line); 0.0-0.2 for the soloists of
tiktok_stage_ballet and hamilton (landscape), where a full-body crop frames one person."""


@dataclass(frozen=True)
class FramingChoice:
    """The framing ``auto`` picked for one performer.

    Attributes:
        framing: The preset.
        others_in_full: Mean number of other people a full-body crop would show.
        reason: One line for the user, e.g. ``upper body (a 9:16 full-body crop shows 1.8 other people
            on average; --framing full to override)``.
    """

    framing: Framing
    others_in_full: float
    reason: str


def choose_framing(
    boxes: NDArray,
    frame_size: tuple[int, int],
    aspect: float,
    others: SceneBoxes | None = None,
    *,
    max_others: float = AUTO_MAX_OTHERS,
) -> FramingChoice:
    """Full body where that crop is clearly narrower than the group on screen, otherwise upper body.

    In every frame where the performer is seen, place the crop a ``full`` framing would have (centred
    on her as the camera would, inside the frame) and count the other people whose head point
    (DESIGN.md) falls inside it; full body when the mean count is below ``max_others``, so that the
    chosen performer is the subject of the shot.

    Args:
        boxes: (F, 4) boxes of the performer, NaN where not seen (as for :func:`plan_camera`).
        frame_size: Displayed (width, height).
        aspect: Output width / height.
        others: Everybody else's boxes.
        max_others: Mean number of others in a full-body crop from which upper body is chosen.
    """
    boxes = np.asarray(boxes, np.float64)
    others = others if others is not None else SceneBoxes.empty()
    name = next((k for k, v in ASPECTS.items() if abs(v - aspect) < 1e-6), f"{aspect:.2f}:1")
    seen = np.isfinite(boxes).all(axis=1) & (boxes[:, 3] > boxes[:, 1])
    count = 0.0
    if seen.any():
        full = FRAMINGS["full"]
        frame = _Frame(float(frame_size[0]), float(frame_size[1]), aspect, 0.0)
        box = np.where(seen[:, None], boxes, 0.0)
        head = head_point(box)
        h = np.minimum(full.height_ratio * (box[:, 3] - box[:, 1]), frame.max_h)
        crop = frame.crop(head[:, 0], head[:, 1] + (0.5 - full.head_y) * h, h)
        rows = np.flatnonzero((others.frame >= 0) & (others.frame < len(boxes)))
        rows = rows[seen[others.frame[rows]]]
        point = head_point(others.xyxy[rows])
        rect = crop[others.frame[rows]]
        inside = ((rect[:, 0] <= point[:, 0]) & (point[:, 0] <= rect[:, 2])
                  & (rect[:, 1] <= point[:, 1]) & (point[:, 1] <= rect[:, 3]))
        count = float(inside.sum()) / float(seen.sum())
    shows = f"a {name} full-body crop shows {count:.1f} other people on average"
    if count < max_others - 1e-9:
        return FramingChoice(FRAMINGS["full"], count, f"full body ({shows})")
    return FramingChoice(FRAMINGS["upper"], count, f"upper body ({shows}; --framing full to override)")


# ----------------------------------------------------------------------------------------- L1 solver
_OVERLAP_S = 10.0
"""Overlap of consecutive solver windows (the kept part ends this long before a window's end)."""
_FIXED = 3
"""Knots carried over from the previous window (continuity of position, speed and acceleration)."""
_ENVELOPE_S = 1.0
"""A path stays within the target's range over +-this many seconds (no overshoot)."""


@dataclass(frozen=True)
class _Solver:
    """L1-optimal paths on a uniform grid.

    Attributes:
        dt: Grid step in seconds.
        scale: Pixels per unit of the smoothing weights (a typical crop height).
        window_s: Longest span solved in one linear program.
    """

    dt: float
    scale: float
    window_s: float

    def follow(
        self,
        target: NDArray,
        limits: tuple[NDArray, NDArray],
        keep: NDArray | float,
        smoothing: PathSmoothing,
    ) -> NDArray[np.float64]:
        """Path near ``target`` (K,), at most ``keep`` from it, inside ``limits`` (lo, hi) (K,) each.

        The path also stays within the range the target covers in the surrounding
        :data:`_ENVELOPE_S` seconds, so it never overshoots a move (nor anticipates one by more).
        """
        lo, hi = limits
        target = np.clip(target, lo, hi)
        size = 2 * int(round(_ENVELOPE_S / self.dt)) + 1
        env_lo = minimum_filter1d(target, size, mode="nearest")
        env_hi = maximum_filter1d(target, size, mode="nearest")
        lo = np.maximum.reduce([lo, target - keep, env_lo])
        hi = np.minimum.reduce([hi, target + keep, env_hi])
        return self.path(target, lo, hi, smoothing)

    def path(
        self, target: NDArray, lo: NDArray, hi: NDArray, smoothing: PathSmoothing
    ) -> NDArray[np.float64]:
        """L1-optimal path (K,) near ``target`` (K,) with ``lo <= path <= hi``, in overlapping windows.

        Each window after the first starts with the last :data:`_FIXED` knots of the previous one fixed,
        so the joined path stays continuous up to its acceleration.
        """
        k = len(target)
        if k < 4:
            return np.clip(np.full(k, float(np.median(target))), lo, hi)
        s, lo, hi = (np.asarray(v, np.float64) / self.scale for v in (target, lo, hi))
        overlap = int(round(_OVERLAP_S / self.dt))
        window = max(2 * overlap, int(round(self.window_s / self.dt)))
        out = np.empty(k)
        start, kept = 0, 0
        while kept < k:
            end = min(start + window, k)
            lo_w, hi_w = lo[start:end].copy(), hi[start:end].copy()
            if start > 0:
                lo_w[:_FIXED] = hi_w[:_FIXED] = out[start:start + _FIXED]
            part = _solve_l1(s[start:end], (lo_w, hi_w), self.dt, smoothing)
            kept = k if end == k else end - overlap
            out[start:kept] = part[: kept - start]
            start = kept - _FIXED
        return np.clip(out, lo, hi) * self.scale


def _diff_matrix(k: int, order: int) -> sp.csr_matrix:
    """(k - order, k) finite-difference operator of the given order."""
    d = sp.eye(k, format="csr")
    for _ in range(order):
        d = d[1:] - d[:-1]
    return d


def _solve_l1(
    s: NDArray, limits: tuple[NDArray, NDArray], dt: float, sm: PathSmoothing
) -> NDArray[np.float64]:
    """One window of the L1 problem as a linear program (HiGHS).

    Variables: path p (K), residuals r (K) and dead-zone residuals e (K), |k-th differences| g1, g2,
    g3. Minimise ``dt*(centring*sum(r) + sum(e)) + velocity*sum(g1) + acceleration/dt*sum(g2) +
    jerk/dt^2*sum(g3)`` subject to ``|p - s| <= r``, ``|p - s| - dead_zone <= e``, ``|D_k p| <= g_k``
    and ``lo <= p <= hi``.
    """
    lo, hi = limits
    k = len(s)
    eye = sp.eye(k, format="csr")
    ops = [eye, eye] + [_diff_matrix(k, order) for order in (1, 2, 3)]
    offsets = [0.0, sm.dead_zone, 0.0, 0.0, 0.0]
    sizes = [op.shape[0] for op in ops]
    weights = [dt * sm.centring, dt, sm.velocity, sm.acceleration / dt, sm.jerk / dt**2]
    cost = np.concatenate([np.zeros(k)] + [np.full(m, wgt) for m, wgt in zip(sizes, weights, strict=True)])
    rows, rhs = [], []
    for sign in (1.0, -1.0):
        for slot, op in enumerate(ops):
            aux = [sp.csr_matrix((op.shape[0], m)) for m in sizes]
            aux[slot] = -sp.eye(op.shape[0], format="csr")
            rows.append(sp.hstack([sign * op, *aux], format="csr"))
            rhs.append((sign * s if slot < 2 else np.zeros(op.shape[0])) + offsets[slot])
    n_aux = sum(sizes)
    bounds = np.column_stack(
        [np.concatenate([lo, np.zeros(n_aux)]), np.concatenate([hi, np.full(n_aux, np.inf)])]
    )
    result = linprog(
        cost, A_ub=sp.vstack(rows, format="csr"), b_ub=np.concatenate(rhs), bounds=bounds, method="highs"
    )
    if result.status != 0 or result.x is None:
        log.warning("camera path solver failed (%s); following the clamped target", result.message)
        return np.clip(s, lo, hi)
    return result.x[:k]


# ----------------------------------------------------------------------------------------- uncertainty
def uncertain_spans(
    path: CropPath,
    timeline: Timeline,
    confidence: NDArray,
    threshold: float,
    *,
    frames: NDArray[np.bool_] | None = None,
    join_s: float = 0.5,
) -> list[tuple[float, float]]:
    """Time spans in which the camera follows a box whose identity confidence is below ``threshold``.

    Only frames the camera follows (mode ``follow``) count: where it holds, searches or shows the wide
    shot it follows nobody, and a stretch it ignores (a flicker) cannot put it on someone else. Spans
    closer than ``join_s`` are reported as one (also across the frames in between where the camera
    follows an estimate of her position, without a box).

    Args:
        path: The camera path (F frames).
        timeline: Frame times.
        confidence: (F,) confidence of the box the camera follows in each frame; NaN where it follows
            no box (bridged, held, hidden, lost).
        threshold: Confidence below which a box is uncertain.
        frames: (F,) bool, the frames rendered (default: all).
        join_s: Largest gap (s) between two uncertain spans reported as one.

    Returns:
        (start_s, end_s) per span, in time order.
    """
    low = (path.mode == "follow") & (np.nan_to_num(np.asarray(confidence, np.float64), nan=1.0) < threshold)
    if frames is not None:
        low &= np.asarray(frames, bool)
    t = timeline.t
    spans: list[list[float]] = []
    for a, b in _runs(low):
        if spans and t[a] - spans[-1][1] <= join_s + 1e-9:
            spans[-1][1] = float(t[b - 1])
        else:
            spans.append([float(t[a]), float(t[b - 1])])
    return [(a, b) for a, b in spans]


# ----------------------------------------------------------------------------------------- crop.csv
def write_crop_path(path: Path, crop_path: CropPath, timeline: Timeline, frames: NDArray) -> Path:
    """Write the output frames' crops as ``OUT.crop.csv`` (format owned by :mod:`fancam.io.tables`).

    Args:
        path: Destination CSV.
        crop_path: Path of the whole video (one row per decoded frame).
        timeline: Frame times (``t`` column).
        frames: (K,) int source decode indices of the output frames, increasing.

    Returns:
        ``path``.
    """
    frames = np.asarray(frames, np.int64)
    rows = CropTable(str(path), frames, np.asarray(timeline.t, np.float64)[frames],
                     np.asarray(crop_path.xyxy[frames], np.float64), crop_path.mode[frames])
    return write_crop(Path(path), rows)
