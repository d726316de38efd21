"""Compose a music-show-like clip from a labelled clip: wide shots cut with one-member close-ups.

K-pop stage videos cut between wide shots of the whole group and close-ups of one member. No labelled
clip of ours does, so this makes one: from a clip with GT it writes, into a work folder,

- ``NAME.closeups.mp4``: the original frames in "wide" stretches (default 3 s), cut hard to "close-up"
  stretches (default 2 s) showing a fixed crop window around one performer's upper body (taken from her
  GT box at the stretch start, the frame's aspect ratio, scaled back to the full frame size), the
  performers in turn; same frame count, frame rate and frame times (GT keyframes keep their frame and t),
  no audio;
- ``NAME.closeups.csv``: the GT with every box transformed by the same crop and scale, clipped to the
  frame, dropped when less than :data:`MIN_VISIBLE` of it remains, ``occluded=1`` when cut by more than
  half;
- ``NAME.closeups.json``: the stretches (first frame, last frame, performer or null for wide, crop window).

``--score`` then analyses the composed clip (no gallery, and with ``--gallery`` also with one made by
:mod:`make_gallery` from the *original* clip) with the default settings and prints
identity accuracy, IDF1, people count and, per performer, where the rows of her close-ups went: to
her own performer (the predicted name her wide rows map to), to another performer, to a name of its own
(stayed apart), or unmatched.

    python benchmarks/compose_closeups.py --clip dance2 --work $TMPDIR/closeups [--score] [--gallery]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from clips import clip_named
from fancam.io.tables import GT_COLUMNS, UNKNOWN, GroundTruth, load_gt
from fancam.io.video import count_frames, iter_frames, probe

MIN_VISIBLE = 0.3
"""Share of a box that must stay inside a close-up for its GT row to be kept (a sliver is out of frame)."""
HALF = 0.5
"""A box cut by more than this share is ``occluded=1`` (GT rule: more than half hidden, here by the frame edge)."""
UPPER_TOP = 0.05
"""The close-up starts this share of the box height above the box top (head room)."""
UPPER_HEIGHT = 0.6
"""The close-up is this share of the box height tall (head to about the waist)."""
MAX_ZOOM = 4.0
"""A close-up is at least 1/MAX_ZOOM of the frame high: upscaled further, the picture is mush (gillhung_dance2
f300: P3 on the ground, a 200 px box, gave a 67x120 px window, 16x)."""

log = logging.getLogger("compose_closeups")


@dataclass(frozen=True)
class Stretch:
    """Frames ``first..last`` (inclusive): wide (``person`` None) or a close-up of ``person``.

    ``window`` = (x1, y1, x2, y2) crop window in source pixels, the frame's aspect ratio (wide: the frame).
    """

    first: int
    last: int
    person: str | None
    window: tuple[float, float, float, float]


def closeup_window(box: np.ndarray, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """Upper-body crop window around ``box`` with the frame's aspect ratio, shifted inside the frame."""
    width, height = size
    x1, y1, x2, y2 = (float(v) for v in box)
    box_h = y2 - y1
    crop_h = min(float(height), max(UPPER_HEIGHT * box_h, height / MAX_ZOOM))
    crop_w = crop_h * width / height
    left = min(max((x1 + x2) / 2 - crop_w / 2, 0.0), width - crop_w)
    top = min(max(y1 - UPPER_TOP * box_h, 0.0), height - crop_h)
    return (left, top, left + crop_w, top + crop_h)


def transform_box(
    box: np.ndarray, window: tuple[float, float, float, float], size: tuple[int, int]
) -> tuple[np.ndarray, float]:
    """``box`` in the picture made by scaling ``window`` to ``size``: (clipped box, visible share)."""
    width, height = size
    wx1, wy1, wx2, wy2 = window
    sx, sy = width / (wx2 - wx1), height / (wy2 - wy1)
    moved = np.array([(box[0] - wx1) * sx, (box[1] - wy1) * sy, (box[2] - wx1) * sx, (box[3] - wy1) * sy])
    clipped = np.clip(moved, 0.0, [width, height, width, height])
    area = (moved[2] - moved[0]) * (moved[3] - moved[1])
    inside = max(clipped[2] - clipped[0], 0.0) * max(clipped[3] - clipped[1], 0.0)
    return clipped, float(inside / area) if area > 0 else 0.0


