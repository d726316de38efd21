"""Analyse once, render many: run (or reuse) the analysis stages and keep the analysis folder.

Stages and what invalidates them (see :mod:`fancam.io.cache`):

- ``scan``: decode, cuts, detection, tracking. Key: video bytes + detector model id + scan settings.
- ``tracklets``: split / drop / link / interpolate. Key: scan key + tracklet settings.
- ``identity``: faces, bodies, linking, naming. Key: tracklets key + face models + gallery photos +
  identity settings. Writes the contract files ``tracks.csv`` and ``people.json``.

The folder is in the user cache (:mod:`fancam.io.usercache`: one folder per video content and model
choice, so each ``--quality`` preset keeps its analysis; least recently used ones are evicted above a
size cap) unless ``out`` is given. Nothing is ever written beside the video. Every file is written
atomically and the folder is locked while a process works in it, so an interrupted run or two runs at
once never leave a corrupt cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from fancam.errors import GalleryError, ModelError, ProcessingError, VideoError
from fancam.identity.appearance import Appearance, extract_appearance
from fancam.identity.body import DEFAULT_CONFIG as BODY_CONFIG
from fancam.identity.faces import FaceAnalyzer, FaceConfig
from fancam.identity.gallery import Gallery, load_gallery
from fancam.identity.identify import IdentityConfig, identify
from fancam.identity.people import Cast, crowding, make_people
from fancam.identity.sampling import SamplingConfig, sample_rows
from fancam.io import usercache
from fancam.io.cache import (
    Manifest,
    ensure_writable_dir,
    file_sha256,
    folder_lock,
    stage_key,
    write_json_atomic,
)
from fancam.io.progress import Progress, progress_bar
from fancam.io.video import probe
from fancam.models import registry as models
from fancam.pipeline.store import (
    APPEARANCE_FILE,
    CAST_FILE,
    PEOPLE_JSON,
    SCAN_FILE,
    TIMELINE_PNG,
    TRACKS_CSV,
    load_appearance,
    load_cast,
    load_scan,
    people_document,
    save_appearance,
    save_cast,
    save_scan,
    write_tracks,
)
from fancam.report.timeline import plot_identity_timeline
from fancam.tracking.detect import Detector, detector_settings, make_detector
from fancam.tracking.scan import ScanConfig, ScanResult, scan
from fancam.tracking.tracklets import TrackletConfig, TrackletReport, build_tracklets_explained
from fancam.types import Timeline, TrackTable, VideoInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisSettings:
    """Everything that changes an analysis (part of the cache keys).

    Attributes:
        quality: Model preset (``fast`` = PyPI models only, ``balanced``, ``best``).
        detector: Person detector overriding the preset.
        face_model: Face detector or embedder overriding the preset.
        scan: First-pass settings (detection rate, tracker, cuts).
        tracklets: Tracklet post-processing rules.
        sampling: Which rows get a close look (faces, bodies).
        identity: Linking and naming.
    """

    quality: str = models.DEFAULT_QUALITY
    detector: str | None = None
    face_model: str | None = None
    scan: ScanConfig = field(default_factory=ScanConfig)
    tracklets: TrackletConfig = field(default_factory=TrackletConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)

    def model_names(self) -> dict[str, str]:
        """Registry names of the detector, face detector and face embedder to use."""
        return models.resolve_preset(self.quality, detector=self.detector, face_model=self.face_model)


@dataclass(frozen=True)
class Analysis:
    """A complete analysis of one video.

    Attributes:
        folder: The analysis folder.
        info: Video properties.
        timeline: Frame times and shot starts.
        tracks: Tracklet table (``track_id`` = tracklet id), one row per tracklet per frame.
        cast: Person of every row, and the performers.
        stage_seconds: Wall time per stage of this call (empty parts when reused).
        gallery_members: ``group/member`` of every usable gallery member (empty without a gallery).
        recorded_seconds: Wall time per stage as measured by the run that computed each stage, this
            call or an earlier one (kept in the folder's manifest): what the whole analysis cost.
        reused: The stages (``scan``, ``appearance``, ``identity``) this call took from the folder
            instead of computing them (e.g. a retry after a killed run that got that far).
    """

    folder: Path
    info: VideoInfo
    timeline: Timeline
    tracks: TrackTable
    cast: Cast
    stage_seconds: dict[str, float]
    gallery_members: tuple[str, ...] = ()
    recorded_seconds: dict[str, float] = field(default_factory=dict)
    reused: tuple[str, ...] = ()


MIN_FRAME_SIDE = 64
"""Smallest frame side (pixels) a video can have: below it there is nobody to detect or show."""


def analyze(
    video: Path,
    *,
    out: Path | None = None,
    gallery: Path | None = None,
    settings: AnalysisSettings | None = None,
    progress: Progress = True,
) -> Analysis:
    """Analyse ``video`` or reuse a valid analysis folder (see the module docstring).

    Args:
        video: The video file (never written to, nor its folder).
        out: Analysis folder to use (``fancam analyze --out DIR``, ``--analysis DIR``); None: the
            user cache.
        gallery: Reference photos naming the performers.
        settings: Models and stage settings.
        progress: Progress bars (see :mod:`fancam.io.progress`).

    Raises:
        InputError: unusable video, gallery or analysis folder (checked before any work).
        ProcessingError: nobody to follow in the video.
    """
    settings = settings or AnalysisSettings()
    video = Path(video)
    if gallery is not None:
        check_gallery_folder(gallery)
    info = probe(video)
    if min(info.width, info.height) < MIN_FRAME_SIDE:
        raise VideoError(f"{str(video)!r} is {info.width}x{info.height} pixels, too small to find people "
                         f"in (fancam needs at least {MIN_FRAME_SIDE} pixels on each side)")
    digest = usercache.video_digest(video)
    folder = _analysis_folder(video, digest, out, settings)
    names = settings.model_names()
    with folder_lock(folder):
        run = _Run(video, info, folder, Manifest(folder), settings, progress)
        detector_id = models.model_id(names["detector"])
        scan_key = stage_key(digest, {
            "detector": detector_id, "detector_settings": detector_settings(names["detector"]),
            "stride": settings.scan.stride(info.fps, names["detector"]), "scan": settings.scan,
        })
        if out is not None and run.manifest.info("scan") and not run.manifest.valid("scan", scan_key):
            log.warning("%s holds an analysis of another video or other settings; replacing it", folder)
        scanned = _scan_stage(run, scan_key, names["detector"])
        tracks, report = build_tracklets_explained(
            scanned.raw, scanned.timeline, (info.width, info.height), settings.tracklets
        )
        if not len(tracks):
            raise ProcessingError(_nobody_message(video, scanned, names["detector"], settings.tracklets))
        analyzer = make_face_analyzer(names)
        face_ids = {"face": analyzer.model_id, "sampling": settings.sampling,
                    "face_config": dataclasses.replace(analyzer.config, yunet_model=None),
                    "body": BODY_CONFIG}
        # Keyed on the tracklets themselves, not only on the settings that made them: a change of the
        # tracklet rules with the same version (a development build) must not reuse another table's faces.
        appearance_key = stage_key(stage_key(scan_key, settings.tracklets), {**face_ids, "tracks": tracks.digest()})
        appearance = _appearance_stage(run, appearance_key, tracks, scanned.timeline, analyzer)
        loaded = load_gallery(
            gallery, analyzer, people=_person_detector(names),
            min_face_quality=settings.identity.naming.min_photo_quality,
        ) if gallery is not None else None
        identity_key = stage_key(appearance_key, {
            "identity": settings.identity, "gallery": gallery_fingerprint(loaded),
        })
        cast = _identity_stage(run, identity_key, (tracks, report, scanned.timeline, appearance), loaded)
        recorded = _recorded_seconds(run.manifest, ("scan", "appearance"))
    if out is None:
        usercache.evict(keep=folder)
    times = {**scanned.timer.seconds, **run.seconds}
    members = tuple(m.key for m in loaded.members) if loaded is not None else ()
    return Analysis(folder, info, scanned.timeline, tracks, cast, times, members, recorded, tuple(run.reused))


def _recorded_seconds(manifest: Manifest, stages: tuple[str, ...]) -> dict[str, float]:
    """The stage times kept in the manifest by the runs that computed ``stages`` (none for old folders)."""
    recorded: dict[str, float] = {}
    for stage in stages:
        seconds = manifest.info(stage).get("seconds")
        if isinstance(seconds, dict):
            recorded.update({str(k): float(v) for k, v in seconds.items() if isinstance(v, (int, float))})
    return recorded


def _analysis_folder(video: Path, digest: str, out: Path | None, settings: AnalysisSettings) -> Path:
    """``out``, or the user-cache folder of this video's content and model choice (marked as used)."""
    if out is not None:
        return ensure_writable_dir(Path(out), "analysis folder", "--out")
    usercache.max_cache_bytes()  # a bad $FANCAM_CACHE_MAX_GB fails now, not after the analysis
    # One folder per model choice (each --quality keeps its analysis); other settings are stage keys in it.
    key = stage_key(digest, {"quality": settings.quality, "detector": settings.detector,
                             "face_model": settings.face_model})
    folder = usercache.analysis_dir(digest, settings.quality, key)
    folder = ensure_writable_dir(folder, "analysis folder in the user cache", f"${models.ENV_HOME}")
    usercache.mark_used(folder, {"video": video.name, "sha256": digest, "preset": settings.quality,
                                 "detector": settings.detector, "face_model": settings.face_model})
    return folder


def check_gallery_folder(gallery: Path) -> None:
    """Fail early (before the long analysis) when the gallery folder cannot be a gallery."""
    gallery = Path(gallery)
    if not gallery.is_dir():
        what = "is a file, not a folder" if gallery.exists() else "not found"
        raise GalleryError(
            f"gallery folder {what}: {str(gallery)!r} (expected GALLERY/<group>/<member>/*.jpg)"
        )


def _nobody_message(video: Path, scanned: ScanResult, detector: str, rules: TrackletConfig) -> str:
    n = scanned.timeline.n_frames
    if not len(scanned.raw):
        return (f"no people found in {str(video)!r}: the person detector ({detector}) found nobody in "
                f"{n} frames; if people are there but small or dark, try --quality balanced")
    return (f"no one to follow in {str(video)!r}: people were detected, but nobody was at least "
            f"{rules.min_height:.0%} of the frame height for {rules.min_duration_s:g} s or more")


def make_face_analyzer(names: dict[str, str]) -> FaceAnalyzer:
    """The face analyzer of the chosen face detector and embedder."""
    if names["face_embedder"] != models.DLIB_RESNET:
        raise ModelError(
            f"face embedder {names['face_embedder']!r} is registered but not supported by this fancam "
            f"version; use --face-model {models.DLIB_RESNET}"
        )
    detector = names["face_detector"]
    if detector == models.DLIB_HOG:
        return FaceAnalyzer(FaceConfig(detector=models.DLIB_HOG))
    return FaceAnalyzer(FaceConfig(detector=models.YUNET, yunet_model=models.ensure_model(detector)))


def _person_detector(names: dict[str, str]) -> Detector:
    """The preset's person detector (finds the whole person in gallery photos)."""
    return make_detector(names["detector"], model_path=models.ensure_model(names["detector"]))


def gallery_fingerprint(gallery: Gallery | None) -> str | None:
    """Digest of the gallery photos in use and the face models that embedded them."""
    if gallery is None:
        return None
    digest = hashlib.sha256(gallery.model_id.encode())
    for member in gallery.members:
        for photo in member.all_photos:
            digest.update(f"{member.key} {file_sha256(photo)}\n".encode())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------ scan stage

@dataclass(frozen=True)
class _Run:
    """What every stage of one analysis run needs."""

    video: Path
    info: VideoInfo
    folder: Path
    manifest: Manifest
    settings: AnalysisSettings
    progress: Progress
    seconds: dict[str, float] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)


