"""Align several videos of one performance in time by their sound.

Every video's audio is decoded to mono at :data:`AUDIO_RATE` and placed on that video's own clock
(seconds from its first video frame, as everywhere in fancam). Two stages, then a fit:

1. **Coarse**: the onset-strength envelopes (spectral flux of the log spectrogram, 100 Hz) of the
   reference and the other video are cross-correlated at every lag where they overlap by at least
   ``min_overlap_s``; each lag's correlation is normalised by the energy of the overlapping parts only,
   so different start and end times do not bias it. The best lag is kept if its correlation is high
   and clearly above the best lag elsewhere (music repeats: a bar later can look alike).
2. **Fine**: along the overlap, windows of ``window_s`` of waveform are cross-correlated with
   GCC-PHAT (whitened, so crowd noise and a different microphone colour matter little) within a few
   envelope frames of the coarse lag, with a parabolic sub-sample peak. Each window is first
   re-centred with its own envelope correlation, so a clock drift of up to ``drift_search_s`` over the
   clip is followed.
3. **Fit**: the window lags are fitted with a line (Theil-Sen, then least squares on the inliers):
   ``reference_time = offset + (1 + drift) * video_time``.

The confidence combines the coarse correlation and the share of windows that agree with the fit. A
video without an audio stream, with a silent one, or whose sound does not match the reference is
refused with an :class:`~fancam.errors.InputError` naming the file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, signal, stats

from fancam.errors import InputError
from fancam.io.video import check_readable_file, iter_frames

log = logging.getLogger(__name__)

AUDIO_RATE = 8000
"""Sample rate (Hz) the audio is analysed at: 0.125 ms per sample, music energy up to 4 kHz."""
ENVELOPE_RATE = 100
"""Onset envelope frames per second (10 ms hop)."""
SILENT_RMS = 1e-4
"""An audio track whose RMS (full scale 1.0) is below this is silent (digital silence or a muted mic)."""


# ----------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class AudioTrack:
    """A video's sound, mono, on the video's clock.

    Attributes:
        path: The video file.
        samples: (N,) float32 mono samples at ``rate``.
        rate: Sample rate (Hz).
        start_s: Video time (seconds from the first video frame) of ``samples[0]`` (may be negative).
        clock_s: Presentation time (source clock, seconds) of the first video frame.
    """

    path: Path
    samples: NDArray[np.float32]
    rate: int
    start_s: float
    clock_s: float

    @property
    def duration_s(self) -> float:
        """Length of the sound in seconds."""
        return len(self.samples) / self.rate

    @property
    def end_s(self) -> float:
        """Video time of the end of the sound."""
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class AlignConfig:
    """Alignment parameters (times in seconds).

    Attributes:
        min_overlap_s: Shortest common stretch of sound accepted (shorter overlaps are too easy to
            match by chance); capped at half the shorter video.
        max_offset_s: Largest time offset searched between two videos (None: any overlap).
        min_correlation: Smallest coarse envelope correlation considered. Measured with
            benchmarks/bench_multicam.py on the 8 clips with sound: one sound recorded twice correlates
            0.29-0.9 (0.29: skz_party at 0 dB SNR through a phone band-pass); different songs reach
            0.06-0.39 at their best lag, so this test only screens: the waveform windows decide
            (``min_agree``), and none of the 28 pairs of different clips passed them.
        min_margin: The best lag's correlation must exceed the best correlation at least
            ``distinct_s`` away from it by this much (ambiguity of a repeated bar).
        distinct_s: Lags closer than this to the best one count as the same peak.
        window_s: Length of the fine windows.
        step_s: Distance between the fine windows' starts.
        min_windows: Fewest fine windows (closer than ``step_s`` on a short overlap).
        min_significance: A window counts when its GCC-PHAT peak is this many times the RMS of its
            correlation (unrelated sounds: about 3; the same sound at SNR 6 dB: over 10).
        min_agree: Share of the windows that must agree with the fitted line (unrelated sounds that
            pass the coarse test by chance agree in at most 1 of 3-16 windows on our clips).
        drift_search_s: How far (per window) the lag may wander from the global one.
        fine_search_s: Half-width of the fine (waveform) lag search around a window's envelope lag.
        inlier_s: Windows within this of the fitted line are inliers.
        max_drift: Largest clock drift believed (relative rate difference); beyond it the fit is
            taken as constant offset (consumer cameras and phones: tens of ppm).
        warp_drift: A first estimate above this drift is refined on the resampled sound.
    """

    min_overlap_s: float = 4.0
    max_offset_s: float | None = None
    min_correlation: float = 0.2
    min_margin: float = 0.08
    distinct_s: float = 0.15
    window_s: float = 3.0
    step_s: float = 1.5
    min_windows: int = 4
    min_significance: float = 6.0
    min_agree: float = 0.5
    drift_search_s: float = 0.25
    fine_search_s: float = 0.02
    inlier_s: float = 0.003
    max_drift: float = 0.002
    warp_drift: float = 50e-6


@dataclass(frozen=True)
class Alignment:
    """Where one video sits on the reference video's clock.

    ``reference_time = offset_s + (1 + drift) * video_time`` (both in seconds from each video's first
    frame).

    Attributes:
        path: The video.
        offset_s: Reference time of the video's first frame.
        drift: Relative clock-rate difference (0 = same clock; 1e-4 = 100 ppm).
        confidence: In [0, 1]: coarse correlation x share of windows agreeing with the fit.
        correlation: Coarse envelope correlation at the chosen lag.
        margin: How much that beats the best other lag.
        windows: Fine windows used / windows tried.
        residual_ms: RMS of the inlier windows' distance to the fit (milliseconds).
    """

    path: Path
    offset_s: float
    drift: float = 0.0
    confidence: float = 1.0
    correlation: float = 1.0
    margin: float = 1.0
    windows: tuple[int, int] = (0, 0)
    residual_ms: float = 0.0

    def to_reference(self, t: NDArray | float) -> NDArray[np.float64]:
        """Reference times of this video's times ``t``."""
        return self.offset_s + (1.0 + self.drift) * np.asarray(t, np.float64)

    def from_reference(self, t: NDArray | float) -> NDArray[np.float64]:
        """This video's times of reference times ``t``."""
        return (np.asarray(t, np.float64) - self.offset_s) / (1.0 + self.drift)

    def rebase(self, reference: Alignment) -> Alignment:
        """The same alignment on the clock of another aligned video ``reference``."""
        scale = 1.0 + reference.drift
        return Alignment(
            self.path, (self.offset_s - reference.offset_s) / scale,
            (1.0 + self.drift) / scale - 1.0, self.confidence, self.correlation, self.margin,
            self.windows, self.residual_ms,
        )

    def describe(self) -> str:
        """One line for the user."""
        if self.windows == (0, 0):
            return f"{self.path.name}: offset {self.offset_s:+.3f} s (the reference clock)"
        drift = f", drift {self.drift * 1e6:+.0f} ppm" if abs(self.drift) >= 1e-6 else ""
        return (f"{self.path.name}: offset {self.offset_s:+.3f} s{drift}, confidence {self.confidence:.2f} "
                f"(correlation {self.correlation:.2f}, {self.windows[0]}/{self.windows[1]} windows agree)")