def plan_stretches(gt: GroundTruth, n_frames: int, fps: float, size: tuple[int, int],
                   wide_s: float = 3.0, close_s: float = 2.0) -> list[Stretch]:
    """Wide and close-up stretches over the clip, close-ups cycling over the performers.

    A close-up of the next performer in turn who has a certain, unoccluded GT box at the labelled frame
    nearest the stretch start (nobody: the stretch stays wide).
    """
    full = (0.0, 0.0, float(size[0]), float(size[1]))
    names = gt.names()
    keyframes = gt.keyframes
    wide_n, close_n = round(wide_s * fps), round(close_s * fps)
    stretches: list[Stretch] = []
    turn, start = 0, 0
    while start < n_frames:
        end = min(start + wide_n, n_frames) - 1
        stretches.append(Stretch(start, end, None, full))
        start = end + 1
        if start >= n_frames:
            break
        end = min(start + close_n, n_frames) - 1
        key = int(keyframes[np.argmin(np.abs(keyframes - start))])
        chosen = None
        for k in range(len(names)):
            name = names[(turn + k) % len(names)]
            rows = np.flatnonzero((gt.frame == key) & (gt.person == name) & ~gt.uncertain & ~gt.occluded)
            if len(rows):
                chosen, turn = (name, rows[0]), turn + k + 1
                break
        if chosen is None:
            stretches.append(Stretch(start, end, None, full))
        else:
            stretches.append(Stretch(start, end, chosen[0], closeup_window(gt.xyxy[chosen[1]], size)))
        start = end + 1
    return stretches


def stretch_of(stretches: list[Stretch], frame: int) -> Stretch:
    """The stretch holding ``frame``."""
    return next(s for s in stretches if s.first <= frame <= s.last)


def compose_gt(gt: GroundTruth, stretches: list[Stretch], size: tuple[int, int]) -> list[list[str]]:
    """GT rows (as CSV fields) of the composed clip."""
    rows = []
    for i in range(len(gt.frame)):
        frame = int(gt.frame[i])
        stretch = stretch_of(stretches, frame)
        box, visible = transform_box(gt.xyxy[i], stretch.window, size)
        if visible < MIN_VISIBLE:
            continue
        occluded = bool(gt.occluded[i]) or visible < 1.0 - HALF
        rows.append([str(frame), f"{gt.t[i]:.4f}", str(gt.person[i]), *(str(int(round(v))) for v in box),
                     str(int(occluded)), str(int(gt.manual[i])), str(int(gt.uncertain[i]))])
    return rows


