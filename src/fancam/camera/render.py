"""Render fancams: decode the source once, crop every frame for every job, encode each output.

Pixels stay in YUV 4:2:0 from decoder to encoder: the crop is a numpy slice of the decoded planes at
even offsets (no colour conversion), scaled straight into the output frame (OpenCV, per plane) only
when its size differs from the output's (by default the output has the crop's typical native size, so
most frames are not scaled at all). Several jobs share one decode pass (``fancam render --all``) and
their sound (encoded once); each output is cropped and encoded in its own thread while the caller's
thread decodes, so decoding and encoding use both cores. A debug job draws every box, its label and
the crops on the (downscaled) source.

Next to every output ``OUT.mp4`` the camera path actually used is written to ``OUT.crop.csv``
(DESIGN.md): one row per output frame, ``frame`` being the source decode index.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from fancam.camera.plan import CropPath, write_crop_path
from fancam.errors import InputError, ProcessingError, UsageError
from fancam.io.encode import AudioShare, AudioSource, ColourTags, EncodeConfig, VideoWriter
from fancam.io.progress import Progress, progress_bar
from fancam.io.video import DecodedFrame, iter_frames, probe
from fancam.types import Timeline

log = logging.getLogger(__name__)

DEFAULT_MIN_HEIGHT = 480
"""Smallest default output height: smaller crops are scaled up to this (the caller says so)."""
DEFAULT_MAX_HEIGHT = 1920
"""Largest default output height: larger crops (4K sources) are scaled down to this."""
_EPS = 1e-6


# ----------------------------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class RenderJob:
    """One fancam to write.

    Attributes:
        output: Destination ``.mp4`` (the camera path goes to ``<stem>.crop.csv`` beside it).
        crop_path: Crop of every source frame (from :func:`fancam.camera.plan.plan_camera`).
        size: Output (width, height) in pixels, both even (see :func:`output_size`).
        start_s: First output frame: the first source frame at or after this time (seconds).
        end_s: Output ends before this time (seconds); None = the end of the video.
        audio: Whether to include the source's audio (when it has any).
    """

    output: Path
    crop_path: CropPath
    size: tuple[int, int]
    start_s: float = 0.0
    end_s: float | None = None
    audio: bool = True


@dataclass(frozen=True)
class OverlayBoxes:
    """Labelled person boxes to draw in a debug video (e.g. the rows of ``tracks.csv``).

    Attributes:
        frame: (M,) int64 source decode indices.
        xyxy: (M, 4) float boxes in displayed-frame pixels.
        label: (M,) str label of each box (person name, tracklet number...).
    """

    frame: NDArray[np.int64]
    xyxy: NDArray[np.float64]
    label: NDArray[np.str_]

    def __post_init__(self) -> None:
        frame = np.asarray(self.frame, np.int64).reshape(-1)
        order = np.argsort(frame, kind="stable")
        xyxy = np.asarray(self.xyxy, np.float64).reshape(-1, 4)
        label = np.asarray(self.label, str).reshape(-1)
        if not len(frame) == len(xyxy) == len(label):
            raise ValueError("OverlayBoxes columns must have the same length")
        object.__setattr__(self, "frame", frame[order])
        object.__setattr__(self, "xyxy", xyxy[order])
        object.__setattr__(self, "label", label[order])

    def rows(self, index: int) -> slice:
        """Rows of frame ``index``."""
        return slice(*np.searchsorted(self.frame, [index, index + 1]).tolist())


@dataclass(frozen=True)
class DebugJob:
    """A debug video: the source with every box, its label and the crops drawn.

    Attributes:
        output: Destination ``.mp4``.
        boxes: The boxes to draw.
        crop_paths: Crop paths to draw, with a name for each (e.g. the person followed).
        start_s: First frame time (seconds).
        end_s: End time (seconds); None = the end of the video.
        max_height: The source is scaled down to at most this height (drawing and encoding cost).
    """

    output: Path
    boxes: OverlayBoxes
    crop_paths: tuple[tuple[str, CropPath], ...] = ()
    start_s: float = 0.0
    end_s: float | None = None
    max_height: int = 720


@dataclass(frozen=True)
class RenderResult:
    """What one job wrote.

    Attributes:
        output: The video file.
        crop_csv: Its camera path file (None for debug videos).
        frames: Number of frames written.
        first_frame: Source decode index of the first output frame.
        duration_s: Output duration in seconds.
        person: Id of the performer followed (:attr:`fancam.Person.id`); None for a debug video or
            when rendered without an analysis.
        note: One line for the user about a choice made for them (e.g. the framing), or None.
    """

    output: Path
    crop_csv: Path | None
    frames: int
    first_frame: int
    duration_s: float
    person: int | None = None
    note: str | None = None


def output_size(
    crop_path: CropPath,
    height: int | None = None,
    *,
    min_height: int = DEFAULT_MIN_HEIGHT,
    max_height: int = DEFAULT_MAX_HEIGHT,
) -> tuple[int, int]:
    """Output (width, height) for a crop path: even, with the crop's aspect.

    Args:
        crop_path: The camera path.
        height: Requested output height in pixels; None = the crop's native height
            (:func:`native_height`), kept within [``min_height``, ``max_height``].
        min_height: Smallest default height (a smaller crop is scaled up).
        max_height: Largest default height.

    Raises:
        UsageError: A requested height below 16 pixels.
    """
    aspect = crop_aspect(crop_path)
    if height is not None:
        if height < 16:
            raise UsageError(f"output height must be at least 16 pixels, got {height}")
        out_h = _even(height)
    else:
        out_h = _even(min(max(native_height(crop_path), min_height), max_height))
    return _even(out_h * aspect), out_h


def native_height(crop_path: CropPath) -> float:
    """Typical crop height in source pixels: the median over the ``follow`` frames (all if none)."""
    crop_h = crop_path.height.astype(np.float64)
    follow = crop_path.mode == "follow"
    return float(np.median(crop_h[follow] if follow.any() else crop_h))


def _even(value: float) -> int:
    """Nearest even integer (ties upwards, robust to float noise), at least 2."""
    return max(2, 2 * int(np.floor(value / 2 + 0.5 + 1e-6)))


def crop_aspect(crop_path: CropPath) -> float:
    """The (median) width / height of a path's crops."""
    w = crop_path.xyxy[:, 2] - crop_path.xyxy[:, 0]
    h = crop_path.xyxy[:, 3] - crop_path.xyxy[:, 1]
    return float(np.median(w.astype(np.float64) / np.maximum(h, _EPS)))