# ----------------------------------------------------------------------------------------- audio
def load_audio(path: Path, rate: int = AUDIO_RATE) -> AudioTrack:
    """Decode a video's first audio stream to mono float32 at ``rate``, on the video's clock.

    Raises:
        InputError: the file has no audio stream, or its sound is silent or unreadable.
    """
    path = check_readable_file(Path(path))
    first = next(iter_frames(path), None)
    if first is None:
        raise InputError(f"{str(path)!r} has no decodable video frame")
    pts, tb = first.av_frame.pts, first.av_frame.time_base
    clock = float(pts * tb) if pts is not None and tb else 0.0
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise InputError(f"{str(path)!r} has no audio track: several angles are aligned by their "
                                 "sound, so every video needs one; leave this video out")
            samples, start = _decode_mono(container, container.streams.audio[0], rate)
    except av.FFmpegError as e:
        raise InputError(f"cannot read the audio of {str(path)!r}: {e}") from e
    if len(samples) < rate or float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) < SILENT_RMS:
        raise InputError(f"{str(path)!r} has a silent (or under 1 s) audio track: it cannot be aligned by "
                         "its sound; leave this video out")
    return AudioTrack(path, samples, rate, start - clock, clock)


def _decode_mono(container: av.container.InputContainer, stream: av.AudioStream, rate: int) -> tuple[
    NDArray[np.float32], float
]:
    """All samples of ``stream`` as mono at ``rate``, and the source-clock time of the first one.

    Chunks are placed by their timestamps (gaps are filled with silence, overlaps overwritten).
    """
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    chunks: list[tuple[int, NDArray[np.float32]]] = []
    start: float | None = None
    expected = 0
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.FFmpegError as e:
            log.warning("%s: skipped an undecodable audio packet: %s", container.name, e)
            continue
        for frame in frames:
            t = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else None
            if start is None:
                start = t if t is not None else 0.0
            pos = expected if t is None else int(round((t - start) * rate))
            if abs(pos - expected) <= rate // 200:  # resampler delay, rounding: keep it contiguous
                pos = expected
            for out in resampler.resample(frame):
                data = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                chunks.append((pos, data))
                pos += len(data)
            expected = pos
    for out in resampler.resample(None):
        data = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
        chunks.append((expected, data))
        expected += len(data)
    if not chunks:
        return np.zeros(0, np.float32), 0.0
    total = max(p + len(d) for p, d in chunks)
    samples = np.zeros(total, np.float32)
    for pos, data in chunks:
        if pos >= 0:
            samples[pos: pos + len(data)] = data
    return samples, float(start or 0.0)


