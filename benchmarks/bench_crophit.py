"""Why the camera misses its target: every missed GT keyframe of every performer, by cause.

For every labelled clip (:mod:`clips`) and GT performer, the camera ``fancam render`` would use
(``fancam.pipeline.produce.plan``, framing ``auto``, 9:16) is scored as ``fancam eval --crop`` does
(DESIGN.md crop hit rate), and each *missed* eligible keyframe (target visible, not occluded) is put
in one class, first match wins:

- ``a_identity``: the box the camera follows at that frame is another GT performer's (IoU >= 0.3,
  best match), or on nobody labelled (``a_nobody``: a backup dancer, the audience, a bad box);
- ``d_cut``: within :data:`CUT_S` after a shot cut (the camera's reaction to the cut);
- ``b_gap_wide`` / ``b_gap_held``: the followed performer has no box at that frame (a tracking gap),
  and the camera is in ``search``/``wide`` mode, or holds (``follow``) on a position that misses;
- ``c_mode``: the target is tracked correctly but the camera is not in ``follow`` mode;
- ``c_outside``: tracked correctly, ``follow``, but the head point is outside the crop (lag, dead
  zone, smoothing, zoom too tight);
- ``c_offset``: tracked correctly, head inside the crop, but the crop is centred nearer to someone
  else *only because* the metric compares the crop's centre with head points while the framing puts
  the head above the centre (``head_y``): with every performer's head point moved down by the crop's
  own head offset it would be a hit (a neighbour whose head is lower, e.g. shorter or behind her);
- ``c_nearer``: tracked correctly, head inside the crop, but the crop is centred nearer to someone
  else in any case (camera off-centre, or a neighbour overlapping her).

Besides the real run (the identity of the analysis: with or without gallery), a **GT-identity
oracle** feeds the camera the tracklet rows that GT matches to the target (IoU >= 0.5, as the
metrics do; between keyframes the matched tracklet of the nearer keyframe), so its misses are the
camera's and the tracker's alone (no ``a`` class): the bar for the camera.

Usage (from the repository root, after ``bench_accuracy.py`` has analysed the clips into the same work
folder, or it analyses them now)::

    python benchmarks/bench_crophit.py [--work DIR] [--clip NAME ...] [--gallery] [--misses]
                                        [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from clips import CLIPS, SHARED, LabelledClip, clip_named
from fancam.camera.plan import CameraConfig, CropPath, SceneBoxes, choose_framing, parse_aspect, plan_camera
from fancam.eval.metrics import clamped_centres, crop_scores, evaluate, is_hit, match_keyframes
from fancam.geometry import head_point, iou_matrix
from fancam.io.tables import CropTable, GroundTruth, PredictedTracks, load_gt
from fancam.pipeline.analyze import Analysis, AnalysisSettings, analyze
from fancam.pipeline.produce import RenderOptions, plan, target_boxes
from jsonout import clean_json

DEFAULT_WORK = Path(tempfile.gettempdir()) / "fancam-bench"
CUT_S = 1.0
"""Misses this soon after a shot cut are put down to the cut."""
SAME_PERSON_IOU = 0.3
"""The followed box is a GT person's when its best IoU with a GT box of the frame is at least this."""
CLASSES = ("a_identity", "a_nobody", "d_cut", "b_gap_wide", "b_gap_held", "c_mode", "c_outside", "c_offset",
           "c_nearer")


# ----------------------------------------------------------------------------------------- oracle
def oracle_boxes(analysis: Analysis, gt: GroundTruth, target: str) -> tuple[NDArray, NDArray[np.int64]]:
    """Boxes (F, 4) of the tracklets GT matches to ``target`` (NaN elsewhere), and the row per frame.

    At each labelled keyframe the target's GT box is matched to a tracklet row (Hungarian on IoU >=
    0.5, as the metrics do). A frame takes the tracklet of the nearer of its two surrounding keyframes
    of the same shot (at most :data:`ORACLE_REACH_S` away); the box is that tracklet's row in that
    frame, if it has one.
    """
    tracks = analysis.tracks
    n = analysis.timeline.n_frames
    t = analysis.timeline.t
    pred = PredictedTracks("tracks", tracks.frame, t[tracks.frame], tracks.track_id,
                           np.full(len(tracks.frame), "x"), tracks.xyxy.astype(np.float64),
                           tracks.score.astype(np.float64))
    match = match_keyframes(gt, pred)
    rows = np.flatnonzero((gt.person == target) & ~gt.uncertain)
    rows = rows[np.argsort(gt.frame[rows])]
    key_f = gt.frame[rows]
    key_tid = np.where(match[rows] >= 0, tracks.track_id[np.maximum(match[rows], 0)], -1)
    shot = analysis.timeline.shot_of(np.arange(n))
    row_of = {(int(f), int(k)): i for i, (f, k) in enumerate(zip(tracks.frame, tracks.track_id, strict=True))}
    boxes = np.full((n, 4), np.nan)
    chosen = np.full(n, -1, np.int64)
    for f in range(n):
        j = int(np.searchsorted(key_f, f))
        options = [i for i in (j - 1, j) if 0 <= i < len(key_f) and shot[key_f[i]] == shot[f]
                   and abs(t[key_f[i]] - t[f]) <= ORACLE_REACH_S + 1e-9]
        if not options:
            continue
        best = min(options, key=lambda i: abs(t[key_f[i]] - t[f]))
        if key_tid[best] < 0:
            continue
        r = row_of.get((f, int(key_tid[best])))
        if r is not None:
            boxes[f] = tracks.xyxy[r]
            chosen[f] = r
    return boxes, chosen


