"""Build multi-angle test inputs from one real clip, with known truth.

An *angle* is a re-encode of part of a real clip: a crop (a zoom on part of the stage), optionally
mirrored, brightened, blurred and scaled, starting at a chosen source time, with the clip's own sound
(noise added), another clip's sound, or none. The truth of an angle is the source time of its first
frame: on the reference clip's clock, the angle's video time 0 is ``truth_offset_s``.

The standard set (:func:`build_angles`), from gillhung_dance (3 dancers, the centre one is P2):

- ``A``: the whole stage, 0-10 s, scaled down to 180x320 (a far seat): the clean sound.
- ``B``: a zoom on the centre dancer (P2) at the source's full resolution, mirrored, 25% brighter,
  crowd noise at 10 dB SNR, from 2.3 s to 7.5 s: she is twice as large as in A.
- ``C``: the whole stage at 144x256, out of focus (blur), crowd noise at 6 dB SNR, 0.5-7.0 s: worse
  than A everywhere, and ends early.
- ``X``: the same pictures with another clip's sound (fiyud_dance3): must be refused.
- ``N``: the same pictures without sound: must be refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from conftest import shared_file

AUDIO_RATE = 44100
FPS = 30.0
MEMBER = "P2"
"""The performer the standard set is made for (gallery name in ../shared/bench/gallery)."""


@dataclass(frozen=True)
class AngleSpec:
    """How to make one angle from a source clip.

    Attributes:
        start_s: Source time of the first kept frame (the first frame at or after it).
        end_s: Source time where the angle ends.
        crop: (x, y, w, h) fractions of the source frame kept (a zoom on part of the stage).
        height: Output height in pixels (even); the width follows the crop's shape.
        mirror: Flip left-right.
        gain: Brightness factor.
        blur: Gaussian blur sigma in output pixels (an out-of-focus or low-quality camera); 0 = none.
        noise_snr_db: Add noise (crowd-like: band-limited, amplitude-modulated) at this SNR; None = no noise.
        audio_from: Take the sound of this other clip instead (a video that must be refused).
        audio: Write an audio track at all.
        seed: Noise seed.
    """

    start_s: float = 0.0
    end_s: float = 8.0
    crop: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    height: int | None = None
    mirror: bool = False
    gain: float = 1.0
    blur: float = 0.0
    noise_snr_db: float | None = None
    audio_from: Path | None = None
    audio: bool = True
    seed: int = 0


@dataclass(frozen=True)
class Angle:
    """A made angle.

    Attributes:
        path: The video.
        truth_offset_s: Source (reference) time of the angle's first frame.
        spec: How it was made.
        size: (width, height) in pixels.
        source_size: (width, height) of the source frames.
    """

    path: Path
    truth_offset_s: float
    spec: AngleSpec
    size: tuple[int, int]
    source_size: tuple[int, int]

    def to_source_box(self, xyxy: NDArray) -> NDArray[np.float64]:
        """Boxes in this angle's pixels -> boxes in the source's pixels."""
        box = np.asarray(xyxy, np.float64).reshape(-1, 4).copy()
        sw, sh = self.source_size
        cx, cy, cw, ch = self.spec.crop
        x0, y0, w0, h0 = cx * sw, cy * sh, cw * sw, ch * sh
        sx, sy = w0 / self.size[0], h0 / self.size[1]
        if self.spec.mirror:
            box[:, [0, 2]] = self.size[0] - box[:, [2, 0]]
        return np.stack([x0 + box[:, 0] * sx, y0 + box[:, 1] * sy, x0 + box[:, 2] * sx, y0 + box[:, 3] * sy],
                        axis=1)


def _even(v: float) -> int:
    return max(2, 2 * int(round(v / 2)))


def read_audio(path: Path, rate: int = AUDIO_RATE) -> tuple[NDArray[np.float32], float]:
    """(2, N) float32 stereo samples of a file's sound at ``rate``, and the clock time of the first one."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate)
        parts, start = [], None
        for frame in container.decode(stream):
            if start is None:
                start = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
            parts.extend(out.to_ndarray() for out in resampler.resample(frame))
        parts.extend(out.to_ndarray() for out in resampler.resample(None))
    return np.concatenate(parts, axis=1).astype(np.float32), float(start or 0.0)


def video_clock(path: Path) -> float:
    """Presentation time (seconds) of a file's first decoded video frame."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            return float(frame.pts * frame.time_base)
    raise ValueError(f"no video frame in {path}")


def crowd_noise(n: int, rate: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Crowd-like noise: pink-ish band-limited noise whose loudness swells and falls (cheers)."""
    white = rng.standard_normal(n)
    spectrum = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1 / rate)
    spectrum *= 1 / np.sqrt(np.maximum(f, 200.0)) * (f < 6000)
    noise = np.fft.irfft(spectrum, n)
    swell = 1.0 + 0.6 * np.sin(2 * np.pi * 0.3 * np.arange(n) / rate + rng.uniform(0, 6))
    noise *= swell
    return noise / np.sqrt(np.mean(noise ** 2))


