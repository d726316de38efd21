"""Faces inside person boxes: detect, align, score quality, embed (dlib ResNet, 128-D).

Two steps, because embedding is the expensive part (~110 ms per face with dlib on one core):

1. :meth:`FaceAnalyzer.find_faces` crops the head region of each person box, rescales it so the head
   is about ``FaceConfig.head_px`` pixels tall, detects faces (dlib HOG by default, YuNet optionally),
   assigns at most one face to each box, fits dlib's 5-point landmarks and scores the face's quality
   (size, frontalness, sharpness, detector confidence). Indicative cost per person box on a 360p
   clip: ~80 ms with dlib HOG (the head is upscaled ~3x), ~20 ms with YuNet. A box that may be a
   close-up or half-body shot (cut by the frame bottom, or not much taller than wide) is also searched
   whole at a head size read from its width (:func:`close_up_boxes`): there the head is not at the
   top of a full body.
2. :meth:`FaceAnalyzer.embed` aligns and embeds only the candidates the caller keeps (e.g. the best
   face per tracklet per second).

:meth:`FaceAnalyzer.faces_in_boxes` chains both, embedding the faces whose quality reaches
``FaceConfig.min_quality``.

Conventions: images are (H, W, 3) uint8 RGB; face boxes are ``xyxy`` float32 pixels of the image
passed in, in the *dlib HOG convention* (a square from the eyebrows to the chin, see
:data:`YUNET_TO_DLIB_BOX`), whatever detector found them; embeddings are
L2-normalised float32 (128,), compared by cosine similarity (dot product). The decision thresholds
(:data:`THRESHOLDS_BY_SIZE`, :func:`match_thresholds`) were measured with benchmarks/bench_faces.py.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import dlib
import numpy as np
from numpy.typing import NDArray

from fancam.errors import ModelError
from fancam.geometry import head_point, iou_matrix
from fancam.models.registry import DLIB_HOG, YUNET

EMBEDDING_DIM = 128

THRESHOLDS_BY_SIZE = (
    # face side px, same person (FAR <= 0.1%), different/unknown (FRR <= 2%)
    (16.0, 0.9525, 0.8925),
    (20.0, 0.9500, 0.9050),
    (25.0, 0.9475, 0.9200),
    (30.0, 0.9475, 0.9275),
    (40.0, 0.9300, 0.9300),
    (60.0, 0.9300, 0.9300),
)
"""Cosine-similarity thresholds of dlib embeddings by face size (the smaller face of the pair).

Measured on 84 labelled still photos of 22 people (3,300 impostor and 184 genuine pairs), each photo
shrunk so the face is that size and enlarged again, as the head-crop rescaling does
(``bench_faces.py --section sizes``). "same" is the lowest threshold with FAR <= 0.1%, made
non-increasing with size; "unknown" the highest with FRR <= 2%, capped at "same". These hold for
people who look unalike (the public photos); people who look alike — members of one dance group
filmed together — reach 0.95-0.96 with each other (gillhung, 99th percentile): tell members apart by
comparing their similarities, not by these absolute values."""

SAME_PERSON_SIMILARITY = 0.93
"""Similarity at or above which two faces of >= 40 px are the same person (FAR 0.09%, FRR 0.5%)."""

UNKNOWN_SIMILARITY = 0.92
"""Similarity below which a face of >= 25 px is nobody in the gallery (FRR <= 1.1% at 25 px)."""


MEMBER_MARGIN = 0.02
"""Lead of the best gallery member's similarity over the second best from which a single face names
that member. On gillhung (3 look-alike dancers, held-out frames): 87% of faces reach it, all of them
correctly named (HOG and YuNet); without a margin 99.2-100% are correct."""


def match_thresholds(size_px: float | NDArray) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(same, unknown) similarity thresholds for faces of side ``size_px`` (scalar or (N,) array).

    Linear interpolation in :data:`THRESHOLDS_BY_SIZE`, constant beyond its ends.
    """
    table = np.asarray(THRESHOLDS_BY_SIZE)
    size = np.asarray(size_px, np.float64)
    return np.interp(size, table[:, 0], table[:, 1]), np.interp(size, table[:, 0], table[:, 2])


YUNET_TO_DLIB_BOX = (1.09, 0.0, 0.06)
"""(side / YuNet width, centre-x shift / YuNet width, centre-y shift / YuNet height): turns a YuNet box
into the dlib-HOG-style square box the 5-point shape predictor was trained on. Medians over 94 faces
both detectors found in the still photos of ../shared/data (interquartile range of the side: 1.04-1.15)."""

CHIP_SIZE = 150
CHIP_PADDING = 0.25
"""dlib's ResNet expects 150x150 chips aligned with 25% padding."""


