"""Audio alignment of multi-angle videos: accuracy, drift, refusals and speed on the real clips' sound.

For every clip with sound in ../shared/data, "another camera" is simulated from its sound: a part of it
(starting `--shift` s in, 60% of the clip long) heard through a phone-like band-pass (300-3400 Hz), with
crowd-like noise (band-limited, swelling) at each SNR, and with its clock running fast or slow by each
drift. `fancam.multicam.align.align_pair` must find the known offset and drift. Then every pair of
*different* clips is aligned: each must be refused (a false accept would cut two performances together).

    python benchmarks/bench_multicam.py [--snr 20 10 6 3 0] [--drift 0 100 500] [--min-correlation C]
        [--json OUT.json]

Reports the offset error (ms), drift error (ppm), refusals of true pairs, false accepts of different
clips, and the alignment time per pair.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

import numpy as np
from scipy import signal

from fancam.errors import InputError
from fancam.multicam.align import AlignConfig, AudioTrack, align_pair, load_audio
from jsonout import clean_json

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CLIPS = [
    "gillhung_dance/dance.mp4", "gillhung_dance/dance2.mp4", "skz_party_multicam/video.mp4",
    "face_recognition_hamilton/short_hamilton_clip.mp4", "fiyud_dance3/dance.mp4",
    "miryala_stage_dance/video.mp4", "divyanshu_line_dance/dance.mp4",
    "tiktok_stage_ballet/4197989243424123418.mp4",
]


def crowd_noise(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Band-limited (pink-ish, < 3.5 kHz) noise whose loudness swells like a cheering crowd."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / rate)
    spectrum *= 1 / np.sqrt(np.maximum(f, 200.0)) * (f < 3500)
    noise = np.fft.irfft(spectrum, n) * (1.0 + 0.6 * np.sin(2 * np.pi * 0.3 * np.arange(n) / rate))
    return noise / np.sqrt(np.mean(noise ** 2))


def other_camera(track: AudioTrack, shift_s: float, snr_db: float, ppm: float, seed: int) -> AudioTrack:
    """The sound another camera records from ``shift_s`` on (see the module docstring)."""
    rate = track.rate
    n = len(track.samples)
    part = track.samples[int(shift_s * rate): int(shift_s * rate) + int(0.6 * n)].astype(np.float64)
    if ppm:
        up, down = 1_000_000 + int(ppm), 1_000_000
        g = np.gcd(up, down)
        part = signal.resample_poly(part, up // g, down // g)
    part = signal.lfilter(*signal.butter(2, [300, 3400], btype="band", fs=rate), part)
    noise = crowd_noise(len(part), rate, np.random.default_rng(seed))
    part = part + noise * np.sqrt(np.mean(part ** 2) / 10 ** (snr_db / 10))
    return AudioTrack(Path("camera.mp4"), part.astype(np.float32), rate, 0.0, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snr", type=float, nargs="+", default=[20, 10, 6, 3, 0])
    parser.add_argument("--drift", type=float, nargs="+", default=[0, 100, 500])
    parser.add_argument("--shift", type=float, default=1.3)
    parser.add_argument("--min-correlation", type=float, default=AlignConfig().min_correlation,
                        help="coarse acceptance threshold (AlignConfig.min_correlation)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    config = AlignConfig(min_correlation=args.min_correlation)
    tracks = {c: load_audio(DATA / c) for c in CLIPS}
    rows = []
    for (clip, track), snr, ppm in itertools.product(tracks.items(), args.snr, args.drift):
        other = other_camera(track, args.shift, snr, ppm, seed=int(abs(snr) * 10 + ppm))
        truth_offset = track.start_s + args.shift
        truth_drift = 1_000_000 / (1_000_000 + int(ppm)) - 1
        start = time.perf_counter()
        try:
            a = align_pair(track, other, config)
            row = {"clip": clip, "snr_db": snr, "ppm": ppm, "refused": False,
                   "offset_error_ms": 1000 * (a.offset_s - truth_offset),
                   "drift_error_ppm": 1e6 * (a.drift - truth_drift), "confidence": a.confidence}
        except InputError as e:
            row = {"clip": clip, "snr_db": snr, "ppm": ppm, "refused": True, "why": str(e)}
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
    false = []
    for a, b in itertools.combinations(CLIPS, 2):
        try:
            align_pair(tracks[a], tracks[b], config)
            false.append({"a": a, "b": b, "accepted": True})
        except InputError:
            false.append({"a": a, "b": b, "accepted": False})
    print(f"{'snr dB':>6} {'ppm':>5} {'pairs':>5} {'refused':>7} {'|err| med ms':>12} {'|err| max ms':>12} "
          f"{'>1 frame':>8} {'drift err ppm':>13}")
    for snr, ppm in itertools.product(args.snr, args.drift):
        sel = [r for r in rows if r["snr_db"] == snr and r["ppm"] == ppm]
        ok = [r for r in sel if not r["refused"]]
        err = np.abs([r["offset_error_ms"] for r in ok]) if ok else np.array([np.nan])
        derr = np.abs([r["drift_error_ppm"] for r in ok]) if ok else np.array([np.nan])
        print(f"{snr:6.0f} {ppm:5.0f} {len(sel):5d} {len(sel) - len(ok):7d} {np.median(err):12.2f} "
              f"{np.max(err):12.2f} {int(np.sum(err > 1000 / 30)):8d} {np.median(derr):13.1f}")
    accepted = sum(f["accepted"] for f in false)
    print(f"different clips: {accepted} of {len(false)} pairs wrongly accepted")
    lengths = [t.duration_s for t in tracks.values()]
    print(f"time per alignment: median {np.median([r['seconds'] for r in rows]):.2f} s "
          f"(clips {min(lengths):.0f}-{max(lengths):.0f} s), load average {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(clean_json({"rows": rows, "different_clips": false}), indent=1))


if __name__ == "__main__":
    main()
