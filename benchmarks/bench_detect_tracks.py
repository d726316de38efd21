"""Detected share of the final tracklets per labelled clip, for detector settings and detection rates.

The detected share is the share of GT rows (uncertain left out) matched at IoU >= 0.5 by a tracklet box
of the same frame: what ``fancam eval`` reports as "N rows, M unmatched", computed here from the scan and
tracklet stages only (the identity stage names tracklets but never moves a box), so a variant costs one
scan per clip. Variants: ``--variant NAME=DETECTOR[:k=v,...]`` where ``k=v`` override the detector's
:class:`~fancam.tracking.detect.YoloxConfig` / :class:`~fancam.tracking.detect.SsdConfig` fields, plus
``model=PATH`` (another ONNX file, e.g. an input-resized YOLOX-nano), ``fps=R``
(:attr:`ScanConfig.detect_fps`) and ``ends=0`` (no extra detection at shot ends,
:attr:`ScanConfig.detect_shot_ends`).

Usage::

    python benchmarks/bench_detect_tracks.py --variant default=yolox-nano --variant t02=yolox-nano:score_threshold=0.2
        [--clip NAME ...] [--gt NAME=VIDEO:CSV ...] [--json OUT]

Writes one line per clip and variant: detected share of the raw scan boxes and of the final tracklets,
detector calls, scan seconds.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from bench_detect import GT_CLIPS
from fancam.eval.metrics import match_keyframes
from fancam.io.tables import PredictedTracks, load_gt
from fancam.io.video import probe
from fancam.models import registry as models
from fancam.tracking.detect import detector_settings, make_detector
from fancam.tracking.scan import ScanConfig, scan
from fancam.tracking.tracklets import TrackletConfig, build_tracklets_explained
from fancam.types import TrackTable


def parse_variant(spec: str) -> tuple[str, str, dict[str, float | str], dict[str, float]]:
    name, _, rest = spec.partition("=")
    detector, _, opts = rest.partition(":")
    det_kw: dict[str, float | str] = {}
    scan_kw: dict[str, float] = {}
    for item in filter(None, opts.split(",")):
        k, _, v = item.partition("=")
        value: float | str = float(v) if v.replace(".", "", 1).isdigit() else v
        if k in ("fps", "ends"):
            scan_kw[k] = float(value)
        else:
            det_kw[k] = value
    return name, detector, det_kw, scan_kw


def share(gt_path: Path, table: TrackTable, t: np.ndarray) -> tuple[int, int]:
    gt = load_gt(gt_path)
    tracks = PredictedTracks(source="bench", frame=table.frame, t=t[table.frame],
                             tracklet=table.track_id, person=np.array(["x"] * len(table.frame)),
                             xyxy=table.xyxy.astype(np.float64), score=table.score)
    match = match_keyframes(gt, tracks)
    scored = ~gt.uncertain
    return int((match[scored] >= 0).sum()), int(scored.sum())


def run(video: Path, gt_path: Path, detector: str, det_kw: dict, scan_kw: dict) -> dict:
    info = probe(video)
    config = detector_settings(detector)
    valid = {f.name for f in fields(config)}
    config = replace(config, **{k: (int(v) if k == "tiles" else v) for k, v in det_kw.items() if k in valid})
    path = Path(str(det_kw.pop("model"))) if "model" in det_kw else models.ensure_model(detector)
    det = make_detector(detector, model_path=path)
    det.config = config  # type: ignore[attr-defined]
    scan_config = ScanConfig(detect_fps=scan_kw.get("fps"), detect_shot_ends=bool(scan_kw.get("ends", 1)))
    t0 = time.perf_counter()
    result = scan(video, info, det, scan_config)
    seconds = time.perf_counter() - t0
    tracks, _ = build_tracklets_explained(result.raw, result.timeline, (info.width, info.height), TrackletConfig())
    raw_hit, n = share(gt_path, result.raw, result.timeline.t)
    hit, _ = share(gt_path, tracks, result.timeline.t)
    return {"raw": raw_hit / n, "tracks": hit / n, "hit": hit, "n": n, "calls": result.n_detections,
            "scan_s": seconds, "video_s": info.duration_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", required=True, metavar="NAME=DETECTOR[:k=v,...]")
    parser.add_argument("--clip", action="append", help="only these GT_CLIPS names")
    parser.add_argument("--gt", action="append", default=[], metavar="NAME=VIDEO:CSV")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    clips = dict(GT_CLIPS)
    for spec in args.gt:
        name, _, rest = spec.partition("=")
        video, _, csv_path = rest.rpartition(":")
        clips[name] = (Path(video), Path(csv_path))
    clips = {k: v for k, v in clips.items() if v[0].is_file() and v[1].is_file()
             and (not args.clip or k in args.clip)}
    out: dict[str, dict] = {}
    for clip, (video, gt_path) in clips.items():
        for spec in args.variant:
            name, detector, det_kw, scan_kw = parse_variant(spec)
            r = run(video, gt_path, detector, det_kw, scan_kw)
            out.setdefault(clip, {})[name] = r
            print(f"{clip:16s} {name:14s} raw {r['raw']:.3f}  tracks {r['tracks']:.3f} ({r['hit']}/{r['n']})  "
                  f"{r['calls']} calls, scan {r['scan_s']:.1f} s for {r['video_s'] or 0:.1f} s of video", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
