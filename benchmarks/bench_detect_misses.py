"""Why GT boxes are missed: every GT row that no ``tracks.csv`` box matches, classified by cause.

For each labelled clip (``benchmarks/clips.py``) the first pass runs exactly as ``fancam analyze`` runs it
(``scan`` with the preset's detector and settings, then ``build_tracklets_explained``); the images the
detector was given are kept, and on every GT keyframe that was a detection frame the detector is run
again with no score threshold (0.01) and no NMS. Each GT row (uncertain left out) that the final
tracklets do not match at IoU >= 0.5 gets the *first* cause that holds:

- ``missed``: no raw box (any score, before NMS) overlaps it at IoU >= 0.5; ``missed*`` when the same
  detector on 2x upscaled square tiles of the frame finds it (resolution would help);
- ``low score``: only boxes scored below the detector's threshold do;
- ``nms``: a box above the threshold does, but NMS (or the one-to-one matching of the kept boxes to
  the GT people of the frame: two people in one box) leaves it without a detection;
- ``tracker``: detected, but the tracker reported no box for it at this frame (a tentative track, or a
  score in [threshold, ``TrackerConfig.high_score``) that no track took);
- ``dropped``: the tracker's box is there, but its piece was left out by the tracklet rules
  (``small``/``short``, after the overlap cuts: ``DroppedPiece.reason``);
- ``conflict``: a tracklet box overlaps it at IoU >= 0.5 but the one-to-one matching gave that box to
  another GT person;
- ``between``: the keyframe was no detection frame and a tracklet box matches it at the nearest
  detection frame, but not the box interpolated between detections. On other keyframes that were no
  detection frame, the causes above are judged at the nearest detection frame of the shot.

Also per clip: the share of the misses that are small (GT height < 10% of the frame height - what the
tracklet rule ``min_height`` drops), touch the frame edge, or are marked occluded.

Usage::

    python benchmarks/bench_detect_misses.py [--clip NAME ...] [--variant NAME=k=v,...] [--json OUT] [--list]

``--variant`` overrides detector settings (``YoloxConfig`` fields), scan settings (``fps=R``), tracker
settings (``tr_FIELD=V``, a ``TrackerConfig`` field) or tracklet rules (``tk_FIELD=V``, a
``TrackletConfig`` field; values: numbers, true/false, none or a word); ``--list`` prints every missed row. A miss
counted under ``detector miss found at 2x`` (any of the first three causes) is found by the 2x probe.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from dataclasses import dataclass, fields, replace
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from clips import CLIPS, LabelledClip
from fancam.eval.metrics import match_keyframes
from fancam.geometry import iou_matrix
from fancam.io.tables import GroundTruth, PredictedTracks, load_gt
from fancam.io.video import probe
from fancam.models import registry as models
from fancam.tracking.detect import YoloxConfig, YoloxDetector, detector_settings, make_detector
from fancam.tracking.scan import ScanConfig, ScanResult, scan
from fancam.tracking.track import TrackerConfig
from fancam.tracking.tracklets import (
    DroppedPiece,
    TrackletConfig,
    TrackletReport,
    build_tracklets_explained,
    heavy_overlap,
)
from fancam.types import Detections, TrackTable

CAUSES = ("missed", "missed*", "low score", "nms", "tracker", "dropped", "conflict", "between")
SMALL_HEIGHT = 0.1  # TrackletConfig.min_height
EDGE = 0.01  # a GT side this close (fraction of the frame) to the edge touches it


@dataclass
class Recorder:
    """A detector wrapper that keeps every image it was given and every answer (in call order)."""

    inner: object
    images: list
    answers: list

    @property
    def name(self) -> str:
        return self.inner.name  # type: ignore[attr-defined,no-any-return]

    @property
    def input_long_side(self) -> int:
        return self.inner.input_long_side  # type: ignore[attr-defined,no-any-return]

    def long_side_for(self, width: int, height: int) -> int:
        return self.inner.long_side_for(width, height)  # type: ignore[attr-defined,no-any-return]

    def __call__(self, image: np.ndarray) -> Detections:
        out = self.inner(image)  # type: ignore[operator]
        self.images.append(image)
        self.answers.append(out)
        return out  # type: ignore[no-any-return]


def detection_frames(n_frames: int, shot_starts: np.ndarray, stride: int, ends: bool) -> list[int]:
    """The frames ``scan`` runs the detector on (its rule, replayed from the timeline)."""
    starts = set(int(s) for s in shot_starts.tolist())
    out, next_detect = [], 0
    for f in range(n_frames):
        if f in starts and f > 0:
            next_detect = f
        shot_end = (f + 1 in starts) or f == n_frames - 1
        if f >= next_detect or (shot_end and ends):
            next_detect = f + stride
            out.append(f)
    return out


def predicted(table: TrackTable, t: np.ndarray) -> PredictedTracks:
    return PredictedTracks(source="bench", frame=table.frame, t=t[table.frame], tracklet=table.track_id,
                           person=np.array(["x"] * len(table.frame)), xyxy=table.xyxy.astype(np.float64),
                           score=table.score)


def one_to_one(gt_boxes: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """For each GT box, whether the Hungarian matching on IoU >= 0.5 gives it a box."""
    hit = np.zeros(len(gt_boxes), bool)
    if len(boxes) == 0 or len(gt_boxes) == 0:
        return hit
    iou = iou_matrix(gt_boxes, boxes)
    score = np.where(iou >= 0.5 - 1e-9, iou, 0.0)
    rows, cols = linear_sum_assignment(-score)
    hit[rows[score[rows, cols] > 0]] = True
    return hit


def upscaled_tiles(det: YoloxDetector, image: np.ndarray) -> np.ndarray:
    """Boxes (image pixels) from the detector on 2x-magnified overlapping square tiles (a resolution probe)."""
    h, w = image.shape[:2]
    big = cv2.resize(image, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
    side = min(2 * w, 2 * h, det.input_long_side)
    boxes = []
    for y0 in np.unique(np.linspace(0, 2 * h - side, max(2, int(np.ceil(2 * h / side)) + 1)).astype(int)):
        for x0 in np.unique(np.linspace(0, 2 * w - side, max(2, int(np.ceil(2 * w / side)) + 1)).astype(int)):
            got = det(np.ascontiguousarray(big[y0:y0 + side, x0:x0 + side]))
            boxes.append(got.xyxy.astype(np.float64) + [x0, y0, x0, y0])
    return np.concatenate(boxes) / 2.0 if boxes else np.zeros((0, 4))


@dataclass
class Run:
    """One clip's first pass as ``fancam analyze`` runs it, with what the detector saw."""

    clip: LabelledClip
    config: YoloxConfig
    result: ScanResult
    tracks: TrackTable
    report: TrackletReport
    gt: GroundTruth
    size: tuple[int, int]
    rec: Recorder
    call_of: dict[int, int]
    probe: YoloxDetector
    plain: YoloxDetector
    causes: Counter[str]

    def keyframe_causes(self, f: int, at_f: np.ndarray, miss: np.ndarray) -> dict[int, str]:
        """Cause of each missed GT row ``miss`` of keyframe ``f`` (``at_f``: all its scored rows)."""
        out: dict[int, str] = {}
        det_frames = np.array(sorted(self.call_of))
        tl = self.result.timeline
        for i in miss.tolist():
            if f in self.call_of:
                out[i] = self.cause_at(f, i, at_f)
                continue
            # Not a detection frame: judge at the nearest detection frame of the same shot (the GT box
            # moves little in one or two frames); "between" when the tracklets match it there.
            near = det_frames[tl.shot_of(det_frames) == tl.shot_of(f)]
            fd = int(near[np.argmin(np.abs(near - f))])
            here = self.tracks[self.tracks.frame == fd]
            out[i] = "between" if _overlaps(self.gt.xyxy[i], here.xyxy, 0.5) else self.cause_at(fd, i, at_f)
        return out

    def cause_at(self, fd: int, i: int, at_f: np.ndarray) -> str:
        """Cause of GT row ``i`` being unmatched, judged at detection frame ``fd``."""
        image = self.rec.images[self.call_of[fd]]
        width, height = self.size
        scale = np.array([width / image.shape[1], height / image.shape[0]] * 2)
        g = self.gt.xyxy[i]
        raw = self.probe(image)
        good = iou_matrix(g[None], raw.xyxy.astype(np.float64) * scale)[0] >= 0.5
        sure = good & (raw.score >= self.config.score_threshold)
        kept = self.rec.answers[self.call_of[fd]].xyxy.astype(np.float64) * scale
        found = one_to_one(self.gt.xyxy[at_f], kept)[list(at_f).index(i)]
        if not found and _overlaps(g, upscaled_tiles(self.plain, image) * scale, 0.5):
            self.causes["  detector miss found at 2x"] += 1
        if not good.any():
            return "missed*" if _overlaps(g, upscaled_tiles(self.plain, image) * scale, 0.5) else "missed"
        if not sure.any():
            return "low score"
        if not found:
            return "nms"
        obs = self.result.raw[self.result.raw.frame == fd]
        ious = iou_matrix(g[None], obs.xyxy.astype(np.float64))[0] if len(obs) else np.zeros(0)
        if not (ious >= 0.5).any():
            return "tracker"
        k = int(np.argmax(ious))
        tid = int(obs.track_id[k])
        gone = [d for d in self.report.dropped if d.source_id == tid and d.first_frame <= fd <= d.last_frame]
        if not gone:
            return "conflict"
        self.causes[f"  dropped:{gone[0].reason}:{self._made_by(tid, gone[0])}:{self._partner(obs, k, i, at_f)}"] += 1
        return "dropped"

    def _made_by(self, tid: int, d: DroppedPiece) -> str:
        """The cut rules that made a dropped piece (a cut's frame is the first frame after it)."""
        last = d.last_frame + 2 * self.result.stride
        rules = {c.rule for c in self.report.cuts if c.source_id == tid and d.first_frame <= c.frame <= last}
        return "+".join(sorted(rules)) or "track"

    def _partner(self, obs: TrackTable, k: int, i: int, at_f: np.ndarray) -> str:
        """Whom box ``k`` overlaps heavily here: a labelled performer (``gt``), a box no GT row matches
        (an unlabelled person or a second box on the same person: ``other``) or nobody (``none``)."""
        boxes = obs.xyxy.astype(np.float64)
        rest = np.delete(boxes, k, axis=0)
        heavy = rest[heavy_overlap(boxes[k:k + 1], rest, TrackletConfig())[0]] if len(rest) else rest
        others = np.delete(self.gt.xyxy[at_f], list(at_f).index(i), axis=0)
        if not len(heavy):
            return "none"
        return "gt" if len(others) and (iou_matrix(heavy, others) >= 0.5).any() else "other"


