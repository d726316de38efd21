"""VideoWriter: H.264 MP4 output, atomic publishing, faststart, and sample-aligned AAC audio."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import shared_file
from fancam.errors import InputError, ProcessingError
from fancam.io.encode import AudioSource, EncodeConfig, VideoWriter

FPS = 30
SIZE = (64, 48)


def frames(n: int, size: tuple[int, int] = (64, 48)) -> list[av.VideoFrame]:
    """``n`` grey yuv420p frames with a moving bar."""
    out = []
    for i in range(n):
        image = np.full((size[1], size[0], 3), 60, np.uint8)
        image[:, (2 * i) % size[0]] = 220
        out.append(av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p"))
    return out


def top_level_boxes(path: Path) -> list[str]:
    """Types of the top-level MP4 boxes, in file order."""
    names, data, pos = [], path.read_bytes(), 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos: pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8: pos + 16])[0]
        names.append(kind.decode("latin-1"))
        if size < 8:
            break
        pos += size
    return names


def decode_audio(path: Path) -> tuple[float, int, np.ndarray]:
    """(start time s, sample rate, (n,) first-channel samples) of a file's audio."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks, start = [], None
        for frame in container.decode(stream):
            if start is None:
                start = float(frame.pts * frame.time_base)
            chunks.append(frame.to_ndarray()[0])
        return start, stream.codec_context.sample_rate, np.concatenate(chunks)


def best_shift(a: np.ndarray, b: np.ndarray, max_shift: int) -> int:
    """Shift s maximising sum a[i + s] * b[i] (a and b sampled alike); s > 0: ``a`` is late."""
    n = min(len(a), len(b)) - 2 * max_shift
    ref = b[max_shift: max_shift + n]
    shifts = range(-max_shift, max_shift + 1)
    scores = [float(np.dot(a[max_shift + s: max_shift + s + n], ref)) for s in shifts]
    return int(np.argmax(scores)) - max_shift


def test_writes_faststart_h264_atomically(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    with VideoWriter(out, SIZE, rate=FPS) as writer:
        for i, frame in enumerate(frames(15)):
            writer.write(frame, i / FPS)
            assert not out.exists()  # only the temporary file exists while writing
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    boxes = top_level_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat")  # faststart
    with av.open(str(out)) as container:
        assert not container.streams.audio
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        decoded = list(container.decode(stream))
        duration = float(stream.duration * stream.time_base)  # PyAV 18.1.1: streams close with the file
    assert len(decoded) == 15
    assert [round(float(f.pts * f.time_base) * FPS) for f in decoded] == list(range(15))
    assert duration == pytest.approx(15 / FPS, abs=1e-3)


def test_failure_leaves_no_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"previous render")
    with pytest.raises(RuntimeError), VideoWriter(out, SIZE, rate=FPS) as writer:
        writer.write(frames(1)[0], 0.0)
        raise RuntimeError("interrupted")
    assert out.read_bytes() == b"previous render"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
    with pytest.raises(ProcessingError, match="no frames"), VideoWriter(tmp_path / "e.mp4", SIZE, rate=FPS):
        pass
    assert not (tmp_path / "e.mp4").exists()


def test_rejects_bad_sizes_times_and_folders(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        VideoWriter(tmp_path / "a.mp4", (63, 48), rate=FPS)
    with pytest.raises(InputError, match="folder"), VideoWriter(tmp_path / "no" / "a.mp4", SIZE, rate=FPS):
        pass
    with pytest.raises(ValueError, match="increase"), VideoWriter(tmp_path / "b.mp4", SIZE, rate=FPS) as w:
        w.write(frames(1)[0], 0.1)
        w.write(frames(1)[0], 0.1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("start_s", [3.0, 4.0 + 17 / 44100])
def test_audio_is_sample_aligned_to_the_start(tmp_path: Path, start_s: float) -> None:
    """Output t = 0 carries the source audio of ``start_s`` (also between two AAC frames)."""
    source = shared_file("data/gillhung_dance/dance.mp4")
    out = tmp_path / "clip.mp4"
    with VideoWriter(out, SIZE, rate=FPS, audio=AudioSource(source, start_s)) as writer:
        for i, frame in enumerate(frames(60)):
            writer.write(frame, i / FPS)
    src_start, rate, src = decode_audio(source)
    out_start, out_rate, got = decode_audio(out)
    assert out_rate == rate and out_start == pytest.approx(0.0, abs=1e-6)
    assert len(got) == pytest.approx(2.0 * rate, abs=rate / FPS)  # ends with the video
    first = int(round((start_s - src_start) * rate))
    assert best_shift(got, src[first: first + len(got)], 200) == 0
    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac"
        assert float(audio.duration * audio.time_base) == pytest.approx(2.0, abs=1 / FPS)


def test_audio_starting_after_the_video_is_padded(tmp_path: Path) -> None:
    source = shared_file("data/gillhung_dance/dance.mp4")
    out = tmp_path / "clip.mp4"
    with VideoWriter(out, SIZE, rate=FPS, audio=AudioSource(source, -0.5)) as writer:
        for i, frame in enumerate(frames(45)):
            writer.write(frame, i / FPS)
    _, rate, src = decode_audio(source)
    _, _, got = decode_audio(out)
    pad = int(0.5 * rate)
    assert np.abs(got[: pad - 100]).max() < 1e-3  # silence before the source audio begins
    assert best_shift(got[pad - 200:], src, 200) == 200


def x264_settings(path: Path) -> str:
    """The settings x264 writes into its stream (an SEI text: ``... options: cabac=1 ...``)."""
    data = path.read_bytes()
    start = data.index(b"x264 - core")
    return data[start: data.index(b"\x00", start)].decode("latin-1")


@pytest.mark.parametrize(("size", "upscale", "preset"), [
    ((64, 48), 1.0, "veryfast"),  # small: x264's better preset is cheap
    ((64, 48), 4.0, "veryfast"),
    ((736, 1308), 1.0, "superfast"),  # large with the source's own detail
    ((736, 1308), 2.0, "superfast"),
    ((736, 1308), 3.7, "ultrafast"),  # large and soft (scaled up): ultrafast, CABAC and deblocking kept
])
def test_preset_follows_output_size_and_upscaling(
    tmp_path: Path, size: tuple[int, int], upscale: float, preset: str
) -> None:
    path = tmp_path / "out.mp4"
    with VideoWriter(path, size, rate=FPS, upscale=upscale) as out:
        for i, frame in enumerate(frames(3, size)):
            out.write(frame, i / FPS)
    settings = x264_settings(path)
    assert "cabac=1" in settings  # plain ultrafast turns both off
    assert "deblock=1" in settings
    # ultrafast analyses no sub-partitions (analyse=0:0); superfast and veryfast do.
    assert ("analyse=0:0 " in settings) == (preset == "ultrafast")
    assert ("subme=1 " in settings) == (preset == "superfast")
    assert ("subme=2 " in settings) == (preset == "veryfast")


def test_a_preset_given_is_used_as_is(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    with VideoWriter(path, (736, 1308), rate=FPS, upscale=4.0, config=EncodeConfig(preset="ultrafast")) as out:
        out.write(frames(1, (736, 1308))[0], 0.0)
    assert "cabac=0" in x264_settings(path)