def _scan_stage(run: _Run, key: str, detector_name: str) -> ScanResult:
    cached = load_scan(run.folder / SCAN_FILE) if run.manifest.valid("scan", key) else None
    if cached is not None:
        log.info("reusing the detection and tracking in %s", run.folder)
        if cached.skipped:  # say it again: the user may not have seen the first run
            ranges = ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in cached.skipped)
            log.warning("%s: could not decode %s; those parts were skipped", run.video, ranges)
        _warn_if_cut_short(run, cached)
        run.reused.append("scan")
        return cached
    detector = make_detector(detector_name, model_path=models.ensure_model(detector_name))
    with progress_bar(run.info.n_frames, "detect+track", enabled=run.progress) as bar:
        result = scan(run.video, run.info, detector, run.settings.scan, progress=bar.update)
    n = result.timeline.n_frames
    if n < 2:
        raise VideoError(f"{str(run.video)!r} has {n} decodable video frame{'s' * (n != 1)}: it is a "
                         "still picture or damaged; fancam needs a moving video")
    _warn_if_cut_short(run, result)
    run.manifest.forget("scan")
    save_scan(run.folder / SCAN_FILE, result)
    info = {"seconds": result.timer.seconds, "stride": result.stride}
    run.manifest.record("scan", key, [SCAN_FILE], info)
    return result