def _overlaps(box: np.ndarray, boxes: np.ndarray, min_iou: float) -> bool:
    return bool(len(boxes)) and bool((iou_matrix(box[None], np.asarray(boxes, np.float64))[0] >= min_iou).any())


def first_pass(clip: LabelledClip, det_kw: dict, scan_kw: dict) -> tuple[Run, float]:
    """Scan and build tracklets as the pipeline does (with ``det_kw``/``scan_kw`` overrides); scan seconds."""
    info = probe(clip.video)
    name = models.resolve_preset("fast")["detector"]
    config = detector_settings(name)
    valid = {f.name for f in fields(config)}
    config = replace(config, **{k: (int(v) if k == "tiles" else v) for k, v in det_kw.items() if k in valid})
    tracker = TrackerConfig(**{k[3:]: v for k, v in scan_kw.items() if k.startswith("tr_")})
    det = make_detector(name, model_path=models.ensure_model(name))
    det.config = config  # type: ignore[attr-defined]
    rec = Recorder(det, [], [])
    scan_config = ScanConfig(detect_fps=scan_kw.get("fps"), tracker=tracker)
    t0 = time.perf_counter()
    result = scan(clip.video, info, rec, scan_config)  # type: ignore[arg-type]
    scan_s = time.perf_counter() - t0
    size = (int(info.width), int(info.height))
    tl = result.timeline
    rules = TrackletConfig(**{k[3:]: (int(v) if k == "tk_min_observations" else v)
                              for k, v in scan_kw.items() if k.startswith("tk_")})
    tracks, report = build_tracklets_explained(result.raw, tl, size, rules)
    det_frames = detection_frames(tl.n_frames, tl.shot_starts, result.stride, scan_config.detect_shot_ends)
    if len(det_frames) != len(rec.images):
        raise RuntimeError(f"{clip.name}: replayed {len(det_frames)} detection frames, scan made {len(rec.images)}")
    weights = models.ensure_model(name)
    assert isinstance(config, YoloxConfig)
    return Run(clip, config, result, tracks, report, load_gt(clip.gt), size, rec,
               {f: i for i, f in enumerate(det_frames)},
               YoloxDetector(weights, replace(config, score_threshold=0.01, nms_iou=1.0, tiles=0), name="probe"),
               YoloxDetector(weights, replace(config, tiles=0), name="plain"), Counter()), scan_s


