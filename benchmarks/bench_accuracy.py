"""Accuracy of fancam against the seed prototype's decisions, on every labelled clip.

On every clip of :mod:`clips` (the bench clip ``../shared/bench`` and the held-out GT of
``benchmarks/gt/``), with and without a gallery (the bench clip also without P1 / without P3):

- **identity**: identity accuracy, IDF1, HOTA of fancam's ``tracks.csv`` and of the seed's
  (:mod:`seed`: one face-voted name per whole tracklet, no "unknown", duplicates allowed; without
  a gallery every tracklet is its own person). Both come from the *same* analysis (same detections,
  tracklets and sampled faces), so the difference is the identity decisions alone.
- **camera**, per target P1..P3: crop hit rate, framing, jitter, wide share and lag of fancam's camera
  path (``fancam.pipeline.produce.plan``, the path ``fancam render`` uses; framings ``full`` and ``upper``, 9:16)
  against the seed camera (trailing 0.5 s median + 0.25 s mean of the head point, 0.4W x 0.4H crop,
  and the same at 9:16), each following its *own* identity of the target. Without a gallery the
  target is the predicted name that ``fancam eval`` maps to it (our ``person-N``; the seed's
  ``tracklet-K``). Paths are scored from their ``crop.csv`` exactly as ``fancam eval --crop`` does.
- **sanity** (``--sanity``): both on a clip without GT (openpose street dance), no metrics: counts only.

Usage (from the repository root, in the project venv)::

    python benchmarks/bench_accuracy.py [--work DIR] [--quality fast] [--quality balanced] [--fresh]
                                        [--clip NAME ...] [--framing F ...] [--sanity] [--json OUT.json]

``--quality balanced`` loads YOLOX-nano and YuNet from ``FANCAM_MODEL_MIRROR`` (default:
``../shared/models``). Results go to ``DIR/accuracy.json`` (default DIR: ``$TMPDIR/fancam-bench``);
``benchmarks/report.py`` turns them into ``benchmarks/REPORT.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from clips import CLIPS, SHARED, LabelledClip, clip_named, shown
from fancam.camera.plan import CropPath, write_crop_path
from fancam.eval.metrics import EvalReport, evaluate
from fancam.io.tables import load_gt, load_tracks
from fancam.pipeline.analyze import Analysis, AnalysisSettings, analyze
from fancam.pipeline.produce import RenderOptions, plan
from jsonout import clean_json
from seed import (
    CROP_VARIANTS,
    SeedIdentity,
    load_seed_gallery,
    seed_crop_path,
    write_seed,
)

SANITY_CLIP = SHARED / "data/openpose_street_dance/video.avi"
FRAMINGS = ("auto", "full", "upper")
LEAVE_ONE_OUT = {"bench": ("P1", "P3")}
"""Members left out of the gallery in extra runs (P1 and P3 of the bench clip wear the same outfit)."""
DEFAULT_WORK = Path(tempfile.gettempdir()) / "fancam-bench"


log = logging.getLogger("bench_accuracy")


# ----------------------------------------------------------------------------------------- scores
def identity_row(report: EvalReport) -> dict:
    """Identity and tracking numbers of one report."""
    ident, trk = report.identity, report.tracking
    return {
        "identity_accuracy": ident.accuracy, "correct": ident.correct, "total": ident.total,
        "unmatched": ident.unmatched, "per_person": {p: c / n for p, c, n in ident.per_person if n},
        "mapping": dict(ident.mapping), "idf1": trk.idf1, "idp": trk.idp, "idr": trk.idr,
        "hota": trk.hota, "deta": trk.deta, "assa": trk.assa, "boxes": trk.predictions,
        "detected_share": 1.0 - ident.unmatched / ident.total if ident.total else None,
        "unknown_boxes": trk.unknown, "repeated_names": trk.duplicates,
    }


def crop_row(
    report: EvalReport, camera: str, target: str, followed: str | None, fps: float, path: CropPath
) -> dict:
    """Camera numbers of one report (``followed`` = the predicted name the camera follows).

    ``pan_std`` (std of the crop centre x over ``follow`` frames, in crop heights) tells whether the
    lag is meaningful: a camera that holds still has a flat correlation and a lag at the search edge.
    """
    c = report.crop
    lag = c.lag_frames
    follow = path.mode == "follow"
    centre_x = path.centre[follow, 0].astype(np.float64)
    pan_std = float(np.std(centre_x) / np.median(path.height[follow])) if follow.any() else None
    return {
        "target": target, "camera": camera, "follows": followed, "hit_rate": c.hit_rate,
        "hits": c.hits, "eligible": c.eligible, "framing": c.framing, "jitter": c.jitter,
        "wide_share": c.wide_share, "lag_frames": lag, "lag_s": None if lag is None else lag / fps,
        "pan_std": pan_std,
    }


def missing_crop(camera: str, target: str) -> dict:
    """Row of a camera that has nobody to follow for this target (the target was never found)."""
    return {"target": target, "camera": camera, "follows": None, "hit_rate": 0.0, "hits": 0,
            "eligible": None, "framing": None, "jitter": None, "wide_share": 1.0, "lag_frames": None,
            "lag_s": None, "pan_std": None}


# ----------------------------------------------------------------------------------------- cameras
def our_person_for(analysis: Analysis, target: str, mapping: dict[str, str]):
    """Our performer the render for GT ``target`` would follow (by name, or by the eval mapping)."""
    names = [pred for pred, gt in mapping.items() if gt == target] if mapping else [target]
    for person in analysis.cast.people:
        if person.label in names:
            return person
    return None


def our_crops(
    analysis: Analysis, gt, tracks_csv: Path, named: bool, mapping: dict, out: Path, framings=FRAMINGS
) -> list[dict]:
    """Score fancam's camera for every GT performer and framing."""
    rows = []
    size = (analysis.info.width, analysis.info.height)
    frames = np.arange(analysis.timeline.n_frames)
    for target in gt.names():
        person = our_person_for(analysis, target, {} if named else mapping)
        for framing in framings:
            camera = f"fancam-{framing}"
            if person is None:
                rows.append(missing_crop(camera, target))
                continue
            path = plan(analysis, person, RenderOptions(framing=framing))
            csv_path = write_crop_path(out / f"{target}.{framing}.crop.csv", path, analysis.timeline, frames)
            report = evaluate(tracks_csv, gt, named=named, crop_csv=csv_path, target=target, frame_size=size)
            rows.append(crop_row(report, camera, target, person.label, analysis.info.fps, path))
    return rows


