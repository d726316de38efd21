"""Why tracklets are linked into the wrong people: every merge and every split, against the GT.

For every labelled clip (:mod:`clips`), without a gallery, the identity stage is replayed on the saved
analysis (``scan.npz``, ``appearance.npz`` of the folder ``bench_accuracy.py`` analysed into):

- each tracklet gets the GT person its keyframe rows are matched to (IoU >= 0.5, Hungarian, as the
  metrics do; ``-`` when no GT box matched it: someone unlabelled, or too short to meet a keyframe);
- every merge of :func:`fancam.identity.linking.cluster_tracklets` is printed with its step
  (``evidence``, ``too-many``, ``fragment``, ``only-partner``), its mean evidence and the GT persons
  on both sides (``WRONG`` when they differ) — with ``--all``; otherwise only the wrong ones and the
  forced ones;
- per GT person: rows, rows matched to a tracklet (the detection and tracking ceiling), rows in a
  tracklet that is mostly that person (the tracklet-purity ceiling) and rows named right, so that
  the losses of linking are told apart from those of detection and tracking;
- with ``--clusters``, every final cluster with its tracklets and their GT persons (crowd tracklets
  that landed on a performer show up as ``-`` among her pieces);
- for a GT person split over clusters: between each piece and the others, whether they share frames
  and the mean evidence per cue (body, face, continuity).

The GT is used here to diagnose only; nothing of it reaches the product.

Usage (from the repository root, after ``bench_accuracy.py --work DIR``)::

    python benchmarks/bench_linking.py [--work DIR] [--clip NAME ...] [--all] [--clusters]
"""

from __future__ import annotations

import argparse
import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np

from clips import CLIPS, SHARED, LabelledClip, clip_named
from fancam.eval.metrics import evaluate
from fancam.identity import linking
from fancam.identity.crossing import motion_of
from fancam.identity.identify import expected_performers, identify
from fancam.identity.people import make_people
from fancam.pipeline.analyze import AnalysisSettings
from fancam.pipeline.store import tracks_rows
from replay import load_replay

DEFAULT_WORK = Path(os.environ.get("TMPDIR", "/tmp")) / "fancam-bench"


def replay(work: Path, clip: LabelledClip, show_all: bool, show_clusters: bool = False) -> None:
    """Print the linking diagnosis of one clip (see the module docstring)."""
    settings = AnalysisSettings(quality="fast")
    loaded = load_replay(work, clip, settings)
    if loaded is None:
        return
    tracks, timeline, report, appearance = loaded.tracks, loaded.timeline, loaded.report, loaded.appearance
    gt, match, votes = loaded.gt, loaded.match, loaded.votes
    config = settings.identity
    result = identify(tracks, timeline, appearance, report, None, config)
    cast = make_people(tracks, result.cluster, result.naming, timeline, loaded.height, result.membership)
    rows = tracks_rows(tracks, cast, timeline, bridge_s=settings.tracklets.max_gap_s)
    scores = evaluate(rows, gt, named=False).identity
    print(f"== {clip.name}: identity {scores.accuracy:.3f}, {int(result.cluster.max()) + 1} people")

    cuts = ({i.tracklet_id for i in report.tracklets if i.start_reason == "overlap"},
            {i.tracklet_id for i in report.tracklets if i.end_reason == "overlap"})
    tracklets = linking.describe_tracklets(tracks, timeline, appearance, cuts,
                                           motion_of(report.tracklets, tracks.track_ids()))
    who = [votes[int(t)].most_common(1)[0][0] if int(t) in votes else "-" for t in tracklets.ids]

    def named(members: list[int]) -> str:
        return "+".join(f"{int(tracklets.ids[m])}:{who[m]}" for m in members)

    def trace(step: str, a: list[int], b: list[int], mean: float) -> None:
        sides = [{who[m] for m in side} - {"-"} for side in (a, b)]
        wrong = bool(sides[0] and sides[1] and sides[0] != sides[1])
        if show_all or wrong or step in ("fragment", "only-partner"):
            print(f"  {step:12s} {mean:+5.2f}{' WRONG' if wrong else ''}: [{named(a)}] <- [{named(b)}]")

    evidence = linking.pairwise_evidence(tracklets, appearance, timeline, config.linking)
    expected = expected_performers(tracks, timeline, config.min_together_s)
    print(f"  {len(tracklets)} tracklets, {expected} performers seen together; body calibration "
          f"{evidence.body_calibration}, face calibration {evidence.face_calibration}")
    labels = linking.cluster_tracklets(tracklets, evidence, config.linking, expected, trace=trace)

    if show_clusters:
        for c in range(int(labels.max()) + 1):
            members = np.flatnonzero(labels == c)
            frames = int((tracklets.last[members] - tracklets.first[members] + 1).sum())
            print(f"  cluster {c}, {frames} tracklet frames: {named(members.tolist())}")
    _ceilings(gt, match, tracks.track_id, votes, {p: c for p, c, _ in scores.per_person})
    _splits(tracklets, labels, who, appearance, timeline, config.linking)


