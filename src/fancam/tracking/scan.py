"""The first analysis pass: decode once, find shot cuts, detect people every k-th frame, track them.

Decoding runs in a background thread (PyAV releases the GIL) so it overlaps detection. Only the frames
that are detected are converted to RGB, and only at the detector's input size (scaled in swscale, much
cheaper than a full-resolution conversion). Every frame gets a tiny thumbnail for cut detection.
At a cut the tracker is reset and the new shot's first frame is detected at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from fancam.io.video import DecodedFrame, DecodeReport, iter_frames
from fancam.models import registry as models
from fancam.tracking.detect import Detector
from fancam.tracking.shots import ShotConfig, ShotDetector, thumb_size
from fancam.tracking.track import Tracker, TrackerConfig
from fancam.types import FALLBACK_FPS, Detections, Timeline, TrackTable, VideoInfo

log = logging.getLogger(__name__)

T = TypeVar("T")

Progress = Callable[[int], None]
"""Called with the number of frames just processed."""


@dataclass(frozen=True)
class ScanConfig:
    """Settings of the first pass.

    Attributes:
        detect_fps: Detections per second of video (the stride is ``round(fps / detect_fps)`` frames);
            None picks :data:`DETECT_FPS` of the detector.
        tracker: Tracker settings.
        shots: Cut-detection settings.
        detect_shot_ends: Also detect on the last frame of every shot and of the video (at most one more
            detector call per shot), so tracks reach the cut.
    """

    detect_fps: float | None = None
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    shots: ShotConfig = field(default_factory=ShotConfig)
    detect_shot_ends: bool = True

    def stride(self, fps: float, detector: str) -> int:
        """Frames between detections for a video of ``fps`` frames per second."""
        rate = self.detect_fps if self.detect_fps is not None else DETECT_FPS.get(detector, 10.0)
        if fps <= 0 or rate <= 0:
            return 1
        return max(1, int(round(fps / rate)))


DETECT_FPS = {models.SSD: 6.0}
"""Default detections per second by detector (others: 10). The SSD costs ~0.1 s per call on one
core, so 6 calls per second keep the analysis of 30 fps video near 2x real time; the tracker keeps
dancers apart at that stride (no identity switch on the labelled clip at stride 5, see track.py), and
faster detectors (YOLOX, ~20 ms) afford 10 calls per second, which is safer for fast movers."""


@dataclass
class StageTimer:
    """Wall-clock seconds spent per stage (decode wait, convert, detect, track, shots)."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, seconds: float) -> None:
        """Accumulate ``seconds`` for ``stage``."""
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds


@dataclass(frozen=True)
class ScanResult:
    """What the first pass produces.

    Attributes:
        raw: Observed tracker boxes (``observed`` is True on every row), raw track ids.
        timeline: Times of every decoded frame and the shot starts.
        skipped: Time ranges (s) whose data could not be decoded.
        stride: Frames between detections.
        n_detections: Number of detector calls.
        timer: Seconds per stage.
    """

    raw: TrackTable
    timeline: Timeline
    skipped: tuple[tuple[float, float], ...]
    stride: int
    n_detections: int
    timer: StageTimer


