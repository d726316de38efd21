"""Write H.264 MP4 files with PyAV: video frames in, source audio re-encoded to AAC alongside.

The output is written to a hidden temporary file in the destination folder and renamed only when it
is complete (an interrupted or failed render leaves nothing under the final name). The MP4 is
``faststart`` (index at the front, playable while downloading).

Audio is aligned sample-accurately to the first output frame: output time 0 is a given instant of the
source's clock (the presentation time of the first output frame), and every decoded audio sample is
placed by its own timestamp relative to that instant. Samples before it are dropped, a late audio
start is padded with silence, gaps in the source audio stay gaps (filled with silence), and the audio
ends with the video.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np
from numpy.typing import NDArray

from fancam.errors import InputError, ProcessingError
from fancam.io.cache import publish, temp_path_beside
from fancam.types import FALLBACK_FPS

log = logging.getLogger(__name__)

TIME_BASE = Fraction(1, 90000)
"""Time base of the output video timestamps (exact for every common frame rate)."""
FAST_PRESET_PIXELS = 540 * 960
"""Outputs with more pixels than this get x264's ``superfast`` preset by default, others ``veryfast``."""
SOFT_UPSCALE = 3.0
"""Large outputs enlarged at least this much from the source (``--height 1920`` of a small crop) are
soft: x264's ``superfast`` analysis finds no detail to spend its time on. They are encoded with
``ultrafast`` plus CABAC and the deblocking filter (:data:`SOFT_X264_PARAMS`), which takes half the
CPU time at about the same size and quality. Measured at CRF 20 on 1080x1920 outputs: dance2's
person-1 crop (3.7x) 13 vs 28 ms per frame, 10.1 vs 10.4 Mbit/s, PSNR 49.1 vs 49.5 dB; gillhung 4x
10.6 vs 22.6 ms, +8% bits, +0.4 dB; facenet crowd 3.6x 3.8 vs 9.2 ms, +10% bits, -0.4 dB. At 2x and
1.5x (dance2) superfast's files are 30-35% smaller, so they keep it."""
SOFT_X264_PARAMS = "cabac=1:deblock=1"
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
"""Sample rates the AAC encoder accepts; other rates are resampled to 48 kHz."""


@dataclass(frozen=True)
class EncodeConfig:
    """Encoder settings.

    Attributes:
        preset: x264 preset, or None to choose by output size (:data:`FAST_PRESET_PIXELS`):
            ``veryfast`` for small outputs (crop-native renders of sources up to 1080p landscape
            encode several times faster than real time, at ~60% of ``superfast``'s file size),
            ``superfast`` above (on two cores ``veryfast`` runs at about half its speed, which puts
            a 1080x1920 output well below real time), and for large outputs scaled up a lot
            (:data:`SOFT_UPSCALE`) ``ultrafast`` with CABAC and deblocking (:func:`x264_options`).
            Plain ``ultrafast`` is ~1.5-2x faster than ``superfast`` at ~1.7x the file size.
        crf: x264 constant rate factor (lower = better quality, bigger file; 18-23 is typical).
        audio_bitrate: AAC bit rate in bits per second.
        threads: Encoder threads (0 = automatic).
    """

    preset: str | None = None
    crf: int = 20
    audio_bitrate: int = 160_000
    threads: int = 0


@dataclass(frozen=True)
class ColourTags:
    """Colour description written into the H.264 stream (FFmpeg enum values).

    Attributes:
        colorspace: YUV matrix (1 = BT.709, 6 = BT.601 SMPTE 170M).
        primaries: Colour primaries (1 = BT.709, 6 = SMPTE 170M).
        trc: Transfer characteristics (1 = BT.709, 6 = SMPTE 170M).
        full_range: Whether samples use the full 0-255 range (JPEG) rather than 16-235.
    """

    colorspace: int = 1
    primaries: int = 1
    trc: int = 1
    full_range: bool = False