def seed_crops(
    analysis: Analysis, gt, identity: SeedIdentity, tracks_csv: Path, named: bool, mapping: dict, out: Path
) -> list[dict]:
    """Score the seed camera (both crop shapes) following the seed's own identity of each target."""
    rows = []
    size = (analysis.info.width, analysis.info.height)
    frames = np.arange(analysis.timeline.n_frames)
    given = set(identity.names.values())
    for target in gt.names():
        followed = target if named else next((p for p, g in mapping.items() if g == target), None)
        for variant, config in CROP_VARIANTS.items():
            if followed is None or followed not in given:
                rows.append(missing_crop(variant, target))
                continue
            path = seed_crop_path(analysis.tracks, analysis.timeline, identity, followed, size, config)
            csv_path = write_crop_path(out / f"{target}.{variant}.crop.csv", path, analysis.timeline, frames)
            report = evaluate(tracks_csv, gt, named=named, crop_csv=csv_path, target=target, frame_size=size)
            rows.append(crop_row(report, variant, target, followed, analysis.info.fps, path))
    return rows


# ----------------------------------------------------------------------------------------- runs
def partial_gallery(work: Path, clip: LabelledClip, left_out: str) -> Path:
    """A copy of the clip's gallery without one member (to test "unknown" instead of a wrong name)."""
    root = work / f"gallery-{clip.name}-without-{left_out}"
    if root.exists():
        shutil.rmtree(root)
    for member in sorted((clip.gallery_dir(work) / clip.group).iterdir()):
        if member.name != left_out:
            shutil.copytree(member, root / clip.group / member.name)
    return root