def _warn_if_cut_short(run: _Run, scanned: ScanResult) -> None:
    """Warn when far fewer seconds decoded than the file claims (a truncated download)."""
    claimed = run.info.duration_s
    step = 1.0 / run.info.fps if run.info.fps > 0 else 0.0
    decoded = max([float(scanned.timeline.t[-1]) + step] + [b for _, b in scanned.skipped])
    if claimed and decoded < 0.9 * claimed - 2 * step:
        log.warning("%s: only %.1f s of the %.1f s the file announces could be decoded; the end of the "
                    "file is missing or damaged (was the download complete?)", run.video, decoded, claimed)


# ------------------------------------------------------------------------------ appearance stage

def _appearance_stage(
    run: _Run, key: str, tracks: TrackTable, timeline: Timeline, analyzer: FaceAnalyzer
) -> Appearance:
    path = run.folder / APPEARANCE_FILE
    cached = load_appearance(path, len(tracks)) if run.manifest.valid("appearance", key) else None
    if cached is not None:
        run.reused.append("appearance")
        return cached
    start = time.perf_counter()
    rows = sample_rows(tracks, crowding(tracks), timeline, (run.info.width, run.info.height),
                       run.settings.sampling)
    appearance = extract_appearance(run.video, tracks, rows, analyzer, progress=run.progress,
                                    n_frames=timeline.n_frames)
    run.manifest.forget("appearance")
    save_appearance(path, appearance)
    seconds = {"appearance": time.perf_counter() - start}
    run.seconds.update(seconds)
    run.manifest.record("appearance", key, [APPEARANCE_FILE], {"seconds": seconds, "samples": len(rows)})
    return appearance