N_BANDS = 16
"""Log-spaced frequency bands (80 Hz to half the sample rate) of the alignment features."""


def onset_features(samples: NDArray, rate: int, hop_s: float = 1 / ENVELOPE_RATE) -> NDArray[np.float64]:
    """(2 * N_BANDS, F) band-wise onset strength and loudness contour, one column per ``hop_s``.

    For each of :data:`N_BANDS` log-spaced bands: its log energy with the 1 s moving average removed
    (the melody and the arrangement moving through the bands) and its onset strength (the positive
    change of that log energy: notes and beats starting). One broadband onset envelope is dominated
    by the beat, and a song's beat repeats: on a real dance clip (gillhung_dance) the broadband
    envelope matched a bar later almost as well as at the true offset (0.72 vs 0.73), the band-wise
    features did not (0.33 vs 0.71). Column ``k`` describes the audio around ``k * hop_s``.
    """
    hop = max(1, int(round(hop_s * rate)))
    nfft = 1 << int(np.ceil(np.log2(4 * hop)))
    x = np.asarray(samples, np.float64)
    n = int(np.ceil(len(x) / hop))
    if len(x) < nfft:
        return np.zeros((2 * N_BANDS, max(n, 1)))
    freqs, _, spec = signal.stft(x, fs=rate, window="hann", nperseg=nfft, noverlap=nfft - hop,
                                 boundary="even", padded=True)
    power = np.abs(spec[:, :n]) ** 2
    edges = np.geomspace(80.0, rate / 2, N_BANDS + 1)
    band = np.searchsorted(edges, freqs, side="right") - 1
    energy = np.zeros((N_BANDS, power.shape[1]))
    inside = (band >= 0) & (band < N_BANDS)
    np.add.at(energy, band[inside], power[inside])
    level = np.log(energy + 1e-10)
    width = max(1, int(round(1.0 / hop_s)))
    level -= ndimage.uniform_filter1d(level, width, axis=1, mode="nearest")
    onset = np.maximum(np.diff(level, axis=1, prepend=level[:, :1]), 0.0)
    onset -= ndimage.uniform_filter1d(onset, width, axis=1, mode="nearest")
    return np.concatenate([level, onset])


