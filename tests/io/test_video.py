"""Video input: what probe/iter_frames say about every kind of file people download, and frame geometry."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from badmedia import (
    audio_only,
    blanked_copy,
    digest,
    garbage_copy,
    still_image,
    synth_video,
    truncated_copy,
)
from conftest import shared_file
from fancam.errors import InputError, VideoError
from fancam.io.video import (
    DecodeReport,
    check_readable_file,
    frame_at,
    iter_frames,
    iter_frames_at,
    mp4_structure_problem,
    probe,
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s, 320x240, 30 fps, one keyframe (so damage is felt by the frames after it)."""
    return synth_video(tmp_path_factory.mktemp("video") / "clip.mp4", n=90, size=(320, 240))


def test_paths_that_are_not_readable_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="video not found: .*nope.mp4.*check the path"):
        check_readable_file(tmp_path / "nope.mp4")
    with pytest.raises(InputError, match="is a folder, not a file"):
        probe(tmp_path)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(InputError, match=r"empty file \(0 bytes\).*download"):
        probe(empty)
    locked = synth_video(tmp_path / "locked.mp4", n=3)
    os.chmod(locked, 0)
    try:
        with pytest.raises(InputError, match=r"not readable \(no read permission\).*chmod"):
            probe(locked)
    finally:
        os.chmod(locked, 0o644)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("<html>not found</html>\n" * 20), "it is a text file, not a video"),
        (lambda p: still_image(p), r"is a still image \(jpeg\), not a video"),
        (lambda p: audio_only(p), "is an audio-only file; fancam needs a video"),
    ],
    ids=["text-named-mp4", "jpeg-named-mp4", "audio-only"],
)
def test_files_that_are_not_videos(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "download.mp4"
    make(path)
    before = digest(path)
    with pytest.raises(VideoError, match=message):
        probe(path)
    assert digest(path) == before


def test_a_png_is_a_still_image(tmp_path: Path) -> None:
    path = still_image(tmp_path / "photo.png")
    with pytest.raises(VideoError, match="still image"):
        probe(path)


def test_truncated_mp4_without_moov_names_the_problem(clip: Path, tmp_path: Path) -> None:
    assert mp4_structure_problem(clip) is None
    cut = truncated_copy(clip, tmp_path / "cut.mp4", 0.5)
    assert "without its index ('moov' box) and ends early" in mp4_structure_problem(cut)
    with pytest.raises(VideoError, match=r"cannot open .*cut.mp4.*'moov' box.*download or export it again"):
        probe(cut)


def test_truncated_faststart_mp4_keeps_what_was_downloaded(tmp_path: Path) -> None:
    """With the index at the front, a cut download still opens; the frames that arrived are decoded."""
    import av

    full = tmp_path / "fast.mp4"
    with av.open(str(full), "w", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(60):
            frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), 4 * i, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    cut = truncated_copy(full, tmp_path / "cut.mp4", 0.6)
    assert probe(cut).n_frames == 60  # what the index announces
    frames = list(iter_frames(cut))
    assert 0 < len(frames) < 60


def test_garbage_in_the_middle_is_skipped_and_reported(clip: Path, tmp_path: Path) -> None:
    bad = garbage_copy(clip, tmp_path / "bad.mp4", at=0.4, length=3000)
    assert probe(bad).n_frames == 90
    report = DecodeReport()
    times = [f.t for f in iter_frames(bad, report=report)]
    assert report.skipped, "the damaged packets must be reported"
    (start, end), *_ = report.skipped
    assert 0.0 < start < end <= 3.0
    assert times[-1] > end, "frames after the damage are decoded again"
    assert np.all(np.diff(times) > 0)
    assert 30 < len(times) < 90


def test_no_decodable_frame_is_a_video_error(tmp_path: Path) -> None:
    one = synth_video(tmp_path / "one.mp4", n=1)
    blank = blanked_copy(one, tmp_path / "blank.mp4")
    with pytest.raises(VideoError, match="has no decodable video frame.*another copy"):
        probe(blank)
    assert len(list(iter_frames(blank))) == 0


def test_one_frame_video_probes(tmp_path: Path) -> None:
    one = synth_video(tmp_path / "one.mp4", n=1)
    assert probe(one).n_frames == 1
    assert [f.index for f in iter_frames(one)] == [0]


@pytest.mark.parametrize(("size", "codec"), [((32, 32), "libx264"), ((63, 47), "mpeg4")], ids=["tiny", "odd"])
def test_tiny_and_odd_sizes_decode_at_their_size(tmp_path: Path, size: tuple[int, int], codec: str) -> None:
    path = synth_video(tmp_path / "v.mp4", n=5, size=size, codec=codec)
    info = probe(path)
    assert (info.width, info.height) == size
    frame = next(iter_frames(path))
    assert frame.size == size
    assert frame.rgb().shape == (size[1], size[0], 3)
    assert frame.gray(16, 12).shape == (12, 16)


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotation_metadata_is_applied(tmp_path: Path, degrees: int) -> None:
    path = synth_video(tmp_path / "phone.mp4", n=3, size=(160, 96), rotation=degrees)
    info = probe(path)
    expected = (96, 160) if degrees % 180 else (160, 96)
    assert (info.width, info.height) == expected
    assert info.rotation == degrees // 90
    frame = next(iter_frames(path))
    assert frame.size == expected
    assert frame.rgb().shape == (expected[1], expected[0], 3)


def test_variable_frame_rate_times_come_from_timestamps(tmp_path: Path) -> None:
    durations = [20 if i % 3 else 100 for i in range(30)]
    path = synth_video(tmp_path / "vfr.mp4", n=30, frame_ms=lambda i: durations[i])
    times = np.array([f.t for f in iter_frames(path)])
    expected = np.concatenate([[0.0], np.cumsum(durations[:-1]) / 1000])
    np.testing.assert_allclose(times, expected, atol=1.5e-3)


def _frames_by_decoding(path: Path, every: int) -> dict[int, tuple[float, np.ndarray]]:
    return {f.index: (f.t, f.rgb()) for f in iter_frames(path) if f.index % every == 3}


@pytest.mark.parametrize("clip_name", ["fiyud", "vfr-rotated"])
def test_frame_at_seeks_to_the_same_frame_decoding_finds(tmp_path: Path, clip_name: str) -> None:
    if clip_name == "fiyud":  # real phone clip, key frame every few seconds, B-frames
        path, every = shared_file("data/fiyud_dance3/dance.mp4"), 41
    else:
        durations = [20 if i % 3 else 100 for i in range(60)]
        path = synth_video(tmp_path / "vfr.mp4", n=60, size=(160, 96), rotation=90,
                           frame_ms=lambda i: durations[i])
        every = 7
    expected = _frames_by_decoding(path, every)
    assert len(expected) >= 6
    for index, (t, image) in expected.items():
        found = frame_at(path, t, index=index)
        assert found.index == index
        assert found.t == pytest.approx(t, abs=1e-6)
        np.testing.assert_array_equal(found.rgb(), image)
    # Past the end: the last frame; before the start: the first.
    last_t = max(t for t, _ in expected.values())
    assert frame_at(path, 1e6).t >= last_t
    assert frame_at(path, -5.0).t == 0.0


@pytest.mark.parametrize("clip_name", ["dance2", "vfr-rotated"])
def test_decoding_only_some_frames_gives_the_same_frames_as_decoding_all(tmp_path: Path, clip_name: str) -> None:
    if clip_name == "dance2":  # real phone HEVC with B-frames: half its frames are not references
        path = shared_file("data/gillhung_dance/dance2.mp4")
        wanted = [0, 1, 2, 57, 58, 300, 301, 302, 303, 500, 713]
    else:
        durations = [20 if i % 3 else 100 for i in range(40)]
        path = synth_video(tmp_path / "vfr.mp4", n=40, size=(160, 96), rotation=90,
                           frame_ms=lambda i: durations[i])
        wanted = [1, 2, 3, 17, 39]
    n, expected = 0, {}
    for f in iter_frames(path):  # keep only the wanted pixels (a decoded 1080p frame holds 3 MB)
        n += 1
        if f.index in wanted:
            expected[f.index] = (f.t, f.size, f.rgb())
    got = [(f.index, f.t, f.size, f.rgb()) for f in iter_frames_at(path, wanted, n_frames=n)]
    assert [g[0] for g in got] == wanted
    for index, t, size, image in got:
        assert t == pytest.approx(expected[index][0], abs=1e-6)
        assert size == expected[index][1]
        np.testing.assert_array_equal(image, expected[index][2])


def test_decoding_some_frames_of_a_damaged_file_falls_back_to_decoding_all(clip: Path, tmp_path: Path) -> None:
    bad = garbage_copy(clip, tmp_path / "bad.mp4", at=0.4, length=3000)
    everything = {f.index: f.rgb() for f in iter_frames(bad)}  # fewer frames than packets: damage dropped
    wanted = [0, 5, max(everything)]
    got = [(f.index, f.rgb()) for f in iter_frames_at(bad, wanted, n_frames=len(everything))]
    assert [index for index, _ in got] == wanted
    for index, image in got:
        np.testing.assert_array_equal(image, everything[index])
    assert list(iter_frames_at(bad, [])) == []


@pytest.mark.parametrize("clip_name", ["dance2", "rotated"])
def test_thumbnails_are_the_area_filtered_frame_up_to_resampling_noise(tmp_path: Path, clip_name: str) -> None:
    if clip_name == "dance2":  # 1080x1920: the cheap two-step path
        path, size = shared_file("data/gillhung_dance/dance2.mp4"), (64, 114)
    else:  # a small rotated frame: the area filter itself
        path, size = synth_video(tmp_path / "r.mp4", n=3, size=(160, 96), rotation=90), (32, 54)
    for frame in iter_frames(path):
        if frame.index > 2:
            break
        thumb, exact = frame.thumbnail(*size), frame.rgb(*size)
        assert thumb.shape == exact.shape == (size[1], size[0], 3) and thumb.dtype == np.uint8
        error = np.abs(thumb.astype(int) - exact.astype(int))
        assert error.mean() < 8.0, error.mean()  # dance2: 4.7 grey levels
        if clip_name == "rotated":
            np.testing.assert_array_equal(thumb, exact)
