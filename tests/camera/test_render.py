"""Rendering: YUV cropping, A/V sync with trimming, durations, audio-less sources, one pass for many jobs."""

from __future__ import annotations

import csv
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import shared_file
from fancam.camera.plan import CropPath
from fancam.camera.render import (
    DebugJob,
    OverlayBoxes,
    RenderJob,
    crop_yuv420,
    output_size,
    pixel_rect,
    render,
)
from fancam.errors import InputError, UsageError
from fancam.io.tables import load_crop
from fancam.io.video import DecodedFrame, iter_frames

FPS = 30
SIZE = (320, 240)
N_FRAMES = 90
FLASHES = (20, 47, 71)
RATE = 48000


@pytest.fixture(scope="module")
def av_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s of dark frames with white flashes at FLASHES, and an audio click at each flash."""
    path = tmp_path_factory.mktemp("clip") / "flash.mp4"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = *SIZE, "yuv420p"
        audio = container.add_stream("aac", rate=RATE)
        audio.layout = "stereo"
        for i in range(N_FRAMES):
            image = np.full((SIZE[1], SIZE[0], 3), 235 if i in FLASHES else 20, np.uint8)
            image[100:140, (3 * i) % 280: (3 * i) % 280 + 40] = (200, 60, 60)  # a moving block
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        samples = np.zeros((2, N_FRAMES * RATE // FPS), np.float32)
        for i in FLASHES:
            start = i * RATE // FPS
            samples[:, start: start + 240] = 0.8 * np.sign(np.sin(np.arange(1, 241) * 0.3))
        for k in range(0, samples.shape[1], 1024):
            chunk = np.ascontiguousarray(samples[:, k: k + 1024])
            frame = av.AudioFrame.from_ndarray(chunk, "fltp", "stereo")
            frame.sample_rate, frame.pts, frame.time_base = RATE, k, Fraction(1, RATE)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return path


def centre_crop(n: int, frame_size: tuple[int, int], aspect: float = 9 / 16) -> CropPath:
    w, h = frame_size
    cw = h * aspect
    return CropPath(np.tile([(w - cw) / 2, 0, (w + cw) / 2, h], (n, 1)), np.array(["follow"] * n))


def flashes_and_clicks(path: Path) -> tuple[list[float], list[float]]:
    """Times (s) of white frames and of audio click onsets in a rendered file."""
    with av.open(str(path)) as container:
        flashes = [
            float(f.pts * f.time_base) for f in container.decode(video=0)
            if f.to_ndarray(format="gray").mean() > 128
        ]
    with av.open(str(path)) as container:
        decoded = list(container.decode(audio=0))
        start = float(decoded[0].pts * decoded[0].time_base)
        x = np.abs(np.concatenate([f.to_ndarray()[0] for f in decoded]))
    loud = np.flatnonzero(x > 0.3)
    onsets = loud[np.concatenate([[True], np.diff(loud) > RATE // 10])] if len(loud) else loud
    return flashes, [start + i / RATE for i in onsets]


def stream_duration(path: Path, kind: str) -> float:
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        return float(stream.duration * stream.time_base)


# ----------------------------------------------------------------------------------------- sync
@pytest.mark.parametrize("start_s", [0.5, 0.51])
def test_audio_stays_in_sync_after_a_start_trim(av_clip: Path, tmp_path: Path, start_s: float) -> None:
    crop = centre_crop(N_FRAMES, SIZE)
    out = tmp_path / "fancam.mp4"
    job = RenderJob(out, crop, output_size(crop, 240), start_s=start_s)
    (result,) = render(av_clip, [job], progress=False)
    first = int(np.ceil(start_s * FPS - 1e-6))  # first source frame at or after start_s
    assert result.first_frame == first and result.frames == N_FRAMES - first
    flashes, clicks = flashes_and_clicks(out)
    expected = [(i - first) / FPS for i in FLASHES]
    assert flashes == pytest.approx(expected, abs=1e-3)
    assert len(clicks) == len(flashes)
    offsets = np.array(clicks) - np.array(flashes)
    assert np.abs(offsets).max() <= 1 / FPS
    assert np.median(np.abs(offsets)) < 0.002  # in fact sample-accurate
    assert stream_duration(out, "video") == pytest.approx((N_FRAMES - first) / FPS, abs=1 / FPS)
    assert stream_duration(out, "audio") == pytest.approx((N_FRAMES - first) / FPS, abs=1 / FPS)
    crop = load_crop(out.with_suffix(".crop.csv"))
    assert crop.frame[0] == first and len(crop.frame) == result.frames  # source decode indices
    assert crop.t[0] == pytest.approx(first / FPS, abs=1e-4)


def audio_packets(path: Path) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as container:
        return [(p.pts, bytes(p)) for p in container.demux(audio=0) if p.size]


@pytest.mark.parametrize("start_s", [0.0, 0.51])
def test_fancams_of_one_range_share_one_sound_in_sync(av_clip: Path, tmp_path: Path, start_s: float) -> None:
    """``--all``: the sound is encoded once and copied; every fancam has it, in sync, bit for bit."""
    crops = [centre_crop(N_FRAMES, SIZE), centre_crop(N_FRAMES, SIZE, aspect=1.0), centre_crop(N_FRAMES, SIZE)]
    outs = [tmp_path / f"{k}.mp4" for k in range(3)]
    jobs = [RenderJob(out, crop, output_size(crop, 240), start_s=start_s)
            for out, crop in zip(outs, crops, strict=True)]
    alone = tmp_path / "alone"
    alone.mkdir()
    render(av_clip, [RenderJob(alone / "0.mp4", crops[0], output_size(crops[0], 240), start_s=start_s)], progress=False)
    render(av_clip, jobs, progress=False)
    reference = audio_packets(alone / "0.mp4")
    assert len(reference) > 50
    for out in outs:
        assert audio_packets(out) == reference
        flashes, clicks = flashes_and_clicks(out)
        assert len(flashes) == len(FLASHES) and len(clicks) == len(flashes)
        assert np.abs(np.array(clicks) - np.array(flashes)).max() <= 1 / FPS
        assert stream_duration(out, "audio") == pytest.approx(stream_duration(out, "video"), abs=1 / FPS)


def test_end_trim_and_real_clip_duration(tmp_path: Path) -> None:
    """Hamilton: the video starts 0.85 s after the audio; the output keeps both in place."""
    source = shared_file("data/face_recognition_hamilton/short_hamilton_clip.mp4")
    n, size = 275, (640, 360)
    crop = centre_crop(n, size)
    whole, part = tmp_path / "whole.mp4", tmp_path / "part.mp4"
    jobs = [
        RenderJob(whole, crop, output_size(crop)),
        RenderJob(part, crop, output_size(crop, 360), start_s=2.0, end_s=4.0),
    ]
    results = render(source, jobs, progress=False)
    source_duration = stream_duration(source, "video")
    assert results[0].frames == n
    assert stream_duration(whole, "video") == pytest.approx(source_duration, abs=1.001 / 29.97)
    assert stream_duration(whole, "audio") == pytest.approx(source_duration, abs=1.001 / 29.97)
    assert stream_duration(part, "video") == pytest.approx(2.0, abs=1.001 / 29.97)
    assert output_size(crop) == (270, 480)  # 202x360 crop: scaled up to the 480 px minimum
    with av.open(str(part)) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (202, 360)


def test_no_audio_in_means_no_audio_out(tmp_path: Path) -> None:
    source = shared_file("data/openmmlab_misc/mmhuman3d_multi_person_demo.mp4")  # 1080x1920, no audio
    crop = centre_crop(40, (1080, 1920), aspect=1.0)
    out = tmp_path / "square.mp4"
    (result,) = render(source, [RenderJob(out, crop, (540, 540))], progress=False)
    assert result.frames == 40
    with av.open(str(out)) as container:
        assert not container.streams.audio
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"


# ----------------------------------------------------------------------------------------- one pass
def test_several_outputs_and_a_debug_video_from_one_pass(av_clip: Path, tmp_path: Path) -> None:
    moving = centre_crop(N_FRAMES, SIZE)
    xyxy = moving.xyxy.copy()
    xyxy[:, [0, 2]] += np.linspace(-80, 80, N_FRAMES)[:, None]
    moving = CropPath(xyxy, moving.mode)
    still = centre_crop(N_FRAMES, SIZE, aspect=1.0)
    boxes = OverlayBoxes(np.arange(N_FRAMES), np.tile([10, 20, 60, 200], (N_FRAMES, 1)), ["P1"] * N_FRAMES)
    jobs = [
        RenderJob(tmp_path / "a.mp4", moving, output_size(moving, 240)),
        RenderJob(tmp_path / "b.mp4", still, (240, 240), start_s=1.0, end_s=2.0, audio=False),
        DebugJob(tmp_path / "debug.mp4", boxes, (("P1", moving),)),
    ]
    results = render(av_clip, jobs, progress=False)
    assert [r.frames for r in results] == [N_FRAMES, FPS, N_FRAMES]
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["a.crop.csv", "a.mp4", "b.crop.csv", "b.mp4", "debug.mp4"]
    with open(tmp_path / "b.crop.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["frame", "t", "x1", "y1", "x2", "y2", "mode"]
    assert [int(r[0]) for r in rows[1:]] == list(range(30, 60))
    with av.open(str(tmp_path / "b.mp4")) as container:
        assert not container.streams.audio
    # Each output frame shows its crop of the source frame (up to compression).
    source = {f.index: f.av_frame.to_ndarray(format="gray") for f in iter_frames(av_clip)}
    with av.open(str(tmp_path / "a.mp4")) as container:
        for k, frame in enumerate(container.decode(video=0)):
            x, y, w, h = pixel_rect(moving.xyxy[k], SIZE, 9 / 16)
            diff = np.abs(frame.to_ndarray(format="gray").astype(int) - source[k][y: y + h, x: x + w])
            assert diff.mean() < 4
    with av.open(str(tmp_path / "debug.mp4")) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert first.shape == (240, 320, 3)
    assert np.abs(first[100:200, 10].astype(int) - (20, 20, 20)).max() > 60  # the P1 box is drawn


def test_bad_jobs_fail_before_writing(av_clip: Path, tmp_path: Path) -> None:
    crop = centre_crop(N_FRAMES, SIZE)
    same = tmp_path / "x.mp4"
    with pytest.raises(UsageError, match="same output"):
        render(av_clip, [RenderJob(same, crop, (136, 240))] * 2, progress=False)
    with pytest.raises(UsageError, match="even"):
        render(av_clip, [RenderJob(same, crop, (135, 240))], progress=False)
    jobs = [RenderJob(tmp_path / "ok.mp4", crop, (136, 240)), RenderJob(same, crop, (136, 240), start_s=10)]
    with pytest.raises(UsageError, match="no video frame"):  # and the valid job is not written either
        render(av_clip, jobs, progress=False)
    with pytest.raises(UsageError, match="after the start"):
        render(av_clip, [RenderJob(same, crop, (136, 240), start_s=2.0, end_s=1.0)], progress=False)
    with pytest.raises(InputError, match="folder"):
        render(av_clip, [RenderJob(tmp_path / "missing" / "x.mp4", crop, (136, 240))], progress=False)
    assert list(tmp_path.iterdir()) == []


def test_an_error_in_one_output_stops_the_pass_and_writes_nothing(av_clip: Path, tmp_path: Path) -> None:
    good = centre_crop(N_FRAMES, SIZE)
    xyxy = good.xyxy.copy()
    xyxy[50] = np.nan  # a camera path that breaks mid-way: the error surfaces from its encoder thread
    broken = CropPath(xyxy, good.mode)
    jobs = [RenderJob(tmp_path / "good.mp4", good, (136, 240)), RenderJob(tmp_path / "bad.mp4", broken, (136, 240))]
    with pytest.raises(ValueError, match="NaN"):
        render(av_clip, jobs, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_444_source_feeds_several_outputs_and_a_debug_video(tmp_path: Path) -> None:
    """Frames that cannot be sliced are converted once, before the outputs' threads share them."""
    source = tmp_path / "444.mp4"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = *SIZE, "yuv444p"
        for i in range(20):
            image = np.full((SIZE[1], SIZE[0], 3), 40, np.uint8)
            image[60:180, 10 * i: 10 * i + 60] = (230, 200, 30)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv444p")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    assert next(iter_frames(source)).av_frame.format.name == "yuv444p"
    crop = centre_crop(20, SIZE)
    boxes = OverlayBoxes(np.arange(20), np.tile([10, 20, 60, 200], (20, 1)), ["P1"] * 20)
    jobs = [RenderJob(tmp_path / f"{k}.mp4", crop, size) for k, size in enumerate([(136, 240), (68, 120)])]
    render(source, [*jobs, DebugJob(tmp_path / "debug.mp4", boxes, (("P1", crop),))], progress=False)
    expected = [f.av_frame.reformat(format="yuv420p").to_ndarray()[: SIZE[1]] for f in iter_frames(source)]
    x, y, w, h = pixel_rect(crop.xyxy[0], SIZE, 9 / 16)
    for job in jobs:
        with av.open(str(job.output)) as container:
            got = [f.to_ndarray()[: job.size[1]] for f in container.decode(video=0)]  # luma plane
        assert len(got) == 20
        for k in (0, 10, 19):
            want = cv2.resize(expected[k][y: y + h, x: x + w], job.size, interpolation=cv2.INTER_AREA)
            assert np.abs(got[k].astype(int) - want).mean() < 4


