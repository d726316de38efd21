"""Streaming video input with PyAV: probe a file, iterate its frames, convert only what is needed.

Frames are yielded one at a time (never the whole video in memory). Times come from presentation
timestamps (``pts * time_base``, relative to the first decoded frame), so variable frame rate does not
drift. Rotation metadata is honoured: every pixel array and every coordinate is in the frame as
displayed. A packet that fails to decode is skipped and reported, the rest of the video is kept.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from fancam.errors import InputError, VideoError
from fancam.types import FALLBACK_FPS, VideoInfo

log = logging.getLogger(__name__)


def check_readable_file(path: Path, what: str = "video") -> Path:
    """Return ``path`` if it is an existing, readable, non-empty file; raise InputError otherwise.

    A file without any read permission bit counts as unreadable even for root (who could read it
    anyway): it was locked on purpose.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} not found: {str(path)!r}; check the path")
    if path.is_dir():
        raise InputError(f"{what} is a folder, not a file: {str(path)!r}")
    mode = path.stat().st_mode
    if not os.access(path, os.R_OK) or not mode & (stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH):
        raise InputError(f"{what} is not readable (no read permission): {str(path)!r}; "
                         "fix its permissions (chmod +r) or use a copy")
    if path.stat().st_size == 0:
        raise InputError(f"{what} is an empty file (0 bytes): {str(path)!r}; was the download complete?")
    return path


IMAGE_FORMATS = ("image2", "image2pipe")
"""FFmpeg demuxers of still images (besides the ``*_pipe`` ones: jpeg_pipe, png_pipe, webp_pipe...)."""


def _open(path: Path) -> av.container.InputContainer:
    check_readable_file(path)
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except PermissionError as e:
        raise InputError(f"video is not readable (permission denied): {str(path)!r}") from e
    except (av.FFmpegError, UnicodeDecodeError) as e:
        raise VideoError(f"cannot open {str(path)!r} as a video: {_why_unopenable(path, e)}") from e
    fmt = container.format.name
    if fmt in IMAGE_FORMATS or fmt.endswith("_pipe"):
        container.close()
        raise VideoError(f"{str(path)!r} is a still image ({fmt.removesuffix('_pipe')}), not a video")
    pictures = av.stream.Disposition.attached_pic
    if not [s for s in container.streams.video if not s.disposition & pictures]:
        kind = "an audio-only file" if container.streams.audio else "a file without a video stream"
        container.close()
        raise VideoError(f"{str(path)!r} is {kind}; fancam needs a video")
    return container


def _why_unopenable(path: Path, error: Exception) -> str:
    """A user-facing reason why FFmpeg could not open ``path``."""
    problem = mp4_structure_problem(path)
    if problem:
        return problem
    with open(path, "rb") as f:
        head = f.read(512)
    if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return "it is a text file, not a video (was a web page saved instead of the video?)"
    reason = getattr(error, "strerror", None) or str(error)
    return f"{reason}; the file is damaged or not a video format FFmpeg knows"


def mp4_structure_problem(path: Path) -> str | None:
    """What is wrong with the top-level boxes of an MP4/MOV file, or None (fine, or not an MP4).

    A file whose first box is ``ftyp`` is an ISO media file; without a ``moov`` box (the index,
    often written last) it cannot be played: the download or the recording did not finish.
    """
    size = Path(path).stat().st_size
    kinds: list[bytes] = []
    truncated = False
    with open(path, "rb") as f:
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            head = f.read(16)
            length, kind = int.from_bytes(head[:4], "big"), head[4:8]
            if length == 1 and len(head) == 16:
                length = int.from_bytes(head[8:16], "big")
            elif length == 0:
                length = size - pos
            if length < 8:
                break
            kinds.append(kind)
            if pos + length > size:
                truncated = True
                break
            pos += length
    if not kinds or kinds[0] != b"ftyp" or b"moov" in kinds:
        return None
    cut = " and ends early" if truncated else ""
    return ("it is an MP4/MOV file without its index ('moov' box)" + cut + ": the download or the "
            "recording did not finish; download or export it again")


def _quarter_turns(rotation: float | int | None) -> int:
    """Counter-clockwise quarter turns for a display-matrix rotation in degrees."""
    if not rotation:
        return 0
    return int(round(float(rotation) / 90.0)) % 4


