"""Audio alignment: offsets of re-encoded angles of a real clip against the truth, drift, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from multicam_media import FPS, Angle, angles  # noqa: F401 - fixture
from scipy import signal

from conftest import shared_file
from fancam.cli import main
from fancam.errors import EXIT_INPUT, InputError
from fancam.multicam.align import (
    AudioTrack,
    align_pair,
    align_videos,
    audio_clarity,
    gcc_phat,
    load_audio,
    normalized_xcorr,
)
from fancam.multicam.edit import choose_audio

FRAME_S = 1 / FPS


@pytest.fixture(scope="module")
def clip_sound() -> AudioTrack:
    return load_audio(shared_file("data/gillhung_dance/dance.mp4"))


def test_offsets_of_angles_match_the_truth(angles: dict[str, Angle]) -> None:
    # B: zoomed, mirrored, brighter, crowd noise at 10 dB, starts 2.3 s later; C: blurred, noise at
    # 6 dB, starts 0.5 s later and ends early. Within one frame is the requirement; the sound is the
    # same recording, so a few milliseconds is what the fine stage should reach.
    videos = [angles[n].path for n in "ABC"]
    result = align_videos(videos)
    assert result[0].offset_s == 0.0
    for name, alignment in zip("BC", result[1:], strict=True):
        error = alignment.offset_s - angles[name].truth_offset_s
        assert abs(error) < FRAME_S, (name, error)
        assert abs(error) < 0.003, (name, error)
        assert abs(alignment.drift) < 50e-6
        assert alignment.confidence > 0.5
        assert alignment.windows[0] >= 2 and alignment.windows[0] >= alignment.windows[1] / 2


def test_offsets_are_consistent_from_another_reference(angles: dict[str, Angle]) -> None:
    # On C's clock, A starts at -0.5 s and B at 1.8 s; rebasing A's alignments gives the same.
    direct = align_videos([angles["C"].path, angles["A"].path, angles["B"].path])
    assert abs(direct[1].offset_s - (0.0 - angles["C"].truth_offset_s)) < 0.003
    assert abs(direct[2].offset_s - (angles["B"].truth_offset_s - angles["C"].truth_offset_s)) < 0.003
    via_a = align_videos([angles[n].path for n in "ABC"])
    rebased = via_a[1].rebase(via_a[2])
    assert abs(rebased.offset_s - direct[2].offset_s) < 0.003


def test_a_video_with_another_sound_is_refused_naming_it(angles: dict[str, Angle]) -> None:
    with pytest.raises(InputError, match="X.mp4.*does not share the sound"):
        align_videos([angles["A"].path, angles["B"].path, angles["X"].path])


def test_a_video_without_sound_is_refused_naming_it(angles: dict[str, Angle]) -> None:
    with pytest.raises(InputError, match="N.mp4.*has no audio track"):
        load_audio(angles["N"].path)


def test_cli_refusals_are_one_line(angles: dict[str, Angle], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    for bad, words in (("X", "does not share the sound"), ("N", "has no audio track")):
        code = main(["-q", "render", str(angles["A"].path), str(angles["B"].path), str(angles[bad].path),
                     "--person", "1", "-o", str(tmp_path / "out.mp4")])
        err = capsys.readouterr().err.strip()
        assert code == EXIT_INPUT
        assert len(err.splitlines()) == 1 and f"{bad}.mp4" in err and words in err, err
        assert not list(tmp_path.iterdir())


def test_silent_sound_is_refused(clip_sound: AudioTrack, tmp_path: Path) -> None:
    import av

    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        audio = out.add_stream("aac", rate=16000)
        for i in range(60):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i, np.uint8), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        for k in range(0, 32000, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, k
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    with pytest.raises(InputError, match="silent"):
        load_audio(path)


@pytest.mark.parametrize("ppm", [0, 300, -800])
def test_clock_drift_is_measured(clip_sound: AudioTrack, ppm: int) -> None:
    # The other device's clock runs `ppm` fast or slow: its recording of the same 18 s is stretched;
    # it also hears the music through a band-pass (a phone) with noise at 6 dB SNR.
    x = clip_sound.samples.astype(np.float64)
    rate = clip_sound.rate
    up, down = 1_000_000 + ppm, 1_000_000
    g = np.gcd(up, down)
    y = signal.resample_poly(x[2 * rate: 20 * rate], up // g, down // g)
    y = signal.lfilter(*signal.butter(2, [300, 3000], btype="band", fs=rate), y)
    y += 0.5 * np.std(y) * np.random.default_rng(ppm % 7).standard_normal(len(y))
    other = AudioTrack(Path("phone.mp4"), y.astype(np.float32), rate, 0.0, 0.0)
    result = align_pair(clip_sound, other)
    truth_drift = down / up - 1  # reference seconds per phone second, minus one
    assert abs(result.offset_s - 2.0) < 0.002
    assert abs(result.drift - truth_drift) < 20e-6, result.drift
    # At the end of the clip the mapping is still within a millisecond.
    assert abs(result.to_reference(18.0) - (2.0 + 18.0 * (1 + truth_drift))) < 0.001


def test_normalized_xcorr_finds_a_known_shift_with_partial_overlap() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal(1000)
    b = a[300:700] + 0.3 * rng.standard_normal(400)  # b starts 300 samples into a
    lags, corr = normalized_xcorr(a, b, min_overlap=200)
    assert lags[np.argmax(corr)] == 300
    assert corr.max() > 0.9
    assert np.all(np.abs(corr) <= 1 + 1e-9)


def test_gcc_phat_finds_a_sub_sample_shift() -> None:
    rng = np.random.default_rng(2)
    fine = rng.standard_normal(8 * 4000)
    a = signal.resample_poly(fine, 1, 8)  # decimated by 8: a shift of 3 fine samples = 0.375 samples
    b = signal.resample_poly(fine[8 * 50 + 3: 8 * 50 + 3 + 8 * 2000], 1, 8)
    shift, significance = gcc_phat(a, b, (40, 60))
    assert abs(shift - 50.375) < 0.2  # a parabola through a sinc-like peak leans to the sample: 25 us at 8 kHz
    assert significance > 10


def test_the_cleanest_sound_is_chosen(angles: dict[str, Angle]) -> None:
    # A is clean, B has noise at 10 dB, C at 6 dB; given in the order B, C, A the clean one is chosen.
    videos = [angles[n].path for n in "BCA"]
    tracks = [load_audio(v) for v in videos]
    alignments = align_videos(videos, tracks=tracks)
    clarity = audio_clarity(tracks, alignments)
    assert clarity[2] > clarity[0] > clarity[1]
    # A is the longest too; B (5.2 s) and C (6.5 s) are too short to be the sound of a 10 s edit.
    assert choose_audio(tracks, alignments, None) == 2
    assert choose_audio(tracks, alignments, 1) == 1