# -------------------------------------------------------------------------------------- identity stage

def _identity_stage(
    run: _Run,
    key: str,
    inputs: tuple[TrackTable, TrackletReport, Timeline, Appearance],
    gallery: Gallery | None,
) -> Cast:
    tracks, report, timeline, appearance = inputs
    path = run.folder / CAST_FILE
    cached = load_cast(path, len(tracks)) if run.manifest.valid("identity", key) else None
    if cached is not None:
        run.reused.append("identity")
        return cached
    with progress_bar(1, "identity", enabled=run.progress, unit="stage") as bar:
        result = identify(tracks, timeline, appearance, report, gallery, run.settings.identity)
        cast = make_people(tracks, result.cluster, result.naming, timeline, run.info.height, result.membership)
        run.manifest.forget("identity")
        save_cast(path, cast)
        write_tracks(run.folder / TRACKS_CSV, tracks, cast, timeline, bridge_s=run.settings.tracklets.max_gap_s)
        write_json_atomic(run.folder / PEOPLE_JSON, people_document(run.info, cast, gallery, result.group))
        plot_identity_timeline(run.folder / TIMELINE_PNG, tracks, cast, timeline)
        bar.update(1)
    run.manifest.record("identity", key, [CAST_FILE, TRACKS_CSV, PEOPLE_JSON, TIMELINE_PNG])
    return cast


