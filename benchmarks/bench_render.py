"""Benchmark the camera path and the renderer (reproduces the numbers of the render report).

1. ``path``: on gillhung_dance/dance.mp4, the hand-labelled boxes of each dancer (keyframes every 0.5 s,
   linear in between; then again with per-frame noise like a detector's) are the target track. For
   every framing preset, three cameras are scored with the DESIGN.md metrics
   (``fancam.eval.metrics.crop_scores``: hit rate, framing, jitter, lag): ``ours``
   (:func:`fancam.camera.plan.plan_camera`), ``naive`` (a crop of the preset's size centred on the head
   point in every frame) and ``seed`` (the prototype's trailing 0.5 s median then 0.25 s mean of that
   naive crop).
2. ``cuts``: face_recognition_hamilton/short_hamilton_clip.mp4 has four shots (starts 0, 20, 82, 211,
   found by frame differences and checked by eye); a hand-made target box follows the singer in shots
   1 and 3 and is absent in shots 2 and 4 (audience). Reports the modes per shot and the crop motion
   at each cut, and writes a fancam plus a debug video to ``--out``.
3. ``speed``: real-time factor (video seconds per wall second) and CPU seconds (all threads; less
   sensitive to other processes than wall time) of decoding, cropping, scaling and full renders at
   crop-native size and at 1080x1920, on gillhung (360x640) and on the first seconds of
   gillhung_dance/dance2.mp4 (1080x1920 HEVC); and three targets in one pass vs three passes.

Usage::

    python benchmarks/bench_render.py [--section path|cuts|speed|speed-hd|all] [--out DIR] [--repeat 3]

Timings are indicative only (2 shared cores): each is the median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from fancam import evaluate, tables
from fancam.camera.plan import FRAMINGS, CameraConfig, CropPath, plan_camera
from fancam.camera.render import (
    DebugJob,
    OverlayBoxes,
    RenderJob,
    crop_yuv420,
    output_size,
    pixel_rect,
    render,
)
from fancam.geometry import head_point
from fancam.io.encode import EncodeConfig
from fancam.io.video import iter_frames, probe
from fancam.types import Timeline

SHARED = Path(__file__).resolve().parents[2] / "shared"
GILLHUNG = SHARED / "data/gillhung_dance/dance.mp4"
GILLHUNG_GT = SHARED / "bench/gillhung_dance.csv"
DANCE2 = SHARED / "data/gillhung_dance/dance2.mp4"
HAMILTON = SHARED / "data/face_recognition_hamilton/short_hamilton_clip.mp4"
HAMILTON_SHOTS = (0, 20, 82, 211)
# Singer's box (x1, y1, x2, y2) at a few frames of shots 1 and 3, read off the frames by eye.
HAMILTON_KEYS = {
    0: (395, 28, 600, 360), 19: (410, 30, 600, 360),
    82: (20, 10, 265, 360), 120: (20, 5, 350, 360), 150: (95, 0, 380, 360),
    180: (100, 5, 420, 360), 210: (170, 0, 560, 360),
}


# ----------------------------------------------------------------------------------------- helpers
def gt_track(person: str, n_frames: int) -> np.ndarray:
    """(F, 4) boxes of one labelled dancer, linear between keyframes, NaN outside."""
    with open(GILLHUNG_GT, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["person"] == person]
    keys = np.array([int(r["frame"]) for r in rows])
    boxes = np.array([[float(r[k]) for k in ("x1", "y1", "x2", "y2")] for r in rows])
    out = np.full((n_frames, 4), np.nan)
    span = np.arange(keys[0], keys[-1] + 1)
    out[span] = np.stack([np.interp(span, keys, boxes[:, k]) for k in range(4)], axis=1)
    return out


def frame_times(video: Path) -> np.ndarray:
    return np.array([f.t for f in iter_frames(video)])


def naive_path(boxes: np.ndarray, frame_size: tuple[int, int], cfg: CameraConfig) -> np.ndarray:
    """(F, 4) crop of the preset's size around the head point in every frame (held where unseen)."""
    filled = boxes.copy()
    seen = np.flatnonzero(np.isfinite(boxes).all(axis=1))
    for k in range(4):
        filled[:, k] = np.interp(np.arange(len(boxes)), seen, boxes[seen, k])
    head = head_point(filled)
    h = cfg.framing.height_ratio * (filled[:, 3] - filled[:, 1])
    return clamp_crops(head[:, 0], head[:, 1] + (0.5 - cfg.framing.head_y) * h, h, frame_size, cfg)