ORACLE_REACH_S = 0.5
"""The oracle carries a keyframe's tracklet at most this far (GT keyframes are 0.5 s apart)."""


def oracle_path(analysis: Analysis, gt: GroundTruth, target: str) -> tuple[CropPath, NDArray]:
    """The camera path following the GT-identity oracle's boxes, and those boxes."""
    boxes, chosen = oracle_boxes(analysis, gt, target)
    keep = np.ones(len(analysis.tracks.frame), bool)
    keep[chosen[chosen >= 0]] = False
    keep &= analysis.cast.person != 0
    others = SceneBoxes(analysis.tracks.frame[keep], analysis.tracks.xyxy[keep])
    size = (analysis.info.width, analysis.info.height)
    aspect = parse_aspect("9:16")
    choice = choose_framing(boxes, size, aspect, others)
    config = CameraConfig(framing=choice.framing, aspect=aspect)
    return plan_camera(boxes, size, analysis.timeline, config, others), boxes


# ----------------------------------------------------------------------------------------- causes
def classify(
    gt: GroundTruth, path: CropPath, followed: NDArray, target: str, analysis: Analysis
) -> tuple[Counter, list[dict], int, int]:
    """Causes of the missed eligible keyframes of one camera path.

    Returns:
        Counts per class, one dict per miss (frame, t, class), hits, eligible.
    """
    size = (analysis.info.width, analysis.info.height)
    t = analysis.timeline.t
    cuts = analysis.timeline.shot_starts[analysis.timeline.shot_starts > 0]
    counts: Counter = Counter()
    misses = []
    hits = eligible = 0
    for f in gt.keyframes.tolist():
        rows = np.flatnonzero((gt.frame == f) & ~gt.uncertain)
        names = gt.person[rows].tolist()
        if target not in names or f >= len(path):
            continue
        i = names.index(target)
        if gt.occluded[rows[i]]:
            continue
        eligible += 1
        crop, mode = path.xyxy[f], path.mode[f]
        if mode == "follow" and is_hit(crop, i, gt.xyxy[rows], size):
            hits += 1
            continue
        box = followed[f]
        since_cut = t[f] - t[cuts[cuts <= f].max()] if (cuts <= f).any() else np.inf
        owner = None
        if np.isfinite(box).all():
            iou = iou_matrix(box[None], gt.xyxy[rows])[0]
            owner = int(np.argmax(iou)) if iou.max() >= SAME_PERSON_IOU else -1
        if owner is not None and owner >= 0 and owner != i:
            cause = "a_identity"
        elif owner == -1:
            cause = "a_nobody"
        elif since_cut <= CUT_S:
            cause = "d_cut"
        elif owner is None:
            cause = "b_gap_held" if mode == "follow" else "b_gap_wide"
        elif mode != "follow":
            cause = "c_mode"
        else:
            x1, y1, x2, y2 = crop
            head = gt.xyxy[rows[i]]
            hx, hy = (head[0] + head[2]) / 2, head[1] + 0.12 * (head[3] - head[1])
            if not (x1 <= hx <= x2 and y1 <= hy <= y2):
                cause = "c_outside"
            else:
                cause = "c_offset" if _hit_with_offset(crop, i, gt.xyxy[rows], size) else "c_nearer"
        counts[cause] += 1
        misses.append({"frame": f, "t": round(float(t[f]), 2), "cause": cause, "mode": str(mode)})
    return counts, misses, hits, eligible


def _hit_with_offset(crop: NDArray, target: int, boxes: NDArray, size: tuple[int, int]) -> bool:
    """The DESIGN.md hit test with every head point moved down by the crop's offset below the target's."""
    heads = head_point(boxes)
    offset = (crop[1] + crop[3]) / 2 - heads[target, 1]
    centres = clamped_centres(heads + [0.0, offset], (crop[2] - crop[0], crop[3] - crop[1]), size)
    dist = np.hypot(*(centres - [(crop[0] + crop[2]) / 2, (crop[1] + crop[3]) / 2]).T)
    return bool(dist[target] <= np.delete(dist, target).min(initial=np.inf) + 1e-6)


def check_against_eval(gt: GroundTruth, path: CropPath, target: str, analysis: Analysis, hits: int) -> None:
    """The hit count must be what ``fancam eval`` computes (the same metric, not a re-implementation)."""
    n = len(path)
    table = CropTable("path", np.arange(n), analysis.timeline.t, path.xyxy.astype(np.float64), path.mode)
    scores = crop_scores(gt, table, target, (analysis.info.width, analysis.info.height))
    if scores.hits != hits:
        raise AssertionError(f"hit count {hits} differs from fancam eval's {scores.hits}")