@dataclass(frozen=True)
class AudioSource:
    """Where the output's audio comes from.

    Attributes:
        path: Source media file (its first audio stream is used).
        start_s: Instant of the source's clock (``pts * time_base`` of its streams, seconds) that
            becomes output time 0, i.e. the presentation time of the first output frame.
        share: Sound shared with other outputs of the same frames (:class:`AudioShare`): this
            writer encodes it for them (``follower`` None) or copies it (``follower`` = its number).
        follower: This writer's number among the share's followers, or None for the leader.
    """

    path: Path
    start_s: float
    share: AudioShare | None = None
    follower: int | None = None


class AudioShare:
    """The sound of one output copied into others that start and end at the same source frames.

    ``fancam render --all`` writes the same sound into every fancam: the first writer (the leader)
    decodes and encodes it; every other writer (a follower) muxes copies of the leader's AAC packets
    into an identical AAC stream. The writers may run in different threads; a follower finishes after
    its leader (the caller closes the leader first).

    Args:
        followers: Number of follower writers.
    """

    def __init__(self, followers: int) -> None:
        self._inboxes: list[collections.deque[av.Packet]] = [collections.deque() for _ in range(followers)]
        self._done = threading.Event()
        self._failed = False

    def publish(self, packet: av.Packet) -> None:
        """Copy an encoded packet of the leader (before the leader muxes it) to every follower."""
        data = bytes(packet)
        for inbox in self._inboxes:
            copy = av.Packet(data)
            copy.pts, copy.dts, copy.duration = packet.pts, packet.dts, packet.duration
            copy.time_base = packet.time_base
            inbox.append(copy)

    def end(self, failed: bool = False) -> None:
        """The leader has published its last packet (or failed)."""
        self._failed = failed
        self._done.set()

    @property
    def ended(self) -> bool:
        """Whether the leader has finished (or failed)."""
        return self._done.is_set()

    def take(self, follower: int, *, wait: bool = False) -> list[av.Packet]:
        """The packets published for ``follower`` since the last call (all of them with ``wait``)."""
        if wait:
            self._done.wait()
            if self._failed:
                raise ProcessingError("the output whose sound this one copies failed")
        inbox, taken = self._inboxes[follower], []
        while inbox:
            taken.append(inbox.popleft())
        return taken


