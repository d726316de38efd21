"""Musical beats of a sound track: tempo from the onset envelope's autocorrelation, beats by dynamic programming.

The beat tracker of Ellis (2007, "Beat tracking by dynamic programming", J. New Music Research), the
one librosa implements, in a few lines of numpy: the tempo is the autocorrelation peak of the onset
envelope weighted by a log-normal prior around 120 BPM; the beats are the onset-envelope peaks that
best fit that period, found by dynamic programming (each beat's score is its onset strength plus the
best previous beat's score, minus a penalty for an interval far from the period). Cuts of the
multi-angle edit are placed on these beats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fancam.multicam.align import ENVELOPE_RATE, AudioTrack, onset_envelope


@dataclass(frozen=True)
class BeatConfig:
    """Beat tracking parameters.

    Attributes:
        min_bpm: Slowest tempo considered.
        max_bpm: Fastest tempo considered.
        prior_bpm: Centre of the tempo prior (log-normal; dance music sits around 100-130 BPM).
        prior_octaves: Width (standard deviation, in octaves) of the tempo prior.
        tightness: How strongly beats keep to the period (Ellis's alpha; librosa's default 100).
        min_strength: Below this beat strength (see :class:`Beats`) the sound has no clear beat and
            cuts fall on a regular grid. Measured: white or crowd-like noise 0.04-0.07; the music of
            divyanshu_line_dance under its crowd 0.06-0.09 (so it gets the grid); skz_party 0.08;
            hamilton (speech) 0.16; miryala_stage 0.30; gillhung_dance (dance practice) 0.46.
    """

    min_bpm: float = 60.0
    max_bpm: float = 200.0
    prior_bpm: float = 120.0
    prior_octaves: float = 1.0
    tightness: float = 100.0
    min_strength: float = 0.15


@dataclass(frozen=True)
class Beats:
    """Beat times of a track.

    Attributes:
        t: (B,) beat times on the track's video clock (seconds from its first video frame).
        bpm: Estimated tempo.
        strength: Normalised autocorrelation of the onset envelope at the beat period (0 = no
            periodicity, 1 = perfectly periodic); a sound without music is around 0.1.
    """

    t: NDArray[np.float64]
    bpm: float
    strength: float

    def clear(self, config: BeatConfig | None = None) -> bool:
        """Whether the sound has a clear enough beat to cut on."""
        return len(self.t) >= 2 and self.strength >= (config or BeatConfig()).min_strength


def estimate_tempo(envelope: NDArray, rate: float, config: BeatConfig) -> tuple[float, float]:
    """(period in envelope frames, strength) of the envelope's dominant beat period."""
    x = np.asarray(envelope, np.float64) - np.mean(envelope)
    n = len(x)
    lo, hi = int(np.floor(60.0 / config.max_bpm * rate)), int(np.ceil(60.0 / config.min_bpm * rate))
    if n < 2 * hi or not np.any(x):
        return 60.0 / config.prior_bpm * rate, 0.0
    nfft = 1 << int(np.ceil(np.log2(2 * n)))
    spec = np.fft.rfft(x, nfft)
    ac = np.fft.irfft(spec * np.conj(spec), nfft)[: hi + 2]
    ac /= ac[0] * (n - np.arange(len(ac))) / n  # unbiased, normalised: 1 at lag 0
    lags = np.arange(lo, hi + 1)
    bpm = 60.0 * rate / lags
    prior = np.exp(-0.5 * (np.log2(bpm / config.prior_bpm) / config.prior_octaves) ** 2)
    k = int(np.argmax(np.maximum(ac[lags], 0) * prior))
    period = float(lags[k])
    if 0 < k < len(lags) - 1:  # parabolic refinement
        y0, y1, y2 = ac[lags[k] - 1], ac[lags[k]], ac[lags[k] + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            period += float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5))
    return period, float(np.clip(ac[lags[k]], 0, 1))


def track_beats(
    envelope: NDArray, rate: float, config: BeatConfig | None = None
) -> tuple[NDArray[np.float64], float, float]:
    """(beat times in seconds from the envelope's start, bpm, strength) of an onset envelope."""
    config = config or BeatConfig()
    env = np.asarray(envelope, np.float64)
    if len(env) < 4 or not np.any(env):
        return np.zeros(0), config.prior_bpm, 0.0
    period, strength = estimate_tempo(env, rate, config)
    std = np.std(env)
    score_local = env / std if std > 0 else env
    n = len(env)
    # Previous-beat window: half to twice the period before each frame.
    window = np.arange(-int(round(2 * period)), -int(round(period / 2)) + 1)
    penalty = -config.tightness * np.log(-window / period) ** 2
    cumulative = np.zeros(n)
    backlink = np.full(n, -1, np.int64)
    for i in range(n):
        prev = i + window
        ok = prev >= 0
        if ok.any():
            cand = cumulative[prev[ok]] + penalty[ok]
            k = int(np.argmax(cand))
            if cand[k] > 0:
                cumulative[i] = score_local[i] + cand[k]
                backlink[i] = prev[ok][k]
                continue
        cumulative[i] = score_local[i]
    # Last beat: the best cumulative score among the local maxima near the end.
    tail = max(0, n - int(round(2 * period)))
    last = tail + int(np.argmax(cumulative[tail:]))
    beats = []
    while last >= 0:
        beats.append(last)
        last = int(backlink[last])
    frames = np.array(beats[::-1], np.int64)
    # Trim weak beats at both ends (where the DP ran on past the music), as librosa does: below half
    # the RMS of the onset strength.
    threshold = 0.5 * float(np.sqrt(np.mean(np.maximum(score_local, 0) ** 2)))
    strong = np.flatnonzero(score_local[frames] >= threshold)
    if len(strong):
        frames = frames[strong[0]: strong[-1] + 1]
    return frames.astype(np.float64) / rate, 60.0 * rate / period, strength


def beats_of(track: AudioTrack, config: BeatConfig | None = None) -> Beats:
    """Beats of a video's sound, on its video clock."""
    envelope = onset_envelope(track.samples, track.rate)
    t, bpm, strength = track_beats(envelope, ENVELOPE_RATE, config)
    return Beats(t + track.start_s, bpm, strength)
