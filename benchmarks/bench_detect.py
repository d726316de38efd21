"""Benchmark the person detectors (fancam.tracking.detect); reproduces notes/detect_report.md.

Sections:

1. ``gt``: recall at IoU >= 0.5 against the hand-labelled boxes of gillhung_dance/dance.mp4 (55 keyframes,
   3 dancers, 360x640 portrait), extra boxes per frame and mean IoU of the matches, per detector and layout,
   at score thresholds 0.3 and 0.5. The same keyframes are also tiled three times side by side (a 1080x640,
   ~16:9 "wide shot" with 9 labelled dancers) to measure landscape frames against real labels. Frames are
   fed the way the pipeline does: scaled in swscale to the detector's ``input_long_side``.
2. ``aspect``: the SSD layouts (squash, fold, tiles) on gillhung keyframes placed side by side and padded
   to aspects 1.12 .. 2.06, to find where folding starts to pay (``SsdConfig.fold_min_aspect``).
3. ``clips``: 20 evenly spaced frames of fiyud_dance3, gillhung dance2 (1080x1920 HEVC, night),
   divyanshu_line_dance (640x360, crowd) and tiktok_stage_ballet: people per frame, and agreement with
   YOLOX-nano on "prominent" people (YOLOX score >= 0.5, box >= 25% of the frame height). With ``--sheets
   DIR``, PNG contact sheets with the boxes drawn are written there for checking by eye.
4. ``motion``: how far people move between detections: YOLOX-nano on every frame of 5 s segments, IoU of
   each person's box at frame f with its box at f + k (k = 1..15). This is the box error a tracker must
   absorb by prediction when it detects every k-th frame.
5. ``layouts``: YOLOX-nano layouts on every labelled clip (``benchmarks/clips.py``, plus ``--gt NAME=VIDEO:CSV``):
   the whole frame at input 416 (the shipped model) and, with ``--sizes DIR`` holding input-resized
   copies ``yolox_nano_<S>.onnx``, at 512 and 640; and the whole frame + 2 or 3 square tiles (416 each)
   on landscape frames. Recall at IoU >= 0.5 of all GT rows, of occluded rows and of small people (box
   height < 1/3 of the frame), extra boxes per frame, median ms per call at 1 and 2 threads. Frames are
   fed as the pipeline feeds them (swscale to ``long_side_for(width, height)``).
6. ``timing``: median ms per call (wall and process CPU) at 1 and 2 threads, portrait and landscape
   frames, the cost per video second when detecting every k-th frame of 30 fps video, and the swscale
   conversion cost of a 1080x1920 frame at full size vs the detector size.

Usage::

    python benchmarks/bench_detect.py [--section gt|aspect|clips|motion|layouts|timing|all] [--sheets DIR]
                                      [--json OUT] [--repeat N] [--sizes DIR] [--gt NAME=VIDEO:CSV ...]

Timings are indicative only (shared 2-core machine): medians of repeated calls.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from clips import CLIPS
from fancam.geometry import iou_matrix
from fancam.io.video import DecodedFrame, iter_frames
from fancam.models import registry as models
from fancam.tracking.detect import (
    Detector,
    SsdConfig,
    SsdMobilenetDetector,
    YoloxConfig,
    YoloxDetector,
)
from fancam.types import Detections

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
YOLOX_NANO = models.ensure_model(models.YOLOX_NANO)  # the shipped file
CLIP = DATA / "gillhung_dance" / "dance.mp4"
GT = SHARED / "bench" / "gillhung_dance.csv"
OTHER_CLIPS = {
    "fiyud_dance3": DATA / "fiyud_dance3" / "dance.mp4",
    "gillhung_dance2": DATA / "gillhung_dance" / "dance2.mp4",
    "divyanshu_line": DATA / "divyanshu_line_dance" / "dance.mp4",
    "tiktok_ballet": DATA / "tiktok_stage_ballet" / "4197989243424123418.mp4",
}
GT_CLIPS = {c.name: (c.video, c.gt) for c in CLIPS}
"""Labelled clips (benchmarks/clips.py): name -> (video, GT csv)."""
THRESHOLDS = (0.3, 0.5)
LOW = 0.3  # detectors are built at this threshold; higher ones are applied by filtering


def configs(threads: int = 1) -> dict[str, Callable[[], Detector]]:
    """Detector variants compared here, built lazily."""

    def ssd(layout: str) -> Callable[[], Detector]:
        return lambda: SsdMobilenetDetector(
            config=SsdConfig(layout=layout, score_threshold=LOW), threads=threads, name=f"ssd-{layout}"
        )

    return {
        "ssd squash": ssd("squash"),
        "ssd letterbox": ssd("letterbox"),
        "ssd fold (default)": ssd("fold"),
        "ssd tiles": ssd("tiles"),
        "yolox-nano": lambda: YoloxDetector(
            YOLOX_NANO, YoloxConfig(score_threshold=LOW), threads=threads, name="yolox-nano"
        ),
    }


# ------------------------------------------------------------------------------------------ helpers


def detection_size(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """Even (width, height) with the longest side at most ``long_side`` (what the pipeline feeds)."""
    w, h = size
    scale = min(1.0, long_side / max(w, h))
    return max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2)


def resize_rgb(image: np.ndarray, long_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    size = detection_size((w, h), long_side)
    return image if size == (w, h) else cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def detect_full(det: Detector, image: np.ndarray) -> Detections:
    """Detect on ``image`` scaled to the detector's size; boxes back in ``image`` pixels."""
    small = resize_rgb(image, det.input_long_side)
    dets = det(small)
    scale = np.array([image.shape[1] / small.shape[1], image.shape[0] / small.shape[0]] * 2, np.float32)
    return Detections(dets.xyxy * scale, dets.score)