def run_mode(work: Path, clip: LabelledClip, quality: str, mode: str, fresh: bool, framings=FRAMINGS) -> dict:
    """Analyse one clip (or reuse a valid analysis) and score fancam and the seed.

    ``mode`` is ``gallery``, ``no-gallery`` or ``without-<member>`` (the gallery minus that member:
    the member should become unknown, never someone else). ``fresh`` deletes earlier analyses first;
    later runs reuse the scan and appearance stages of the same folder (only identity is recomputed).
    """
    with_gallery = mode != "no-gallery"
    if mode.startswith("without-"):
        gallery_dir = partial_gallery(work, clip, mode.split("-", 1)[1])
    else:
        gallery_dir = clip.gallery_dir(work)
    folder = work / f"accuracy-{clip.name}-{quality}-{mode}"
    shared = work / f"accuracy-{clip.name}-{quality}-analysis"  # modes share detections, tracklets, faces
    for stale in (folder, shared) if fresh else ():
        if stale.exists():
            shutil.rmtree(stale)
    settings = AnalysisSettings(quality=quality)
    start = time.perf_counter()
    analysis = analyze(clip.video, out=shared, gallery=gallery_dir if with_gallery else None,
                       settings=settings, progress=False)
    seconds = time.perf_counter() - start
    gt = load_gt(clip.gt, n_frames=analysis.timeline.n_frames)
    ours_dir = folder / "fancam"
    ours_dir.mkdir(parents=True, exist_ok=True)
    ours_csv = Path(shutil.copyfile(analysis.folder / "tracks.csv", ours_dir / "tracks.csv"))
    ours = evaluate(ours_csv, gt, named=with_gallery)
    gallery = load_seed_gallery(gallery_dir, settings) if with_gallery else None
    seed_dir = folder / "seed"
    written = write_seed(analysis, seed_dir, gallery, targets=[])
    seed_csv, identity = written.tracks_csv, written.identity
    seed = evaluate(seed_csv, gt, named=with_gallery)
    crops = our_crops(analysis, gt, ours_csv, with_gallery, dict(ours.identity.mapping), ours_dir, framings)
    crops += seed_crops(analysis, gt, identity, seed_csv, with_gallery, dict(seed.identity.mapping), seed_dir)
    return {
        "clip": clip.name, "video": shown(clip.video), "gt": shown(clip.gt), "what": clip.what,
        "mode": mode, "quality": quality, "analysis_folder": str(analysis.folder),
        "analysis_seconds": seconds, "models": settings.model_names(),
        "tracklets": int(len(analysis.tracks.track_ids())),
        "fancam": {**identity_row(ours), "people": len(analysis.cast.people),
                   "tracks_csv": str(ours_csv)},
        "seed": {**identity_row(seed), "people": len(set(identity.names.values())),
                 "guessed_tracklets": identity.guessed, "group": identity.group, "tracks_csv": str(seed_csv)},
        "crops": crops,
    }