def has_audio(path: Path) -> bool:
    """Whether a media file has an audio stream."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            return bool(container.streams.audio)
    except (av.FFmpegError, OSError) as e:
        raise InputError(f"cannot open {str(path)!r}: {e}") from e


def x264_options(config: EncodeConfig, size: tuple[int, int], upscale: float = 1.0) -> dict[str, str]:
    """x264 options for an output of ``size`` enlarged ``upscale`` times from its source.

    A preset in ``config`` is used as given; otherwise ``veryfast`` for small outputs, ``superfast``
    above :data:`FAST_PRESET_PIXELS`, and for large outputs enlarged at least :data:`SOFT_UPSCALE`
    times, ``ultrafast`` with CABAC and deblocking.
    """
    options = {"crf": str(config.crf)}
    if config.preset:
        return {"preset": config.preset, **options}
    if size[0] * size[1] <= FAST_PRESET_PIXELS:
        return {"preset": "veryfast", **options}
    if upscale >= SOFT_UPSCALE:
        return {"preset": "ultrafast", "x264-params": SOFT_X264_PARAMS, **options}
    return {"preset": "superfast", **options}


class VideoWriter:
    """Context manager writing one H.264 (yuv420p) MP4, atomically, with optional AAC audio.

    Example:
        >>> with VideoWriter(Path("out.mp4"), (360, 640), rate=30.0) as out:  # doctest: +SKIP
        ...     for t, frame in frames:
        ...         out.write(frame, t)

    Args:
        path: Destination (``.mp4``; ``.mov`` is written as QuickTime).
        size: Output (width, height) in pixels; both even.
        rate: Nominal frame rate (frames per second) for the encoder's rate control.
        audio: Audio to re-encode into the file, or None for a file without audio.
        config: Encoder settings.
        colour: Colour tags of the frames (default BT.709, limited range).
        upscale: How much the frames were enlarged from their source (output height / source
            height); the default preset depends on it (:data:`SOFT_UPSCALE`).
    """

    def __init__(  # noqa: PLR0913 - an output file has this many independent properties
        self,
        path: Path,
        size: tuple[int, int],
        *,
        rate: float,
        audio: AudioSource | None = None,
        config: EncodeConfig | None = None,
        colour: ColourTags | None = None,
        upscale: float = 1.0,
    ) -> None:
        width, height = (int(v) for v in size)
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"output size must be positive and even, got {width}x{height}")
        self.path = Path(path)
        self.size = (width, height)
        self._rate = Fraction(rate if rate > 0 else FALLBACK_FPS).limit_denominator(1001)
        self._audio_source = audio
        self._config = config or EncodeConfig()
        self._colour = colour or ColourTags()
        self._upscale = upscale
        self._tmp: Path | None = None
        self._container: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._audio: _AudioTranscoder | _AudioCopy | None = None
        self._last_t: float | None = None
        self._step: float = float(1 / self._rate)
        self.frames_written = 0

    def __enter__(self) -> VideoWriter:
        if not self.path.parent.is_dir():
            raise InputError(f"output folder does not exist: {str(self.path.parent)!r}")
        fmt = "mov" if self.path.suffix.lower() == ".mov" else "mp4"
        self._tmp = temp_path_beside(self.path)
        try:
            options = {"movflags": "+faststart"}
            self._container = av.open(str(self._tmp), mode="w", format=fmt, options=options)
            self._stream = self._add_video_stream(self._container)
            source = self._audio_source
            if source is not None and source.share is not None and source.follower is not None:
                self._audio = _AudioCopy(source, self._container, self._config)
            elif source is not None:
                self._audio = _AudioTranscoder(source, self._container, self._config)
        except BaseException:
            self._abort()
            raise
        return self

    def _add_video_stream(self, container: av.container.OutputContainer) -> av.VideoStream:
        options = x264_options(self._config, self.size, self._upscale)
        cfg = self._config
        stream = container.add_stream("libx264", rate=self._rate, options=options)
        stream.width, stream.height = self.size
        stream.pix_fmt = "yuv420p"
        ctx = stream.codec_context
        ctx.time_base = TIME_BASE
        ctx.thread_count = cfg.threads
        ctx.colorspace, ctx.color_primaries, ctx.color_trc = (
            self._colour.colorspace, self._colour.primaries, self._colour.trc,
        )
        ctx.color_range = 2 if self._colour.full_range else 1
        return stream

    def write(self, frame: av.VideoFrame, t: float) -> None:
        """Encode one frame shown at ``t`` seconds from the output's start (increasing).

        The frame is converted to the output size and yuv420p by the encoder if it is not already.
        """
        if self._container is None or self._stream is None:
            raise RuntimeError("VideoWriter.write() outside its with-block")
        if self._last_t is not None:
            if t <= self._last_t:
                raise ValueError(f"frame times must increase: {t} after {self._last_t}")
            self._step = t - self._last_t
        self._last_t = t
        frame.pts = int(round(t / TIME_BASE))
        frame.time_base = TIME_BASE
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1
        if self._audio is not None:
            self._audio.pump(t + self._step)

    @property
    def duration_s(self) -> float:
        """Duration of what was written so far: last frame time plus one frame interval."""
        return 0.0 if self._last_t is None else self._last_t + self._step

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._abort()
            return
        try:
            self._finish()
        except BaseException:
            self._abort()
            raise

    def _finish(self) -> None:
        assert self._container is not None and self._stream is not None and self._tmp is not None
        if self.frames_written == 0:
            raise ProcessingError(f"no frames to write to {str(self.path)!r} (empty time range?)")
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        if self._audio is not None:
            stops = self._audio.finish(self.duration_s)
            if stops is not None:
                log.warning("%s: the sound of %s stops at %.1f s of this %.1f s video; the rest is silent "
                            "(the audio in the source ends early: is the file truncated or damaged?)",
                            os.path.abspath(self.path), self._audio_source.path if self._audio_source else "?",
                            stops, self.duration_s)
        self._container.close()
        self._container = None
        publish(self._tmp, self.path)
        self._tmp = None

    def _abort(self) -> None:
        if self._audio is not None:
            self._audio.close()
        if self._container is not None:
            try:
                self._container.close()
            except (av.FFmpegError, OSError) as e:
                log.debug("closing an aborted output: %s", e)
            self._container = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


SILENT_END_S = 0.5
"""The sound ending this much earlier than the video, while the file announces more, is reported. In
the ../shared/data clips the audio ends at most 0.02 s before the video (tiktok_stage_ballet); a copy
of fiyud_dance3 cut at 60% of its bytes loses the sound of its last 1.0 s."""


class _AudioTranscoder:
    """Decode the source's audio, place samples by timestamp, re-encode to AAC into an output."""

    def __init__(
        self, source: AudioSource, container: av.container.OutputContainer, config: EncodeConfig
    ) -> None:
        try:
            self._input = av.open(str(source.path), metadata_errors="ignore")
        except (av.FFmpegError, OSError) as e:
            raise InputError(f"cannot open {str(source.path)!r} for its audio: {e}") from e
        if not self._input.streams.audio:
            self._input.close()
            raise InputError(f"{str(source.path)!r} has no audio stream")
        in_stream = self._input.streams.audio[0]
        in_rate = int(in_stream.codec_context.sample_rate or 48000)
        self.rate, self.layout = _output_format(in_stream)
        self._share = source.share
        self._stream = container.add_stream("aac", rate=self.rate)
        self._stream.layout = self.layout
        self._stream.bit_rate = config.audio_bitrate
        self._container = container
        # Timestamps of resampled audio are only accurate to the resampler's filter delay.
        tolerance = 2 if in_rate == self.rate else self.rate // 200
        self._start_s = source.start_s
        self.announced_end_s = _announced_end(in_stream, self._input)
        self._chunks = self._placed_chunks(in_stream, source.start_s, tolerance)
        self._pending: tuple[NDArray[np.float32], int] | None = None
        self._cursor = 0  # output samples written so far

    def pump(self, until_s: float) -> None:
        """Write the audio of output times before ``until_s`` (silence fills gaps, nothing past the end)."""
        limit = int(round(until_s * self.rate))
        while self._cursor < limit:
            if self._pending is None:
                self._pending = next(self._chunks, None)
                if self._pending is None:
                    return
            samples, start = self._pending
            if start > self._cursor:  # late start or a gap in the source audio
                self._encode(np.zeros((samples.shape[0], min(start, limit) - self._cursor), np.float32))
                continue
            skip, stop = self._cursor - start, min(samples.shape[1], limit - start)
            if stop > skip:
                self._encode(np.ascontiguousarray(samples[:, skip:stop]))
            if stop >= samples.shape[1]:
                self._pending = None

    def _placed_chunks(
        self, stream: av.AudioStream, start_s: float, tolerance: int
    ) -> Iterator[tuple[NDArray[np.float32], int]]:
        """Decoded audio as (C, n) float32 chunks with their first output sample (may be negative).

        A chunk's position comes from its timestamp (source seconds minus ``start_s``); a position
        within ``tolerance`` samples of the previous chunk's end is snapped to it (rounding), and a
        chunk without timestamp follows the previous one.
        """
        resampler = av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
        expected = int(round(-start_s * self.rate))
        for frame in _decode_audio(self._input, stream):
            pos = None
            if frame is not None and frame.pts is not None and frame.time_base:
                pos = int(round((float(frame.pts * frame.time_base) - start_s) * self.rate))
            for out in resampler.resample(frame):
                samples = out.to_ndarray().astype(np.float32, copy=False)
                if pos is None or abs(pos - expected) <= tolerance:
                    pos = expected
                yield samples, pos
                expected = pos + samples.shape[1]
                pos = None

    def _encode(self, samples: NDArray[np.float32]) -> None:
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=self.layout)
        frame.sample_rate = self.rate
        frame.pts = self._cursor
        frame.time_base = Fraction(1, self.rate)
        self._cursor += samples.shape[1]
        self._mux(self._stream.encode(frame))

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            if self._share is not None:
                self._share.publish(packet)
            self._container.mux(packet)

    def finish(self, end_s: float) -> float | None:
        """Write the audio up to output time ``end_s``, flush the encoder and close the source.

        Returns:
            The output time at which the sound stops when the source's audio ends (or breaks off)
            more than :data:`SILENT_END_S` before ``end_s`` although the file announces more sound
            (a truncated or damaged file); None otherwise.
        """
        self.pump(end_s)
        self._mux(self._stream.encode(None))
        if self._share is not None:
            self._share.end()
        self.close()
        stops = self._cursor / self.rate
        announced = self.announced_end_s
        if end_s - stops > SILENT_END_S and (announced is None or announced - self._start_s - stops > SILENT_END_S):
            return stops
        return None

    def close(self) -> None:
        """Close the source file (a share still waiting learns that no more sound comes)."""
        if self._share is not None and not self._share.ended:
            self._share.end(failed=True)
        self._input.close()


