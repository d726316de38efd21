"""Streaming video input with PyAV: probe a file, iterate its frames, convert only what is needed.

Frames are yielded one at a time (never the whole video in memory). Times come from presentation
timestamps (``pts * time_base``, relative to the first decoded frame), so variable frame rate does not
drift. Rotation metadata is honoured: every pixel array and every coordinate is in the frame as
displayed. A packet that fails to decode is skipped and reported, the rest of the video is kept.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

from fancam.errors import InputError, VideoError
from fancam.types import VideoInfo

log = logging.getLogger(__name__)


def check_readable_file(path: Path, what: str = "video") -> Path:
    """Return ``path`` if it is an existing, readable, non-empty file; raise InputError otherwise."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} not found: {str(path)!r}")
    if path.is_dir():
        raise InputError(f"{what} is a directory, not a file: {str(path)!r}")
    if not os.access(path, os.R_OK):
        raise InputError(f"{what} is not readable (check its permissions): {str(path)!r}")
    if path.stat().st_size == 0:
        raise InputError(f"{what} is an empty file: {str(path)!r}")
    return path


def _open(path: Path) -> av.container.InputContainer:
    check_readable_file(path)
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError) as e:
        raise VideoError(f"cannot open {str(path)!r} as a video ({e}); is it a video file?") from e
    if not container.streams.video:
        container.close()
        kind = "audio-only file" if container.streams.audio else "file without a video stream"
        raise VideoError(f"{str(path)!r} is an {kind}; fancam needs a video")
    return container


def _quarter_turns(rotation: float | int | None) -> int:
    """Counter-clockwise quarter turns for a display-matrix rotation in degrees."""
    if not rotation:
        return 0
    return int(round(float(rotation) / 90.0)) % 4


def _first_frame_rotation(container: av.container.InputContainer) -> int:
    stream = container.streams.video[0]
    try:
        for frame in container.decode(stream):
            return _quarter_turns(frame.rotation)
    except av.FFmpegError:
        return 0
    return 0


def probe(path: Path) -> VideoInfo:
    """Read a video's properties (decodes at most its first frame).

    Raises:
        InputError: the path is missing, a directory, unreadable or empty.
        VideoError: the file is not a video PyAV can open.
    """
    path = Path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        duration_s = None
        if stream.duration and stream.time_base:
            duration_s = float(stream.duration * stream.time_base)
        elif container.duration:
            duration_s = container.duration / av.time_base
        n_frames = int(stream.frames) if stream.frames else None
        if n_frames is None and duration_s and fps:
            n_frames = int(round(duration_s * fps))
        width, height = int(ctx.width), int(ctx.height)
        has_audio = bool(container.streams.audio)
        turns = _first_frame_rotation(container)
    if width <= 0 or height <= 0:
        raise VideoError(f"{str(path)!r} has a video stream without a frame size; is it corrupt?")
    if turns % 2:
        width, height = height, width
    return VideoInfo(
        path=path, width=width, height=height, rotation=turns, fps=fps, duration_s=duration_s,
        n_frames=n_frames, codec=str(ctx.name), has_audio=has_audio,
    )