def _models_dir() -> Path:
    """Folder holding the dlib model files of the ``face-recognition-models`` package.

    The package is located without importing it (its ``__init__`` imports the deprecated
    ``pkg_resources``).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the face models are missing: pip install face-recognition-models==0.3.0"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def _model_file(name: str) -> Path:
    path = _models_dir() / name
    if not path.is_file():
        raise ModelError(
            f"face model file {str(path)!r} is missing; reinstall: "
            "pip install --force-reinstall face-recognition-models==0.3.0"
        )
    return path


# --------------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceDetections:
    """Faces found in one image.

    Attributes:
        xyxy: (N, 4) float32 face boxes in image pixels (dlib HOG convention, see module docstring).
        score: (N,) float32 detector confidence mapped to [0, 1].
        landmarks: (N, 5, 2) float32 detector landmarks in image pixels (YuNet: right eye, left eye,
            nose tip, right and left mouth corner), or None when the detector gives none.
    """

    xyxy: NDArray[np.float32]
    score: NDArray[np.float32]
    landmarks: NDArray[np.float32] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "xyxy", np.asarray(self.xyxy, np.float32).reshape(-1, 4))
        object.__setattr__(self, "score", np.asarray(self.score, np.float32).reshape(-1))
        if self.landmarks is not None:
            object.__setattr__(self, "landmarks", np.asarray(self.landmarks, np.float32).reshape(-1, 5, 2))
        if len(self.score) != len(self.xyxy):
            raise ValueError(f"{len(self.xyxy)} face boxes but {len(self.score)} scores")

    @classmethod
    def empty(cls) -> FaceDetections:
        """No faces."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.score)

    def subset(self, keep: NDArray[np.bool_]) -> FaceDetections:
        """The detections where ``keep`` (N,) is True."""
        lm = None if self.landmarks is None else self.landmarks[keep]
        return FaceDetections(self.xyxy[keep], self.score[keep], lm)

    def frontal(self, max_nose_offset: float) -> NDArray[np.bool_]:
        """(N,) False for faces the detector's own landmarks show turned beyond ``max_nose_offset``.

        The nose tip's offset from the eyes' midpoint along the eye line, in inter-eye distances (as
        :func:`frontalness`). Without landmarks (dlib HOG, a frontal-only detector) every face passes.
        """
        if self.landmarks is None:
            return np.ones(len(self), bool)
        eye_a, eye_b, nose = self.landmarks[:, 0], self.landmarks[:, 1], self.landmarks[:, 2]
        axis = eye_b - eye_a
        dist2 = np.maximum(np.sum(axis * axis, axis=1), 1e-6)
        offset = np.sum((nose - (eye_a + eye_b) / 2) * axis, axis=1) / dist2
        return np.abs(offset) <= max_nose_offset

    def scaled(self, factor: float, offset: tuple[float, float]) -> FaceDetections:
        """Map coordinates of a rescaled crop back: ``p / factor + offset``."""
        off = np.asarray(offset, np.float32)
        lm = None if self.landmarks is None else self.landmarks / factor + off
        return FaceDetections(self.xyxy / factor + np.tile(off, 2), self.score, lm)


class FaceDetector(Protocol):
    """Finds faces in an RGB image: ``detector(image_rgb) -> FaceDetections``."""

    @property
    def model_id(self) -> str:
        """Identifies the detector and its settings (part of cache keys)."""
        ...

    def __call__(self, image_rgb: NDArray[np.uint8]) -> FaceDetections:
        """Detect faces in an (H, W, 3) uint8 RGB image."""
        ...


class DlibHogDetector:
    """dlib's HOG + linear SVM frontal face detector (built into dlib; finds faces >= ~40 px).

    Args:
        threshold: SVM margin a detection must exceed (dlib's default is 0; lower finds more).
    """

    def __init__(self, threshold: float = 0.0) -> None:
        self.threshold = float(threshold)
        self._detector = dlib.get_frontal_face_detector()

    @property
    def model_id(self) -> str:
        """Detector id with its threshold."""
        return f"{DLIB_HOG}:t{self.threshold:.2f}"

    def __call__(self, image_rgb: NDArray[np.uint8]) -> FaceDetections:
        """Detect faces; the score is the SVM margin through a logistic (margin 0 -> 0.5)."""
        rects, margins, _ = self._detector.run(np.ascontiguousarray(image_rgb), 0, self.threshold)
        if not rects:
            return FaceDetections.empty()
        xyxy = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], np.float32)
        score = 1.0 / (1.0 + np.exp(-2.0 * np.asarray(margins, np.float64)))
        return FaceDetections(xyxy, score.astype(np.float32))