# ----------------------------------------------------------------------------------------- render
def render(
    video: Path,
    jobs: Sequence[RenderJob | DebugJob],
    *,
    encode: EncodeConfig | None = None,
    progress: Progress = True,
) -> list[RenderResult]:
    """Write every job's video from one decode pass over ``video``.

    Args:
        video: The source video.
        jobs: Fancams (:class:`RenderJob`) and debug videos (:class:`DebugJob`) to write.
        encode: Encoder settings.
        progress: Show a progress bar (tqdm, on stderr, only on a terminal).

    Returns:
        One :class:`RenderResult` per job, in order.

    Raises:
        InputError: Unreadable video or missing output folder.
        UsageError: Two jobs write the same file, a time range is empty or holds no frame (then no
            output is written).
    """
    video = Path(video)
    outputs = [Path(job.output).resolve() for job in jobs]
    if len(set(outputs)) != len(outputs):
        raise UsageError("two renders would write the same output file")
    if video.resolve() in outputs:
        raise UsageError(f"the output would overwrite the input video {str(video)!r}")
    info = probe(video)
    encode = encode or EncodeConfig()
    shares = _audio_shares(jobs, info.has_audio)
    sinks = [_make_sink(job, video, info.fps, info.has_audio, encode, shares.get(k)) for k, job in enumerate(jobs)]
    total = max((len(job.crop_path) for job in jobs if isinstance(job, RenderJob)), default=info.n_frames)
    with progress_bar(total, "render", enabled=progress) as bar:
        try:
            times = _decode_pass(video, sinks, bar.update)
        except BaseException:
            for sink in sinks:
                sink.abort()
            raise
    timeline = Timeline(np.asarray(times), np.zeros(1, np.int64))
    results = []
    try:
        for sink in sinks:
            sink.check_not_empty()
        for sink in sinks:
            results.append(sink.close(timeline))
    except BaseException:
        for sink in sinks:
            sink.abort()
        raise
    return results