def run_sanity(work: Path, quality: str, clip: Path = SANITY_CLIP) -> dict:
    """Both pipelines on a clip without GT: they run and produce plausible outputs (no metrics)."""
    folder = work / f"sanity-{quality}-{clip.parent.name}"
    settings = AnalysisSettings(quality=quality)
    start = time.perf_counter()
    analysis = analyze(clip, out=folder / "analysis", settings=settings, progress=False)
    seconds = time.perf_counter() - start
    written = write_seed(analysis, folder / "seed", None, targets=[])
    seed_csv, identity = written.tracks_csv, written.identity
    ours = load_tracks(analysis.folder / "tracks.csv")
    n = analysis.timeline.n_frames
    size = (analysis.info.width, analysis.info.height)
    people = []
    for person in analysis.cast.people[:5]:
        path = plan(analysis, person, RenderOptions())
        # The seed would follow the longest tracklet of this performer (it cannot link tracklets).
        lengths = {t: int((analysis.tracks.track_id == t).sum()) for t in person.tracklets}
        longest = max(lengths, key=lengths.get)
        seed_path = seed_crop_path(analysis.tracks, analysis.timeline, identity, f"tracklet-{longest}", size)
        people.append({
            "person": person.label, "tracklets": len(person.tracklets), "seen_s": person.seen_s,
            "fancam_follow_share": float(np.mean(path.mode == "follow")),
            "seed_follow_share": float(np.mean(seed_path.mode == "follow")),
        })
    return {
        "clip": str(clip), "frames": n, "size": list(size), "analysis_seconds": seconds,
        "tracklets": int(len(analysis.tracks.track_ids())), "fancam_people": len(analysis.cast.people),
        "fancam_rows": len(ours.frame), "fancam_unknown_rows": int((ours.person == "unknown").sum()),
        "seed_people": len(set(identity.names.values())), "seed_rows": len(load_tracks(seed_csv).frame),
        "people": people,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch folder (analyses, outputs)")
    parser.add_argument("--quality", action="append", help="model preset(s) (default: fast)")
    parser.add_argument("--clip", action="append", choices=[c.name for c in CLIPS],
                        help="labelled clip(s) (default: all)")
    parser.add_argument("--framing", action="append", help=f"camera framing(s) to score (default: {FRAMINGS})")
    parser.add_argument("--fresh", action="store_true", help="re-analyse instead of reusing valid analyses")
    parser.add_argument("--sanity", action="store_true", help="also run on a clip without GT")
    parser.add_argument("--json", type=Path, help="output JSON (default: WORK/accuracy.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    os.environ.setdefault("FANCAM_MODEL_MIRROR", str(SHARED / "models"))
    args.work.mkdir(parents=True, exist_ok=True)
    qualities = args.quality or ["fast"]
    clips = [clip_named(name) for name in args.clip] if args.clip else list(CLIPS)
    framings = tuple(args.framing or FRAMINGS)
    result = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"), "host": platform.node(),
        "clips": [c.name for c in clips], "load_before": os.getloadavg(), "runs": [], "sanity": [],
    }
    for quality in qualities:
        for clip in clips:
            modes = ("gallery", "no-gallery", *(f"without-{m}" for m in LEAVE_ONE_OUT.get(clip.name, ())))
            for mode in modes:
                result["runs"].append(
                    run_mode(args.work, clip, quality, mode, args.fresh and mode == "gallery", framings))
                print(summary(result["runs"][-1]), flush=True)
        if args.sanity:
            result["sanity"].append({"quality": quality, **run_sanity(args.work, quality)})
    result["load_after"] = os.getloadavg()
    out = args.json or args.work / "accuracy.json"
    out.write_text(json.dumps(clean_json(result), indent=2) + "\n")
    print(f"wrote {out}")
    return 0


def summary(run: dict) -> str:
    """A few lines for the terminal."""
    lines = [f"[{run['clip']}, {run['quality']}, {run['mode']}] {run['tracklets']} tracklets"]
    for who in ("fancam", "seed"):
        r = run[who]
        lines.append(f"  {who:7s} identity {r['identity_accuracy']:.3f}  IDF1 {r['idf1']:.3f}  "
                     f"HOTA {r['hota']:.3f}  detected {r['detected_share']:.3f}  people {r['people']}")
    for c in run["crops"]:
        hit = "n/a" if c["hit_rate"] is None else f"{c['hit_rate']:.3f}"
        lines.append(f"  {c['target']} {c['camera']:12s} hit {hit}  framing {c['framing']}  "
                     f"lag {c['lag_frames']} (pan std {c['pan_std']})  wide {c['wide_share']}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