def make_angle(source: Path, dest: Path, spec: AngleSpec, fps: float = 30.0) -> Angle:
    """Write one angle of ``source`` (see :class:`AngleSpec`) to ``dest`` and return it with its truth."""
    frames: list[NDArray[np.uint8]] = []
    first_t: float | None = None
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        t0 = None
        for frame in container.decode(stream):
            t = float(frame.pts * frame.time_base)
            t0 = t if t0 is None else t0
            rel = t - t0
            if rel < spec.start_s - 1e-6:
                continue
            if rel >= spec.end_s - 1e-6:
                break
            if first_t is None:
                first_t = rel
            frames.append(frame.to_ndarray(format="rgb24"))
    assert first_t is not None and frames
    sh, sw = frames[0].shape[:2]
    cx, cy, cw, ch = spec.crop
    x0, y0, w0, h0 = (int(round(v)) for v in (cx * sw, cy * sh, cw * sw, ch * sh))
    out_h = _even(spec.height or h0)
    out_w = _even(out_h * w0 / h0)
    with av.open(str(dest), "w") as out:
        video = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001),
                               options={"preset": "ultrafast", "crf": "23"})
        video.width, video.height, video.pix_fmt = out_w, out_h, "yuv420p"
        audio = None
        if spec.audio:
            audio = out.add_stream("aac", rate=AUDIO_RATE)
            audio.layout = "stereo"
        for i, image in enumerate(frames):
            part = cv2.resize(image[y0: y0 + h0, x0: x0 + w0], (out_w, out_h), interpolation=cv2.INTER_AREA)
            if spec.mirror:
                part = part[:, ::-1]
            if spec.blur > 0:
                part = cv2.GaussianBlur(part, (0, 0), spec.blur)
            if spec.gain != 1.0:
                part = np.clip(part.astype(np.float32) * spec.gain, 0, 255).astype(np.uint8)
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(part), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 1) / Fraction(fps).limit_denominator(1001)
            out.mux(video.encode(vf))
        out.mux(video.encode(None))
        if audio is not None:
            _write_audio(out, audio, source, spec, (first_t, len(frames) / fps))
    return Angle(dest, first_t, spec, (out_w, out_h), (sw, sh))


def _write_audio(
    out: av.container.OutputContainer, audio: av.AudioStream, source: Path, spec: AngleSpec,
    span: tuple[float, float],
) -> None:
    """The sound from source time ``first_t`` (the clip's own, or another clip's), with noise."""
    first_t, duration = span
    path = spec.audio_from or source
    samples, audio_clock = read_audio(path)
    start = int(round((video_clock(path) + first_t - audio_clock) * AUDIO_RATE))
    n = int(round(duration * AUDIO_RATE))
    part = np.zeros((2, n), np.float32)
    piece = samples[:, max(start, 0): max(start, 0) + n]
    part[:, max(-start, 0): max(-start, 0) + piece.shape[1]] = piece[:, : n - max(-start, 0)]
    if spec.noise_snr_db is not None:
        rng = np.random.default_rng(spec.seed)
        power = float(np.mean(part.astype(np.float64) ** 2))
        noise = crowd_noise(n, AUDIO_RATE, rng) * np.sqrt(power / 10 ** (spec.noise_snr_db / 10))
        part = (part + noise[None, :]).astype(np.float32)
    part = np.clip(part, -1, 1)
    for k in range(0, n, 1024):
        chunk = np.ascontiguousarray(part[:, k: k + 1024])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, k, Fraction(1, AUDIO_RATE)
        out.mux(audio.encode(frame))
    out.mux(audio.encode(None))


SPECS = {
    "A": AngleSpec(0.0, 10.0, height=320),
    "B": AngleSpec(2.3, 7.5, crop=(0.05, 0.1, 0.9, 0.85), mirror=True, gain=1.25, noise_snr_db=10, seed=1),
    "C": AngleSpec(0.5, 7.0, height=256, blur=3.0, noise_snr_db=6, seed=2),
    "N": AngleSpec(1.0, 8.0, height=256, audio=False),
}


def build_angles(folder: Path, source: Path, other_sound: Path) -> dict[str, Angle]:
    """The standard set (see the module docstring) in ``folder``."""
    made = {name: make_angle(source, folder / f"{name}.mp4", spec, FPS) for name, spec in SPECS.items()}
    made["X"] = make_angle(source, folder / "X.mp4", AngleSpec(1.0, 8.0, height=256, audio_from=other_sound), FPS)
    return made


@pytest.fixture(scope="session")
def angles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Angle]:
    """The test angles of the gillhung clip (and a video with other sound), built once per test run."""
    return build_angles(tmp_path_factory.mktemp("angles"), shared_file("data/gillhung_dance/dance.mp4"),
                        shared_file("data/fiyud_dance3/dance.mp4"))