# ----------------------------------------------------------------------------------------- pixels
@pytest.mark.parametrize("turns", [0, 1, 2, 3])
def test_yuv_crop_matches_the_displayed_frame(turns: int) -> None:
    rng = np.random.default_rng(turns)
    stored = av.VideoFrame(64, 48, "yuv420p")
    planes = [rng.integers(0, 256, (48 // s, 64 // s), dtype=np.uint8) for s in (1, 2, 2)]
    for plane, values in zip(stored.planes, planes, strict=True):
        np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width] = values
    frame = DecodedFrame(index=0, t=0.0, av_frame=stored, turns=turns)
    width, height = frame.size
    rect = pixel_rect(np.array([10.3, 6.2, 10.3 + 18, 6.2 + 32]) * [1, 1, 1, 1], (width, height))
    x, y, w, h = rect
    assert (x % 2, y % 2, w % 2, h % 2) == (0, 0, 0, 0)
    out = crop_yuv420(frame, rect)
    assert (out.width, out.height) == (w, h)
    got = out.to_ndarray()  # (h * 3/2, w): Y then U then V
    luma = np.rot90(planes[0], turns)
    assert np.array_equal(got[:h], luma[y: y + h, x: x + w])
    chroma = np.rot90(planes[1], turns)[y // 2: (y + h) // 2, x // 2: (x + w) // 2]
    assert np.array_equal(got[h: h + h // 4].reshape(-1), chroma.reshape(-1))


@pytest.mark.parametrize(("turns", "out_size"), [(0, (36, 64)), (1, (36, 64)), (0, (10, 18)), (3, (10, 18))])
def test_scaled_crop_matches_swscale_of_the_crop(turns: int, out_size: tuple[int, int]) -> None:
    """Cropping and scaling in one step (OpenCV, from the decoded planes) looks like sws on the crop."""
    yy, xx = np.mgrid[0:96, 0:128]
    image = np.stack([xx * 2, yy * 2, 255 - xx - yy], axis=-1).clip(0, 255).astype(np.uint8)  # smooth
    stored = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
    frame = DecodedFrame(index=0, t=0.0, av_frame=stored, turns=turns)
    rect = pixel_rect(np.array([20.0, 10.0, 38.0, 42.0]), frame.size)
    crop = crop_yuv420(frame, rect)
    scaled = crop_yuv420(frame, rect, out_size)
    assert (scaled.width, scaled.height, scaled.format.name) == (*out_size, "yuv420p")
    mode = "AREA" if out_size[1] < crop.height else "BICUBIC"
    expected = crop.reformat(width=out_size[0], height=out_size[1], interpolation=mode).to_ndarray()
    assert np.abs(scaled.to_ndarray().astype(int) - expected).mean() < 2


@pytest.mark.parametrize("fmt", ["yuv420p10le", "yuv444p"])
def test_other_pixel_formats_are_cropped_like_converted_frames(fmt: str) -> None:
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    image[:, :32] = (40, 180, 90)  # flat areas survive dithering exactly
    source = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=fmt)
    frame = DecodedFrame(index=0, t=0.0, av_frame=source, turns=0)
    x, y, w, h = 8, 4, 20, 36
    got = crop_yuv420(frame, (x, y, w, h)).to_ndarray()
    expected = source.reformat(format="yuv420p").to_ndarray()[:48][y: y + h, x: x + w]
    assert got.shape == (h * 3 // 2, w)
    assert np.abs(got[:h].astype(int) - expected).max() <= 1


def test_pixel_rect_keeps_inside_and_even() -> None:
    assert pixel_rect(np.array([-5.0, -3.0, 130.0, 237.0]), (320, 240)) == (0, 0, 136, 240)
    assert pixel_rect(np.array([250.0, 10.0, 385.0, 250.0]), (320, 240)) == (184, 0, 136, 240)
    assert pixel_rect(np.array([0.0, 0.0, 400.0, 300.0]), (321, 241)) == (0, 0, 320, 240)


def test_output_size_defaults_to_native_and_honours_height() -> None:
    crop = centre_crop(10, (1280, 720))
    assert output_size(crop) == (406, 720)  # 405 x 720 crop, width rounded to even
    assert output_size(crop, 1920) == (1080, 1920)
    assert output_size(centre_crop(10, (7680, 4320))) == (1080, 1920)  # 4K crops scaled down
    with pytest.raises(UsageError):
        output_size(crop, 8)