def detect_frame(det: Detector, frame: DecodedFrame) -> Detections:
    """Detect on ``frame`` converted in swscale at the detector's size; boxes in frame pixels."""
    w, h = frame.size
    size = detection_size((w, h), det.input_long_side)
    dets = det(frame.rgb(*size))
    scale = np.array([w / size[0], h / size[1]] * 2, np.float32)
    return Detections(dets.xyxy * scale, dets.score)


def match(gt: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoUs of the one-to-one Hungarian matches with IoU >= 0.5."""
    if len(gt) == 0 or len(boxes) == 0:
        return np.zeros(0)
    m = iou_matrix(gt, boxes)
    rows, cols = linear_sum_assignment(-m)
    ious = m[rows, cols]
    return ious[ious >= 0.5]


def pair_ious(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoUs of Hungarian pairs (same person across frames) with IoU > 0.1 (else: someone else)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros(0)
    m = iou_matrix(a, b)
    rows, cols = linear_sum_assignment(-m)
    ious = m[rows, cols]
    return ious[ious > 0.1]


def load_gt() -> dict[int, np.ndarray]:
    boxes: dict[int, list[list[float]]] = {}
    with open(GT, newline="") as f:
        for row in csv.DictReader(f):
            if row["uncertain"] == "1":
                continue
            boxes.setdefault(int(row["frame"]), []).append([float(row[k]) for k in ("x1", "y1", "x2", "y2")])
    return {k: np.array(v) for k, v in boxes.items()}


def grab_frames(path: Path, wanted: set[int]) -> dict[int, DecodedFrame]:
    out = {}
    for frame in iter_frames(path):
        if frame.index in wanted:
            out[frame.index] = frame
        if frame.index >= max(wanted):
            break
    return out


def sample_indices(path: Path, n: int = 20) -> set[int]:
    total = sum(1 for _ in iter_frames(path))
    return {int(i) for i in np.linspace(5, total - 6, n)}


def tally(rows: list[tuple[np.ndarray, Detections]]) -> dict[float, dict[str, float]]:
    """Recall, extra boxes per frame and mean matched IoU per threshold over (gt, detections) rows."""
    out = {}
    for thr in THRESHOLDS:
        hits, n_gt, extra, ious = 0, 0, 0, []
        for gt, dets in rows:
            boxes = dets.xyxy[dets.score >= thr]
            m = match(gt, boxes)
            hits += len(m)
            n_gt += len(gt)
            extra += len(boxes) - len(m)
            ious.extend(m)
        out[thr] = {"recall": hits / n_gt, "extra_per_frame": extra / len(rows),
                    "mean_iou": float(np.mean(ious)) if ious else 0.0}
    return out


def print_tally(title: str, result: dict[float, dict[str, float]]) -> None:
    cells = [
        f"@{t}: recall {r['recall']:.3f}, extra/frame {r['extra_per_frame']:.2f}, IoU {r['mean_iou']:.2f}"
        for t, r in result.items()
    ]
    print(f"  {title:22s} " + " | ".join(cells))


# ----------------------------------------------------------------------------------------- sections


def section_gt() -> dict:
    gt = load_gt()
    frames = grab_frames(CLIP, set(gt))
    full = {k: f.rgb() for k, f in frames.items()}
    results: dict[str, dict] = {}
    print(f"gillhung_dance/dance.mp4: {len(gt)} keyframes, {sum(map(len, gt.values()))} labelled boxes")
    for name, build in configs().items():
        det = build()
        portrait = tally([(gt[k], detect_frame(det, frames[k])) for k in sorted(gt)])
        full_res = tally([(gt[k], det(full[k])) for k in sorted(gt)])
        wide_rows = []
        for k in sorted(gt):
            wide = np.concatenate([full[k]] * 3, axis=1)
            wide_gt = np.concatenate([gt[k] + [360 * i, 0, 360 * i, 0] for i in range(3)])
            wide_rows.append((wide_gt, detect_full(det, wide)))
        wide_res = tally(wide_rows)
        print(f"{name} (input long side {det.input_long_side})")
        print_tally("portrait 360x640", portrait)
        print_tally("  same, full-res input", full_res)
        print_tally("wide 1080x640 (x3)", wide_res)
        results[name] = {"portrait": portrait, "portrait_full_res": full_res, "wide_x3": wide_res}
    return results


def section_aspect() -> dict:
    """SSD layouts vs frame aspect: gillhung keyframes tiled side by side, padded right with black."""
    gt = load_gt()
    keys = sorted(gt)[::2]
    full = {k: f.rgb() for k, f in grab_frames(CLIP, set(keys)).items()}
    wanted = ("ssd squash", "ssd fold (default)", "ssd tiles")
    layouts = {name: build() for name, build in configs().items() if name in wanted}
    # Folding even near-square frames shows where fold_min_aspect should sit.
    layouts["ssd always-fold"] = SsdMobilenetDetector(config=SsdConfig(layout="fold", fold_min_aspect=1.0))
    results: dict[str, dict] = {}
    for copies, pad in ((2, 0), (2, 133), (2, 240), (3, 0), (3, 240)):
        aspect = (360 * copies + pad) / 640
        line = []
        for name, det in layouts.items():
            rows = []
            for k in keys:
                image = np.concatenate([full[k]] * copies + [np.zeros((640, pad, 3), np.uint8)], axis=1)
                boxes = np.concatenate([gt[k] + [360 * i, 0, 360 * i, 0] for i in range(copies)])
                rows.append((boxes, detect_full(det, image)))
            r = tally(rows)[LOW]
            results.setdefault(f"{aspect:.2f}", {})[name] = r
            line.append(f"{name.split()[1]} {r['recall']:.3f} / {r['extra_per_frame']:.2f}")
        print(f"  aspect {aspect:.2f} ({copies} copies + {pad} px): recall / extra per frame @{LOW}: "
              + "; ".join(line))
    return results


def section_clips(sheets: Path | None) -> dict:
    results: dict[str, dict] = {}
    dets = {name: build() for name, build in configs().items()}
    for clip, path in OTHER_CLIPS.items():
        frames = grab_frames(path, sample_indices(path))
        keys = sorted(frames)
        found = {name: [detect_frame(det, frames[k]) for k in keys] for name, det in dets.items()}
        w, h = frames[keys[0]].size
        prominent = [d.xyxy[(d.score >= 0.5) & (d.xyxy[:, 3] - d.xyxy[:, 1] >= 0.25 * h)]
                     for d in found["yolox-nano"]]
        n_ref = sum(len(p) for p in prominent)
        print(f"{clip} ({w}x{h}), frames {keys[0]}..{keys[-1]}; {n_ref} prominent YOLOX people")
        results[clip] = {}
        for name, per_frame in found.items():
            counts = [int((d.score >= LOW).sum()) for d in per_frame]
            agree = sum(len(match(p, d.xyxy)) for p, d in zip(prominent, per_frame, strict=True))
            anyref = [d.xyxy for d in found["yolox-nano"]]
            unmatched = sum(int((d.score >= LOW).sum()) - len(match(a, d.xyxy[d.score >= LOW]))
                            for a, d in zip(anyref, per_frame, strict=True))
            print(f"  {name:20s} people/frame {counts}  finds {agree}/{n_ref} prominent; "
                  f"{unmatched} boxes unmatched by any YOLOX box")
            results[clip][name] = {"counts": counts, "prominent_found": agree, "prominent": n_ref,
                                   "unmatched_to_yolox": unmatched}
        if sheets is not None:
            write_sheet(sheets / f"detect_{clip}.png", [frames[k] for k in keys[::4]],
                        {name: per_frame[::4] for name, per_frame in found.items()})
    return results


def write_sheet(path: Path, frames: list[DecodedFrame], found: dict[str, list[Detections]]) -> None:
    """One row per frame, one column per detector, boxes >= 0.3 in red with their score."""
    w, h = frames[0].size
    scale = 360 / max(w, h)
    size = (round(w * scale), round(h * scale))
    rows = []
    for i, frame in enumerate(frames):
        base = frame.rgb(*detection_size(frame.size, max(size)))
        cells = []
        for name, per_frame in found.items():
            img = np.ascontiguousarray(base.copy())
            dets = per_frame[i]
            for (x1, y1, x2, y2), s in zip(dets.xyxy * scale, dets.score, strict=True):
                if s >= LOW:
                    cv2.rectangle(img, (int(x1), int(y1)), (int(x2), int(y2)), (255, 0, 0), 1)
                    cv2.putText(img, f"{s:.2f}", (int(x1) + 1, int(y1) + 9), cv2.FONT_HERSHEY_SIMPLEX, 0.3,
                                (255, 255, 0), 1)
            cv2.putText(img, name, (3, img.shape[0] - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 255, 0), 1)
            cells.append(img)
        rows.append(np.concatenate(cells, axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.concatenate(rows, axis=0)[:, :, ::-1])
    print(f"  sheet: {path}")


def section_motion() -> dict:
    # High threshold and prominent people only, so that pairs are the same person, not crowd flicker.
    det = YoloxDetector(YOLOX_NANO, YoloxConfig(score_threshold=0.5))
    results = {}
    segments = (
        ("gillhung_dance", CLIP, 300),
        ("gillhung_dance2", OTHER_CLIPS["gillhung_dance2"], 0),
        ("divyanshu_line", OTHER_CLIPS["divyanshu_line"], 200),
    )
    for clip, path, start in segments:
        boxes = []
        for frame in iter_frames(path):
            if frame.index >= start + 150:
                break
            if frame.index >= start:
                xyxy = detect_frame(det, frame).xyxy
                boxes.append(xyxy[xyxy[:, 3] - xyxy[:, 1] >= 0.25 * frame.size[1]])
        row = {}
        for k in (1, 2, 3, 5, 10, 15):
            ious = np.concatenate([pair_ious(boxes[i], boxes[i + k]) for i in range(len(boxes) - k)])
            row[k] = {"median": float(np.median(ious)), "p10": float(np.percentile(ious, 10)),
                      "below_0.5": float(np.mean(ious < 0.5))}
        print(f"  {clip:16s} IoU(box_f, box_f+k), median / 10th percentile / share < 0.5:")
        print("    " + "; ".join(f"k={k}: {r['median']:.2f} / {r['p10']:.2f} / {r['below_0.5']:.0%}"
                               for k, r in row.items()))
        results[clip] = row
    return results


def layout_configs(sizes: Path | None, threads: int = 1) -> dict[str, Callable[[], Detector]]:
    """YOLOX-nano layouts compared in the ``layouts`` section."""

    def nano(path: Path, **kw: object) -> Callable[[], Detector]:
        return lambda: YoloxDetector(path, YoloxConfig(score_threshold=LOW, **kw), threads=threads)  # type: ignore[arg-type]

    out = {"whole 416": nano(YOLOX_NANO)}
    for size in (512, 640):
        if sizes is not None and (sizes / f"yolox_nano_{size}.onnx").is_file():
            out[f"whole {size}"] = nano(sizes / f"yolox_nano_{size}.onnx")
    # tile_max_height=1: tiles on every landscape frame (the default 0.5 keeps close shots untiled).
    out["whole+2 tiles"] = nano(YOLOX_NANO, tiles=2, tile_max_height=1.0)
    out["whole+3 tiles"] = nano(YOLOX_NANO, tiles=3, tile_max_height=1.0)
    return out


def load_gt_file(path: Path) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """frame -> (N, 4) boxes and frame -> (N,) occluded flags, uncertain rows left out."""
    boxes: dict[int, list[list[float]]] = {}
    occluded: dict[int, list[bool]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["uncertain"] == "1":
                continue
            k = int(row["frame"])
            boxes.setdefault(k, []).append([float(row[c]) for c in ("x1", "y1", "x2", "y2")])
            occluded.setdefault(k, []).append(row["occluded"] == "1")
    return {k: np.array(v) for k, v in boxes.items()}, {k: np.array(v) for k, v in occluded.items()}


def matched_rows(gt: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N,) bool: GT rows matched one-to-one by a box at IoU >= 0.5."""
    hit = np.zeros(len(gt), bool)
    if len(gt) and len(boxes):
        m = iou_matrix(gt, boxes)
        rows, cols = linear_sum_assignment(-m)
        hit[rows[m[rows, cols] >= 0.5]] = True
    return hit


def section_layouts(sizes: Path | None, extra: dict[str, tuple[Path, Path]], repeat: int,
                    only: list[str] | None = None) -> dict:
    clips = {k: v for k, v in {**GT_CLIPS, **extra}.items()
             if v[1].is_file() and v[0].is_file() and (not only or k in only)}
    builders = {t: layout_configs(sizes, t) for t in (1, 2)}
    results: dict[str, dict] = {}
    for clip, (video, gt_path) in clips.items():
        gt, occ = load_gt_file(gt_path)
        frames = grab_frames(video, set(gt))
        w, h = frames[min(frames)].size
        small = {k: (b[:, 3] - b[:, 1]) < h / 3 for k, b in gt.items()}
        n_gt, n_occ, n_small = (sum(int(v.sum()) if v.dtype == bool else len(v) for v in d.values())
                                for d in (gt, occ, small))
        print(f"{clip} ({w}x{h}): {len(gt)} keyframes, {n_gt} GT rows ({n_occ} occluded, {n_small} small)")
        results[clip] = {}
        for name in builders[1]:
            det = builders[1][name]()
            hits = hit_occ = hit_small = extra_boxes = 0
            calls = []
            for k in sorted(gt):
                frame = frames[k]
                size = detection_size((w, h), det.long_side_for(w, h))
                image = frame.rgb(*size)
                t0 = time.perf_counter()
                dets = det(image)
                calls.append(time.perf_counter() - t0)
                boxes = dets.xyxy * np.array([w / size[0], h / size[1]] * 2)
                hit = matched_rows(gt[k], boxes)
                hits += int(hit.sum())
                hit_occ += int((hit & occ[k]).sum())
                hit_small += int((hit & small[k]).sum())
                extra_boxes += len(boxes) - int(hit.sum())
            probe = frames[sorted(gt)[len(gt) // 2]]
            image = probe.rgb(*detection_size((w, h), det.long_side_for(w, h)))
            ms1 = timed(lambda det=det, image=image: det(image), repeat)[0]
            det2 = builders[2][name]()
            ms2 = timed(lambda det2=det2, image=image: det2(image), repeat)[0]
            r = {"recall": hits / n_gt, "recall_occluded": hit_occ / n_occ if n_occ else None,
                 "recall_small": hit_small / n_small if n_small else None,
                 "extra_per_frame": extra_boxes / len(gt), "ms_t1": ms1, "ms_t2": ms2,
                 "input": f"{image.shape[1]}x{image.shape[0]}"}
            results[clip][name] = r
            occ_s = f"{r['recall_occluded']:.3f}" if n_occ else "  -  "
            small_s = f"{r['recall_small']:.3f}" if n_small else "  -  "
            print(f"  {name:14s} in {r['input']:>9s}: recall {r['recall']:.3f} (occluded {occ_s}, small {small_s}), "
                  f"extra/frame {r['extra_per_frame']:.2f}, {ms1:6.1f} ms @1 thread, {ms2:6.1f} ms @2")
    return results


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median wall ms, median process-CPU ms) of ``repeat`` calls after one warm-up."""
    fn()
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls) * 1e3, statistics.median(cpus) * 1e3


def section_timing(repeat: int) -> dict:
    portrait = next(iter(grab_frames(CLIP, {60}).values()))
    landscape = next(iter(grab_frames(OTHER_CLIPS["divyanshu_line"], {280}).values()))
    hd = next(iter(grab_frames(OTHER_CLIPS["gillhung_dance2"], {100}).values()))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (timings are indicative)")
    results: dict[str, dict] = {}
    for threads in (1, 2):
        for name, build in configs(threads).items():
            det = build()
            for label, frame in (("portrait", portrait), ("landscape", landscape)):
                image = frame.rgb(*detection_size(frame.size, det.input_long_side))
                wall, cpu = timed(lambda det=det, image=image: det(image), repeat)
                results.setdefault(name, {})[f"{label}_t{threads}"] = {"wall_ms": wall, "cpu_ms": cpu}
                print(f"  {name:20s} threads {threads} {label:9s} {image.shape[1]}x{image.shape[0]}: "
                      f"{wall:6.1f} ms wall, {cpu:6.1f} ms CPU")
    print("  detector cost per second of 30 fps video, single thread (median portrait ms x calls/s):")
    for name, r in results.items():
        ms = r["portrait_t1"]["wall_ms"]
        cells = ", ".join(f"k={k}: {ms * 30 / k / 1000:.2f} s" for k in (1, 3, 4, 5, 6, 10))
        print(f"    {name:20s} {cells}")
    conv = {}
    for label, size in (("full 1080x1920", None), ("480 long side", detection_size(hd.size, 480)),
                        ("416 long side", detection_size(hd.size, 416))):
        wall, cpu = timed(lambda size=size: hd.rgb(*size) if size else hd.rgb(), repeat)
        conv[label] = {"wall_ms": wall, "cpu_ms": cpu}
        print(f"  swscale RGB conversion of a 1080x1920 HEVC frame, {label}: "
              f"{wall:.1f} ms wall, {cpu:.1f} ms CPU")
    size = detection_size(hd.size, 480)
    wall, cpu = timed(lambda: cv2.resize(hd.rgb(), size, interpolation=cv2.INTER_AREA), repeat)
    conv["full + cv2.resize to 480"] = {"wall_ms": wall, "cpu_ms": cpu}
    print(f"  full-size conversion then cv2.resize(INTER_AREA) to 480: {wall:.1f} ms wall, {cpu:.1f} ms CPU")
    results["conversion"] = conv
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sections = ("gt", "aspect", "clips", "motion", "layouts", "timing", "all")
    parser.add_argument("--section", choices=sections, default="all")
    parser.add_argument("--sheets", type=Path, help="folder for PNG contact sheets (clips section)")
    parser.add_argument("--repeat", type=int, default=15, help="timed calls per measurement")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--sizes", type=Path, help="folder with yolox_nano_512.onnx / _640.onnx (layouts)")
    parser.add_argument("--clip", action="append", help="layouts: only these clips (benchmarks/clips.py names)")
    parser.add_argument("--gt", action="append", default=[], metavar="NAME=VIDEO:CSV",
                        help="another labelled clip for the layouts section (repeatable)")
    args = parser.parse_args()
    extra = {}
    for spec in args.gt:
        name, _, rest = spec.partition("=")
        video, _, gt_csv = rest.rpartition(":")
        extra[name] = (Path(video), Path(gt_csv))
    out = {}
    if args.section in ("gt", "all"):
        print("== ground truth (gillhung_dance) ==")
        out["gt"] = section_gt()
    if args.section in ("aspect", "all"):
        print("== SSD layouts vs frame aspect (gillhung keyframes side by side) ==")
        out["aspect"] = section_aspect()
    if args.section in ("clips", "all"):
        print("== other clips (20 frames each) ==")
        out["clips"] = section_clips(args.sheets)
    if args.section in ("motion", "all"):
        print("== box motion between detections (YOLOX-nano, every frame of 5 s) ==")
        out["motion"] = section_motion()
    if args.section in ("layouts", "all"):
        print("== YOLOX-nano layouts on the labelled clips ==")
        out["layouts"] = section_layouts(args.sizes, extra, args.repeat, args.clip)
    if args.section in ("timing", "all"):
        print("== timing ==")
        out["timing"] = section_timing(args.repeat)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