def onset_envelope(samples: NDArray, rate: int, hop_s: float = 1 / ENVELOPE_RATE) -> NDArray[np.float64]:
    """Broadband onset strength per ``hop_s`` frame (the band onsets summed), for beat tracking."""
    features = onset_features(samples, rate, hop_s)
    return np.asarray(features[N_BANDS:].sum(axis=0), np.float64)


# ----------------------------------------------------------------------------------------- coarse
@dataclass(frozen=True)
class _Coarse:
    lag: int  # envelope frames: other's frame 0 sits at reference frame ``lag``
    correlation: float
    margin: float


def normalized_xcorr(
    a: NDArray, b: NDArray, min_overlap: int, max_lag: int | None = None
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Correlation of ``a`` and ``b`` at every lag with at least ``min_overlap`` samples in common.

    Lag ``k`` compares ``a[n + k]`` with ``b[n]`` (``b`` starts ``k`` samples into ``a``); each value is
    the correlation coefficient of the overlapping parts (mean removed over the whole signals,
    energy over the overlap only).

    Returns:
        (lags, correlation) for the lags considered (empty when none overlaps enough).
    """
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    na, nb = len(a), len(b)
    c = signal.correlate(a, b, mode="full", method="fft")
    lags = signal.correlation_lags(na, nb, mode="full")
    ca = np.concatenate([[0.0], np.cumsum(a * a)])
    cb = np.concatenate([[0.0], np.cumsum(b * b)])
    lo_a, hi_a = np.clip(lags, 0, na), np.clip(lags + nb, 0, na)
    lo_b, hi_b = np.clip(-lags, 0, nb), np.clip(na - lags, 0, nb)
    overlap = hi_a - lo_a
    energy = (ca[hi_a] - ca[lo_a]) * (cb[hi_b] - cb[lo_b])
    keep = overlap >= min_overlap
    if max_lag is not None:
        keep &= np.abs(lags) <= max_lag
    corr = np.where(energy > 0, c / np.sqrt(np.maximum(energy, 1e-300)), 0.0)
    return lags[keep].astype(np.int64), corr[keep]


def feature_xcorr(
    a: NDArray, b: NDArray, min_overlap: int, max_lag: int | None = None
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """:func:`normalized_xcorr` of every row of two feature matrices, averaged over the rows."""
    total: NDArray[np.float64] | None = None
    lags = np.zeros(0, np.int64)
    for row_a, row_b in zip(a, b, strict=True):
        lags, corr = normalized_xcorr(row_a, row_b, min_overlap, max_lag)
        total = corr if total is None else total + corr
    return lags, (total / len(a)) if total is not None else np.zeros(0)


def _coarse(ref_features: NDArray, features: NDArray, config: AlignConfig) -> _Coarse | None:
    shorter = min(ref_features.shape[1], features.shape[1]) / ENVELOPE_RATE
    min_overlap = int(round(min(config.min_overlap_s, 0.5 * shorter) * ENVELOPE_RATE))
    max_lag = None if config.max_offset_s is None else int(round(config.max_offset_s * ENVELOPE_RATE))
    lags, corr = feature_xcorr(ref_features, features, max(min_overlap, 1), max_lag)
    if not len(lags):
        return None
    best = int(np.argmax(corr))
    far = np.abs(lags - lags[best]) > config.distinct_s * ENVELOPE_RATE
    second = float(corr[far].max()) if far.any() else 0.0
    return _Coarse(int(lags[best]), float(corr[best]), float(corr[best]) - second)


# ----------------------------------------------------------------------------------------- fine
def gcc_phat(a: NDArray, b: NDArray, shifts: tuple[int, int]) -> tuple[float, float]:
    """Sub-sample shift ``d`` (samples) with ``a[n + d] ~ b[n]``, ``d`` in ``shifts``, and its significance.

    Generalised cross-correlation with phase transform: the cross-spectrum is whitened, so every
    frequency band votes equally and the peak is sharp even when one recording is noisier or
    coloured differently. The significance is the peak over the RMS of the whole correlation (about
    3 for unrelated sounds, over 10 for one sound recorded twice); it is 0 when the best shift is at
    an end of the range (no peak inside it).
    """
    n = len(a) + len(b)
    nfft = 1 << int(np.ceil(np.log2(n)))
    cross = np.fft.rfft(a, nfft) * np.conj(np.fft.rfft(b, nfft))
    cross /= np.maximum(np.abs(cross), 1e-12)
    cc = np.fft.irfft(cross, nfft)
    candidates = np.arange(shifts[0], shifts[1] + 1)
    values = cc[candidates % nfft]
    k = int(np.argmax(values))
    if not 0 < k < len(values) - 1:
        return float(candidates[k]), 0.0
    y0, y1, y2 = values[k - 1], values[k], values[k + 1]
    denom = y0 - 2 * y1 + y2
    frac = float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5)) if denom < 0 else 0.0
    rms = float(np.sqrt(np.mean(cc ** 2)))
    return float(candidates[k] + frac), float(y1 / rms) if rms > 0 else 0.0


@dataclass(frozen=True)
class _Window:
    t: float  # other video's time of the window centre
    lag_s: float  # reference time minus other video time
    significance: float  # GCC-PHAT peak / RMS


def _fine_windows(ref: AudioTrack, other: AudioTrack, lag_s: float, config: AlignConfig) -> list[_Window]:
    """Per-window lags (reference time - video time) along the overlap, near the coarse ``lag_s``.

    Windows are spread evenly over the overlap, ``step_s`` apart but at least ``min_windows`` of them.
    """
    rate = ref.rate
    win = int(round(config.window_s * rate))
    search = int(round(config.drift_search_s * rate))
    fine = int(round(config.fine_search_s * rate))
    hop = rate // ENVELOPE_RATE
    # Sample index of the other track -> reference sample index: j + shift.
    shift = int(round((other.start_s + lag_s - ref.start_s) * rate))
    first = max(0, search + fine - shift)
    last = min(len(other.samples), len(ref.samples) - shift - search - fine) - win
    if last < first:
        return []
    count = max(config.min_windows, int((last - first) / (config.step_s * rate)) + 1)
    out: list[_Window] = []
    for j in np.unique(np.linspace(first, last, count).astype(np.int64)).tolist():
        r = j + shift
        lo = r - search - fine
        seg = other.samples[j: j + win].astype(np.float64)
        region = ref.samples[lo: r + win + search + fine].astype(np.float64)
        t_other = other.start_s + (j + win / 2) / rate
        if np.sqrt(np.mean(seg ** 2)) < SILENT_RMS:
            out.append(_Window(t_other, lag_s, 0.0))
            continue
        # Envelope re-centring (follows drift), then the waveform within +-fine of it.
        feat_seg = onset_features(seg, rate)
        lags, corr = feature_xcorr(onset_features(region, rate), feat_seg, feat_seg.shape[1] - 1)
        k = int(lags[int(np.argmax(corr))]) * hop if len(corr) else search + fine  # seg start in region
        d, significance = gcc_phat(region, seg, (max(0, k - fine), min(len(region) - win, k + fine)))
        t_ref = ref.start_s + (lo + d + win / 2) / rate
        out.append(_Window(t_other, t_ref - t_other, significance))
    return out


@dataclass(frozen=True)
class _Line:
    """``lag = offset + drift * t`` fitted to the windows."""

    offset: float
    drift: float
    inliers: int
    rms: float
    rough_drift: float  # Theil-Sen slope of all windows (before inlier selection)


def _fit(windows: list[_Window], lag_s: float, config: AlignConfig) -> _Line:
    """Robust line through the significant window lags: Theil-Sen, then least squares on the inliers."""
    # The rough slope uses every window with a peak inside its range: a large drift blurs each window's
    # peak below the significance bar, but the peaks still follow the drift.
    rough_windows = [w for w in windows if w.significance > 0]
    rough = 0.0
    if len(rough_windows) >= 3 and np.ptp([w.t for w in rough_windows]) > 0:
        rough = float(stats.theilslopes([w.lag_s for w in rough_windows], [w.t for w in rough_windows])[0])
    windows = [w for w in windows if w.significance >= config.min_significance]
    if not windows:
        return _Line(lag_s, 0.0, 0, 0.0, rough)
    t = np.array([w.t for w in windows])
    lag = np.array([w.lag_s for w in windows])
    slope, intercept = 0.0, float(np.median(lag))
    if len(windows) >= 3 and np.ptp(t) > 0:
        fitted, fitted_intercept, _, _ = stats.theilslopes(lag, t)
        if abs(fitted) <= config.max_drift:
            slope, intercept = float(fitted), float(fitted_intercept)
    for _ in range(2):
        inl = np.abs(lag - (intercept + slope * t)) <= config.inlier_s
        if inl.sum() >= 3 and np.ptp(t[inl]) > 1.0:
            slope, intercept = np.polyfit(t[inl], lag[inl], 1)
        elif inl.any():
            slope, intercept = 0.0, float(np.median(lag[inl]))
        if abs(slope) > config.max_drift:
            slope, intercept = 0.0, float(np.median(lag[inl] if inl.any() else lag))
    inl = np.abs(lag - (intercept + slope * t)) <= config.inlier_s
    if not inl.any():
        return _Line(lag_s, 0.0, 0, 0.0, float(rough))
    resid = lag[inl] - (intercept + slope * t[inl])
    return _Line(float(intercept), float(slope), int(inl.sum()), float(np.sqrt(np.mean(resid ** 2))),
                 float(rough))


def _warp(track: AudioTrack, drift: float) -> AudioTrack:
    """``track`` resampled so that its time runs ``1 + drift`` times faster (undoes a clock drift).

    Sample ``m`` of the result is the track at fractional index ``m / (1 + drift)``; its start moves
    to ``start_s * (1 + drift)``: warped time ``u`` is video time ``u / (1 + drift)``.
    """
    scale = 1.0 + drift
    n = int(len(track.samples) * scale)
    samples = np.interp(np.arange(n) / scale, np.arange(len(track.samples)), track.samples)
    return AudioTrack(track.path, samples.astype(np.float32), track.rate, track.start_s * scale, track.clock_s)


# ----------------------------------------------------------------------------------------- align
def align_pair(ref: AudioTrack, other: AudioTrack, config: AlignConfig | None = None) -> Alignment:
    """Where ``other`` sits on ``ref``'s clock.

    When the first fit finds a clock drift of more than ``warp_drift``, the fine windows are measured
    again on ``other`` resampled by that drift: a drift stretches each window, which blurs the
    waveform correlation (1000 ppm over a 3 s window is 3 ms, 24 samples).

    Raises:
        InputError: the two do not share their sound (the message names ``other``'s file).
    """
    config = config or AlignConfig()
    coarse = _coarse(onset_features(ref.samples, ref.rate), onset_features(other.samples, other.rate), config)
    if coarse is None or coarse.correlation < config.min_correlation or coarse.margin < config.min_margin:
        why = ("too little sound in common" if coarse is None else
               f"best match {coarse.correlation:.2f}, need {config.min_correlation:.2f}"
               if coarse.correlation < config.min_correlation else
               f"ambiguous: two offsets match almost equally, margin {coarse.margin:.2f}")
        raise InputError(_mismatch(other, ref, why))
    # Envelope frame k of a track is its time start_s + k / ENVELOPE_RATE.
    lag_s = ref.start_s + coarse.lag / ENVELOPE_RATE - other.start_s
    windows = _fine_windows(ref, other, lag_s, config)
    line = _fit(windows, lag_s, config)
    scale = 1.0
    for _ in range(5):  # each pass measures on the sound resampled by the drift found so far
        step = line.drift if line.inliers >= 3 else line.rough_drift
        if abs(step) <= config.warp_drift or abs(scale * (1 + step) - 1) > config.max_drift:
            break
        scale *= 1.0 + step
        windows = _fine_windows(ref, _warp(other, scale - 1.0), lag_s, config)
        line = _fit(windows, lag_s, config)
    agree = line.inliers / len(windows) if windows else 0.0
    if line.inliers < 2 or agree < config.min_agree:
        raise InputError(_mismatch(other, ref, f"the waveforms agree in only {line.inliers} of {len(windows)} "
                                               f"windows at offset {lag_s:+.2f} s"))
    # reference = offset + (1 + drift) * u, and u = scale * video time.
    drift = (1.0 + line.drift) * scale - 1.0
    confidence = float(np.clip(coarse.correlation, 0, 1) * agree)
    return Alignment(other.path, line.offset, drift, confidence, coarse.correlation, coarse.margin,
                     (line.inliers, len(windows)), 1000 * line.rms)


def _mismatch(other: AudioTrack, ref: AudioTrack, why: str) -> str:
    return (f"{str(other.path)!r} does not share the sound of {str(ref.path)!r} ({why}); every video must "
            "film the same performance with its own audio; leave it out")


def align_videos(
    videos: list[Path], config: AlignConfig | None = None, *, tracks: list[AudioTrack] | None = None
) -> list[Alignment]:
    """Align every video on the first one's clock (the first gets offset 0, confidence 1).

    Raises:
        InputError: a video has no usable audio or does not share the first one's sound (named).
    """
    tracks = tracks if tracks is not None else [load_audio(v) for v in videos]
    ref = tracks[0]
    out = [Alignment(ref.path, 0.0)]
    for track in tracks[1:]:
        alignment = align_pair(ref, track, config)
        log.info("aligned %s", alignment.describe())
        out.append(alignment)
    return out


def audio_clarity(tracks: Sequence[AudioTrack], alignments: Sequence[Alignment]) -> NDArray[np.float64]:
    """How clean each track's sound is, in [0, 1], from how well the tracks agree with each other.

    If track ``i`` is the performance's sound plus independent noise, the correlation of two tracks
    is ``rho_ij = q_i * q_j`` with ``q_i`` the share of track ``i``'s feature variance that is the
    performance's sound. With three tracks or more, ``q_i^2 = rho_ij * rho_ik / rho_jk`` (median over
    the pairs). With two tracks the model cannot tell which one is noisier: both get 1.
    """
    n = len(tracks)
    if n < 3:
        return np.ones(n)
    feats = [onset_features(t.samples, t.rate) for t in tracks]
    # Reference time of each track's feature frame 0.
    starts = [float(a.to_reference(t.start_s)) for t, a in zip(tracks, alignments, strict=True)]
    rho = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(i + 1, n):
            lag = int(round((starts[j] - starts[i]) * ENVELOPE_RATE))
            lags, corr = feature_xcorr(feats[i], feats[j], 1, None)
            hit = np.flatnonzero(lags == lag)
            if len(hit):
                rho[i, j] = rho[j, i] = max(float(corr[hit[0]]), 1e-3)
    out = np.ones(n)
    for i in range(n):
        values = [rho[i, j] * rho[i, k] / rho[j, k] for j in range(n) for k in range(j + 1, n)
                  if i not in (j, k) and np.isfinite(rho[i, j] * rho[i, k] * rho[j, k])]
        if values:
            out[i] = float(np.sqrt(np.clip(np.median(values), 0, 1)))
    return out
