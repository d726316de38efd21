"""Tracker comparison on identical detections: fancam's tracker vs roboflow ``trackers`` (SORT, ByteTrack,
OC-SORT), scored with ``fancam.eval.metrics`` on every labelled clip (:mod:`clips`; ``--clip`` to choose).

Why three steps and two venvs: ``trackers`` depends on ``opencv-python`` 5, which would shadow the
``opencv-python-headless`` 4 that fancam uses, so the reference trackers run in a separate venv that
never imports fancam (this file imports fancam only inside the fancam-side steps).

1. ``detect`` (fancam venv): decode the clip exactly as ``fancam analyze`` scans it (same shot cuts,
   same detection frames, same detector and input size) and cache every detector output:
   ``WORK/trackers/detections-<clip>-<detector>.npz``.
2. ``reference`` (reference venv): run the reference trackers on that file, write their raw tracks:
   ``WORK/trackers/reference-<clip>-<detector>.npz``. Each tracker gets the detection frames' real
   timestamps (``update(..., timestamp=t)``, so its Kalman filter steps 3 frames at a time), a new
   instance at every shot cut, and the library defaults otherwise, except ``lost_track_buffer=30``
   at ``frame_rate`` = the video's (a lost track lives 1 s, as ours: ``max_lost_s=1.0``).
3. ``score`` (fancam venv): run fancam's :class:`fancam.tracking.track.Tracker` on the cached detections, then
   score every tracker twice: **raw** (its tracks as they are, linearly interpolated between
   observations so every frame has a row) and **+tracklets** (the same post-processing fancam
   applies, :func:`fancam.tracking.tracklets.build_tracklets`: split at merges, drop short/small pieces, link
   obvious continuations). Each track (tracklet) is its own person; ``evaluate(named=False)`` maps
   them one-to-one to the GT performers, so identity accuracy is the share of GT rows covered by each
   performer's best track. Also: tracks per performer (distinct ids matched to each GT performer
   over its keyframes) and ID switches (changes of the matched id between successive keyframes).

``all`` runs the three steps (the reference step through ``--ref-python``). ``--detect-fps R``
(repeatable; 0 = the product's default rate) runs the comparison at other detection rates: the
reference trackers are designed for a detection on every frame (``--detect-fps 30`` on this clip).
Commands::

    python3 -m venv ../venv-ref && ../venv-ref/bin/pip install trackers numpy
    python benchmarks/bench_trackers.py all --ref-python ../venv-ref/bin/python
    # or step by step:
    python benchmarks/bench_trackers.py detect
    ../venv-ref/bin/python benchmarks/bench_trackers.py reference \
        --detections $TMPDIR/fancam-bench/trackers/detections-<clip>-<detector>.npz
    python benchmarks/bench_trackers.py score

Results: ``WORK/trackers.json``, one entry per detection rate (default WORK: ``$TMPDIR/fancam-bench``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from clips import CLIPS, SHARED, LabelledClip, clip_named, shown
from jsonout import clean_json

DEFAULT_WORK = Path(tempfile.gettempdir()) / "fancam-bench"
DEFAULT_REF_PYTHON = Path(__file__).resolve().parents[2] / "venv-ref/bin/python"  # ../venv-ref
REFERENCE_TRACKERS = ("sort", "bytetrack", "ocsort")
LOST_TRACK_BUFFER = 30  # frames at 30 fps = 1 s, in the library's convention


def _paths(work: Path, clip: str, detector: str, detect_fps: float | None) -> tuple[Path, Path]:
    folder = work / "trackers"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{clip}-{detector}" + ("" if detect_fps is None else f"-{detect_fps:g}fps")
    return folder / f"detections-{stem}.npz", folder / f"reference-{stem}.npz"


# ----------------------------------------------------------------------------------------- 1. detect
class RecordingDetector:
    """Wraps a detector and keeps every output (boxes in the detector's input pixels) and its cost."""

    def __init__(self, detector) -> None:
        self._detector = detector
        self.outputs: list[tuple[np.ndarray, np.ndarray, tuple[int, int]]] = []
        self.ms: list[float] = []

    def __getattr__(self, name: str):
        return getattr(self._detector, name)

    def __call__(self, image: np.ndarray):
        start = time.perf_counter()
        dets = self._detector(image)
        self.ms.append(1000 * (time.perf_counter() - start))
        self.outputs.append((dets.xyxy.reshape(-1, 4).copy(), dets.score.reshape(-1).copy(), image.shape[:2]))
        return dets


def detection_frames(n_frames: int, shot_starts: np.ndarray, stride: int) -> np.ndarray:
    """Frames ``fancam.tracking.scan.scan`` runs the detector on: every ``stride``-th, restarting at each cut,
    and the last frame of every shot (``ScanConfig.detect_shot_ends``)."""
    cuts = set(shot_starts.tolist())
    frames, next_detect = [], 0
    for f in range(n_frames):
        if f in cuts and f > 0:
            next_detect = f
        if f >= next_detect or f + 1 in cuts or f + 1 == n_frames:
            frames.append(f)
            next_detect = f + stride
    return np.array(frames, np.int64)


def export_detections(clip: Path, out: Path, quality: str = "fast", detect_fps: float | None = None) -> Path:
    """Run fancam's own scan of ``clip`` with a recording detector and save every detector output.

    The file holds: ``t`` (F,) frame times, ``shot_starts``, ``calls`` (K,) frames the detector ran on,
    ``call`` (N,) call index of each box, ``xyxy`` (N, 4) full-resolution boxes, ``score`` (N,),
    ``detect_ms`` (K,), ``width``, ``height``, ``fps``, ``stride``, ``detector``, and the scan's own
    tracker output (``scan_frame``, ``scan_id``, ``scan_xyxy``) to check that replaying the cached
    detections through fancam's tracker reproduces it.
    """
    from fancam.io.video import probe
    from fancam.models import registry as models
    from fancam.pipeline.analyze import AnalysisSettings
    from fancam.tracking.detect import make_detector
    from fancam.tracking.scan import ScanConfig, scan

    settings = AnalysisSettings(quality=quality, scan=ScanConfig(detect_fps=detect_fps))
    name = settings.model_names()["detector"]
    detector = RecordingDetector(make_detector(name, model_path=models.ensure_model(name)))
    info = probe(clip)
    result = scan(clip, info, detector, settings.scan)
    calls = detection_frames(result.timeline.n_frames, result.timeline.shot_starts, result.stride)
    if len(calls) != len(detector.outputs) or len(calls) != result.n_detections:
        raise RuntimeError(f"scan made {len(detector.outputs)} detector calls, the schedule predicts "
                           f"{len(calls)}: update detection_frames() to match fancam.tracking.scan")
    boxes, scores, call = [], [], []
    for k, (xyxy, score, (h, w)) in enumerate(detector.outputs):
        boxes.append(xyxy * np.array([info.width / w, info.height / h] * 2, np.float32))
        scores.append(score)
        call += [k] * len(score)
    raw = result.raw
    np.savez(
        out, t=result.timeline.t, shot_starts=result.timeline.shot_starts, calls=calls,
        call=np.array(call, np.int64), xyxy=np.concatenate(boxes).astype(np.float32),
        score=np.concatenate(scores).astype(np.float32), detect_ms=np.array(detector.ms),
        width=info.width, height=info.height, fps=info.fps, stride=result.stride, detector=name,
        clip=clip.name, scan_frame=raw.frame, scan_id=raw.track_id, scan_xyxy=raw.xyxy,
    )
    return out


# ----------------------------------------------------------------------------------------- 2. reference
def _make_reference(name: str, fps: float):
    """A reference tracker instance (library defaults, 1 s lost-track buffer)."""
    import trackers

    kinds = {"sort": trackers.SORTTracker, "bytetrack": trackers.ByteTrackTracker,
             "ocsort": trackers.OCSORTTracker}
    return kinds[name](lost_track_buffer=LOST_TRACK_BUFFER, frame_rate=fps)


def run_reference(detections: Path, out: Path, names: tuple[str, ...] = REFERENCE_TRACKERS) -> Path:
    """Run the reference trackers over cached detections (reference venv: numpy + trackers only)."""
    import supervision as sv

    with np.load(detections) as z:
        d = {k: z[k] for k in z.files}
    fps = float(d["fps"])
    shot_starts = set(d["shot_starts"].tolist())
    version = importlib.metadata.version("trackers")
    result: dict[str, np.ndarray] = {"version": np.array(version)}
    for name in names:
        tracker, offset, shot_ids = _make_reference(name, fps), 0, 0
        frames, ids, boxes, scores, ms = [], [], [], [], []
        for k, f in enumerate(d["calls"].tolist()):
            if f in shot_starts and f > 0:  # a new shot: forget everything, never reuse an id
                tracker, offset = _make_reference(name, fps), offset + shot_ids + 1
            mine = d["call"] == k
            dets = sv.Detections(xyxy=d["xyxy"][mine].astype(np.float32), confidence=d["score"][mine],
                                 class_id=np.zeros(int(mine.sum()), int))
            start = time.perf_counter()
            tracked = tracker.update(dets, timestamp=float(d["t"][f]))
            ms.append(1000 * (time.perf_counter() - start))
            if tracked.tracker_id is None or len(tracked) == 0:
                boxes.append(np.zeros((0, 4), np.float32))
                scores.append(np.zeros(0, np.float32))
                continue
            keep = tracked.tracker_id >= 0
            shot_ids = max(shot_ids, int(tracked.tracker_id.max(initial=-1)) + 1)
            frames += [f] * int(keep.sum())
            ids += (tracked.tracker_id[keep] + offset).tolist()
            boxes.append(tracked.xyxy[keep])
            scores.append(tracked.confidence[keep] if tracked.confidence is not None
                          else np.ones(int(keep.sum())))
        result[f"{name}_frame"] = np.array(frames, np.int64)
        result[f"{name}_id"] = np.array(ids, np.int64) + 1
        result[f"{name}_xyxy"] = np.concatenate(boxes).reshape(-1, 4).astype(np.float32)
        result[f"{name}_score"] = np.concatenate(scores).astype(np.float32)
        result[f"{name}_ms"] = np.array(ms)
    np.savez(out, **result)
    return out


# ----------------------------------------------------------------------------------------- 3. score
def run_ours(d: dict) -> tuple[object, np.ndarray]:
    """fancam's tracker on the cached detections, reset at cuts exactly as ``scan`` does."""
    from fancam.pipeline.analyze import AnalysisSettings
    from fancam.tracking.track import Tracker
    from fancam.types import Detections, TrackTable

    config = AnalysisSettings().scan
    stride = int(d["stride"])
    tracker = Tracker(config.tracker, step_s=stride / float(d["fps"]))
    shot_starts = set(d["shot_starts"].tolist())
    rows, ms, step_frames = [], [], []
    for k, f in enumerate(d["calls"].tolist()):
        if f in shot_starts and f > 0:
            tracker.reset()
            step_frames = []
        mine = d["call"] == k
        start = time.perf_counter()
        tracked = tracker.update(Detections(d["xyxy"][mine], d["score"][mine]))
        ms.append(1000 * (time.perf_counter() - start))
        step_frames.append(f)
        # as scan does: tracks confirmed now are reported from their first detection on
        for back, earlier in tracker.earlier_rows():
            rows.append(TrackTable(np.full(len(earlier), step_frames[-1 - back]), earlier.track_id,
                                   earlier.xyxy, earlier.score, np.ones(len(earlier), bool)))
        rows.append(TrackTable(np.full(len(tracked), f), tracked.track_id, tracked.xyxy, tracked.score,
                               np.ones(len(tracked), bool)))
    table = TrackTable.concat(rows)
    return table[np.argsort(table.frame, kind="stable")], np.array(ms)


def fill_raw(raw, timeline):
    """Raw tracks with every frame between two observations of a track (same shot) interpolated."""
    from fancam.types import TrackTable

    parts = []
    shot = timeline.shot_of(raw.frame)
    for tid in np.unique(raw.track_id).tolist():
        rows = np.flatnonzero(raw.track_id == tid)
        rows = rows[np.argsort(raw.frame[rows])]
        for s in np.unique(shot[rows]).tolist():
            r = rows[shot[rows] == s]
            f = np.arange(raw.frame[r][0], raw.frame[r][-1] + 1)
            xyxy = np.stack([np.interp(f, raw.frame[r], raw.xyxy[r, j]) for j in range(4)], axis=1)
            parts.append(TrackTable(f, np.full(len(f), tid), xyxy, np.interp(f, raw.frame[r], raw.score[r]),
                                    np.isin(f, raw.frame[r])))
    return TrackTable.concat(parts).sorted()


def as_predicted(table, timeline, source: str):
    """A track table as ``tracks.csv`` rows, each track its own person."""
    from fancam.io.tables import PredictedTracks

    return PredictedTracks(
        source, table.frame, timeline.t[table.frame], table.track_id,
        np.array([f"id-{i}" for i in table.track_id.tolist()], dtype=str).reshape(-1),
        table.xyxy.astype(np.float64), table.score.astype(np.float64),
    )


def fragmentation(gt, tracks) -> dict:
    """Tracks per GT performer and ID switches between successive keyframes (matched rows only)."""
    from fancam.eval.metrics import match_keyframes

    match = match_keyframes(gt, tracks)
    per_person, switches = {}, 0
    for name in gt.names():
        rows = np.flatnonzero((gt.person == name) & ~gt.uncertain & (match >= 0))
        rows = rows[np.argsort(gt.frame[rows])]
        ids = tracks.tracklet[match[rows]]
        per_person[name] = len(np.unique(ids))
        switches += int((np.diff(ids) != 0).sum())
    return {"tracks_per_performer": float(np.mean(list(per_person.values()))),
            "tracks_of": per_person, "id_switches": switches}


def score_table(table, timeline, gt, source: str) -> dict:
    """Identity accuracy (mapped), IDF1, HOTA and fragmentation of one track table."""
    from fancam.eval.metrics import evaluate

    tracks = as_predicted(table, timeline, source)
    report = evaluate(tracks, gt, named=False)
    ident, trk = report.identity, report.tracking
    return {
        "identity_accuracy": ident.accuracy, "idf1": trk.idf1, "hota": trk.hota, "deta": trk.deta,
        "assa": trk.assa, "tracks": int(len(np.unique(table.track_id))), **fragmentation(gt, tracks),
    }


def score(detections: Path, reference: Path | None, clip: LabelledClip) -> dict:
    """Score fancam's tracker and the reference trackers on the same cached detections."""
    from fancam.io.tables import load_gt
    from fancam.pipeline.analyze import AnalysisSettings
    from fancam.tracking.tracklets import build_tracklets
    from fancam.types import Timeline, TrackTable

    with np.load(detections) as z:
        d = {k: z[k] for k in z.files}
    timeline = Timeline(d["t"], d["shot_starts"])
    gt = load_gt(clip.gt, n_frames=timeline.n_frames)
    size = (int(d["width"]), int(d["height"]))
    tracklet_config = AnalysisSettings().tracklets
    ours, ours_ms = run_ours(d)
    reproduces_scan = bool(
        np.array_equal(ours.frame, d["scan_frame"]) and np.array_equal(ours.track_id, d["scan_id"])
        and np.allclose(ours.xyxy, d["scan_xyxy"], atol=1e-3)
    )
    raws = {"fancam": (ours, ours_ms)}
    version = None
    if reference is not None:
        with np.load(reference) as z:
            r = {k: z[k] for k in z.files}
        version = str(r["version"])
        for name in REFERENCE_TRACKERS:
            if f"{name}_frame" not in r:
                continue
            n = len(r[f"{name}_frame"])
            raws[name] = (TrackTable(r[f"{name}_frame"], r[f"{name}_id"], r[f"{name}_xyxy"],
                                     r[f"{name}_score"], np.ones(n, bool)).sorted(), r[f"{name}_ms"])
    results = []
    for name, (raw, ms) in raws.items():
        timing = {"ms_per_update": float(np.median(ms)), "ms_per_update_p90": float(np.percentile(ms, 90))}
        results.append({"tracker": name, "variant": "raw", **timing,
                        **score_table(fill_raw(raw, timeline), timeline, gt, f"{name} raw")})
        tracklets = build_tracklets(raw, timeline, size, tracklet_config)
        results.append({"tracker": name, "variant": "+tracklets", **timing,
                        **score_table(tracklets, timeline, gt, f"{name} + tracklets")})
    return {
        "clip": clip.name, "video": shown(clip.video), "gt": shown(clip.gt),
        "detector": str(d["detector"]), "stride": int(d["stride"]), "detector_calls": len(d["calls"]),
        "detections": len(d["score"]), "detect_ms_median": float(np.median(d["detect_ms"])),
        "trackers_version": version, "fancam_replay_reproduces_scan": reproduces_scan,
        "lost_track_buffer_s": LOST_TRACK_BUFFER / 30.0,
        "results": results,
    }


def summary(result: dict) -> str:
    lines = [f"{result['detector']} detections, every {result['stride']} frames "
             f"({result['detector_calls']} calls, {result['detections']} boxes); trackers "
             f"{result['trackers_version']}",
             f"{'tracker':10s} {'variant':11s} {'ident':>6s} {'IDF1':>6s} {'HOTA':>6s} {'tracks':>6s} "
             f"{'per GT':>6s} {'IDsw':>5s} {'ms/upd':>7s}"]
    for r in result["results"]:
        lines.append(f"{r['tracker']:10s} {r['variant']:11s} {r['identity_accuracy']:6.3f} {r['idf1']:6.3f} "
                     f"{r['hota']:6.3f} {r['tracks']:6d} {r['tracks_per_performer']:6.2f} "
                     f"{r['id_switches']:5d} {r['ms_per_update']:7.2f}")
    return "\n".join(lines)


def one_run(args: argparse.Namespace, clip: LabelledClip, detect_fps: float | None) -> dict:
    """Detect (unless cached), run the reference trackers (step all) and score, at one detection rate."""
    from fancam.pipeline.analyze import AnalysisSettings

    detector = AnalysisSettings(quality=args.quality).model_names()["detector"]
    det_path, ref_path = _paths(args.work, clip.name, detector, detect_fps)
    det_path = args.detections or det_path
    ref_path = args.reference or ref_path
    if args.step in ("detect", "all") and (args.redetect or not det_path.exists()):
        export_detections(clip.video, det_path, args.quality, detect_fps)
        print(f"wrote {det_path}")
    if args.step == "detect":
        return {}
    if args.step == "all":
        subprocess.run([str(args.ref_python), __file__, "reference", "--detections", str(det_path),
                        "--reference", str(ref_path)], check=True)
    result = score(det_path, ref_path if ref_path.exists() else None, clip)
    rate = f" --clip {clip.name}" + ("" if detect_fps is None else f" --detect-fps {detect_fps:g}")
    result["detect_fps"] = detect_fps
    result["commands"] = [
        f"python benchmarks/bench_trackers.py detect --quality {args.quality}{rate}",
        f"{args.ref_python} benchmarks/bench_trackers.py reference --detections {det_path}",
        f"python benchmarks/bench_trackers.py score --quality {args.quality}{rate}",
    ]
    print(f"[{clip.name}]\n{summary(result)}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=["detect", "reference", "score", "all"])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--quality", default="fast", help="model preset whose person detector is used")
    parser.add_argument("--detect-fps", type=float, action="append",
                        help="detections per second (repeatable; 0 or default: the product's rate)")
    parser.add_argument("--detections", type=Path, help="cached detections (default: in WORK/trackers)")
    parser.add_argument("--reference", type=Path, help="reference tracks (default: in WORK/trackers)")
    parser.add_argument("--ref-python", type=Path, default=DEFAULT_REF_PYTHON,
                        help="python of the venv with `trackers` (step all)")
    parser.add_argument("--redetect", action="store_true", help="detect again even if cached")
    parser.add_argument("--clip", action="append", choices=[c.name for c in CLIPS],
                        help="labelled clip(s) (default: all)")
    parser.add_argument("--json", type=Path, help="output JSON (default: WORK/trackers.json)")
    args = parser.parse_args(argv)
    if args.step == "reference":
        out = args.reference or args.detections.with_name(args.detections.name.replace("detections-",
                                                                                          "reference-"))
        print(f"wrote {run_reference(args.detections, out)}")
        return 0
    os.environ.setdefault("FANCAM_MODEL_MIRROR", str(SHARED / "models"))
    clips = [clip_named(name) for name in args.clip] if args.clip else list(CLIPS)
    runs = [one_run(args, clip, rate or None) for clip in clips for rate in (args.detect_fps or [None])]
    if args.step == "detect":
        return 0
    out = args.json or args.work / "trackers.json"
    out.write_text(json.dumps(clean_json({"runs": runs}), indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
