"""Hand-crafted body appearance descriptors for linking tracklets of the same performer.

No body re-identification network ships offline, so a person box is described by what stays stable
while a dancer moves: the colours of horizontal body stripes (head/hair, chest, waist, thighs, shins,
feet). Each stripe's colour histogram is computed on the box resampled to a fixed height, with

- a horizontal Gaussian weight centred on the box, its width tied to the box *height* (a body is about
  a quarter of its height wide), so arms that widen the box do not widen the weight and the
  background beside the body counts little;
- pixels inside *other* person boxes of the same frame down-weighted (overlaps are ambiguous: the
  neighbour's sleeve is often there);
- stripe edges tapered, so a box that is a little taller or shifted moves colour between neighbouring
  stripes smoothly.

The colour quantisation separates grey levels (black .. white: dark outfits, white shoes, black hair)
from coloured pixels (hue x brightness: honey-blonde vs dark-brown hair, skin, a red skirt); every
pixel is spread over neighbouring bins. Histograms are square-rooted (Hellinger embedding): each stripe
block has unit L2 norm and the dot product of two blocks is their Bhattacharyya coefficient in
[0, 1]. A stripe without enough usable pixels is stored as zeros and ignored by
:func:`body_similarity`, which averages the block similarities over the stripes valid in both.

What it cannot do: tell apart people in identical costumes with similar hair (ballet corps, uniforms).
There the body similarity of different people is as high as that of one person, and identity must
come from faces and motion continuity. See ``benchmarks/bench_body.py`` for measured separation.

Usage::

    desc = describe_bodies(frame_rgb, boxes)              # (N, D) float32, one row per box
    s = body_similarity(desc[0], desc[1])                 # float in [0, 1], nan if incomparable
    proto = body_prototype(descs_of_one_tracklet)         # robust per-tracklet summary
    s = prototype_similarity(proto_a, proto_b)            # segment-to-segment, in [0, 1]
    cal = fit_calibration(sims_within_tracklets, sims_same_frame)   # per video
    p = cal.p_same(s)                                     # P(same person), comparable across videos
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import cv2
import numpy as np
from numpy.typing import NDArray

#: Default stripes as (top, bottom) fractions of the box height: head/hair, chest, waist/hips,
#: thighs, shins, feet.
DEFAULT_STRIPES: tuple[tuple[float, float], ...] = (
    (0.00, 0.16),
    (0.16, 0.34),
    (0.34, 0.50),
    (0.50, 0.68),
    (0.68, 0.86),
    (0.86, 1.00),
)

# Colour quantisation: grey levels for pixels without colour, hue x brightness for coloured ones.
_GREY_LEVELS = 5
_HUES = 12
_HUE_VALUES = 4
# Chroma (max - min of RGB in [0, 1]): below LOW a pixel is grey, above HIGH coloured, linear between.
_CHROMA_LOW, _CHROMA_HIGH = 0.06, 0.18
_LAB_BINS = (4, 6, 6)
_COLOUR_BINS = {"hsv": _GREY_LEVELS + _HUES * _HUE_VALUES, "lab": int(np.prod(_LAB_BINS))}
_ORIENTATIONS = 8


@dataclass(frozen=True)
class BodyConfig:
    """Parameters of the body descriptor (lengths are fractions of the box height unless stated).

    The defaults are the best measured on the labelled clips (``benchmarks/bench_body.py``); the
    switches that are off by default were measured not to help and are kept for comparison.

    Attributes:
        stripes: (top, bottom) of each horizontal stripe, fractions of the box height.
        stripe_weights: Relative weight of each stripe in the similarity (same length as stripes).
        stripe_taper: Each stripe also takes rows up to this far beyond its edges, with weights
            falling linearly to 0.
        colour_space: ``"hsv"`` (grey levels + hue x brightness) or ``"lab"`` (joint L*a*b* bins).
            Lab measured end to end (identity without gallery, 7 labelled clips): before the
            crossing resolver, ballet 0.704 -> 0.833 and line dance 0.866 -> 0.881; with it, ballet
            unchanged, line dance 0.871 -> 0.851, gillhung_dance2 0.904 -> 0.917: not kept.
        centre_sigma: Standard deviation of the horizontal Gaussian pixel weight; 0 disables it.
        overlap_weight: Weight of pixels lying inside another person box of the frame (0 ignores
            them, 1 treats them like any other pixel).
        suppress_background: Down-weight colours that are common beside the box, at the same
            heights, outside every person box (off: measured to lose more signal than background).
        background_margin: How far beside the box that background is sampled.
        texture_weight: Weight of a gradient-orientation histogram per stripe relative to its colour
            histogram; 0 (default, measured not to help) leaves texture out of the descriptor.
        resample_height: Height in pixels the box is resampled to before it is described.
        min_box_height: Boxes shorter than this many frame pixels are not described.
        min_stripe_mass: Share of a stripe's (centre-weighted) pixels that must remain usable after
            overlap masking and frame clipping for the stripe to be valid.
        cut_bottom: A box whose bottom lies within this share of the frame height from the frame's
            bottom edge may be cut by it (a waist-up close-up, a front-row dancer's legs): see
            ``face_to_body``. Detector boxes of close-ups stop short of the edge: on
            gillhung_dance2's composed close-ups (``benchmarks/compose_closeups.py``, 1920 px high)
            their bottoms were 4-48 px (up to 2.5%) above it.
        face_to_body: A box cut by the frame bottom, with a face found in it, is the top of a body this
            many face sides tall (YuNet face box width): its stripes are fractions of that full body,
            the part below the frame is outside the frame (zero weight), so the stripes it cannot
            show are invalid and a comparison uses only the stripes both boxes show (a waist-up
            box's lowest rows are the waist, not the feet). 11 is about the median height / face
            side of full-body sample boxes with a face on the labelled clips (9.1-12.9 per clip).
            Without a face the box is described as it is: the box width alone (3 widths = the
            median height of full bodies) misread dancers with their arms out whose feet touch
            the frame bottom (divyanshu_line_dance f200 P2: her own upper-body gallery photo
            0.887 -> 0.717 similar, below another member's 0.79).
        max_shown: Such a box is the top of a taller body only if it shows less than this share of
            it (the face's estimate is +-20%: full bodies measure 8-13 face sides).
        min_stripe_shown: Of a body extended below the frame (``face_to_body``), a stripe is valid
            only if at least this share of its height is inside the frame: a stripe cut near its
            top holds mostly the tapered rows of the stripe above (a synthetic close-up's waist
            stripe, 13% shown, scored 0.77 against the same colours of the full body).
    """

    stripes: tuple[tuple[float, float], ...] = DEFAULT_STRIPES
    stripe_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    stripe_taper: float = 0.08
    colour_space: str = "hsv"
    centre_sigma: float = 0.12
    overlap_weight: float = 0.3
    suppress_background: bool = False
    background_margin: float = 0.25
    texture_weight: float = 0.0
    resample_height: int = 64
    min_box_height: float = 16.0
    min_stripe_mass: float = 0.1
    cut_bottom: float = 0.03
    face_to_body: float = 11.0
    max_shown: float = 0.8
    min_stripe_shown: float = 0.5

    def __post_init__(self) -> None:
        if len(self.stripe_weights) != len(self.stripes):
            raise ValueError(
                f"stripe_weights has {len(self.stripe_weights)} entries for {len(self.stripes)} stripes"
            )
        if any(w < 0 for w in self.stripe_weights) or not any(w > 0 for w in self.stripe_weights):
            raise ValueError(f"stripe_weights must be >= 0 with one > 0, got {self.stripe_weights}")
        for top, bottom in self.stripes:
            if not 0.0 <= top < bottom <= 1.0:
                raise ValueError(f"stripe ({top}, {bottom}) must satisfy 0 <= top < bottom <= 1")
        if self.colour_space not in _COLOUR_BINS:
            raise ValueError(
                f"unknown colour_space {self.colour_space!r}; choose one of {sorted(_COLOUR_BINS)}"
            )
        if not 0.0 <= self.overlap_weight <= 1.0:
            raise ValueError(f"overlap_weight must be in [0, 1], got {self.overlap_weight}")
        if self.resample_height < 16:
            raise ValueError(f"resample_height must be >= 16 pixels, got {self.resample_height}")

    @cached_property
    def layout(self) -> BodyLayout:
        """Block structure of the descriptors made with this config."""
        return BodyLayout.from_config(self)


@dataclass(frozen=True)
class BodyLayout:
    """Where each block of a descriptor lives and how much it weighs in the similarity.

    Attributes:
        starts: (B,) int64 first index of each block in the descriptor.
        sizes: (B,) int64 length of each block.
        weights: (B,) float64 weight of each block.
    """

    starts: NDArray[np.int64]
    sizes: NDArray[np.int64]
    weights: NDArray[np.float64]

    @property
    def dim(self) -> int:
        """Descriptor length D."""
        return int(self.starts[-1] + self.sizes[-1])

    @classmethod
    def from_config(cls, config: BodyConfig) -> BodyLayout:
        """Per stripe, a colour block, then a texture block when ``config.texture_weight > 0``."""
        sizes: list[int] = []
        weights: list[float] = []
        for w in config.stripe_weights:
            sizes.append(_COLOUR_BINS[config.colour_space])
            weights.append(w)
            if config.texture_weight > 0:
                sizes.append(_ORIENTATIONS)
                weights.append(w * config.texture_weight)
        sizes_a = np.asarray(sizes, np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes_a)[:-1]]).astype(np.int64)
        return cls(starts, sizes_a, np.asarray(weights, np.float64))

    def present(self, desc: NDArray) -> NDArray[np.bool_]:
        """(..., B) bool: which blocks of descriptors (..., D) are valid (non-zero)."""
        desc = np.asarray(desc)
        return np.stack([np.any(desc[..., s : s + n] != 0, axis=-1) for s, n in self.spans()], axis=-1)

    def spans(self) -> list[tuple[int, int]]:
        """(start, size) of each block."""
        return [(int(s), int(n)) for s, n in zip(self.starts, self.sizes, strict=True)]


DEFAULT_CONFIG = BodyConfig()


# ---------------------------------------------------------------------------------------------
# Per-pixel soft bins: every pixel spreads a unit of weight over neighbouring bins (linear
# interpolation between bin centres), so histograms change smoothly with colour.


def _linear_bins(x: NDArray, lo: float, hi: float, n: int) -> tuple[NDArray, NDArray, NDArray]:
    """Soft-assign values to ``n >= 2`` bin centres spread evenly over [lo, hi] (clamped at the ends).

    Returns:
        (i0, i1, w1): lower and upper bin indices (int64) and the upper bin's weight (float32).
    """
    pos = np.clip((x - lo) * ((n - 1) / (hi - lo)), 0, n - 1)
    i0 = np.minimum(pos.astype(np.int64), n - 2)
    return i0, i0 + 1, (pos - i0).astype(np.float32)


def _circular_bins(x: NDArray, period: float, n: int) -> tuple[NDArray, NDArray, NDArray]:
    """Soft-assign angles in [0, period) to ``n`` circular bins centred at ``k * period / n``."""
    pos = np.mod(x * (n / period), n)
    i0 = pos.astype(np.int64)
    return i0 % n, (i0 + 1) % n, (pos - i0).astype(np.float32)


def _hsv_bins(rgb: NDArray[np.float32]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Grey-level + hue x brightness soft bins of each pixel.

    Args:
        rgb: (H, W, 3) float32 RGB in [0, 1].

    Returns:
        (index, weight): (H, W, 6) int64 bin indices and float32 weights summing to 1 per pixel.
    """
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    value = hsv[..., 2]
    chroma = value - rgb.min(axis=2)
    colour = np.clip((chroma - _CHROMA_LOW) / (_CHROMA_HIGH - _CHROMA_LOW), 0.0, 1.0)
    grey = 1.0 - colour
    g0, g1, gw = _linear_bins(value, 0.0, 1.0, _GREY_LEVELS)
    h0, h1, hw = _circular_bins(hsv[..., 0], 360.0, _HUES)
    v0, v1, vw = _linear_bins(value, 0.15, 0.9, _HUE_VALUES)
    index = [g0, g1]
    weight = [grey * (1 - gw), grey * gw]
    for hue_i, hue_w in ((h0, 1 - hw), (h1, hw)):
        for val_i, val_w in ((v0, 1 - vw), (v1, vw)):
            index.append(_GREY_LEVELS + hue_i * _HUE_VALUES + val_i)
            weight.append(colour * hue_w * val_w)
    return np.stack(index, axis=-1), np.stack(weight, axis=-1)


def _lab_bins(rgb: NDArray[np.float32]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Joint L*a*b* soft bins of each pixel: (H, W, 8) indices and weights (as :func:`_hsv_bins`)."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    ranges = ((0.0, 100.0), (-30.0, 45.0), (-45.0, 45.0))
    dims = [
        _linear_bins(lab[..., d], lo, hi, n)
        for d, ((lo, hi), n) in enumerate(zip(ranges, _LAB_BINS, strict=True))
    ]
    index, weight = [], []
    for corner in range(8):
        idx = np.zeros(rgb.shape[:2], np.int64)
        wt = np.ones(rgb.shape[:2], np.float32)
        for d, ((i0, i1, w1), n) in enumerate(zip(dims, _LAB_BINS, strict=True)):
            upper = (corner >> d) & 1
            idx = idx * n + (i1 if upper else i0)
            wt = wt * (w1 if upper else 1 - w1)
        index.append(idx)
        weight.append(wt)
    return np.stack(index, axis=-1), np.stack(weight, axis=-1)


_COLOUR_FUNCS = {"hsv": _hsv_bins, "lab": _lab_bins}


def _orientation_bins(rgb: NDArray[np.float32]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Unsigned gradient-orientation soft bins of each pixel, weighted by gradient magnitude."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.sqrt(gx * gx + gy * gy)
    i0, i1, w1 = _circular_bins(np.degrees(np.arctan2(gy, gx)) % 180.0, 180.0, _ORIENTATIONS)
    return np.stack([i0, i1], axis=-1), np.stack([magnitude * (1 - w1), magnitude * w1], axis=-1)


# ---------------------------------------------------------------------------------------------
# Describing boxes


def describe_bodies(
    frame: NDArray[np.uint8],
    boxes: NDArray,
    *,
    indices: NDArray | list[int] | None = None,
    face_sides: NDArray | list[float] | None = None,
    config: BodyConfig = DEFAULT_CONFIG,
) -> NDArray[np.float32]:
    """Body appearance descriptors of person boxes of one frame.

    Args:
        frame: (H, W, 3) uint8 RGB frame at full resolution.
        boxes: (N, 4) xyxy boxes in frame pixels: *every* person box of the frame, because each box's
            pixels inside the other boxes are down-weighted (``config.overlap_weight``).
        indices: Describe only these rows of ``boxes`` (the others still mask overlaps); default all.
        face_sides: Side in pixels of the face found in each described box (NaN: none), one per
            row of ``indices``; a box cut by the frame bottom with a face is described as the top of
            a body (:func:`full_body_box`). None: no faces.
        config: Descriptor parameters.

    Returns:
        (len(indices), D) float32, D = ``config.layout.dim``, one row per described box. Every block
        is unit-L2 or all zeros (too few usable pixels). A degenerate box (non-finite, empty once
        clipped to the frame, or shorter than ``config.min_box_height``) gets an all-zero row, see
        :func:`is_valid`.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be an (H, W, 3) uint8 RGB image, got {frame.dtype} {frame.shape}")
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    rows = np.arange(len(boxes)) if indices is None else np.asarray(indices, np.int64).reshape(-1)
    out = np.zeros((len(rows), config.layout.dim), np.float32)
    sides = np.full(len(rows), np.nan) if face_sides is None else np.asarray(face_sides, np.float64).reshape(-1)
    if len(sides) != len(rows):
        raise ValueError(f"face_sides has {len(sides)} entries for {len(rows)} described boxes")
    for k, i in enumerate(rows):
        if _usable(boxes[i], frame.shape, config):
            others = np.delete(boxes, i, axis=0)
            others = others[np.all(np.isfinite(others), axis=1)]
            box = full_body_box(boxes[i], frame.shape[0], float(sides[k]), config)
            # Of a body reaching below the frame, a stripe is described only if enough of it is shown.
            shown = (frame.shape[0] - box[1]) / (box[3] - box[1]) if box[3] > boxes[i][3] else 1.0
            out[k] = _describe_box(frame, box, others, config, shown)
    return out


def full_body_box(
    box: NDArray, frame_height: int, face_side: float = float("nan"), config: BodyConfig = DEFAULT_CONFIG
) -> NDArray[np.float64]:
    """The box of the whole body a person box shows part of (xyxy, may reach below the frame).

    A box cut by the frame's bottom edge (``config.cut_bottom``) whose face (``face_side`` pixels)
    makes it show less than ``config.max_shown`` of a body ``config.face_to_body`` face sides tall is
    the top of that body; any other box is returned unchanged.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    full = config.face_to_body * face_side
    cut = y2 >= frame_height * (1.0 - config.cut_bottom)
    if cut and np.isfinite(full) and y2 - y1 < config.max_shown * full:
        return np.array([x1, y1, x2, y1 + full])
    return np.asarray(box, np.float64)


def is_valid(desc: NDArray) -> NDArray[np.bool_]:
    """Whether each descriptor (..., D) has at least one valid block (degenerate boxes have none)."""
    return np.any(np.asarray(desc) != 0, axis=-1)


def _usable(box: NDArray[np.float64], shape: tuple[int, ...], config: BodyConfig) -> bool:
    x1, y1, x2, y2 = box
    if not np.all(np.isfinite(box)) or y2 - y1 < config.min_box_height or x2 <= x1:
        return False
    return min(x2, shape[1]) - max(x1, 0) >= 1 and min(y2, shape[0]) - max(y1, 0) >= 1


def _describe_box(
    frame: NDArray[np.uint8], box: NDArray[np.float64], others: NDArray[np.float64], config: BodyConfig,
    shown: float = 1.0,
) -> NDArray[np.float32]:
    """The descriptor of one box.

    ``shown``: share of the box height above the frame's bottom edge (< 1 for a body extended below
    the frame by :func:`full_body_box`).
    """
    patch = _Patch.cut(frame, box, others, config)
    colour = _COLOUR_FUNCS[config.colour_space](patch.rgb)
    texture = _orientation_bins(patch.rgb) if config.texture_weight > 0 else None
    layout = config.layout
    desc = np.zeros(layout.dim, np.float32)
    block = 0
    for top, bottom in config.stripes:
        rows = _row_weights(patch.rgb.shape[0], top, bottom, config.stripe_taper)
        weight = patch.weight * rows[:, None]
        prior = patch.prior * rows[:, None]
        usable = weight.sum() >= config.min_stripe_mass * prior.sum() > 0
        usable = usable and (shown >= 1.0 or shown - top >= config.min_stripe_shown * (bottom - top))
        hist = _histogram(colour, weight, layout.sizes[block]) if usable else None
        if hist is not None and config.suppress_background and patch.background.any():
            background = _histogram(colour, patch.background * rows[:, None], layout.sizes[block])
            hist = _suppress(hist, background)
        _put(desc, layout, block, hist)
        block += 1
        if texture is not None:
            _put(desc, layout, block, _histogram(texture, weight, _ORIENTATIONS) if usable else None)
            block += 1
    return desc


def _row_weights(height: int, top: float, bottom: float, taper: float) -> NDArray[np.float32]:
    """(height,) weight of each row for a stripe: 1 inside [top, bottom), linear taper outside."""
    y = (np.arange(height, dtype=np.float32) + 0.5) / height
    outside = np.maximum(top - y, y - bottom)
    if taper <= 0:
        return (outside <= 0).astype(np.float32)
    return np.clip(1.0 - outside / taper, 0.0, 1.0).astype(np.float32)


def _histogram(bins: tuple[NDArray, NDArray], pixel_weight: NDArray, n: int) -> NDArray[np.float64] | None:
    """L1-normalised weighted histogram of soft bins; None if it is empty.

    Args:
        bins: (H, W, K) bin indices and (H, W, K) per-bin weights of each pixel.
        pixel_weight: (H, W) weight of each pixel.
        n: Number of bins.
    """
    index, weight = bins
    hist = np.bincount(index.ravel(), weights=(weight * pixel_weight[..., None]).ravel(), minlength=n)
    total = hist.sum()
    return hist[:n] / total if total > 1e-9 else None


def _suppress(hist: NDArray[np.float64], background: NDArray[np.float64] | None) -> NDArray[np.float64]:
    """Down-weight each bin by how much more common it is beside the box than inside it."""
    if background is None:
        return hist
    kept = hist * hist / (hist + background + 1e-12)
    total = kept.sum()
    return kept / total if total > 1e-9 else hist


def _put(desc: NDArray[np.float32], layout: BodyLayout, block: int, hist: NDArray | None) -> None:
    """Write a histogram's Hellinger embedding (unit L2) into its block; leave zeros for None."""
    if hist is not None:
        start = layout.starts[block]
        desc[start : start + layout.sizes[block]] = np.sqrt(hist)


@dataclass(frozen=True)
class _Patch:
    """A box (plus side margins when the background is used) resampled to a fixed height.

    Attributes:
        rgb: (h, w, 3) float32 RGB in [0, 1]: the box, followed (only with ``suppress_background``)
            by the strips beside it.
        weight: (h, w) float32 pixel weights of the box: centre prior x overlap masking x inside
            the frame (0 on the strips).
        prior: (h, w) float32 centre prior alone (what a fully visible, unoverlapped box would have).
        background: (h, w) float32 share of each strip pixel that is background (inside the frame,
            outside every box), 0 on the box; (h, 1) zeros without ``suppress_background``.
    """

    rgb: NDArray[np.float32]
    weight: NDArray[np.float32]
    prior: NDArray[np.float32]
    background: NDArray[np.float32]

    @classmethod
    def cut(
        cls,
        frame: NDArray[np.uint8],
        box: NDArray[np.float64],
        others: NDArray[np.float64],
        config: BodyConfig,
    ) -> _Patch:
        x1, y1, x2, y2 = box
        scale = config.resample_height / (y2 - y1)
        out_h = config.resample_height
        out_w = max(int(round((x2 - x1) * scale)), 1)
        rgb = _resample(frame, (x1, y1, x2, y2), out_w, out_h)
        frame_rect = (0.0, 0.0, float(frame.shape[1]), float(frame.shape[0]))
        in_frame = _coverage(out_w, out_h, x1, y1, scale, frame_rect)
        occupied = _union_coverage(out_w, out_h, x1, y1, scale, others)
        xs = x1 + (np.arange(out_w) + 0.5) / scale
        if config.centre_sigma > 0:
            dx = (xs - (x1 + x2) / 2) / (config.centre_sigma * (y2 - y1))
            centre = np.exp(-0.5 * dx * dx).astype(np.float32)
        else:
            centre = np.ones(out_w, np.float32)
        prior = np.broadcast_to(centre, (out_h, out_w))
        weight = prior * in_frame * (1.0 - (1.0 - config.overlap_weight) * occupied)
        weight = weight.astype(np.float32)
        prior = np.ascontiguousarray(prior)
        background = np.zeros((out_h, 1), np.float32)
        if config.suppress_background:
            rgb, background = _with_background(frame, box, others, rgb, config)
            pad = ((0, 0), (0, rgb.shape[1] - out_w))
            weight, prior = np.pad(weight, pad), np.pad(prior, pad)
        return cls(rgb, weight, prior, background)


def _with_background(
    frame: NDArray[np.uint8],
    box: NDArray[np.float64],
    others: NDArray[np.float64],
    rgb: NDArray[np.float32],
    config: BodyConfig,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Append background strips beside the box: returns the widened rgb and its background weights.

    The strips are placed to the right of the box pixels in the returned image, so the box's own
    weight arrays keep their column indices; their weights are 0 in the box part.
    """
    x1, y1, x2, y2 = box
    out_h, out_w = rgb.shape[:2]
    scale = out_h / (y2 - y1)
    margin = config.background_margin * (y2 - y1)
    strips, weights = [rgb], [np.zeros((out_h, out_w), np.float32)]
    for sx1, sx2 in ((x1 - margin, x1), (x2, x2 + margin)):
        w = max(int(round((sx2 - sx1) * scale)), 1)
        strips.append(_resample(frame, (sx1, y1, sx2, y2), w, out_h))
        frame_rect = (0.0, 0.0, float(frame.shape[1]), float(frame.shape[0]))
        inside = _coverage(w, out_h, sx1, y1, scale, frame_rect)
        free = 1.0 - _union_coverage(w, out_h, sx1, y1, scale, np.vstack([others, box[None]]))
        weights.append((inside * free).astype(np.float32))
    return np.ascontiguousarray(np.hstack(strips)), np.hstack(weights)


def _resample(
    frame: NDArray[np.uint8], region: tuple[float, float, float, float], out_w: int, out_h: int
) -> NDArray[np.float32]:
    """Resample a frame region (x1, y1, x2, y2; may leave the frame) to (out_h, out_w, 3) in [0, 1].

    Parts of the region outside the frame are black; callers give them zero weight.
    """
    x1, y1, x2, y2 = region
    sx, sy = out_w / (x2 - x1), out_h / (y2 - y1)
    fx1, fy1 = max(int(np.floor(x1)), 0), max(int(np.floor(y1)), 0)
    fx2, fy2 = min(int(np.ceil(x2)), frame.shape[1]), min(int(np.ceil(y2)), frame.shape[0])
    out = np.zeros((out_h, out_w, 3), np.float32)
    dx1, dy1 = max(int(round((fx1 - x1) * sx)), 0), max(int(round((fy1 - y1) * sy)), 0)
    dx2, dy2 = min(int(round((fx2 - x1) * sx)), out_w), min(int(round((fy2 - y1) * sy)), out_h)
    if fx2 <= fx1 or fy2 <= fy1 or dx2 <= dx1 or dy2 <= dy1:
        return out
    interpolation = cv2.INTER_AREA if sy < 1 else cv2.INTER_LINEAR
    crop = cv2.resize(frame[fy1:fy2, fx1:fx2], (dx2 - dx1, dy2 - dy1), interpolation=interpolation)
    out[dy1:dy2, dx1:dx2] = crop.astype(np.float32) * (1.0 / 255.0)
    return out


def _coverage(
    out_w: int, out_h: int, ox: float, oy: float, scale: float, rect: NDArray | tuple[float, ...]
) -> NDArray[np.float32]:
    """(out_h, out_w) share of each resampled pixel covered by ``rect`` (xyxy, frame pixels).

    The resampled grid starts at frame point (ox, oy) with ``scale`` output pixels per frame pixel.
    """
    xs = ox + np.arange(out_w + 1) / scale
    ys = oy + np.arange(out_h + 1) / scale
    cover_x = np.clip((np.minimum(xs[1:], rect[2]) - np.maximum(xs[:-1], rect[0])) * scale, 0, 1)
    cover_y = np.clip((np.minimum(ys[1:], rect[3]) - np.maximum(ys[:-1], rect[1])) * scale, 0, 1)
    return np.outer(cover_y, cover_x).astype(np.float32)


def _union_coverage(
    out_w: int, out_h: int, ox: float, oy: float, scale: float, rects: NDArray[np.float64]
) -> NDArray[np.float32]:
    """(out_h, out_w) share of each resampled pixel inside any of ``rects`` (M, 4) (max over rects)."""
    covered = np.zeros((out_h, out_w), np.float32)
    for rect in rects:
        np.maximum(covered, _coverage(out_w, out_h, ox, oy, scale, rect), out=covered)
    return covered


# ---------------------------------------------------------------------------------------------
# Comparing descriptors


def block_similarities(
    a: NDArray, b: NDArray, config: BodyConfig = DEFAULT_CONFIG
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Per-block Bhattacharyya coefficients of every row of ``a`` with every row of ``b``.

    Args:
        a: (N, D) descriptors.
        b: (M, D) descriptors.
        config: The config the descriptors were made with.

    Returns:
        (sims, valid): (N, M, B) float64 block similarities in [0, 1], and (N, M, B) bool, True where
        the block is valid in both descriptors.
    """
    layout = config.layout
    a = np.asarray(a, np.float64).reshape(-1, layout.dim)
    b = np.asarray(b, np.float64).reshape(-1, layout.dim)
    sims = [np.clip(a[:, s : s + n] @ b[:, s : s + n].T, 0.0, 1.0) for s, n in layout.spans()]
    valid = layout.present(a)[:, None, :] & layout.present(b)[None, :, :]
    return np.stack(sims, axis=-1), valid


def similarity_matrix(a: NDArray, b: NDArray, config: BodyConfig = DEFAULT_CONFIG) -> NDArray[np.float64]:
    """Body similarity of every row of ``a`` (N, D) with every row of ``b`` (M, D) -> (N, M).

    The weighted mean, over the stripes valid in both descriptors, of the stripes' Bhattacharyya
    coefficients: 1 for identical colour distributions, 0 for disjoint ones. Different people in
    different outfits typically score 0.6-0.85, samples of one person 0.9-1 (see the benchmark);
    NaN where the two descriptors share no valid stripe. Computed in blocks of rows of ``a``: the
    per-stripe intermediates are (rows, M, stripes) float64, 2,000 tracklets of a 10-minute clip at once
    would take ~1 GB.
    """
    a = np.asarray(a).reshape(-1, config.layout.dim)
    rows = max(1, _SIMILARITY_BLOCK // max(1, len(np.reshape(b, (-1, config.layout.dim)))))
    parts = [_stripe_mean(*block_similarities(a[k : k + rows], b, config), config)
             for k in range(0, len(a), rows)]
    return np.concatenate(parts) if parts else _stripe_mean(*block_similarities(a, b, config), config)


_SIMILARITY_BLOCK = 1 << 18
"""Pairs per block of :func:`similarity_matrix` (x stripes x 8 bytes x ~4 arrays: tens of MB at most)."""


def paired_similarity(a: NDArray, b: NDArray, config: BodyConfig = DEFAULT_CONFIG) -> NDArray[np.float64]:
    """Body similarity of each row of ``a`` (P, D) with the same row of ``b`` (P, D) -> (P,).

    The diagonal of :func:`similarity_matrix` without the P x P matrix: memory stays linear in the
    number of pairs (a 10-minute clip has ~5,000 samples; their full matrix took ~5 GB).
    """
    layout = config.layout
    a = np.asarray(a, np.float64).reshape(-1, layout.dim)
    b = np.asarray(b, np.float64).reshape(-1, layout.dim)
    sims = np.stack(
        [np.clip(np.einsum("ij,ij->i", a[:, s : s + n], b[:, s : s + n]), 0.0, 1.0) for s, n in layout.spans()],
        axis=-1,
    )
    return _stripe_mean(sims, layout.present(a) & layout.present(b), config)


def _stripe_mean(sims: NDArray, valid: NDArray, config: BodyConfig) -> NDArray[np.float64]:
    """Weighted mean over the last axis (stripes) of the valid stripes; NaN where none is valid."""
    weights = config.layout.weights * valid
    total = weights.sum(axis=-1)
    weighted = (sims * weights).sum(axis=-1)
    out = np.full(total.shape, np.nan)
    np.divide(weighted, total, out=out, where=total > 0)
    return out


def body_similarity(a: NDArray, b: NDArray, config: BodyConfig = DEFAULT_CONFIG) -> float:
    """Similarity in [0, 1] of two body descriptors (D,); NaN when they share no valid stripe."""
    return float(similarity_matrix(a, b, config)[0, 0])


# ---------------------------------------------------------------------------------------------
# Tracklet prototypes


@dataclass(frozen=True)
class BodyPrototype:
    """Robust summary of the body descriptors sampled from one tracklet (or segment of one).

    Attributes:
        centre: (D,) float32 per-block element-wise median of the valid samples, re-normalised to
            unit length per block (all zeros when there is no valid sample).
        spread: Median dissimilarity (1 - similarity) of the samples to ``centre``: how much this
            person's appearance varies (turns, arms, blur); NaN without samples.
        samples: (K, D) float32 the valid samples it was built from.
    """

    centre: NDArray[np.float32]
    spread: float
    samples: NDArray[np.float32] = field(repr=False)

    @property
    def n(self) -> int:
        """Number of valid samples."""
        return len(self.samples)


def body_prototype(descs: NDArray, config: BodyConfig = DEFAULT_CONFIG) -> BodyPrototype:
    """Prototype of the descriptors (K, D) sampled from one tracklet; invalid rows are dropped.

    Each block of the centre is the element-wise median over the samples where the block is valid,
    so a few frames with an arm across the body, a turned back or motion blur barely move it.
    """
    layout = config.layout
    descs = np.asarray(descs, np.float32).reshape(-1, layout.dim)
    descs = descs[is_valid(descs)]
    centre = np.zeros(layout.dim, np.float32)
    if not len(descs):
        return BodyPrototype(centre, float("nan"), descs)
    present = layout.present(descs)
    for b, (start, size) in enumerate(layout.spans()):
        if present[:, b].any():
            median = np.median(descs[present[:, b], start : start + size], axis=0)
            norm = float(np.linalg.norm(median))
            if norm > 0:
                centre[start : start + size] = median / norm
    sims = similarity_matrix(descs, centre[None], config)[:, 0]
    return BodyPrototype(centre, float(np.nanmedian(1.0 - sims)), descs)


def prototype_similarity(a: BodyPrototype, b: BodyPrototype, config: BodyConfig = DEFAULT_CONFIG) -> float:
    """Segment-to-segment body similarity in [0, 1]: the similarity of the two prototype centres.

    NaN when either prototype has no valid sample.
    """
    if not a.n or not b.n:
        return float("nan")
    return body_similarity(a.centre, b.centre, config)


# ---------------------------------------------------------------------------------------------
# Per-video calibration


@dataclass(frozen=True)
class BodyCalibration:
    """Maps a body similarity to the probability that two samples show the same person.

    Body similarities are not comparable across videos (lighting, costumes: different people score
    ~0.9 in one clip and ~0.6 in another), so the mapping is fitted per video on pairs whose answer
    is known without any identity: samples of one tracklet (same person) and boxes seen in the same
    frame (different people). See :func:`fit_calibration`.

    Attributes:
        slope: Logistic slope on the similarity.
        intercept: Logistic intercept; ``-intercept / slope`` is the similarity where p = 0.5.
    """

    slope: float
    intercept: float

    @property
    def threshold(self) -> float:
        """Similarity at which both answers are equally likely."""
        return -self.intercept / self.slope if self.slope else float("nan")

    def log_odds(self, sim: NDArray | float) -> NDArray[np.float64]:
        """Log-odds (same vs different person, equal priors) of similarities; NaN stays NaN."""
        return self.slope * np.asarray(sim, np.float64) + self.intercept

    def p_same(self, sim: NDArray | float) -> NDArray[np.float64]:
        """Probability in [0, 1] that similarities come from one person (equal priors)."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.log_odds(sim), -50.0, 50.0)))


def fit_calibration(same: NDArray, different: NDArray, *, l2: float = 1e-5) -> BodyCalibration:
    """Fit a class-balanced logistic map from body similarity to P(same person) for one video.

    Args:
        same: (P,) similarities of pairs known to show one person (e.g. samples of one tracklet at
            least ~0.5 s apart).
        different: (Q,) similarities of pairs known to show different people (e.g. two boxes of the
            same frame).
        l2: Ridge penalty on the slope; keeps it finite when the two sets do not overlap.

    Raises:
        ValueError: when either set has no finite similarity.
    """
    same = np.asarray(same, np.float64).ravel()
    different = np.asarray(different, np.float64).ravel()
    same, different = same[np.isfinite(same)], different[np.isfinite(different)]
    if not len(same) or not len(different):
        raise ValueError(f"need both same-person and different-person pairs, got {len(same)} and "
                         f"{len(different)} finite similarities")
    x = np.concatenate([same, different])
    y = np.concatenate([np.ones(len(same)), np.zeros(len(different))])
    w = np.where(y == 1, 0.5 / len(same), 0.5 / len(different))
    params = np.zeros(2)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(params[0] * x + params[1], -50.0, 50.0)))
        r = w * (p - y)
        grad = np.array([r @ x + l2 * params[0], r.sum()])
        h = w * p * (1 - p)
        hess = np.array([[h @ (x * x) + l2, h @ x], [h @ x, h.sum() + 1e-12]])
        step = np.linalg.solve(hess, grad)
        params -= step
        if np.abs(step).max() < 1e-8:
            break
    return BodyCalibration(float(params[0]), float(params[1]))