def _decode_pass(video: Path, sinks: list[_Sink], advance: Callable[[int], object]) -> list[float]:
    """Decode ``video`` once, feeding every frame to the sinks that want it; the frame times seen.

    Each sink crops and encodes in its own thread (:class:`_Worker`) while this thread decodes.
    """
    times: list[float] = []
    workers = [_Worker(sink) for sink in sinks]
    try:
        for worker in workers:
            worker.start()
        for decoded in iter_frames(video):
            times.append(decoded.t)
            live = [w for w in workers if not w.sink.finished(decoded.t)]
            if not live:
                break
            frame = sliceable(decoded)
            for worker in live:
                worker.put(frame)
            advance(1)
        for worker in workers:
            worker.finish()
    except BaseException:
        for worker in workers:
            worker.stop()
        raise
    return times


QUEUE_FRAMES = 4
"""Decoded frames waiting for each output's encoder thread: enough to ride out the encoder's uneven
pace (x264 emits its first packets only after its look-ahead), few enough to keep memory flat (a 4K
frame is 12 MB; the outputs share the same frames)."""


STOP_WAIT_S = 5.0
"""How long an interrupted render waits for each encoder thread's current frame (one 4K frame encodes
in well under a second)."""


class _Worker:
    """The thread that crops and encodes one output, fed decoded frames through a bounded queue.

    The decoder (caller's thread) and every output's encoder run at the same time: PyAV releases the
    GIL while FFmpeg decodes, scales and encodes, so a render uses both cores, and ``--all`` encodes
    its outputs in parallel from one decode pass. An error in the thread is raised in the caller at
    its next :meth:`put` or at :meth:`finish`.
    """

    _END = object()

    def __init__(self, sink: _Sink) -> None:
        self.sink = sink
        self._queue: queue.Queue[object] = queue.Queue(maxsize=QUEUE_FRAMES)
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"render {sink.output.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if self._error is not None or self._stopping.is_set():
                continue  # drain, so that the caller never blocks on a full queue
            try:
                self.sink.add(item)  # type: ignore[arg-type]
            except BaseException as e:  # noqa: BLE001 - raised again in the caller's thread
                self._error = e

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, frame: DecodedFrame) -> None:
        """Hand a frame to the thread (waits while its queue is full)."""
        self._raise()
        self._queue.put(frame)

    def finish(self) -> None:
        """Wait until every frame handed over is encoded; raise the thread's error, if any."""
        self._queue.put(self._END)
        self._thread.join()
        self._raise()

    def stop(self, timeout_s: float = STOP_WAIT_S) -> None:
        """Drop the frames still queued and end the thread (after an error or an interruption).

        Waits at most ``timeout_s`` for the frame being encoded: a Ctrl-C must end the run even if the
        encoder hangs (the thread is a daemon; the caller then removes the partial outputs).
        """
        self._stopping.set()
        if self._thread.is_alive():
            with contextlib.suppress(queue.Full):
                self._queue.put(self._END, timeout=timeout_s)
            self._thread.join(timeout_s)


def _audio_shares(
    jobs: Sequence[RenderJob | DebugJob], has_audio: bool
) -> dict[int, tuple[AudioShare, int | None]]:
    """Fancams of the same time range get the same sound: encoded once, copied into the others.

    Returns:
        For each job index that shares its sound: the share and the job's follower number (None
        for the leader, the first of its group, which is closed first).
    """
    groups: dict[tuple[float, float | None], list[int]] = {}
    for k, job in enumerate(jobs):
        if isinstance(job, RenderJob) and job.audio and has_audio:
            groups.setdefault((job.start_s, job.end_s), []).append(k)
    shares: dict[int, tuple[AudioShare, int | None]] = {}
    for members in groups.values():
        if len(members) > 1:
            share = AudioShare(len(members) - 1)
            shares[members[0]] = (share, None)
            shares.update({k: (share, n) for n, k in enumerate(members[1:])})
    return shares


def _make_sink(  # noqa: PLR0913 - one output's inputs
    job: RenderJob | DebugJob, video: Path, fps: float, has_audio: bool, encode: EncodeConfig,
    share: tuple[AudioShare, int | None] | None = None,
) -> _Sink:
    if not Path(job.output).parent.is_dir():
        raise InputError(f"output folder does not exist: {str(Path(job.output).parent)!r}")
    if job.end_s is not None and job.end_s <= job.start_s:
        raise UsageError(f"the end ({job.end_s:g} s) must come after the start ({job.start_s:g} s)")
    if isinstance(job, RenderJob):
        w, h = job.size
        if w <= 0 or h <= 0 or w % 2 or h % 2:
            raise UsageError(f"output size must be positive and even, got {w}x{h}")
        return _CropSink(job, video, fps, has_audio and job.audio, encode, share)
    return _DebugSink(job, video, fps, encode)