@dataclass(frozen=True)
class DecodedFrame:
    """One decoded frame; pixels are converted only on request.

    Attributes:
        index: 0-based decode index.
        t: Seconds from the first decoded frame.
        av_frame: The PyAV frame (stored orientation, native pixel format).
        turns: Counter-clockwise quarter turns to display it.
    """

    index: int
    t: float
    av_frame: av.VideoFrame = field(repr=False)
    turns: int = 0

    @property
    def size(self) -> tuple[int, int]:
        """Displayed (width, height) in pixels."""
        w, h = self.av_frame.width, self.av_frame.height
        return (h, w) if self.turns % 2 else (w, h)

    def rgb(self, width: int | None = None, height: int | None = None) -> NDArray[np.uint8]:
        """Displayed frame as (H, W, 3) uint8 RGB, optionally scaled to ``width`` x ``height``.

        ``width``/``height`` are *displayed* sizes; scaling happens in swscale before rotation.
        """
        return self._convert("rgb24", width, height)

    def gray(self, width: int | None = None, height: int | None = None) -> NDArray[np.uint8]:
        """Displayed frame as (H, W) uint8 luma, optionally scaled."""
        return self._convert("gray", width, height)

    def _convert(self, fmt: str, width: int | None, height: int | None) -> NDArray[np.uint8]:
        if self.turns % 2:
            width, height = height, width
        frame = self.av_frame
        if width is None and height is None:
            image = frame.to_ndarray(format=fmt)
        else:
            image = frame.reformat(
                width=width, height=height, format=fmt, interpolation="AREA"
            ).to_ndarray()
        if self.turns:
            image = np.ascontiguousarray(np.rot90(image, k=self.turns))
        return image


@dataclass
class DecodeReport:
    """What went wrong while decoding (filled in as frames are read).

    Attributes:
        skipped: (start_s, end_s) time ranges whose packets failed to decode.
    """

    skipped: list[tuple[float, float]] = field(default_factory=list)

    def add(self, t0: float, t1: float) -> None:
        """Record a skipped range, merging it with the previous one when they touch."""
        if self.skipped and t0 <= self.skipped[-1][1] + 1.0:
            self.skipped[-1] = (self.skipped[-1][0], max(t1, self.skipped[-1][1]))
        else:
            self.skipped.append((t0, t1))


def iter_frames(
    path: Path, *, report: DecodeReport | None = None, threads: int | None = None
) -> Iterator[DecodedFrame]:
    """Decode a video's frames in order, streaming.

    Args:
        path: Video file.
        report: If given, collects the time ranges that could not be decoded.
        threads: Decoder threads (default: FFmpeg's choice).

    Yields:
        :class:`DecodedFrame` with consecutive ``index`` from 0 and ``t`` from timestamps.
    """
    report = report if report is not None else DecodeReport()
    with _open(Path(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if threads:
            stream.codec_context.thread_count = threads
        time_base = stream.time_base or Fraction(1, 90000)
        rate = stream.average_rate or stream.guessed_rate
        step = 1.0 / float(rate) if rate else 1.0 / 30.0
        index, first_pts, last_t, turns = 0, None, None, None
        for frame in _decode_tolerant(container, stream, report, time_base):
            if turns is None:
                turns = _quarter_turns(frame.rotation)
            if frame.pts is not None:
                if first_pts is None:
                    first_pts = frame.pts
                t = float((frame.pts - first_pts) * time_base)
                # A non-increasing pts (broken stream) must not break time order.
                if last_t is not None and t <= last_t:
                    t = last_t + step
            else:
                t = 0.0 if last_t is None else last_t + step
            last_t = t
            yield DecodedFrame(index=index, t=t, av_frame=frame, turns=turns)
            index += 1


def _decode_tolerant(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    report: DecodeReport,
    time_base: Fraction,
) -> Iterator[av.VideoFrame]:
    """Demux and decode packet by packet; skip (and report) packets that fail."""
    demux = container.demux(stream)
    while True:
        try:
            packet = next(demux)
        except StopIteration:
            return
        except av.FFmpegError as e:
            # A demuxer error usually means the file ends early (truncated); keep what we have.
            log.warning("stopped reading %s early: %s", container.name, e)
            return
        try:
            frames = packet.decode()
        except av.FFmpegError:
            t = float(packet.pts * time_base) if packet.pts is not None else 0.0
            dur = float(packet.duration * time_base) if packet.duration else 0.0
            report.add(t, t + dur)
            continue
        yield from frames


def count_frames(path: Path) -> int:
    """Count decodable frames by demuxing (fast, no pixel conversion)."""
    return sum(1 for _ in iter_frames(path))