class _AudioCopy:
    """A follower's sound: an AAC stream like the leader's, filled with copies of its packets."""

    def __init__(
        self, source: AudioSource, container: av.container.OutputContainer, config: EncodeConfig
    ) -> None:
        assert source.share is not None and source.follower is not None
        self._share, self._follower = source.share, source.follower
        try:
            with av.open(str(source.path), metadata_errors="ignore") as media:
                if not media.streams.audio:
                    raise InputError(f"{str(source.path)!r} has no audio stream")
                rate, layout = _output_format(media.streams.audio[0])
        except (av.FFmpegError, OSError) as e:
            raise InputError(f"cannot open {str(source.path)!r} for its audio: {e}") from e
        self._stream = container.add_stream("aac", rate=rate)
        self._stream.layout = layout
        self._stream.bit_rate = config.audio_bitrate
        self._container = container

    def pump(self, until_s: float) -> None:
        """Mux the packets the leader has published so far."""
        self._mux(self._share.take(self._follower))

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            packet.stream = self._stream
            self._container.mux(packet)

    def finish(self, end_s: float) -> float | None:
        """Mux the rest, once the leader has finished (its own report covers an early end)."""
        self._mux(self._share.take(self._follower, wait=True))
        return None

    def close(self) -> None:
        """Nothing to close (the leader reads the source)."""


def _output_format(stream: av.AudioStream) -> tuple[int, str]:
    """Sample rate and layout of the AAC stream made from a source audio stream."""
    in_rate = int(stream.codec_context.sample_rate or 48000)
    return (in_rate if in_rate in AAC_RATES else 48000), ("mono" if stream.codec_context.channels == 1 else "stereo")


def _decode_audio(
    container: av.container.InputContainer, stream: av.AudioStream
) -> Iterator[av.AudioFrame | None]:
    """Decoded frames of ``stream``, skipping undecodable packets; ends with None (resampler flush).

    A demuxer error (a file that ends early) ends the sound there; the writer reports the silence.
    """
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.FFmpegError as e:
            log.info("stopped reading the audio of %s early: %s", container.name, e)
            break
        try:
            frames = packet.decode()
        except av.FFmpegError as e:
            log.warning("skipped an undecodable audio packet: %s", e)
            continue
        yield from frames
    yield None


def _announced_end(stream: av.AudioStream, container: av.container.InputContainer) -> float | None:
    """Source-clock seconds at which the file says its audio ends (None when it does not say)."""
    if stream.duration and stream.time_base:
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        return start + float(stream.duration * stream.time_base)
    if container.duration:
        return float(container.duration) / 1e6
    return None