def compose(video: Path, gt_path: Path, out: Path, name: str, wide_s: float = 3.0, close_s: float = 2.0) -> dict:
    """Write ``out/NAME.closeups.{mp4,csv,json}``; return the paths and stretches."""
    out.mkdir(parents=True, exist_ok=True)
    info = probe(video)
    size = (info.width, info.height)
    n_frames = count_frames(video)
    gt = load_gt(gt_path, n_frames=n_frames)
    stretches = plan_stretches(gt, n_frames, info.fps, size, wide_s, close_s)
    mp4, csv_path, json_path = (out / f"{name}.closeups.{ext}" for ext in ("mp4", "csv", "json"))
    rate = Fraction(info.fps).limit_denominator(1001)
    with av.open(str(mp4), "w") as container:
        stream = container.add_stream("libx264", rate=rate, options={"crf": "18", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.codec_context.time_base = 1 / rate
        for decoded in iter_frames(video):
            stretch = stretch_of(stretches, decoded.index)
            rgb = decoded.rgb()
            if stretch.person is not None:
                x1, y1, x2, y2 = (int(round(v)) for v in stretch.window)
                rgb = cv2.resize(rgb[y1:y2, x1:x2], size, interpolation=cv2.INTER_CUBIC)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = decoded.index
            frame.time_base = 1 / rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(GT_COLUMNS)
        writer.writerows(compose_gt(gt, stretches, size))
    plan = {"video": str(mp4), "gt": str(csv_path), "source": str(video), "fps": info.fps,
            "stretches": [s.__dict__ for s in stretches]}
    json_path.write_text(json.dumps(plan, indent=1))
    return plan


# ----------------------------------------------------------------------------------------- scoring
def where_closeups_went(gt: GroundTruth, tracks, match: np.ndarray, mapping: dict[str, str],
                        stretches: list[Stretch]) -> dict[str, dict[str, int]]:
    """Per performer: her close-up rows joined her own / another performer, stayed apart (a name of their
    own), were left ``unknown`` (gallery runs) or unmatched (no box at IoU >= 0.5)."""
    out: dict[str, dict[str, int]] = {}
    for i in range(len(gt.frame)):
        stretch = stretch_of(stretches, int(gt.frame[i]))
        if stretch.person != gt.person[i] or gt.uncertain[i]:
            continue
        counts = out.setdefault(str(gt.person[i]), {"own": 0, "other": 0, "apart": 0, "unknown": 0, "unmatched": 0})
        if match[i] < 0:
            counts["unmatched"] += 1
            continue
        pred = str(tracks.person[match[i]])
        if pred == UNKNOWN:
            counts["unknown"] += 1
            continue
        mapped = mapping.get(pred)
        counts["own" if mapped == gt.person[i] else "apart" if mapped is None else "other"] += 1
        if mapped is not None and mapped != gt.person[i]:
            counts[f"as {mapped}"] = counts.get(f"as {mapped}", 0) + 1
    return out


def accuracy_by_stretch(gt: GroundTruth, tracks, match: np.ndarray, mapping: dict[str, str],
                        stretches: list[Stretch]) -> dict[str, float | None]:
    """Identity accuracy over the GT rows of wide stretches and of close-up stretches (unmatched = wrong)."""
    right = {"wide": 0, "closeup": 0}
    total = {"wide": 0, "closeup": 0}
    for i in np.flatnonzero(~gt.uncertain):
        kind = "wide" if stretch_of(stretches, int(gt.frame[i])).person is None else "closeup"
        total[kind] += 1
        right[kind] += int(match[i] >= 0 and mapping.get(str(tracks.person[match[i]])) == gt.person[i])
    return {k: right[k] / total[k] if total[k] else None for k in total}


def score(plan: dict, work: Path, gallery: Path | None) -> list[dict]:
    """Analyse the composed clip with the default settings; identity numbers and close-up fates."""
    from fancam.eval.metrics import evaluate, map_names, match_keyframes
    from fancam.io.tables import load_tracks
    from fancam.pipeline.analyze import AnalysisSettings, analyze

    stretches = [Stretch(s["first"], s["last"], s["person"], tuple(s["window"])) for s in plan["stretches"]]
    settings = AnalysisSettings()
    folder = work / ("analysis-gallery" if gallery else "analysis")
    analysis = analyze(Path(plan["video"]), out=folder, gallery=gallery, settings=settings, progress=False)
    gt = load_gt(plan["gt"], n_frames=analysis.timeline.n_frames)
    tracks_csv = analysis.folder / "tracks.csv"
    report = evaluate(tracks_csv, gt, named=gallery is not None)
    tracks = load_tracks(tracks_csv)
    match = match_keyframes(gt, tracks)
    if gallery is None:
        scored = (match >= 0) & ~gt.uncertain
        mapping = map_names(gt.person[scored].tolist(), tracks.person[match[scored]].tolist())
    else:
        mapping = {n: n for n in gt.names()}
    result = {
        "gallery": gallery is not None,
        "identity": report.identity.accuracy, "idf1": report.tracking.idf1, "hota": report.tracking.hota,
        "people": len(analysis.cast.people), "shots": int(len(analysis.timeline.shot_starts)),
        "per_person": {p: round(c / n, 3) for p, c, n in report.identity.per_person if n},
        "closeups": where_closeups_went(gt, tracks, match, mapping, stretches),
        "accuracy": accuracy_by_stretch(gt, tracks, match, mapping, stretches),
        "mapping": mapping,
    }
    log.info("%s", result)
    return [result]


def main(argv: list[str] | None = None) -> None:
    """Command line: compose (and optionally score) one labelled clip."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", required=True, help="name in benchmarks/clips.py (e.g. dance2, fiyud)")
    parser.add_argument("--work", type=Path, required=True, help="work folder (never the repository)")
    parser.add_argument("--wide", type=float, default=3.0, help="seconds of each wide stretch")
    parser.add_argument("--close", type=float, default=2.0, help="seconds of each close-up stretch")
    parser.add_argument("--score", action="store_true", help="analyse and score (default settings)")
    parser.add_argument("--gallery", action="store_true", help="also score with a gallery of the original clip")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    clip = clip_named(args.clip)
    work = args.work / clip.name
    plan_path = work / f"{clip.name}.closeups.json"
    if plan_path.exists():
        plan = json.loads(plan_path.read_text())
    else:
        plan = compose(clip.video, clip.gt, work, clip.name, args.wide, args.close)
    print(json.dumps([s for s in plan["stretches"] if s["person"]], indent=None))
    if args.score:
        results = score(plan, work, None)
        if args.gallery:
            results += score(plan, work, clip.gallery_dir(args.work))
        (work / "scores.json").write_text(json.dumps(results, indent=1))
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