class _Sink:
    """Shared bookkeeping of one output: time range, lazy writer, result."""

    def __init__(self, output: Path, time_range: tuple[float, float | None], fps: float) -> None:
        self.output = Path(output)
        self._start, self._end = time_range
        self._fps = fps
        self._writer: VideoWriter | None = None
        self._t0 = 0.0
        self._clock = 0.0  # source-clock seconds of t = 0
        self.frames: list[int] = []

    def finished(self, t: float) -> bool:
        """Whether frames at time ``t`` and later are past this output's end."""
        return self._end is not None and t >= self._end - _EPS

    def add(self, frame: DecodedFrame) -> None:
        """Take one decoded frame (any frame of the source, in order)."""
        if frame.index == 0:
            pts, tb = frame.av_frame.pts, frame.av_frame.time_base
            self._clock = float(pts * tb) if pts is not None and tb else 0.0
        if frame.t < self._start - _EPS or self.finished(frame.t):
            return
        if self._writer is None:
            self._t0 = frame.t
            self._writer = self._open(frame, self._clock + frame.t)
            self._writer.__enter__()
        self._writer.write(self._picture(frame), frame.t - self._t0)
        self.frames.append(frame.index)

    def _open(self, frame: DecodedFrame, clock_s: float) -> VideoWriter:
        raise NotImplementedError

    def _picture(self, frame: DecodedFrame) -> av.VideoFrame:
        raise NotImplementedError

    def abort(self) -> None:
        """Drop the unfinished output."""
        if self._writer is not None:
            self._writer.__exit__(ProcessingError, ProcessingError("aborted"), None)
            self._writer = None

    def check_not_empty(self) -> None:
        """Raise UsageError if no frame fell in this output's time range."""
        if self._writer is None:
            end = "the end" if self._end is None else f"{self._end:g} s"
            raise UsageError(f"no video frame between {self._start:g} s and {end} for {str(self.output)!r}")

    def close(self, timeline: Timeline) -> RenderResult:
        """Finish the output file (and its companion files)."""
        self.check_not_empty()
        assert self._writer is not None
        duration = self._writer.duration_s
        self._writer.__exit__(None, None, None)
        self._writer = None
        return RenderResult(self.output, None, len(self.frames), self.frames[0], duration)


class _CropSink(_Sink):
    """A fancam: crop, scale when needed, encode; then write the crop CSV."""

    def __init__(  # noqa: PLR0913 - one output's inputs
        self, job: RenderJob, video: Path, fps: float, audio: bool, encode: EncodeConfig,
        share: tuple[AudioShare, int | None] | None = None,
    ) -> None:
        super().__init__(job.output, (job.start_s, job.end_s), fps)
        self._share = share
        self._job = job
        self._video = video
        self._audio = audio
        self._encode = encode
        self._aspect = crop_aspect(job.crop_path)
        self._warned = False

    def _open(self, frame: DecodedFrame, clock_s: float) -> VideoWriter:
        audio = None
        if self._audio:
            share, follower = self._share or (None, None)
            audio = AudioSource(self._video, clock_s, share, follower)
        upscale = self._job.size[1] / max(native_height(self._job.crop_path), 1.0)
        return VideoWriter(
            self.output, self._job.size, rate=self._fps, audio=audio, config=self._encode,
            colour=colour_tags(frame), upscale=upscale,
        )

    def _picture(self, frame: DecodedFrame) -> av.VideoFrame:
        path = self._job.crop_path
        row = frame.index
        if row >= len(path):
            if not self._warned:
                log.warning("the video has more frames than the camera path; holding its last crop")
                self._warned = True
            row = len(path) - 1
        rect = pixel_rect(path.xyxy[row], frame.size, self._aspect)
        return crop_yuv420(frame, rect, self._job.size)

    def close(self, timeline: Timeline) -> RenderResult:
        """Finish the video, then write ``<stem>.crop.csv`` for the frames written."""
        result = super().close(timeline)
        path = self._job.crop_path
        if len(path) < timeline.n_frames:  # frames past the path's end showed its last crop
            extra = timeline.n_frames - len(path)
            path = CropPath(
                np.concatenate([path.xyxy, np.repeat(path.xyxy[-1:], extra, axis=0)]),
                np.concatenate([path.mode, np.repeat(path.mode[-1:], extra)]),
            )
        csv_path = self.output.with_suffix(".crop.csv")
        write_crop_path(csv_path, path, timeline, np.asarray(self.frames))
        return RenderResult(result.output, csv_path, result.frames, result.first_frame, result.duration_s)