def prefetch(items: Iterator[T], depth: int = 8) -> Iterator[T]:
    """Run an iterator (e.g. of decoded frames) in a background thread, keeping up to ``depth`` ahead."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(done)
        except BaseException as e:  # handed to the consumer, re-raised there
            box.put(e)

    worker = threading.Thread(target=produce, name="fancam-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def detection_size(frame_size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """Even (width, height) with the longest side at most ``long_side``, aspect kept (no upscaling)."""
    w, h = frame_size
    scale = min(1.0, long_side / max(w, h))
    return max(2, int(round(w * scale / 2)) * 2), max(2, int(round(h * scale / 2)) * 2)


def scan(
    video: Path,
    info: VideoInfo,
    detector: Detector,
    config: ScanConfig,
    progress: Progress | None = None,
) -> ScanResult:
    """Decode ``video`` once: cut detection on every frame, detection + tracking every k-th frame."""
    stride = config.stride(info.fps, detector.name)
    tracker = Tracker(config.tracker, step_s=stride / (info.fps if info.fps > 0 else FALLBACK_FPS))
    shots = ShotDetector(config.shots, fps=info.fps)
    timer = StageTimer()
    report = DecodeReport()
    times: list[float] = []
    shot_starts = [0]
    rows: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    det_size = detection_size((info.width, info.height), detector.long_side_for(info.width, info.height))
    next_detect, n_detections = 0, 0
    step_frames: list[int] = []  # the frames of the tracker's steps since the last reset
    tick = time.perf_counter()
    # Cut detection runs in the decode thread, overlapping detection in this one.
    frames = _with_next(prefetch(_with_cuts(iter_frames(video, report=report), shots, timer)))
    for (frame, cut), shot_ends in frames:
        timer.add("decode", time.perf_counter() - tick)
        times.append(frame.t)
        if cut:
            shot_starts.append(frame.index)
            tracker.reset()
            step_frames = []
            next_detect = frame.index
        # The last frame of a shot (and of the video) is always detected: tracklets are only filled
        # between observations, so without it up to stride - 1 frames before every cut have no boxes.
        if frame.index >= next_detect or (shot_ends and config.detect_shot_ends):
            next_detect = frame.index + stride
            tracked = _detect_and_track(frame, det_size, detector, tracker, timer)
            n_detections += 1
            step_frames.append(frame.index)
            # Tracks confirmed now are reported from their first detection on.
            for back, earlier in tracker.earlier_rows():
                rows.append((step_frames[-1 - back], earlier.track_id, earlier.xyxy, earlier.score))
            if len(tracked):
                rows.append((frame.index, tracked.track_id, tracked.xyxy, tracked.score))
        if progress is not None:
            progress(1)
        tick = time.perf_counter()
    if report.skipped:
        ranges = ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in report.skipped)
        log.warning("%s: could not decode %s; those parts were skipped", video, ranges)
    return ScanResult(
        raw=_table(rows), timeline=Timeline(np.array(times, np.float64), np.array(shot_starts, np.int64)),
        skipped=tuple(report.skipped), stride=stride, n_detections=n_detections, timer=timer,
    )


def _with_next(items: Iterator[tuple[DecodedFrame, bool]]) -> Iterator[tuple[tuple[DecodedFrame, bool], bool]]:
    """Each (frame, cut) item with "the shot ends here": the next frame starts a new shot, or there is none."""
    previous = None
    for item in items:
        if previous is not None:
            yield previous, item[1]
        previous = item
    if previous is not None:
        yield previous, True


def _with_cuts(
    frames: Iterator[DecodedFrame], shots: ShotDetector, timer: StageTimer
) -> Iterator[tuple[DecodedFrame, bool]]:
    """Pair each frame with "a new shot starts here" (thumbnail + cut test; ``shots`` time recorded)."""
    thumb = None
    for frame in frames:
        start = time.perf_counter()
        if thumb is None:
            thumb = thumb_size(*frame.size)
        cut = shots.update(frame.thumbnail(*thumb), frame.t)
        timer.add("shots", time.perf_counter() - start)
        yield frame, cut


def _lap(timer: StageTimer, stage: str, since: float) -> float:
    now = time.perf_counter()
    timer.add(stage, now - since)
    return now


def _detect_and_track(
    frame: DecodedFrame,
    det_size: tuple[int, int],
    detector: Detector,
    tracker: Tracker,
    timer: StageTimer,
):
    """Detect on a downscaled copy of ``frame``, map boxes back to full resolution, update tracks."""
    t0 = time.perf_counter()
    image = frame.rgb(*det_size)
    t1 = _lap(timer, "convert", t0)
    dets = detector(image)
    t2 = _lap(timer, "detect", t1)
    width, height = frame.size
    scale = np.array([width / det_size[0], height / det_size[1]] * 2, np.float32)
    tracked = tracker.update(Detections(dets.xyxy * scale, dets.score) if len(dets) else dets)
    _lap(timer, "track", t2)
    return tracked


def _table(rows: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]) -> TrackTable:
    if not rows:
        return TrackTable.empty()
    # Late rows (tracks reported from before their confirmation) go back to their frame.
    rows = sorted(rows, key=lambda r: r[0])
    frames = np.concatenate([np.full(len(ids), f, np.int64) for f, ids, _, _ in rows])
    return TrackTable(
        frame=frames,
        track_id=np.concatenate([ids for _, ids, _, _ in rows]),
        xyxy=np.concatenate([b for _, _, b, _ in rows]),
        score=np.concatenate([s for _, _, _, s in rows]),
        observed=np.ones(len(frames), bool),
    )
