"""Beat tracking: a click track with known beats, noise without a beat, and real dance music."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import shared_file
from fancam.multicam.align import AudioTrack, load_audio
from fancam.multicam.beats import beats_of

RATE = 8000


def _clicks(bpm: float, first: float, seconds: float, noise: float, seed: int = 0) -> tuple[AudioTrack, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = noise * rng.standard_normal(int(seconds * RATE))
    truth = np.arange(first, seconds - 0.1, 60.0 / bpm)
    n = np.arange(240)
    click = np.sin(n * 0.9) * np.exp(-n / 60)
    for b in truth:
        k = int(round(b * RATE))
        x[k: k + len(click)] += click
    return AudioTrack(Path("clicks.mp4"), x.astype(np.float32), RATE, -0.25, 0.0), truth - 0.25


@pytest.mark.parametrize("bpm", [96.0, 123.0, 150.0])
def test_click_track_beats_are_found(bpm: float) -> None:
    track, truth = _clicks(bpm, 0.37, 20.0, noise=0.05)
    beats = beats_of(track)
    assert abs(beats.bpm - bpm) / bpm < 0.02
    assert beats.clear()
    # Every true beat has a found beat within 25 ms (the envelope's frames are 10 ms), and back.
    assert np.abs(truth[:, None] - beats.t[None]).min(axis=1).max() < 0.025
    assert np.abs(beats.t[:, None] - truth[None]).min(axis=1).max() < 0.025


def test_noise_has_no_clear_beat() -> None:
    rng = np.random.default_rng(3)
    track = AudioTrack(Path("noise.mp4"), rng.standard_normal(15 * RATE).astype(np.float32), RATE, 0.0, 0.0)
    assert not beats_of(track).clear()


def test_dance_music_has_a_clear_steady_beat() -> None:
    beats = beats_of(load_audio(shared_file("data/gillhung_dance/dance.mp4")))
    assert beats.clear()
    assert 60 <= beats.bpm <= 200
    intervals = np.diff(beats.t)
    # A steady tempo: the beats keep to the period (within 15%).
    assert np.percentile(np.abs(intervals / (60 / beats.bpm) - 1), 90) < 0.15