class _DebugSink(_Sink):
    """The source (scaled down) with boxes, labels and crops drawn."""

    def __init__(self, job: DebugJob, video: Path, fps: float, encode: EncodeConfig) -> None:
        super().__init__(job.output, (job.start_s, job.end_s), fps)
        self._job = job
        self._video = video
        self._encode = encode
        self._size: tuple[int, int] = (2, 2)
        self._scaler = av.video.reformatter.VideoReformatter()

    def _open(self, frame: DecodedFrame, clock_s: float) -> VideoWriter:
        w, h = frame.size
        scale = min(1.0, self._job.max_height / h)
        self._size = (_even(w * scale), _even(h * scale))
        return VideoWriter(self.output, self._size, rate=self._fps, config=self._encode)

    def _picture(self, frame: DecodedFrame) -> av.VideoFrame:
        w, h = self._size
        # Its own swscale context: the frame's own (frame.rgb) may be in use in another output's thread.
        stored = (h, w) if frame.turns % 2 else (w, h)
        rgb = self._scaler.reformat(frame.av_frame, width=stored[0], height=stored[1], format="rgb24",
                                    interpolation="AREA").to_ndarray()
        image: NDArray[np.uint8] = np.ascontiguousarray(np.rot90(rgb, frame.turns) if frame.turns else rgb,
                                                        dtype=np.uint8)
        sx, sy = w / frame.size[0], h / frame.size[1]
        rows = self._job.boxes.rows(frame.index)
        for box, label in zip(self._job.boxes.xyxy[rows], self._job.boxes.label[rows], strict=True):
            _draw_box(image, box * [sx, sy, sx, sy], str(label), _colour(str(label)), 2)
        for name, path in self._job.crop_paths:
            if frame.index < len(path):
                box = path.xyxy[frame.index].astype(np.float64) * [sx, sy, sx, sy]
                state = "hidden" if path.hidden[frame.index] else path.mode[frame.index]
                _draw_box(image, box, f"crop {name} {state}", (255, 255, 255), 3, below=True)
        return av.VideoFrame.from_ndarray(image, format="rgb24")


def _colour(label: str) -> tuple[int, int, int]:
    """A stable, saturated RGB colour for a label."""
    hue = zlib.crc32(label.encode()) % 180
    hsv = np.array([[[hue, 220, 255]]], np.uint8)
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].tolist()
    return int(r), int(g), int(b)