def diagnose(clip: LabelledClip, det_kw: dict, scan_kw: dict, listing: bool) -> dict:
    """Detected share, causes of the misses and a false-positive count of one clip."""
    run, scan_s = first_pass(clip, det_kw, scan_kw)
    gt, (width, height) = run.gt, run.size
    scored = ~gt.uncertain
    match = match_keyframes(gt, predicted(run.tracks, run.result.timeline.t))
    small = edge = occluded = 0
    rows_out = []
    for f in np.unique(gt.frame[scored & (match < 0)]).tolist():
        at_f = np.flatnonzero((gt.frame == f) & scored)
        for i, cause in run.keyframe_causes(f, at_f, at_f[match[at_f] < 0]).items():
            run.causes[cause] += 1
            x1, y1, x2, y2 = gt.xyxy[i]
            is_small = bool((y2 - y1) < SMALL_HEIGHT * height)
            is_edge = bool(min(x1, width - x2) <= EDGE * width or min(y1, height - y2) <= EDGE * height)
            small, edge, occluded = small + is_small, edge + is_edge, occluded + int(gt.occluded[i])
            rows_out.append({"frame": f, "person": str(gt.person[i]), "cause": cause, "h": float(y2 - y1),
                             "small": is_small, "edge": is_edge, "occluded": bool(gt.occluded[i])})
            if listing:
                flags = "".join(t for t, on in ((" small", is_small), (" edge", is_edge),
                                                (" occl", gt.occluded[i])) if on)
                print(f"  {clip.name} f{f} {gt.person[i]} {cause:9s} h={y2 - y1:.0f}px "
                      f"box={np.round(gt.xyxy[i]).astype(int).tolist()}{flags}")
    n = int(scored.sum())
    hit = int((match[scored] >= 0).sum())
    # False positives: tracklet boxes at GT keyframes matching no GT row (people without labels -
    # audience, backup dancers - count too, so this is an upper bound).
    extra = int(np.isin(run.tracks.frame, gt.keyframes).sum()) - int((match >= 0).sum())
    result = run.result
    return {"share": hit / n, "hit": hit, "n": n, "causes": dict(run.causes), "small": small, "edge": edge,
            "occluded": occluded, "extra_boxes": extra, "calls": result.n_detections, "scan_s": scan_s,
            "detect_s": result.timer.seconds.get("detect", 0.0), "video_s": probe(clip.video).duration_s,
            "rows": rows_out}