def _first_frame_rotation(container: av.container.InputContainer) -> int | None:
    """Rotation of the first decodable frame, or None when no frame can be decoded at all."""
    stream = container.streams.video[0]
    time_base = stream.time_base or Fraction(1, 90000)
    for frame in _decode_tolerant(container, stream, DecodeReport(), time_base):
        return _quarter_turns(frame.rotation)
    return None


def probe(path: Path) -> VideoInfo:
    """Read a video's properties (decodes its first decodable frame).

    Raises:
        InputError: the path is missing, a directory, unreadable or empty.
        VideoError: the file is not a video PyAV can open, a still image, audio only, or has no
            decodable video frame.
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
    if turns is None:
        raise VideoError(f"{str(path)!r} has no decodable video frame: the file is damaged or holds "
                         f"no picture ({ctx.name} stream); try another copy of the video")
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

    def thumbnail(self, width: int, height: int) -> NDArray[np.uint8]:
        """Displayed frame as a small (height, width, 3) uint8 RGB image, made cheaply (cut detection).

        A large downscale with swscale's area filter costs ~1.7 ms per 1080p frame even at 64 pixels
        wide; bilinear sampling to twice the size then a 2x2 area average in OpenCV costs ~0.7 ms and
        still averages several source pixels per thumbnail pixel (the cut scores of every clip of
        ../shared/data stay within 0.15 of the area filter's, with the same cuts).
        """
        frame = self.av_frame
        w, h = (height, width) if self.turns % 2 else (width, height)  # in the stored, unrotated frame
        if frame.width < 8 * w or frame.height < 8 * h:  # a small frame: the area filter is cheap
            return self._convert("rgb24", width, height)
        large = frame.reformat(width=2 * w, height=2 * h, format="rgb24",
                               interpolation="FAST_BILINEAR").to_ndarray()
        image = np.asarray(cv2.resize(large, (w, h), interpolation=cv2.INTER_AREA), np.uint8)
        if self.turns:
            image = np.ascontiguousarray(np.rot90(image, k=self.turns))
        return image

    def gray(self, width: int | None = None, height: int | None = None) -> NDArray[np.uint8]:
        """Displayed frame as (H, W) uint8 luma, optionally scaled."""
        return self._convert("gray", width, height)

    def _convert(self, fmt: str, width: int | None, height: int | None) -> NDArray[np.uint8]:
        if self.turns % 2:
            width, height = height, width
        frame = self.av_frame
        image: NDArray[np.uint8]
        if width is None and height is None:
            image = np.asarray(frame.to_ndarray(format=fmt), np.uint8)
        else:
            image = np.asarray(frame.reformat(
                width=width, height=height, format=fmt, interpolation="AREA"
            ).to_ndarray(), np.uint8)
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
        step = 1.0 / float(rate) if rate else 1.0 / FALLBACK_FPS
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


def iter_frames_at(
    path: Path, indices: NDArray[np.int64] | list[int], *, n_frames: int | None = None
) -> Iterator[DecodedFrame]:
    """Decode only the frames at decode ``indices`` (as numbered by :func:`iter_frames`), in order.

    Frames no other frame refers to (about half of them in phone H.264/HEVC with B-frames: gillhung
    dance2 361 of 714) are skipped inside the decoder unless wanted (FFmpeg's ``skip_frame=NONREF``,
    decided per packet), which saves ~45% of the decoding; the wanted frames' pixels are exactly those
    of a full decode. A frame's index is the rank of its timestamp among all packets', so this needs
    one timestamp per packet and ``n_frames`` (the count :func:`iter_frames` found) to match the packet
    count; otherwise (missing or repeated timestamps, undecodable packets) it decodes every frame as
    :func:`iter_frames` does and keeps the wanted ones.

    Args:
        path: Video file.
        indices: Wanted decode indices.
        n_frames: Number of frames :func:`iter_frames` yields for this file (None: not checked).

    Yields:
        :class:`DecodedFrame` of the wanted indices, in increasing order (``t`` from timestamps).
    """
    wanted = {int(i) for i in np.asarray(indices).reshape(-1)}
    if not wanted:
        return
    ranks = _packet_ranks(Path(path))
    if ranks is None or (n_frames is not None and len(ranks) != n_frames):
        yield from (f for f in iter_frames(path) if f.index in wanted)
        return
    done: set[int] = set()
    try:
        for frame in _decode_ranked(Path(path), ranks, wanted):
            done.add(frame.index)
            yield frame
    except av.FFmpegError as e:
        log.info("selective decoding of %s failed (%s); decoding every frame", path, e)
    missing = wanted - done
    if missing:  # not expected once the packet count matched; never return fewer frames
        yield from (f for f in iter_frames(path) if f.index in missing)


def _decode_ranked(path: Path, ranks: dict[int, int], wanted: set[int]) -> Iterator[DecodedFrame]:
    """The wanted frames, skipping unwanted non-reference frames in the decoder (see :func:`iter_frames_at`)."""
    wanted_pts = {pts for pts, rank in ranks.items() if rank in wanted}
    first_pts, last = min(ranks), max(wanted)
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        ctx = stream.codec_context
        time_base = stream.time_base or Fraction(1, 90000)
        turns = None
        for packet in container.demux(stream):
            # Set per packet: FFmpeg's frame threads copy it when the packet is submitted.
            ctx.skip_frame = "DEFAULT" if packet.pts is None or packet.pts in wanted_pts else "NONREF"
            for frame in packet.decode():
                if turns is None:
                    turns = _quarter_turns(frame.rotation)
                if frame.pts in wanted_pts:
                    index = ranks[frame.pts]
                    yield DecodedFrame(index=index, t=float((frame.pts - first_pts) * time_base),
                                       av_frame=frame, turns=turns)
                    if index == last:
                        return


def _packet_ranks(path: Path) -> dict[int, int] | None:
    """Rank in presentation order of every video packet's pts, as {pts: rank}.

    None when the file cannot be read packet by packet or a packet has no (or a repeated) timestamp.
    """
    pts: list[int] = []
    try:
        with _open(path) as container:
            for packet in container.demux(container.streams.video[0]):
                if packet.size == 0:
                    continue
                if packet.pts is None:
                    return None
                pts.append(int(packet.pts))
    except av.FFmpegError:
        return None
    if len(set(pts)) != len(pts):
        return None
    return {p: rank for rank, p in enumerate(sorted(pts))}


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


def frame_at(path: Path, t: float, *, index: int = -1) -> DecodedFrame:
    """The frame on display at ``t`` seconds from the first frame, found by seeking (not decoding from 0).

    Seeks to the key frame before ``t`` and decodes forward to the last frame that starts at or
    before ``t``, so the cost is one group of pictures whatever ``t`` is.

    Args:
        path: Video file.
        t: Seconds from the first decoded frame (as in :class:`fancam.types.Timeline`); clamped to
            the video.
        index: Decode index to label the frame with (the caller knows it from its timeline; a seek
            cannot count frames).

    Raises:
        VideoError: the file has no decodable frame.
    """
    with _open(Path(path)) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base or Fraction(1, 90000)
        first = next((f for f in _decode_tolerant(container, stream, DecodeReport(), time_base)
                      if f.pts is not None), None)
        if first is None:
            raise VideoError(f"{str(path)!r} has no decodable video frame with a timestamp")
        turns, first_pts = _quarter_turns(first.rotation), int(first.pts or 0)
        found: av.VideoFrame | None = first
        found_pts = first_pts
        if t > FRAME_TIME_TOLERANCE_S:
            container.seek(int(first_pts + Fraction(t) / time_base), stream=stream, backward=True)
            found = None
            for frame in _decode_tolerant(container, stream, DecodeReport(), time_base):
                if frame.pts is None:
                    continue
                if found is not None and float((frame.pts - first_pts) * time_base) > t + FRAME_TIME_TOLERANCE_S:
                    break
                found, found_pts = frame, int(frame.pts)
        if found is None:  # the seek landed nowhere (a damaged index): decode from the start
            return _frame_at_by_decoding(path, t, index)
        return DecodedFrame(index=index, t=float((found_pts - first_pts) * time_base), av_frame=found,
                            turns=turns)


FRAME_TIME_TOLERANCE_S = 1e-3
"""Frame times closer than this (1 ms, below any frame duration) are the same time."""


def _frame_at_by_decoding(path: Path, t: float, index: int) -> DecodedFrame:
    """:func:`frame_at` without seeking: the last frame at or before ``t``."""
    found = None
    for frame in iter_frames(path):
        if found is not None and frame.t > t + FRAME_TIME_TOLERANCE_S:
            break
        found = frame
    if found is None:
        raise VideoError(f"{str(path)!r} has no decodable video frame")
    return DecodedFrame(index=index, t=found.t, av_frame=found.av_frame, turns=found.turns)