def _draw_box(  # noqa: PLR0913 - a drawing call
    image: NDArray[np.uint8],
    box: NDArray,
    text: str,
    colour: tuple[int, int, int],
    width: int,
    below: bool = False,
) -> None:
    """Draw a rectangle with a text tag on its top (or bottom) left corner, in place."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    cv2.rectangle(image, (x1, y1), (x2, y2), colour, width)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    ty = min(y2, image.shape[0]) if below else max(th + 4, y1)
    cv2.rectangle(image, (x1, ty - th - 4), (x1 + tw + 4, ty), colour, -1)
    cv2.putText(image, text, (x1 + 2, ty - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)


# ----------------------------------------------------------------------------------------- pixels
def colour_tags(frame: DecodedFrame) -> ColourTags:
    """Colour description of a source frame; unspecified values are guessed from the frame size.

    Players guess a missing colour matrix from the *output* size, and a 1080p source cropped to 360p
    would then be decoded with the wrong matrix: the guess is made here, from the source, and written.
    """
    f = frame.av_frame
    hd = max(frame.size) >= 1280 or min(frame.size) >= 720
    default = 1 if hd else 6
    known = {1, 4, 5, 6, 7, 9, 10}  # BT.709, FCC, BT.470BG, SMPTE170M, SMPTE240M, BT.2020 NCL/CL

    def pick(value: int) -> int:
        return int(value) if int(value) in known else default

    full = f.format.name.startswith("yuvj") or int(f.color_range) == 2
    return ColourTags(pick(f.colorspace), pick(f.color_primaries), pick(f.color_trc), full)


def pixel_rect(
    xyxy: NDArray, frame_size: tuple[int, int], aspect: float | None = None
) -> tuple[int, int, int, int]:
    """Integer crop (x, y, width, height) in displayed pixels: even values, inside the frame.

    The height is rounded to even and the width derived from it with ``aspect`` (default: this
    crop's own), so crops of one float size always give the same pixel size, the one
    :func:`output_size` picks by default.
    """
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    fw, fh = frame_size[0] - frame_size[0] % 2, frame_size[1] - frame_size[1] % 2
    aspect = (x2 - x1) / max(y2 - y1, _EPS) if aspect is None else aspect
    h = min(_even(y2 - y1), fh)
    w = min(_even(h * aspect), fw)
    x = min(max(0, 2 * int(round(x1 / 2))), fw - w)
    y = min(max(0, 2 * int(round(y1 / 2))), fh - h)
    return x, y, w, h


def stored_rect(
    rect: tuple[int, int, int, int], turns: int, stored_size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Map a displayed rectangle (x, y, w, h) to the stored (unrotated) frame.

    ``turns`` counter-clockwise quarter turns take the stored frame to the displayed one
    (``displayed = np.rot90(stored, turns)``).
    """
    x, y, w, h = rect
    sw, sh = stored_size
    turns %= 4
    if turns == 1:
        return sw - y - h, x, h, w
    if turns == 2:
        return sw - x - w, sh - y - h, w, h
    if turns == 3:
        return y, sh - x - w, h, w
    return x, y, w, h


_SLICEABLE = {"yuv420p": np.uint8, "yuvj420p": np.uint8, "yuv420p10le": np.uint16}
"""Planar 4:2:0 formats cropped by slicing their planes (others are converted to yuv420p first)."""


def sliceable(frame: DecodedFrame) -> DecodedFrame:
    """The frame itself if :func:`crop_yuv420` can slice its planes, else converted to yuv420p.

    The render converts such frames once, in the decoding thread, before the outputs' threads share
    them: a frame's own swscale context (``VideoFrame.reformat``) must not be used by two threads.
    """
    if frame.av_frame.format.name in _SLICEABLE:
        return frame
    converted = av.video.reformatter.VideoReformatter().reformat(frame.av_frame, format="yuv420p")
    return DecodedFrame(index=frame.index, t=frame.t, av_frame=converted, turns=frame.turns)


def _plane(frame: av.VideoFrame, index: int, dtype: type = np.uint8) -> NDArray:
    """Writable (height, width) view of one plane of a planar frame with samples of ``dtype``."""
    plane = frame.planes[index]
    size = np.dtype(dtype).itemsize
    rows: NDArray = np.frombuffer(memoryview(plane), dtype).reshape(plane.height, plane.line_size // size)
    return rows[:, : plane.width]


def crop_yuv420(
    frame: DecodedFrame, rect: tuple[int, int, int, int], size: tuple[int, int] | None = None
) -> av.VideoFrame:
    """Crop a displayed rectangle (x, y, w, h), even values, out of a frame, as a yuv420p frame.

    Planar 4:2:0 frames (8-bit, JPEG-range or 10-bit) are sliced plane by plane, so only the crop is
    ever touched: no colour conversion, and no copy of the whole frame (10-bit crops are converted
    to 8 bits); other formats are converted to yuv420p first. Rotated frames are cropped in stored
    orientation, then rotated.

    Args:
        frame: The decoded frame.
        rect: Displayed rectangle (x, y, w, h), even values, inside the frame.
        size: Output (width, height), both even; None = the rectangle's size. The crop is scaled
            straight from the decoded planes into the output frame (OpenCV: area averaging when
            shrinking, bicubic when enlarging), with no intermediate copy.
    """
    src = frame.av_frame
    fmt = src.format.name
    if fmt not in _SLICEABLE:
        src, fmt = src.reformat(format="yuv420p"), "yuv420p"
    dtype = _SLICEABLE[fmt]
    x, y, w, h = rect
    out_w, out_h = (w, h) if size is None else size
    sx, sy, sw, sh = stored_rect(rect, frame.turns, (src.width, src.height))
    sx, sy = sx - sx % 2, sy - sy % 2
    out = av.VideoFrame(out_w, out_h, "yuv420p10le" if dtype is np.uint16 else "yuv420p")
    shrink = out_h < h
    for i, step in enumerate((1, 2, 2)):
        part = _plane(src, i, dtype)[sy // step: (sy + sh) // step, sx // step: (sx + sw) // step]
        if frame.turns:
            part = np.rot90(part, frame.turns)
        target = _plane(out, i, dtype)
        if target.shape == part.shape:
            target[:] = part
        else:
            interpolation = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
            cv2.resize(part, (target.shape[1], target.shape[0]), dst=target, interpolation=interpolation)
    return out.reformat(format="yuv420p") if dtype is np.uint16 else out
