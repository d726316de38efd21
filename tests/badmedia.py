"""Generators of the awkward files people feed fancam with (used by the robustness tests).

Everything is written with PyAV into a folder the test owns; nothing here is a test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

MS = Fraction(1, 1000)


def synth_video(  # noqa: PLR0913 - every property of a test video is a knob
    path: Path,
    n: int = 30,
    size: tuple[int, int] = (160, 120),
    *,
    fps: float = 30.0,
    codec: str = "libx264",
    rotation: int = 0,
    frame_ms: Callable[[int], int] | None = None,
    audio: bool = False,
) -> Path:
    """A video of a coloured block moving over grey (nobody to detect).

    Args:
        path: Output file (the container follows the suffix).
        n: Number of frames.
        size: Stored (width, height); odd sizes need a codec that accepts them (``mpeg4``).
        fps: Nominal rate; frame times are ``i / fps`` unless ``frame_ms`` is given.
        codec: Video codec.
        rotation: Display rotation in degrees written into the stream (display matrix).
        frame_ms: Duration (ms) of frame ``i``, for variable frame rate.
        audio: Add a stereo AAC track of the same duration.
    """
    width, height = size
    with av.open(str(path), "w") as container:
        options = {"preset": "ultrafast"} if codec == "libx264" else {}
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001), options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = MS
        if rotation:
            stream.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=48000)
            sound.layout = "stereo"
        t_ms = 0
        for i in range(n):
            image = np.full((height, width, 3), 90, np.uint8)
            x = (4 * i) % max(1, width - width // 5)
            image[height // 3: height // 3 + height // 5, x: x + width // 5] = (220, 60, 60)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = t_ms, MS
            container.mux(stream.encode(frame))
            t_ms += frame_ms(i) if frame_ms else int(round(1000 / fps))
        container.mux(stream.encode(None))
        if sound is not None:
            _mux_silence(container, sound, t_ms / 1000)
    return Path(path)


def _mux_silence(container: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    rate = 48000
    for start in range(0, int(seconds * rate), 1024):
        frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), "fltp", "stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def audio_only(path: Path, seconds: float = 1.0) -> Path:
    """An AAC audio file without any video stream (``.m4a`` or ``.mp4``)."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=48000)
        stream.layout = "stereo"
        _mux_silence(container, stream, seconds)
    return Path(path)


def still_image(path: Path, size: tuple[int, int] = (320, 240)) -> Path:
    """A JPEG (whatever ``path``'s suffix says) of a grey picture."""
    ok, data = cv2.imencode(".jpg", np.full((size[1], size[0], 3), 120, np.uint8))
    assert ok
    Path(path).write_bytes(data.tobytes())
    return Path(path)


def mdat_span(data: bytes) -> tuple[int, int]:
    """(start, end) byte offsets of the payload of the top-level ``mdat`` box of an MP4."""
    pos = 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos: pos + 4], "big")
        if data[pos + 4: pos + 8] == b"mdat":
            return pos + 8, pos + size
        pos += size
    raise ValueError("no mdat box")


def truncated_copy(source: Path, dest: Path, fraction: float = 0.5) -> Path:
    """The first ``fraction`` of a file's bytes (a download that stopped)."""
    data = Path(source).read_bytes()
    Path(dest).write_bytes(data[: int(len(data) * fraction)])
    return Path(dest)


def garbage_copy(source: Path, dest: Path, at: float = 0.4, length: int = 4000, seed: int = 0) -> Path:
    """A copy with ``length`` random bytes written over the media data at ``at`` of its payload."""
    data = bytearray(Path(source).read_bytes())
    start, end = mdat_span(bytes(data))
    pos = start + int((end - start) * at)
    data[pos: pos + length] = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    Path(dest).write_bytes(bytes(data))
    return Path(dest)


def blanked_copy(source: Path, dest: Path) -> Path:
    """A copy whose media data is all zeros: a valid container without a decodable frame."""
    data = bytearray(Path(source).read_bytes())
    start, end = mdat_span(bytes(data))
    data[start:end] = bytes(end - start)
    Path(dest).write_bytes(bytes(data))
    return Path(dest)


def one_dancer_clip(
    source: Path, dest: Path, seconds: float, keep_x: tuple[int, int], visible_s: float | None = None,
) -> Path:
    """Re-encode the start of a dance clip keeping one dancer: pixels outside ``keep_x`` are black.

    Args:
        source: A real dance clip.
        dest: Output file.
        seconds: Length of the output.
        keep_x: (x1, x2) column range (displayed pixels) left visible.
        visible_s: After this time every frame is black (the dancer leaves); None = never.
    """
    with av.open(str(source)) as src, av.open(str(dest), "w") as out:
        stream = src.streams.video[0]
        options = {"preset": "ultrafast", "crf": "23"}
        video = out.add_stream("libx264", rate=stream.average_rate, options=options)
        video.width, video.height = stream.codec_context.width, stream.codec_context.height
        video.pix_fmt = "yuv420p"
        first = None
        for frame in src.decode(stream):
            first = frame.pts if first is None else first
            t = float((frame.pts - first) * frame.time_base)
            if t >= seconds:
                break
            image = frame.to_ndarray(format="rgb24")
            image[:, : keep_x[0]] = 0
            image[:, keep_x[1]:] = 0
            if visible_s is not None and t >= visible_s:
                image[:] = 0
            picture = av.VideoFrame.from_ndarray(image, format="rgb24")
            picture.pts, picture.time_base = frame.pts - first, frame.time_base
            out.mux(video.encode(picture))
        out.mux(video.encode(None))
    return Path(dest)


def digest(path: Path) -> str:
    """sha256 of a file (to prove an input was not touched)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, tuple[int, float, str]]:
    """(size, mtime, sha256) of every file under ``folder``, by relative path."""
    folder = Path(folder)
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime, digest(p))
        for p in sorted(folder.rglob("*")) if p.is_file()
    }
