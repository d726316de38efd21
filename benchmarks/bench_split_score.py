"""Could a change of body appearance inside a tracklet tell where to cut it? A score per tracklet, against GT.

For every labelled clip (:mod:`clips`), on the saved analysis (``scan.npz``, ``appearance.npz`` of the
folder ``bench_accuracy.py`` analysed into), each tracklet with at least ``2 * --min-side`` body
samples is split between every two consecutive samples (``--min-side`` samples on each side at
least), and each split is scored:

- **proto**: the log-odds "same person" of the body prototypes before and after the split, with the
  video's own prototype calibration (as :mod:`fancam.identity.linking` judges two tracklets; not
  clipped);
- **cross-within**: the mean sample-pair log-odds across the split minus the mean within the two
  sides (the sides' own consistency), with the video's sample-pair calibration.

A tracklet's score is its split of lowest **proto** (the most likely change). Tracklets whose
keyframe rows are matched to two GT performers (the switches of ``bench_switches.py``) are listed with
the body samples on either side of each GT change (a split needs samples on both sides to be seen at
all); the other tracklets give the distribution a cut threshold would be paid on: for each switch
tracklet's score, how many of them score as low (false cuts). The GT is used to diagnose only.

Measured (saved analyses of main, fast preset, 7 clips, ~275 tracklets): no appearance cut rule.
Neither GT switch has a body sample on both sides of its change: miryala's tracklet 50 (28 frames,
P4 almost wholly behind P5) has one sample, after the change; ballet's tracklet 5 changes P3 -> P4 in
its first 15 frames, before its first sample (f63; sampling takes one row per second, the best),
and its one-keyframe P4 -> P3 -> P4 blip at f270 lies after its last (f234). Its best split scores
+5.02 (the three dancers wear one costume), above 55 of the 59 other tracklets scored with 2 samples
a side (min -4.77, median +2.55; dance2's pure P5 tracklet 16 at -2.54), and all 122 scored with 1 a
side. Cutting at the GT frames themselves (an oracle, replayed) changes nothing: miryala 0.776,
ballet 0.833 (the sample-less pieces rejoin their tracklet's cluster on continuity); also cutting
ballet's f270 blip loses ballet 0.833 -> 0.685.

Usage (from the repository root, after ``bench_accuracy.py --work DIR``)::

    python benchmarks/bench_split_score.py [--work DIR] [--clip NAME ...] [--min-side N]
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from clips import CLIPS, SHARED, clip_named
from fancam.identity import linking
from fancam.identity.body import BodyCalibration, body_prototype, paired_similarity, similarity_matrix
from fancam.identity.crossing import motion_of
from fancam.pipeline.analyze import AnalysisSettings
from replay import Replay, load_replay

DEFAULT_WORK = Path(os.environ.get("TMPDIR", "/tmp")) / "fancam-bench"


def calibrations(loaded: Replay, tracklets: linking.Tracklets, config: linking.LinkingConfig,
                 ) -> tuple[BodyCalibration, BodyCalibration] | None:
    """The video's body calibrations (sample pairs, prototypes) as linking fits them; None if unfitted."""
    app = loaded.appearance
    valid = np.flatnonzero(np.any(app.body != 0, axis=1))
    desc, owner = app.body[valid], tracklets.sample_of[valid]
    same, different = linking._pairs_by_kind(tracklets, app.frames[valid], owner, loaded.timeline, 0.5)
    cal = linking._calibrate(lambda i, j: paired_similarity(desc[i], desc[j]), same, different, config)
    if cal is None:
        return None
    protos = [body_prototype(desc[owner == k]) for k in range(len(tracklets))]
    counts = np.array([p.n for p in protos])
    centres = np.stack([p.centre for p in protos])
    sims = similarity_matrix(centres, centres)
    return cal, linking._prototype_calibration(desc, owner, sims, counts, tracklets.conflict, config) or cal


def best_split(desc: NDArray[np.float32], min_side: int, cal: BodyCalibration, proto_cal: BodyCalibration,
               ) -> tuple[int, float, float]:
    """(index of the first sample after the split, proto log-odds, cross-within) of the lowest-proto split."""
    best = (-1, np.inf, np.nan)
    for s in range(min_side, len(desc) - min_side + 1):
        a, b = desc[:s], desc[s:]
        sim = similarity_matrix(body_prototype(a).centre[None], body_prototype(b).centre[None])[0, 0]
        proto = float(proto_cal.log_odds(sim))
        if proto >= best[1]:
            continue
        i, j = np.meshgrid(np.arange(len(a)), np.arange(len(b)))
        cross = cal.log_odds(paired_similarity(a[i.ravel()], b[j.ravel()]))
        within = [cal.log_odds(paired_similarity(side[p], side[q]))
                  for side in (a, b) for p, q in [np.triu_indices(len(side), 1)] if len(p)]
        own = float(np.nanmean(np.concatenate(within))) if within else np.nan
        best = (s, proto, float(np.nanmean(cross)) - own)
    return best