class YuNetDetector:
    """YuNet face detector (ONNX) through ``cv2.FaceDetectorYN``; finds small and turned faces.

    Boxes are converted to the dlib HOG convention with :data:`YUNET_TO_DLIB_BOX` so that the dlib
    shape predictor and the size measure behave the same for both detectors.

    Args:
        model_path: The YuNet ``.onnx`` file.
        score_threshold: Minimum YuNet confidence.
        nms_threshold: IoU above which overlapping detections are merged.
    """

    def __init__(self, model_path: Path, score_threshold: float = 0.6, nms_threshold: float = 0.3) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"YuNet model not found: {str(path)!r}")
        self.model_path = path
        self.score_threshold = float(score_threshold)
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), self.score_threshold,
                                                  float(nms_threshold), 50)
        except cv2.error as e:
            raise ModelError(f"cannot load YuNet model {str(path)!r}: {e}") from e

    @property
    def model_id(self) -> str:
        """Detector id with the model file name and threshold."""
        return f"{YUNET}:{self.model_path.name}:t{self.score_threshold:.2f}"

    def __call__(self, image_rgb: NDArray[np.uint8]) -> FaceDetections:
        """Detect faces; score is YuNet's confidence."""
        h, w = image_rgb.shape[:2]
        self._net.setInputSize((w, h))
        _, raw = self._net.detect(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
        if raw is None or len(raw) == 0:
            return FaceDetections.empty()
        raw = np.asarray(raw, np.float32)
        landmarks = np.ascontiguousarray(raw[:, 4:14].reshape(-1, 5, 2), np.float32)
        scores = np.ascontiguousarray(raw[:, 14], np.float32)
        return FaceDetections(np.asarray(yunet_to_dlib_box(raw[:, :4]), np.float32), scores, landmarks)


def yunet_to_dlib_box(xywh: NDArray) -> NDArray[np.float32]:
    """(N, 4) YuNet ``x, y, w, h`` boxes -> (N, 4) dlib-HOG-style square ``xyxy`` boxes."""
    b = np.asarray(xywh, np.float64).reshape(-1, 4)
    side_k, dx_k, dy_k = YUNET_TO_DLIB_BOX
    cx = b[:, 0] + b[:, 2] * (0.5 + dx_k)
    cy = b[:, 1] + b[:, 3] * 0.5 + b[:, 3] * dy_k
    half = side_k * b[:, 2] / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Quality
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceQuality:
    """How useful a face is for identification.

    Attributes:
        size_px: Face box side in pixels of the *source* frame or photo (before any rescaling).
        frontal: 1 for a frontal face, falling to 0 for a profile (from landmark symmetry).
        sharpness: Laplacian variance of the aligned 150x150 grey chip (blur and upscaling lower it).
        detector: Detector confidence in [0, 1].
        score: Combined quality in [0, 1] (product of the normalised terms).
    """

    size_px: float
    frontal: float
    sharpness: float
    detector: float
    score: float


@dataclass(frozen=True)
class QualityConfig:
    """How the quality terms are normalised (each term is clipped to [0, 1], then multiplied).

    Measured on still photos shrunk to a given face size: nearest-neighbour accuracy 94% at 16 px,
    98% at 20 px, 100% from 25 px (ROC AUC 0.979, 0.991, 0.999, 1.0 at 30 px); a chip from an upscaled
    small face is blurry by nature (Laplacian variance ~14 at 20-25 px, ~200 at 100 px; 360p dancer
    faces 6-10), so the sharpness term only penalises faces blurrier than a typical small video face.

    Attributes:
        min_size_px: Face side at which the size term is 0.
        good_size_px: Face side from which the size term is 1.
        max_nose_offset: Nose offset from the eyes' midpoint, in inter-eye distances, at which the
            frontal term reaches 0.
        good_sharpness: Chip Laplacian variance from which the sharpness term is 1.
    """

    min_size_px: float = 14.0
    good_size_px: float = 30.0
    max_nose_offset: float = 0.6
    good_sharpness: float = 10.0


def frontalness(shape5: NDArray, max_nose_offset: float = 0.6) -> float:
    """Frontal score in [0, 1] from dlib's 5 landmarks (2 corners per eye, then the nose base).

    The nose base of a frontal face projects onto the middle of the eye line; turning the head moves
    it towards one eye. Returns ``1 - |offset| / max_nose_offset`` (clipped), offset in inter-eye units.
    """
    p = np.asarray(shape5, np.float64).reshape(5, 2)
    eye_a, eye_b, nose = p[0:2].mean(axis=0), p[2:4].mean(axis=0), p[4]
    axis = eye_b - eye_a
    dist2 = float(axis @ axis)
    if dist2 < 1e-6:
        return 0.0
    offset = float((nose - (eye_a + eye_b) / 2) @ axis) / dist2
    return float(np.clip(1.0 - abs(offset) / max_nose_offset, 0.0, 1.0))


def chip_sharpness(chip_rgb: NDArray[np.uint8]) -> float:
    """Variance of the Laplacian over the central part of an aligned face chip (higher = sharper)."""
    grey = cv2.cvtColor(chip_rgb, cv2.COLOR_RGB2GRAY)
    n = grey.shape[0]
    centre = grey[n // 6: n - n // 6, n // 6: n - n // 6]
    return float(cv2.Laplacian(centre, cv2.CV_64F).var())


def face_quality(
    size_px: float, shape5: NDArray, chip_rgb: NDArray[np.uint8], detector: float, config: QualityConfig
) -> FaceQuality:
    """Combine size, frontalness, sharpness and detector confidence into a :class:`FaceQuality`."""
    frontal = frontalness(shape5, config.max_nose_offset)
    sharp = chip_sharpness(chip_rgb)
    size_term = (size_px - config.min_size_px) / max(config.good_size_px - config.min_size_px, 1e-6)
    terms = np.clip([size_term, sharp / config.good_sharpness, detector], 0.0, 1.0)
    score = float(np.prod(terms) * frontal)
    return FaceQuality(float(size_px), frontal, sharp, float(detector), score)


# --------------------------------------------------------------------------------------------------
# Alignment and embedding
# --------------------------------------------------------------------------------------------------


class DlibEmbedder:
    """dlib 5-point alignment + ResNet-34 128-D embedding (``face-recognition-models`` files)."""

    model_id = "dlib-resnet-v1+sp5"

    def __init__(self) -> None:
        # The files are checked now, loaded on first use (~0.08 s): a cached analysis never needs them.
        self._shape_file = _model_file("shape_predictor_5_face_landmarks.dat")
        self._net_file = _model_file("dlib_face_recognition_resnet_model_v1.dat")
        self._models: tuple[dlib.shape_predictor, dlib.face_recognition_model_v1] | None = None

    def _loaded(self) -> tuple[dlib.shape_predictor, dlib.face_recognition_model_v1]:
        if self._models is None:
            try:
                self._models = (dlib.shape_predictor(str(self._shape_file)),
                                dlib.face_recognition_model_v1(str(self._net_file)))
            except RuntimeError as e:
                raise ModelError(
                    f"cannot load the dlib face models: {e}; reinstall face-recognition-models==0.3.0"
                ) from e
        return self._models

    def landmarks(self, image_rgb: NDArray[np.uint8], xyxy: NDArray) -> dlib.full_object_detection:
        """The dlib 5-point shape of the face in box ``xyxy`` (4,) of ``image_rgb``."""
        x1, y1, x2, y2 = (int(round(v)) for v in xyxy)
        return self._loaded()[0](image_rgb, dlib.rectangle(x1, y1, x2 - 1, y2 - 1))

    @staticmethod
    def chip(image_rgb: NDArray[np.uint8], shape: dlib.full_object_detection) -> NDArray[np.uint8]:
        """Aligned (150, 150, 3) uint8 RGB face chip."""
        return np.asarray(dlib.get_face_chip(image_rgb, shape, CHIP_SIZE, CHIP_PADDING), np.uint8)

    def embed(self, chips: list[NDArray[np.uint8]]) -> NDArray[np.float32]:
        """(N, 128) L2-normalised float32 embeddings of aligned chips."""
        if not chips:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        raw = np.asarray(self._loaded()[1].compute_face_descriptor([np.ascontiguousarray(c) for c in chips]))
        return l2_normalise(raw)


def l2_normalise(vectors: NDArray) -> NDArray[np.float32]:
    """Rows scaled to unit length (zero rows stay zero); float32."""
    v = np.asarray(vectors, np.float64)
    v = v.reshape(-1, v.shape[-1]) if v.ndim != 2 else v
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return (v / np.maximum(norm, 1e-12)).astype(np.float32)


def shape_points(shape: dlib.full_object_detection) -> NDArray[np.float32]:
    """(5, 2) float32 points of a dlib shape."""
    return np.array([[p.x, p.y] for p in shape.parts()], np.float32)


# --------------------------------------------------------------------------------------------------
# Analyzer
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceConfig:
    """Face analysis settings (sizes in pixels or fractions of the person box height).

    Attributes:
        detector: :data:`~fancam.models.registry.DLIB_HOG` (built in) or
            :data:`~fancam.models.registry.YUNET` (needs ``yunet_model``).
        yunet_model: Path of the YuNet ``.onnx`` file when ``detector`` is YuNet.
        hog_threshold: dlib HOG SVM margin threshold.
        yunet_threshold: YuNet confidence threshold.
        head_frac: Expected head height as a fraction of the person box height.
        head_px: Head height (pixels) the head crop is rescaled to before detection; None picks the
            detector's measured default (:data:`DEFAULT_HEAD_PX`).
        max_scale: Largest upscaling applied to a head crop (tiny people stay undetected).
        region_frac: Head search region: top part of the box, as a fraction of its height.
        close_up_aspect: A box shorter than this many times its width is a possible close-up or
            half-body shot (see :func:`close_up_boxes`).
        close_up_bottom: A box reaching within this fraction of the frame height of the frame's bottom
            edge is cut by it: a possible close-up too.
        close_up_head_frac: Expected head height of a close-up as a fraction of the box width.
        close_up_min_sharpness: Faces found only by the close-up search whose aligned chip is
            blurrier than this (:func:`chip_sharpness`) are dropped (defocused background).
        photo_long_side_px: Long side whole photos are rescaled to before detection (gallery).
        photo_max_upscale: Largest upscaling applied to a whole photo.
        min_quality: Faces below this quality are not embedded (by :meth:`FaceAnalyzer.faces_in_boxes`
            and the video's appearance pass). 0.1 keeps the 16-20 px faces of small or distant
            dancers, which still name people (nearest-neighbour accuracy 94-98% on still photos shrunk
            to that size, see :class:`QualityConfig`); the naming weighs each face by its lead over the
            runner-up member, so a poor face votes little. Measured with a gallery against 0.3:
            tiktok_stage_ballet 0.43 -> 0.74 identity accuracy (fast) and 0.46 -> 0.76 (balanced),
            gillhung bench 0.958 -> 0.964 (balanced), unchanged on gillhung fast, gillhung_dance2
            balanced and hamilton_short balanced.
        quality: Normalisation of the quality terms.
    """

    detector: str = DLIB_HOG
    yunet_model: Path | None = None
    hog_threshold: float = 0.0
    yunet_threshold: float = 0.6
    head_frac: float = 0.14
    head_px: float | None = None
    max_scale: float = 4.0
    region_frac: float = 0.35
    # hamilton (640x360 TV close-ups): the detector's boxes of people cut by the frame bottom end 2-6 px
    # above it (y2 354-356 of 360); the half-body boxes of Lin and Alex have height/width 0.8-1.2 and
    # full-body dancers 2-4 (1.3 keeps arms-out poses of dancers out of the extra pass mostly).
    close_up_aspect: float = 1.3
    close_up_bottom: float = 0.02
    # hamilton close-ups, YuNet: face side (dlib convention) / box width 0.69-0.75 for Alex (148-152 px
    # faces in 205-221 px boxes), 0.27-0.32 for Lin (74-107 px in 277-357 px boxes). Reading the head
    # as 0.5 x width puts both at ~40-110 px after rescaling to head_px; YuNet found Alex's face in
    # 4/4 of frames 69-81 at 0.5 but 1/4 at 0.35 and 0/4 at 0.18 (it misses faces filling the crop).
    close_up_head_frac: float = 0.5
    # A close-up's box holds the defocused background too. hamilton, faces only the close-up search
    # found: audience behind Alex's close-up had chip sharpness 1.3-1.5 (frames 51-72), the close-up
    # people 3.7-650; dance2's crawling dancer at night 2.6, ballet's kneeling dancer 4.3.
    close_up_min_sharpness: float = 2.0
    photo_long_side_px: float = 1200.0
    photo_max_upscale: float = 4.0
    min_quality: float = 0.1
    quality: QualityConfig = QualityConfig()


DETECTORS = (DLIB_HOG, YUNET)

DEFAULT_HEAD_PX = {DLIB_HOG: 140.0, YUNET: 80.0}
"""Head height the head crop is rescaled to, per detector. dlib HOG's smallest window is 80 px, so the
~28 px faces of a 360p dancer need ~3x upscaling: on the gillhung keyframes its recall per person box is
49% at 100 px, 92% at 140 px, no better above; YuNet finds 99-100% from 60-100 px (bench_faces.py)."""


def make_detector(config: FaceConfig) -> FaceDetector:
    """Build the face detector named by ``config.detector``.

    Raises:
        ValueError: unknown detector name.
        ModelError: the YuNet model path is missing or unusable.
    """
    if config.detector == DLIB_HOG:
        return DlibHogDetector(config.hog_threshold)
    if config.detector == YUNET:
        if config.yunet_model is None:
            raise ModelError("the YuNet face detector needs a model file (FaceConfig.yunet_model)")
        return YuNetDetector(config.yunet_model, config.yunet_threshold)
    raise ValueError(f"unknown face detector {config.detector!r}; choose one of {DETECTORS}")


@dataclass(frozen=True)
class FaceCandidate:
    """A detected, aligned face not yet embedded.

    Attributes:
        box_index: Index of the person box it belongs to (-1 for a face found in a whole photo).
        xyxy: (4,) float32 face box in source-image pixels.
        landmarks: (5, 2) float32 dlib landmarks in source-image pixels.
        quality: Its quality.
        chip: (150, 150, 3) uint8 RGB aligned chip (what the embedder consumes).
    """

    box_index: int
    xyxy: NDArray[np.float32]
    landmarks: NDArray[np.float32]
    quality: FaceQuality
    chip: NDArray[np.uint8]


@dataclass(frozen=True)
class FaceSample:
    """An embedded face of one person box in one frame.

    Attributes:
        frame: Decode index of the frame (or -1 for a photo).
        box_index: Index of the person box in the list given to the analyzer.
        tracklet: Track/tracklet id of that box, or -1 when unknown.
        xyxy: (4,) float32 face box in frame pixels.
        embedding: (128,) float32 L2-normalised embedding.
        quality: Its quality.
    """

    frame: int
    box_index: int
    tracklet: int
    xyxy: NDArray[np.float32]
    embedding: NDArray[np.float32]
    quality: FaceQuality


class FaceAnalyzer:
    """Finds, scores and embeds faces in person boxes or whole photos.

    Args:
        config: Settings.
        detector: A detector to use instead of the one ``config`` names (e.g. a fake in tests).
    """

    def __init__(self, config: FaceConfig | None = None, detector: FaceDetector | None = None) -> None:
        self.config = config or FaceConfig()
        self.detector = detector if detector is not None else make_detector(self.config)
        self.embedder = DlibEmbedder()
        self.head_px = self.config.head_px or DEFAULT_HEAD_PX.get(self.config.detector, 140.0)

    @property
    def model_id(self) -> str:
        """Detector + embedder ids (a cache key part)."""
        return f"{self.detector.model_id}|{self.embedder.model_id}"

    # -- person boxes ------------------------------------------------------------------------------

    def head_regions(self, boxes: NDArray, width: int, height: int) -> NDArray[np.float64]:
        """(N, 4) integer head search regions (xyxy) for person boxes (N, 4) in a W x H frame."""
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        head = self.config.head_frac * np.maximum(b[:, 3] - b[:, 1], 1.0)
        region = np.stack([
            b[:, 0] - 0.5 * head, b[:, 1] - 0.5 * head,
            b[:, 2] + 0.5 * head, b[:, 1] + self.config.region_frac * (b[:, 3] - b[:, 1]),
        ], axis=1)
        region = np.round(region)
        region[:, [0, 2]] = np.clip(region[:, [0, 2]], 0, width)
        region[:, [1, 3]] = np.clip(region[:, [1, 3]], 0, height)
        return region

    def close_up_regions(
        self, boxes: NDArray, width: int, height: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Search regions and head heights of person boxes read as close-ups (:func:`close_up_boxes`).

        A close-up's head is not in the top 35% of a full body: its size follows the box width
        (``close_up_head_frac``) and it may be anywhere in the box (the box top can be cut too, or
        be a raised hand), so the whole box is searched. Returns (N, 4) integer regions (xyxy) and
        (N,) head heights in pixels.
        """
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        head = self.config.close_up_head_frac * np.maximum(b[:, 2] - b[:, 0], 1.0)
        region = np.round(np.stack([b[:, 0], b[:, 1] - 0.25 * head, b[:, 2], b[:, 3]], axis=1)).astype(np.float64)
        region[:, [0, 2]] = np.clip(region[:, [0, 2]], 0, width)
        region[:, [1, 3]] = np.clip(region[:, [1, 3]], 0, height)
        return region, head

    def _detect_in_region(
        self, frame_rgb: NDArray[np.uint8], region: NDArray, head_h: float
    ) -> tuple[FaceDetections, NDArray[np.uint8], float]:
        """Detect faces in one head region; returns frame-pixel detections, the rescaled crop, scale."""
        x1, y1, x2, y2 = (int(v) for v in region)
        if x2 - x1 < 4 or y2 - y1 < 4:
            return FaceDetections.empty(), np.zeros((0, 0, 3), np.uint8), 1.0
        scale = float(np.clip(self.head_px / max(head_h, 1.0), 0.05, self.config.max_scale))
        crop = _resize(frame_rgb[y1:y2, x1:x2], scale)
        return self.detector(crop).scaled(scale, (x1, y1)), crop, scale

    def find_faces(self, frame_rgb: NDArray[np.uint8], boxes: NDArray) -> list[FaceCandidate | None]:
        """Detect and align at most one face per person box (no embedding).

        Args:
            frame_rgb: (H, W, 3) uint8 RGB frame at full resolution.
            boxes: (N, 4) person boxes, xyxy in frame pixels.

        Returns:
            One entry per box: its face, or None when no face is found in its head region.
        """
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        h, w = frame_rgb.shape[:2]
        head_h = self.config.head_frac * np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
        found: list[tuple[FaceDetections, int]] = []
        crops: list[tuple[NDArray[np.uint8], float, NDArray]] = []
        for i, region in enumerate(self.head_regions(boxes, w, h)):
            dets, crop, scale = self._detect_in_region(frame_rgb, region, head_h[i])
            found.append((dets, len(crops)))
            crops.append((crop, scale, region))
        # Close-ups and half-body shots: a second search of the whole box at the head size its width
        # gives (the full-body search stays, so a dancer with arms out loses nothing).
        n_first = len(found)
        close = close_up_boxes(boxes, h, self.config.close_up_aspect, self.config.close_up_bottom)
        close_head = np.full(len(boxes), np.nan)
        regions, heads = self.close_up_regions(boxes[close], w, h)
        for close_i, region, head in zip(np.flatnonzero(close).tolist(), regions, heads, strict=True):
            close_head[close_i] = head
            dets, crop, scale = self._detect_in_region(frame_rgb, region, head)
            # Close-ups show profiles that YuNet finds but dlib cannot align: hamilton's Alex in
            # profile (YuNet nose offsets -0.9 and 5.4 inter-eye distances; dlib's 5 points still
            # gave frontalness 0.58-0.87) embedded 0.96-0.97 similar to dance2's P5 and ballet's P3
            # but 0.917 to his own photo, and named him as them with their galleries.
            dets = dets.subset(dets.frontal(self.config.quality.max_nose_offset))
            found.append((dets, len(crops)))
            crops.append((crop, scale, region))
        faces, sources = _merge_detections(found, n_first)
        assignment = assign_faces(faces.xyxy, boxes, head_h, close_head=close_head)
        out: list[FaceCandidate | None] = [None] * len(boxes)
        for box_i, face_i in assignment:
            crop, scale, region = crops[sources[face_i]]
            cand = self._candidate(crop, faces.xyxy[face_i], float(faces.score[face_i]), scale, region[:2], box_i)
            if sources[face_i] >= n_first and cand.quality.sharpness < self.config.close_up_min_sharpness:
                continue  # a defocused face behind the close-up person, inside their box
            out[box_i] = cand
        return out

    def align(self, image_rgb: NDArray[np.uint8], xyxy: NDArray, score: float = 1.0) -> FaceCandidate:
        """Align and score a face at a known box ``xyxy`` (4,) of ``image_rgb`` (no detection)."""
        return self._candidate(image_rgb, np.asarray(xyxy, np.float64), score, 1.0, np.zeros(2), -1)

    def _candidate(
        self, image: NDArray[np.uint8], xyxy_src: NDArray, score: float, scale: float,
        offset: NDArray, box_index: int,
    ) -> FaceCandidate:
        """Align a face given in source pixels, using the (rescaled) ``image`` it was found in."""
        off = np.asarray(offset, np.float64)
        local = (np.asarray(xyxy_src, np.float64) - np.tile(off, 2)) * scale
        shape = self.embedder.landmarks(image, local)
        chip = self.embedder.chip(image, shape)
        points = shape_points(shape) / scale + off.astype(np.float32)
        size = float(xyxy_src[2] - xyxy_src[0])
        quality = face_quality(size, points, chip, score, self.config.quality)
        return FaceCandidate(box_index, np.asarray(xyxy_src, np.float32), points, quality, chip)

    def embed(
        self, candidates: list[FaceCandidate], frame: int = -1, tracklets: NDArray | None = None
    ) -> list[FaceSample]:
        """Embed candidates (one batched network call).

        Args:
            candidates: Faces from :meth:`find_faces` or :meth:`faces_in_image`.
            frame: Decode index stored in the samples.
            tracklets: (N_boxes,) tracklet id of each person box, indexed by ``box_index``.
        """
        vectors = self.embedder.embed([c.chip for c in candidates])
        out = []
        for cand, vec in zip(candidates, vectors, strict=True):
            tracklet = -1 if tracklets is None or cand.box_index < 0 else int(tracklets[cand.box_index])
            out.append(FaceSample(frame, cand.box_index, tracklet, cand.xyxy, vec, cand.quality))
        return out

    def faces_in_boxes(
        self, frame_rgb: NDArray[np.uint8], boxes: NDArray, frame: int = -1, tracklets: NDArray | None = None
    ) -> list[FaceSample | None]:
        """Find faces in person boxes and embed those of quality >= ``config.min_quality``.

        Args:
            frame_rgb: (H, W, 3) uint8 RGB frame at full resolution.
            boxes: (N, 4) person boxes, xyxy in frame pixels.
            frame: Decode index stored in the samples.
            tracklets: (N,) tracklet ids of the boxes, stored in the samples.

        Returns:
            One entry per box: a :class:`FaceSample`, or None (no face, or a face too poor to embed).
        """
        found = self.find_faces(frame_rgb, boxes)
        keep = [c for c in found if c is not None and c.quality.score >= self.config.min_quality]
        samples = {s.box_index: s for s in self.embed(keep, frame, tracklets)}
        return [samples.get(i) for i in range(len(found))]

    # -- whole photos ------------------------------------------------------------------------------

    def faces_in_image(self, image_rgb: NDArray[np.uint8]) -> list[FaceCandidate]:
        """Detect and align every face of a whole photo, largest first (no embedding).

        The photo is rescaled so its long side is ``config.photo_long_side_px`` (upscaling at most
        ``config.photo_max_upscale``), so small faces in small photos are found too.
        """
        h, w = image_rgb.shape[:2]
        scale = min(self.config.photo_long_side_px / max(h, w), self.config.photo_max_upscale)
        image = _resize(image_rgb, scale)
        dets = self.detector(image).scaled(scale, (0.0, 0.0))
        order = np.argsort(-(dets.xyxy[:, 2] - dets.xyxy[:, 0]), kind="stable")
        return [
            self._candidate(image, dets.xyxy[i], float(dets.score[i]), scale, np.zeros(2), -1) for i in order
        ]


def _resize(image: NDArray[np.uint8], scale: float) -> NDArray[np.uint8]:
    """Rescale an RGB image by ``scale`` (area filter when shrinking, bilinear when enlarging)."""
    if abs(scale - 1.0) < 1e-3:
        return np.ascontiguousarray(image)
    h, w = image.shape[:2]
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=interp))


def _merge_detections(
    found: list[tuple[FaceDetections, int]], n_first: int | None = None
) -> tuple[FaceDetections, list[int]]:
    """Pool the faces of all head regions (frame pixels), dropping duplicates (IoU > 0.5).

    A duplicate keeps the more confident detection, except that the first ``n_first`` entries of
    ``found`` (the full-body head searches) win over the rest (the close-up searches): a face both
    found keeps the detection and rescaling it had before close-ups were searched (on hamilton the
    close-up crop's copy of a 70 px face scored quality 0.13-0.28 instead of 0.51-0.61), and a
    close-up detection centred inside a kept face is the same face (dance2 frame 669: an 84 px box
    inside the 116 px one, IoU 0.50, quality 0.16 instead of 0.42).

    Returns the pooled detections and, for each, the index of the region it came from.
    """
    boxes, scores, sources, rank = [], [], [], []
    for k, (dets, src) in enumerate(found):
        second = n_first is not None and k >= n_first
        for box, score in zip(dets.xyxy, dets.score, strict=True):
            boxes.append(box)
            scores.append(score)
            sources.append(src)
            rank.append(float(score) - (2.0 if second else 0.0))
    if not boxes:
        return FaceDetections.empty(), []
    xyxy = np.asarray(boxes, np.float32)
    iou = iou_matrix(xyxy, xyxy)
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    keep: list[int] = []
    for i in np.argsort(-np.asarray(rank), kind="stable"):
        if rank[i] < -1.0 and any(_inside(centre[i], xyxy[j]) for j in keep):
            continue  # a close-up search's other box on a face already found (its centre inside)
        if all(iou[i, j] <= 0.5 for j in keep):
            keep.append(int(i))
    return FaceDetections(xyxy[keep], np.asarray(scores)[keep]), [sources[i] for i in keep]


def _inside(point: NDArray, xyxy: NDArray) -> bool:
    return bool(xyxy[0] <= point[0] <= xyxy[2] and xyxy[1] <= point[1] <= xyxy[3])


def close_up_boxes(boxes: NDArray, frame_height: int, max_aspect: float, bottom: float) -> NDArray[np.bool_]:
    """(N,) True for person boxes that may be close-ups or half-body shots, not full bodies.

    Such a box is cut by the frame's bottom edge (within ``bottom`` x the frame height) or shorter
    than ``max_aspect`` times its width (a standing person is 2-4 times taller than wide).
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return (b[:, 3] >= frame_height * (1.0 - bottom)) | (h < max_aspect * w)


def assign_faces(
    face_xyxy: NDArray, boxes: NDArray, head_h: NDArray, max_cost: float = 1.5, close_head: NDArray | None = None
) -> list[tuple[int, int]]:
    """Match faces to person boxes one-to-one (Hungarian on distance to each box's head point).

    A face can go to a box only if its centre lies within the box horizontally and in its top half,
    and its distance to the box's head point is at most ``max_cost`` expected head heights. A
    close-up box (finite ``close_head``) also takes a face anywhere in it at most ``max_cost`` close-up
    head heights from ``(cx, y1 + close_head)`` (the head of a half-body shot is about one head
    height below the box top; on hamilton's close-ups the faces were 0.3-1.0 of it from there);
    such a match costs ``max_cost`` more, so a face where a full body's head would be wins.

    Args:
        face_xyxy: (F, 4) face boxes in frame pixels.
        boxes: (N, 4) person boxes in frame pixels.
        head_h: (N,) expected head height of each box in pixels.
        max_cost: Largest allowed distance, in head heights.
        close_head: (N,) head height of each box read as a close-up, NaN for boxes that are not
            (:func:`close_up_boxes`); None: no close-ups.

    Returns:
        (box index, face index) pairs.
    """
    faces = np.asarray(face_xyxy, np.float64).reshape(-1, 4)
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(faces) == 0 or len(b) == 0:
        return []
    centre = np.stack([(faces[:, 0] + faces[:, 2]) / 2, (faces[:, 1] + faces[:, 3]) / 2], axis=1)
    target = head_point(b)
    dist = np.linalg.norm(target[:, None, :] - centre[None, :, :], axis=2) / np.asarray(head_h)[:, None]
    inside = (
        (centre[None, :, 0] >= b[:, None, 0]) & (centre[None, :, 0] <= b[:, None, 2])
        & (centre[None, :, 1] >= b[:, None, 1] - 0.5 * np.asarray(head_h)[:, None])
        & (centre[None, :, 1] <= (b[:, None, 1] + b[:, None, 3]) / 2)
    )
    cost = np.where(inside & (dist <= max_cost), dist, 1e6)
    if close_head is not None:
        close = np.asarray(close_head, np.float64).reshape(-1)
        rows = np.flatnonzero(np.isfinite(close))
        if len(rows):
            cb, ch = b[rows], close[rows][:, None]
            target = np.stack([(cb[:, 0] + cb[:, 2]) / 2, cb[:, 1] + close[rows]], axis=1)
            d = np.linalg.norm(target[:, None, :] - centre[None, :, :], axis=2) / ch
            within = (
                (centre[None, :, 0] >= cb[:, None, 0]) & (centre[None, :, 0] <= cb[:, None, 2])
                & (centre[None, :, 1] >= cb[:, None, 1] - 0.5 * ch) & (centre[None, :, 1] <= cb[:, None, 3])
            )
            # A face in the full-body place wins over one only a close-up reading allows (hamilton
            # frame 228: the close-up search's second box 23 px lower on the same 72 px face).
            cost[rows] = np.minimum(cost[rows], np.where(within & (d <= max_cost), d + max_cost, 1e6))
    from scipy.optimize import linear_sum_assignment  # lazy: the embedding worker never assigns faces

    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if cost[r, c] < 1e6]