def variant_value(text: str) -> float | bool | str | None:
    """A ``--variant`` value: a number, true/false, none, or a word."""
    low = text.lower()
    if low in ("none", "true", "false"):
        return {"none": None, "true": True, "false": False}[low]
    try:
        return float(text)
    except ValueError:
        return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", action="append")
    parser.add_argument("--variant", default="default=", metavar="NAME=k=v,...")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    vname, _, opts = args.variant.partition("=")
    det_kw: dict = {}
    scan_kw: dict = {}
    for item in filter(None, opts.split(",")):
        k, _, v = item.partition("=")
        (scan_kw if k == "fps" or k.startswith(("tk_", "tr_")) else det_kw)[k] = variant_value(v)
    out = {}
    print(f"variant {vname}: {det_kw} {scan_kw}")
    print(f"{'clip':10s} share  n    " + " ".join(f"{c:>9s}" for c in CAUSES) + "  small edge occl extra det_s/vid_s")
    for clip in CLIPS:
        if args.clip and clip.name not in args.clip:
            continue
        r = diagnose(clip, det_kw, scan_kw, args.list)
        out[clip.name] = r
        print(f"{clip.name:10s} {r['share']:.3f} {r['n']:4d} " + " ".join(f"{r['causes'].get(c, 0):9d}" for c in CAUSES)
              + f"  {r['small']:5d} {r['edge']:4d} {r['occluded']:4d} {r['extra_boxes']:5d} "
              f"{r['detect_s']:.1f}/{r['video_s']:.1f}", flush=True)
        drops = {k: v for k, v in r["causes"].items() if k.startswith("  ")}
        if drops:
            print(f"{'':10s} {drops}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