def gt_changes(loaded: Replay, tracklet: int) -> list[tuple[int, str, int, str]]:
    """(last frame, performer, next frame, other performer) of each GT change inside ``tracklet``."""
    gt, rows = loaded.gt, np.flatnonzero((loaded.match >= 0) & ~loaded.gt.uncertain)
    seq = sorted((int(gt.frame[r]), str(gt.person[r])) for r in rows
                 if int(loaded.tracks.track_id[loaded.match[r]]) == tracklet)
    return [(f0, p0, f1, p1) for (f0, p0), (f1, p1) in zip(seq, seq[1:], strict=False) if p0 != p1]


def run_clip(loaded: Replay, min_side: int) -> tuple[list[float], list[tuple[str, float]]]:
    """Print one clip; return the scores of the tracklets without and with a GT switch."""
    settings = AnalysisSettings(quality="fast")
    tracks, app = loaded.tracks, loaded.appearance
    report = loaded.report
    cuts = ({i.tracklet_id for i in report.tracklets if i.start_reason == "overlap"},
            {i.tracklet_id for i in report.tracklets if i.end_reason == "overlap"})
    tracklets = linking.describe_tracklets(tracks, loaded.timeline, app, cuts,
                                           motion_of(report.tracklets, tracks.track_ids()))
    fitted = calibrations(loaded, tracklets, settings.identity.linking)
    name = loaded.clip.name
    if fitted is None:
        print(f"== {name}: body cue not calibrated")
        return [], []
    cal, proto_cal = fitted
    print(f"== {name}: {len(tracklets)} tracklets")
    valid = np.any(app.body != 0, axis=1)
    plain: list[float] = []
    switched: list[tuple[str, float]] = []
    scored = 0
    for k, tid in enumerate(tracklets.ids):
        mine = np.flatnonzero((tracklets.sample_of == k) & valid)
        mine = mine[np.argsort(app.frames[mine], kind="stable")]
        changes = gt_changes(loaded, int(tid))
        score = np.nan
        if len(mine) >= 2 * min_side:
            s, score, cross = best_split(app.body[mine], min_side, cal, proto_cal)
            scored += 1
        if not changes:
            if np.isfinite(score):
                plain.append(score)
            continue
        switched.append((f"{name}:{int(tid)}", score))
        where = f"proto {score:+.2f}" if np.isfinite(score) else "no split scored"
        print(f"  switch tracklet {int(tid)}: {len(mine)} body samples at f{app.frames[mine].tolist()}, {where}")
        for f0, p0, f1, p1 in changes:
            before = int((app.frames[mine] <= f0).sum())
            after = int((app.frames[mine] >= f1).sum())
            print(f"    GT {p0} (f{f0}) -> {p1} (f{f1}): {before} samples before, {after} after")
    print(f"  {scored} scored (>= {2 * min_side} body samples)")
    return plain, switched


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch folder of bench_accuracy.py")
    parser.add_argument("--clip", action="append", choices=[c.name for c in CLIPS], help="clip(s) (default: all)")
    parser.add_argument("--min-side", type=int, default=2, help="fewest body samples on each side of a split")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
    os.environ.setdefault("FANCAM_MODEL_MIRROR", str(SHARED / "models"))
    plain: list[float] = []
    switched: list[tuple[str, float]] = []
    for clip in [clip_named(n) for n in args.clip] if args.clip else list(CLIPS):
        loaded = load_replay(args.work, clip, AnalysisSettings(quality="fast"))
        if loaded is not None:
            p, s = run_clip(loaded, args.min_side)
            plain += p
            switched += s
    scores = np.array(plain)
    if len(scores):
        q = np.percentile(scores, [0, 5, 10, 25, 50, 75, 100])
        print(f"tracklets without a GT switch: {len(scores)} scored; proto min/5/10/25/50/75/max % "
              f"{' '.join(f'{v:+.2f}' for v in q)}")
    for name, score in switched:
        caught = f"cutting it at proto <= {score:+.2f} cuts {int((scores <= score).sum())} of them too"
        print(f"switch tracklet {name}: " + (caught if np.isfinite(score) else "not scorable (too few samples)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
