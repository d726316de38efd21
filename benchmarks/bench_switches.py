"""Where identities get mixed: switches inside tracklets, links joining two people, and the crossing resolver.

For every labelled clip (:mod:`clips`) the analysis (default preset, no gallery) is matched to GT at
each keyframe as the metrics do (Hungarian on IoU >= 0.5), which gives every tracklet the sequence of
GT performers its matched boxes belong to. Reported per clip:

- **switches**: tracklets whose GT performer changes (the tracklet stage should have cut them), with
  the frames on either side of each change;
- **wrong links**: consecutive tracklets (by first frame) of one output person whose GT majorities
  differ (identity joined two people);
- **crossing**: the crossing resolver's evidence (:mod:`fancam.identity.crossing`) on the pairs it
  judges that were cut at an overlap, against GT: positive / negative / none, for pairs of one
  performer and of two.

Usage (from the repository root, after ``bench_accuracy.py`` has analysed the clips into the same work
folder, or it analyses them now)::

    python benchmarks/bench_switches.py [--work DIR] [--clip NAME ...] [--json OUT.json]
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

from clips import CLIPS, SHARED, LabelledClip, clip_named
from fancam.eval.metrics import match_keyframes
from fancam.identity.crossing import CrossingConfig, Ends, crossing_evidence, motion_of
from fancam.io.tables import PredictedTracks, load_gt
from fancam.pipeline.analyze import Analysis, AnalysisSettings, analyze
from fancam.pipeline.store import load_scan
from fancam.tracking.tracklets import OVERLAP, TrackletReport, build_tracklets_explained
from jsonout import clean_json

DEFAULT_WORK = Path(tempfile.gettempdir()) / "fancam-bench"


def gt_sequences(analysis: Analysis, clip: LabelledClip) -> dict[int, list[tuple[int, str]]]:
    """Tracklet id -> [(keyframe, GT performer)] of the GT rows matched to its boxes, by frame."""
    tracks, t = analysis.tracks, analysis.timeline.t
    pred = PredictedTracks("tracks", tracks.frame, t[tracks.frame], tracks.track_id, np.full(len(tracks), "x"),
                           tracks.xyxy.astype(np.float64), tracks.score.astype(np.float64))
    gt = load_gt(clip.gt, n_frames=analysis.timeline.n_frames)
    match = match_keyframes(gt, pred)
    out: dict[int, list[tuple[int, str]]] = {}
    for r in np.flatnonzero(~gt.uncertain & (match >= 0)):
        out.setdefault(int(tracks.track_id[match[r]]), []).append((int(gt.frame[r]), str(gt.person[r])))
    return {k: sorted(v) for k, v in out.items()}


def switches(seq: dict[int, list[tuple[int, str]]]) -> list[dict]:
    """Every change of GT performer inside one tracklet."""
    found = []
    for tid, rows in seq.items():
        for (f0, p0), (f1, p1) in zip(rows, rows[1:], strict=False):
            if p0 != p1:
                found.append({"tracklet": tid, "from": p0, "to": p1, "last_frame_before": f0, "first_frame_after": f1})
    return found


def wrong_links(analysis: Analysis, majority: dict[int, str]) -> list[dict]:
    """Consecutive tracklets of one output person whose GT majorities differ."""
    tracks = analysis.tracks
    person = {int(t): int(np.bincount(analysis.cast.person[tracks.track_id == t]).argmax()) for t in tracks.track_ids()}
    first = {int(t): int(tracks.frame[tracks.track_id == t].min()) for t in tracks.track_ids()}
    found = []
    for pid in sorted(set(person.values()) - {0}):
        chain = [t for t in sorted(first, key=lambda k: first[k]) if person[t] == pid and t in majority]
        for a, b in zip(chain, chain[1:], strict=False):
            if majority[a] != majority[b]:
                found.append({"person": pid, "tracklets": [a, b], "gt": [majority[a], majority[b]],
                              "frame": first[b]})
    return found


def crossing_check(analysis: Analysis, report: TrackletReport, majority: dict[int, str]) -> Counter:
    """Resolver evidence on pairs cut at an overlap, by sign and whether GT says one performer."""
    tracks, timeline = analysis.tracks, analysis.timeline
    ids = tracks.track_ids()
    rows = [np.flatnonzero(tracks.track_id == t) for t in ids]
    rows = [r[np.argsort(tracks.frame[r], kind="stable")] for r in rows]
    first = np.array([tracks.frame[r[0]] for r in rows])
    last = np.array([tracks.frame[r[-1]] for r in rows])
    motion = motion_of(report.tracklets, ids)
    ends = Ends(timeline.t[first], timeline.t[last], timeline.shot_of(first),
                np.array([tracks.xyxy[r[0]] for r in rows], np.float64),
                np.array([tracks.xyxy[r[-1]] for r in rows], np.float64), motion)
    evidence = crossing_evidence(ends, CrossingConfig())
    info = {i.tracklet_id: i for i in report.tracklets}
    counts: Counter = Counter()
    for a, b in zip(*np.nonzero(evidence), strict=True):
        ta, tb = int(ids[a]), int(ids[b])
        if last[a] >= first[b] or ta not in majority or tb not in majority:
            continue
        if OVERLAP not in (info[ta].end_reason, info[tb].start_reason):
            continue  # clean pairs keep the plain continuity bonus
        sign = "positive" if evidence[a, b] > 0 else "negative"
        counts[f"{sign}_{'same' if majority[ta] == majority[tb] else 'different'}"] += 1
    return counts


def run_clip(work: Path, clip: LabelledClip) -> dict:
    settings = AnalysisSettings(quality="fast")
    folder = work / f"accuracy-{clip.name}-fast-analysis"
    analysis = analyze(clip.video, out=folder, settings=settings, progress=False)
    scan = load_scan(folder / "scan.npz")
    if scan is None:
        raise RuntimeError(f"{folder} has no scan")
    _, report = build_tracklets_explained(scan.raw, scan.timeline, (analysis.info.width, analysis.info.height),
                                          settings.tracklets)
    seq = gt_sequences(analysis, clip)
    majority = {t: Counter(p for _, p in rows).most_common(1)[0][0] for t, rows in seq.items()}
    return {"clip": clip.name, "tracklets": len(report.tracklets), "switches": switches(seq),
            "wrong_links": wrong_links(analysis, majority),
            "crossing": dict(crossing_check(analysis, report, majority))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch folder (analyses)")
    parser.add_argument("--clip", action="append", choices=[c.name for c in CLIPS], help="labelled clip(s)")
    parser.add_argument("--json", type=Path, help="output JSON (default: WORK/switches.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    os.environ.setdefault("FANCAM_MODEL_MIRROR", str(SHARED / "models"))
    args.work.mkdir(parents=True, exist_ok=True)
    results = []
    for clip in [clip_named(n) for n in args.clip] if args.clip else CLIPS:
        result = run_clip(args.work, clip)
        results.append(result)
        print(f"{clip.name}: {result['tracklets']} tracklets, {len(result['switches'])} switches inside "
              f"tracklets, {len(result['wrong_links'])} wrong links, crossing {result['crossing']}", flush=True)
        for s in result["switches"]:
            print(f"  switch in tracklet {s['tracklet']}: {s['from']} (f{s['last_frame_before']}) -> "
                  f"{s['to']} (f{s['first_frame_after']})")
        for w in result["wrong_links"]:
            print(f"  person {w['person']} joins tracklets {w['tracklets']} = {w['gt']} at f{w['frame']}")
    out = args.json or args.work / "switches.json"
    out.write_text(json.dumps(clean_json({"runs": results}), indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