def clamp_crops(cx, cy, h, frame_size, cfg: CameraConfig) -> np.ndarray:
    fw, fh = frame_size
    h = np.clip(h, min(cfg.min_crop_px, fh), min(fh, fw / cfg.aspect))
    w = h * cfg.aspect
    cx, cy = np.clip(cx, w / 2, fw - w / 2), np.clip(cy, h / 2, fh - h / 2)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def seed_path(naive: np.ndarray, fps: float, cfg: CameraConfig, frame_size) -> np.ndarray:
    """The prototype's smoother: trailing 0.5 s median, then trailing 0.25 s mean (centre and size)."""
    centre = np.column_stack([(naive[:, 0] + naive[:, 2]) / 2, (naive[:, 1] + naive[:, 3]) / 2,
                              naive[:, 3] - naive[:, 1]])
    n_med, n_mean = max(1, round(0.5 * fps)), max(1, round(0.25 * fps))
    med = np.array([np.median(centre[max(0, i - n_med + 1): i + 1], axis=0) for i in range(len(centre))])
    mean = np.array([med[max(0, i - n_mean + 1): i + 1].mean(axis=0) for i in range(len(med))])
    return clamp_crops(mean[:, 0], mean[:, 1], mean[:, 2], frame_size, cfg)


def score(gt, xyxy: np.ndarray, mode: np.ndarray, t: np.ndarray, target: str, frame_size):
    crop = tables.CropTable("bench", np.arange(len(xyxy)), t, xyxy.astype(np.float64), mode)
    return evaluate.crop_scores(gt, crop, target, frame_size)


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds (all threads of this process) of ``repeat`` calls."""
    wall, cpu = [], []
    for _ in range(repeat):
        c0, t0 = cpu_seconds(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(cpu_seconds() - c0)
    return statistics.median(wall), statistics.median(cpu)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ----------------------------------------------------------------------------------------- sections
def bench_path(noise: float = 0.0) -> None:
    """Score the three cameras; ``noise`` adds detector-like jitter (std, fraction of box height)."""
    info = probe(GILLHUNG)
    t = frame_times(GILLHUNG)
    n, size = len(t), (info.width, info.height)
    timeline = Timeline(t, np.zeros(1, np.int64))
    gt = tables.load_gt(GILLHUNG_GT, n_frames=n)
    rng = np.random.default_rng(0)
    what = f"+ per-frame noise of {noise:.0%} of the box height" if noise else "(linear between keyframes)"
    print(f"\n## Camera path on gillhung: GT boxes as the target track {what}\n")
    print("| target | framing | camera | hit rate | framing (box/crop) | jitter | lag (frames) | plan s | "
          "time-reversal diff px |")
    print("|---|---|---|---|---|---|---|---|---|")
    follow = np.array(["follow"] * n)
    for person in ("P1", "P2", "P3"):
        boxes = gt_track(person, n)
        boxes += rng.normal(0, 1, boxes.shape) * noise * (boxes[:, 3:] - boxes[:, 1:2])
        for name, framing in FRAMINGS.items():
            cfg = CameraConfig(framing=framing)
            t0 = time.perf_counter()
            ours = plan_camera(boxes, size, timeline, cfg)
            plan_s = time.perf_counter() - t0
            # An offline planner has no direction: planning the reversed track gives the reversed path.
            back = plan_camera(boxes[::-1].copy(), size, timeline, cfg).xyxy[::-1]
            reversal = float(np.abs(back.astype(np.float64) - ours.xyxy).max())
            naive = naive_path(boxes, size, cfg)
            cams = {"ours": (ours.xyxy, ours.mode), "naive": (naive, follow),
                    "seed": (seed_path(naive, info.fps, cfg, size), follow)}
            for cam, (xyxy, mode) in cams.items():
                s = score(gt, xyxy, mode, t, person, size)
                plan = f"{plan_s:.2f} | {reversal:.3f}" if cam == "ours" else " | "
                print(f"| {person} | {name} | {cam} | {s.hit_rate:.3f} | {s.framing:.2f} | {s.jitter:.5f} | "
                      f"{s.lag_frames} | {plan} |")


def hamilton_track(n: int) -> np.ndarray:
    keys = sorted(HAMILTON_KEYS)
    boxes = np.full((n, 4), np.nan)
    for a, b in ((0, 20), (82, 211)):
        ks = [k for k in keys if a <= k < b]
        span = np.arange(a, b)
        vals = np.array([HAMILTON_KEYS[k] for k in ks], np.float64)
        boxes[span] = np.stack([np.interp(span, ks, vals[:, c]) for c in range(4)], axis=1)
    return boxes


def bench_cuts(out: Path) -> None:
    info = probe(HAMILTON)
    t = frame_times(HAMILTON)
    n, size = len(t), (info.width, info.height)
    boxes = hamilton_track(n)
    timeline = Timeline(t, np.array(HAMILTON_SHOTS))
    cfg = CameraConfig(framing=FRAMINGS["upper"])
    path = plan_camera(boxes, size, timeline, cfg)
    print("\n## Shot cuts on the Hamilton clip (framing upper)\n")
    print("| shot | frames | target | modes | crop centre x first..last |")
    print("|---|---|---|---|---|")
    ends = list(HAMILTON_SHOTS[1:]) + [n]
    for a, b in zip(HAMILTON_SHOTS, ends, strict=True):
        names, counts = np.unique(path.mode[a:b], return_counts=True)
        modes = ", ".join(f"{m} {c}" for m, c in zip(names.tolist(), counts.tolist(), strict=True))
        seen = "yes" if np.isfinite(boxes[a:b]).all() else "no"
        xs = f"{path.centre[a, 0]:.0f}..{path.centre[b - 1, 0]:.0f}"
        print(f"| {a}-{b - 1} | {b - a} | {seen} | {modes} | {xs} |")
    steps = np.abs(np.diff(path.centre[:, 0]))
    inside = [s for i, s in enumerate(steps) if i + 1 not in HAMILTON_SHOTS]
    print(f"\nlargest per-frame move inside shots: {max(inside):.1f} px; at the cuts: "
          f"{', '.join(f'{steps[c - 1]:.0f}' for c in HAMILTON_SHOTS[1:])} px")
    label = np.array(["singer"] * int(np.isfinite(boxes).all(axis=1).sum()))
    seen = np.flatnonzero(np.isfinite(boxes).all(axis=1))
    jobs = [RenderJob(out / "hamilton_upper.mp4", path, output_size(path)),
            DebugJob(out / "hamilton_debug.mp4", OverlayBoxes(seen, boxes[seen], label), (("singer", path),))]
    render(HAMILTON, jobs, progress=False)
    print(f"wrote {jobs[0].output} and {jobs[1].output}")


def speed_row(label: str, seconds: tuple[float, float], video_s: float) -> None:
    """One table row: wall and CPU seconds, and the real-time factor (video s / wall s)."""
    wall, cpu = seconds
    print(f"| {label} | {wall:.2f} | {cpu:.2f} | {video_s / wall:.2f} | {video_s / cpu:.2f} |")


def bench_speed(out: Path, repeat: int) -> None:
    print(f"\n## Render speed (median of {repeat}; 2 shared cores, load {os.getloadavg()[0]:.1f})\n")
    print("| what | wall s | CPU s | real-time factor | video s per CPU s |")
    print("|---|---|---|---|---|")
    info = probe(GILLHUNG)
    t = frame_times(GILLHUNG)
    n, size, video_s = len(t), (info.width, info.height), len(t) / info.fps
    timeline = Timeline(t, np.zeros(1, np.int64))
    paths = {p: plan_camera(gt_track(p, n), size, timeline, CameraConfig()) for p in ("P1", "P2", "P3")}
    p2 = paths["P2"]
    speed_row("gillhung decode only", timed(lambda: sum(1 for _ in iter_frames(GILLHUNG)), repeat), video_s)

    def crop_only() -> None:
        for f in iter_frames(GILLHUNG):
            crop_yuv420(f, pixel_rect(p2.xyxy[f.index], f.size))
    speed_row("gillhung decode + YUV crop", timed(crop_only, repeat), video_s)
    scaler = av.video.reformatter.VideoReformatter()

    def crop_scale() -> None:
        for f in iter_frames(GILLHUNG):
            c = crop_yuv420(f, pixel_rect(p2.xyxy[f.index], f.size))
            scaler.reformat(c, width=1080, height=1920, interpolation="BICUBIC")
    speed_row("gillhung decode + crop + scale to 1080x1920", timed(crop_scale, repeat), video_s)
    native = output_size(p2)
    for label, job_size, preset in (
        (f"gillhung render P2 native {native[0]}x{native[1]} (veryfast)", native, None),
        ("gillhung render P2 1080x1920 (auto = superfast)", (1080, 1920), None),
        ("gillhung render P2 1080x1920 veryfast", (1080, 1920), "veryfast"),
        ("gillhung render P2 1080x1920 ultrafast", (1080, 1920), "ultrafast"),
    ):
        job = RenderJob(out / "speed.mp4", p2, job_size)
        speed_row(label, timed(lambda j=job, p=preset: render(GILLHUNG, [j], encode=EncodeConfig(preset=p),
                                                              progress=False), repeat), video_s)
    jobs = [RenderJob(out / f"speed_{p}.mp4", c, output_size(c)) for p, c in paths.items()]
    one_vs_many(GILLHUNG, jobs, "gillhung 3 targets native", video_s, repeat)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory of the benchmark process so far: {peak:.0f} MB")


def one_vs_many(video: Path, jobs: list[RenderJob], label: str, video_s: float, repeat: int) -> None:
    speed_row(f"{label}, one pass", timed(lambda: render(video, jobs, progress=False), repeat), video_s)
    speed_row(f"{label}, {len(jobs)} passes",
              timed(lambda: [render(video, [j], progress=False) for j in jobs], repeat), video_s)


def panning_path(info, total: int, height_share: float, x_range: tuple[float, float]) -> CropPath:
    """A 9:16 crop of ``height_share`` of the frame height panning across ``x_range`` (fractions)."""
    h = height_share * info.height
    w = h * 9 / 16
    cx = np.linspace(w / 2 + x_range[0] * (info.width - w), w / 2 + x_range[1] * (info.width - w), total)
    xyxy = np.column_stack([cx - w / 2, np.full(total, 300.0), cx + w / 2, np.full(total, 300.0 + h)])
    return CropPath(xyxy, np.array(["follow"] * total))


def bench_hd(out: Path, repeat: int) -> None:
    """1080x1920 HEVC source, first 8 s, slowly panning 9:16 crops of 65% of the frame height."""
    load = os.getloadavg()[0]
    print(f"\n## Render speed, HD source (median of {repeat}; 2 shared cores, load {load:.1f})\n")
    print("| what | wall s | CPU s | real-time factor | video s per CPU s |")
    print("|---|---|---|---|---|")
    info = probe(DANCE2)
    seconds = 8.0
    total = info.n_frames or int(round(30 * info.fps))
    path = panning_path(info, total, 0.65, (0.05, 0.95))

    def decode() -> None:
        for f in iter_frames(DANCE2):
            if f.t >= seconds:
                break
    speed_row(f"dance2 (1080x1920 HEVC) decode only, {seconds:g} s", timed(decode, repeat), seconds)
    native = output_size(path)
    for label, size in ((f"dance2 render native {native[0]}x{native[1]} (auto = superfast)", native),
                        ("dance2 render 1080x1920 (auto = superfast)", (1080, 1920))):
        job = RenderJob(out / "speed_dance2.mp4", path, size, end_s=seconds)
        speed_row(label, timed(lambda j=job: render(DANCE2, [j], progress=False), repeat), seconds)
    paths = [panning_path(info, total, 0.5, span) for span in ((0, 0.3), (0.35, 0.65), (0.7, 1.0))]
    jobs = [RenderJob(out / f"hd_{k}.mp4", p, output_size(p), end_s=seconds) for k, p in enumerate(paths)]
    w, h = output_size(paths[0])
    one_vs_many(DANCE2, jobs, f"dance2 3 targets native {w}x{h}", seconds, repeat)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory of the benchmark process so far: {peak:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--section", choices=["path", "cuts", "speed", "speed-hd", "all"], default="all")
    parser.add_argument("--out", type=Path, help="keep the rendered videos in this folder")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        if args.section in ("path", "all"):
            bench_path()
            bench_path(noise=0.02)
        if args.section in ("cuts", "all"):
            bench_cuts(out)
        if args.section in ("speed", "all"):
            bench_speed(out, args.repeat)
        if args.section in ("speed-hd", "all"):
            bench_hd(out, args.repeat)


if __name__ == "__main__":
    main()