def _ceilings(gt, match, track_id, votes, per) -> None:  # type: ignore[no-untyped-def]
    """Per GT person: rows, rows matched, rows in its own tracklets, rows named right."""
    for person in sorted(set(gt.person[~gt.uncertain].tolist())):
        rows = np.flatnonzero((gt.person == person) & ~gt.uncertain)
        matched = rows[match[rows] >= 0]
        pure = sum(votes[int(track_id[match[r]])].most_common(1)[0][0] == person for r in matched)
        print(f"  {person}: {len(rows)} rows, {len(matched)} matched, {pure} in its own tracklets, "
              f"{per[person]} named right")



def _splits(tracklets, labels, who, appearance, timeline, config) -> None:  # type: ignore[no-untyped-def]
    """For each GT person split over clusters: shared frames and mean evidence per cue between pieces."""
    cues = {"body": linking._body_evidence(tracklets, appearance, timeline, config),
            "face": linking._face_evidence(tracklets, appearance, timeline, config)}
    continuity = linking._continuity(tracklets, timeline, config)

    def named(members: list[int]) -> str:
        return "+".join(f"{int(tracklets.ids[m])}:{who[m]}" for m in members)

    pieces: dict[str, list[int]] = {}
    for c in range(int(labels.max()) + 1):
        tally = Counter(w for m in np.flatnonzero(labels == c) for w in [who[m]] if w != "-")
        if tally:
            pieces.setdefault(tally.most_common(1)[0][0], []).append(c)
    for person, clusters in sorted(pieces.items()):
        if len(clusters) < 2:
            continue
        print(f"  {person} is split over {len(clusters)} clusters:")
        for i, ci in enumerate(clusters):
            for cj in clusters[i + 1:]:
                a, b = np.flatnonzero(labels == ci), np.flatnonzero(labels == cj)
                block = np.ix_(a, b)
                parts = []
                for name, cue in cues.items():
                    w = cue.weight[block]
                    mean = float((w * np.nan_to_num(cue.log_odds[block])).sum() / w.sum()) if w.sum() else float("nan")
                    parts.append(f"{name} {mean:+.2f}")
                print(f"    [{named(a.tolist())}] vs [{named(b.tolist())}]: "
                      f"{'share frames' if tracklets.conflict[block].any() else 'no shared frame'}, "
                      f"{', '.join(parts)}, continuity {continuity[block].max():.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch folder of bench_accuracy.py")
    parser.add_argument("--clip", action="append", choices=[c.name for c in CLIPS], help="clip(s) (default: all)")
    parser.add_argument("--all", action="store_true", help="print every merge, not only wrong and forced ones")
    parser.add_argument("--clusters", action="store_true", help="print every final cluster with its tracklets")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
    os.environ.setdefault("FANCAM_MODEL_MIRROR", str(SHARED / "models"))
    for clip in [clip_named(n) for n in args.clip] if args.clip else list(CLIPS):
        replay(args.work, clip, args.all, args.clusters)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