def jitter_lag(gt: GroundTruth, path: CropPath, target: str, analysis: Analysis) -> dict:
    """Jitter, wide share and lag (frames) of a path, as ``fancam eval --crop`` computes them."""
    n = len(path)
    table = CropTable("path", np.arange(n), analysis.timeline.t, path.xyxy.astype(np.float64), path.mode)
    s = crop_scores(gt, table, target, (analysis.info.width, analysis.info.height))
    return {"jitter": s.jitter, "wide_share": s.wide_share, "lag_frames": s.lag_frames}


# ----------------------------------------------------------------------------------------- runs
def run_clip(work: Path, clip: LabelledClip, gallery: bool) -> dict:
    """Causes of every performer's misses on one clip, for the real identity and the oracle."""
    mode = "gallery" if gallery else "no-gallery"
    shared = work / f"accuracy-{clip.name}-fast-analysis"
    analysis = analyze(clip.video, out=shared, gallery=clip.gallery_dir(work) if gallery else None,
                       settings=AnalysisSettings(quality="fast"), progress=False)
    gt = load_gt(clip.gt, n_frames=analysis.timeline.n_frames)
    report = evaluate(analysis.folder / "tracks.csv", gt, named=gallery)
    mapping = dict(report.identity.mapping)
    rows = []
    for target in gt.names():
        names = [p for p, g in mapping.items() if g == target] if not gallery else [target]
        person = next((p for p in analysis.cast.people if p.label in names), None)
        row: dict = {"clip": clip.name, "mode": mode, "target": target}
        if person is not None:
            path = plan(analysis, person, RenderOptions())
            counts, misses, hits, eligible = classify(gt, path, target_boxes(analysis, person), target, analysis)
            check_against_eval(gt, path, target, analysis, hits)
            row["real"] = {"person": person.label, "hits": hits, "eligible": eligible,
                           "hit_rate": hits / eligible if eligible else None, "causes": dict(counts),
                           "misses": misses, **jitter_lag(gt, path, target, analysis)}
        opath, oboxes = oracle_path(analysis, gt, target)
        counts, misses, hits, eligible = classify(gt, opath, oboxes, target, analysis)
        check_against_eval(gt, opath, target, analysis, hits)
        row["oracle"] = {"hits": hits, "eligible": eligible, "hit_rate": hits / eligible if eligible else None,
                         "causes": dict(counts), "misses": misses, **jitter_lag(gt, opath, target, analysis)}
        rows.append(row)
    return {"clip": clip.name, "mode": mode, "performers": rows}


def table(runs: list[dict]) -> str:
    """One line per clip and performer: hit rates and miss counts per cause (real / oracle)."""
    head = f"{'clip':10s}{'who':5s}{'real':>7s}{'oracle':>8s}  " + " ".join(f"{c:>10s}" for c in CLASSES)
    lines = [head, "(each cause: real/oracle misses)"]
    for run in runs:
        for r in run["performers"]:
            real, orc = r.get("real"), r["oracle"]
            rate = "-" if real is None or real["hit_rate"] is None else f"{real['hit_rate']:.3f}"
            orate = "-" if orc["hit_rate"] is None else f"{orc['hit_rate']:.3f}"
            cells = [f"{(real or {}).get('causes', {}).get(c, 0)}/{orc['causes'].get(c, 0)}" for c in CLASSES]
            lines.append(f"{run['clip']:10s}{r['target'][:5]:5s}{rate:>7s}{orate:>8s}  "
                         + " ".join(f"{c:>10s}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch folder (analyses)")
    parser.add_argument("--clip", action="append", choices=[c.name for c in CLIPS], help="clip(s) (default: all)")
    parser.add_argument("--gallery", action="store_true", help="identity with the gallery (default: without)")
    parser.add_argument("--misses", action="store_true", help="also list every missed keyframe")
    parser.add_argument("--json", type=Path, help="output JSON (default: WORK/crophit.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
    os.environ.setdefault("FANCAM_MODEL_MIRROR", str(SHARED / "models"))
    args.work.mkdir(parents=True, exist_ok=True)
    clips = [clip_named(name) for name in args.clip] if args.clip else list(CLIPS)
    runs = []
    for clip in clips:
        runs.append(run_clip(args.work, clip, args.gallery))
        if args.misses:
            for r in runs[-1]["performers"]:
                for who in ("real", "oracle"):
                    for m in r.get(who, {}).get("misses", []):
                        print(f"{clip.name} {r['target']} {who:6s} f{m['frame']} {m['t']:.2f}s "
                              f"{m['cause']} ({m['mode']})")
    print(table(runs))
    out = args.json or args.work / "crophit.json"
    out.write_text(json.dumps(clean_json({"runs": runs}), indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
