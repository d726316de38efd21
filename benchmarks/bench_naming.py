"""Does a gallery name the right people, and never a stranger? Gallery naming replayed on saved analyses.

For every labelled clip (:mod:`clips`) the identity stage is replayed on the analysis that
``bench_accuracy.py`` saved (``scan.npz``, ``appearance.npz`` of ``accuracy-CLIP-fast-analysis``) with:

- no gallery, and the clip's own gallery: identity accuracy (the bench_accuracy metric) and, per
  performer cluster, its GT person (most keyframe rows), the name given and its confidence;
- every *other* clip's gallery (42 wrong-gallery pairs): none of those members performs, so every
  name given is a **stranger** (printed with the cluster's GT person and the confidence);
- with ``--leave-one-out``, the own gallery without each member in turn: a cluster of the left-out
  performer that gets a name is a stranger too (a look-alike of the same group: the hardest case).

``--evidence`` prints, per cluster of the own-gallery runs, the per-cue evidence of naming
(:mod:`fancam.identity.naming`): faces (count, mean log-odds per member), body (log-odds per member)
and the combined evidence against "nobody"; with ``--evidence --strangers`` the same for the
clusters named in wrong-gallery runs. The GT is used to score and diagnose only.

Usage (from the repository root, after ``bench_accuracy.py --work DIR`` analysed the clips)::

    python benchmarks/bench_naming.py [--work DIR] [--clip NAME ...] [--gallery NAME ...] [--evidence]
        [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np

from clips import CLIPS, SHARED, clip_named
from fancam.eval.metrics import evaluate
from fancam.identity import naming as naming_module
from fancam.identity.crossing import motion_of
from fancam.identity.gallery import Gallery, load_gallery
from fancam.identity.identify import identify
from fancam.identity.linking import describe_tracklets, pairwise_evidence
from fancam.identity.people import make_people
from fancam.pipeline.analyze import AnalysisSettings, _person_detector, make_face_analyzer
from fancam.pipeline.store import tracks_rows
from replay import Replay, load_replay

DEFAULT_WORK = Path(os.environ.get("TMPDIR", "/tmp")) / "fancam-bench"


def name_run(replay: Replay, gallery: Gallery | None, settings: AnalysisSettings) -> dict:
    """Identity with ``gallery``: accuracy (named when a gallery is given) and each cluster's name."""
    result = identify(replay.tracks, replay.timeline, replay.appearance, replay.report, gallery, settings.identity)
    cast = make_people(replay.tracks, result.cluster, result.naming, replay.timeline, replay.height,
                       result.membership)
    rows = tracks_rows(replay.tracks, cast, replay.timeline, bridge_s=settings.tracklets.max_gap_s)
    scores = evaluate(rows, replay.gt, named=gallery is not None)
    clusters = []
    for c, n in sorted(result.naming.items()):
        ids = np.unique(replay.tracks.track_id[result.cluster == c])
        tally: Counter[str] = Counter()
        for t in ids:
            if int(t) in replay.who:
                rows = int(np.sum(replay.tracks.track_id == t))
                tally[replay.who[int(t)]] += rows
        truth = tally.most_common(1)[0][0] if tally else "-"
        clusters.append({"cluster": int(c), "gt": truth, "name": n.label, "member": n.member,
                         "confidence": round(float(n.confidence), 3), "tracklets": len(ids)})
    return {"identity": round(float(scores.identity.accuracy), 3), "clusters": clusters,
            "per_person": {p: int(k) for p, k, _ in scores.identity.per_person}}


def evidence_lines(replay: Replay, gallery: Gallery, settings: AnalysisSettings, only: set[int] | None) -> list[str]:
    """Per-cue naming evidence of each cluster (of the linking, before naming)."""
    from fancam.identity.identify import expected_performers
    from fancam.identity.linking import cluster_tracklets

    config = settings.identity
    cuts = ({i.tracklet_id for i in replay.report.tracklets if i.start_reason == "overlap"},
            {i.tracklet_id for i in replay.report.tracklets if i.end_reason == "overlap"})
    motion = motion_of(replay.report.tracklets, replay.tracks.track_ids())
    tracklets = describe_tracklets(replay.tracks, replay.timeline, replay.appearance, cuts, motion)
    evidence = pairwise_evidence(tracklets, replay.appearance, replay.timeline, config.linking)
    expected = expected_performers(replay.tracks, replay.timeline, config.min_together_s)
    labels = cluster_tracklets(tracklets, evidence, config.linking, expected)
    gallery = naming_module.choose_group(gallery, replay.appearance, config.naming)
    matcher = naming_module.GalleryMatcher(gallery, evidence.face_calibration, evidence.body_calibration,
                                           config.naming)
    n = int(labels.max()) + 1
    of_sample = labels[tracklets.sample_of]
    face, n_faces = naming_module.face_log_odds(gallery, replay.appearance, of_sample, n,
                                                evidence.face_calibration, config.naming.cue_clip)
    body = naming_module.body_log_odds(gallery, replay.appearance, of_sample, n, evidence.body_calibration)
    total = naming_module.evidence_matrix(matcher, replay.appearance, of_sample, n)
    names = gallery.names
    lines = [f"  face calibration {evidence.face_calibration}, body calibration {evidence.body_calibration}"]
    for c in range(n):
        if only is not None and c not in only:
            continue
        ids = tracklets.ids[labels == c]
        tally = Counter(replay.who[int(t)] for t in ids if int(t) in replay.who)
        truth = tally.most_common(1)[0][0] if tally else "-"
        n_body = int(np.sum(np.any(replay.appearance.body[of_sample == c] != 0, axis=1)))
        fmt = lambda v: " ".join(f"{names[j]}:{x:+.1f}" for j, x in enumerate(v) if np.isfinite(x))  # noqa: E731
        lines.append(f"  cluster {c} (GT {truth}, {len(ids)} tracklets): faces {int(n_faces[c])} [{fmt(face[c])}]"
                     f" | bodies {n_body} [{fmt(body[c])}] | evidence [{fmt(total[c])}]")
    return lines


def own_gallery_runs(replay: Replay, gallery: Gallery, base: dict, settings: AnalysisSettings,
                     args: argparse.Namespace, totals: Counter[str]) -> list[dict]:
    """The own gallery (and, with --leave-one-out, the own gallery without each member)."""
    clip = replay.clip.name
    run = name_run(replay, gallery, settings)
    runs = [{"clip": clip, "gallery": clip, **run}]
    named = [c for c in run["clusters"] if c["member"] is not None]
    right = sum(c["name"] == c["gt"] for c in named)
    totals["own_right"] += right
    print(f"   own gallery: identity {run['identity']:.3f} (no gallery {base['identity']:.3f}); "
          f"{right} of {len(named)} names right: "
          + ", ".join(f"{c['gt']}->{c['name']} {c['confidence']:.2f}" for c in named))
    unnamed = sorted({c["gt"] for c in run["clusters"] if c["member"] is None and c["gt"] != "-"})
    print(f"   own gallery: GT people in unnamed clusters: {', '.join(unnamed) or '-'}; "
          "per person " + " ".join(f"{p}:{k}" for p, k in run["per_person"].items()))
    if args.evidence:
        print("\n".join(evidence_lines(replay, gallery, settings, None)))
    for k, member in enumerate(gallery.members if args.leave_one_out else ()):
        rest = Gallery(gallery.root, gallery.members[:k] + gallery.members[k + 1:])
        out = name_run(replay, rest, settings)
        runs.append({"clip": clip, "gallery": f"{clip}-without-{member.name}", **out})
        wrong = [c for c in out["clusters"] if c["gt"] == member.name and c["member"] is not None]
        totals["left_out"] += len(wrong)
        if wrong:
            print(f"   without {member.name}: STRANGERS " + ", ".join(
                f"{c['gt']}->{c['name']} {c['confidence']:.2f}" for c in wrong))
    return runs


def replay_clip(replay: Replay, galleries: dict[str, Gallery], settings: AnalysisSettings,
                args: argparse.Namespace, totals: Counter[str]) -> list[dict]:
    """Every run of one clip: no gallery, its own gallery, every other clip's gallery."""
    clip = replay.clip.name
    base = name_run(replay, None, settings)
    print(f"== {clip}: no gallery {base['identity']:.3f}")
    runs = [{"clip": clip, "gallery": None, **base}]
    for gname, gallery in galleries.items():
        if gname == clip:
            runs += own_gallery_runs(replay, gallery, base, settings, args, totals)
            continue
        run = name_run(replay, gallery, settings)
        runs.append({"clip": clip, "gallery": gname, **run})
        named = [c for c in run["clusters"] if c["member"] is not None]
        if named:
            totals["strangers"] += len(named)
            print(f"   {gname} gallery: STRANGERS " + ", ".join(
                f"{c['gt']}->{c['member']} {c['confidence']:.2f}" for c in named))
            if args.evidence and args.strangers:
                print("\n".join(evidence_lines(replay, gallery, settings, {c["cluster"] for c in named})))
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch folder of bench_accuracy.py")
    parser.add_argument("--clip", action="append", choices=[c.name for c in CLIPS], help="clip(s) (default: all)")
    parser.add_argument("--gallery", action="append", choices=[c.name for c in CLIPS],
                        help="galleries (default: all)")
    parser.add_argument("--evidence", action="store_true", help="per-cue evidence of the own-gallery clusters")
    parser.add_argument("--strangers", action="store_true", help="with --evidence: also of named strangers")
    parser.add_argument("--leave-one-out", action="store_true", help="also the own gallery without each member")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
    os.environ.setdefault("FANCAM_MODEL_MIRROR", str(SHARED / "models"))
    settings = AnalysisSettings(quality="fast")
    names = settings.model_names()
    analyzer = make_face_analyzer(names)
    people = _person_detector(names)
    clips = [clip_named(n) for n in args.clip] if args.clip else list(CLIPS)
    gallery_clips = [clip_named(n) for n in args.gallery] if args.gallery else list(CLIPS)
    galleries = {g.name: load_gallery(g.gallery_dir(args.work), analyzer, people=people) for g in gallery_clips}
    runs: list[dict] = []
    totals = Counter[str]()
    for clip in clips:
        replay = load_replay(args.work, clip, settings)
        if replay is not None:
            runs += replay_clip(replay, galleries, settings, args, totals)
    strangers, own_names, left_out_strangers = totals["strangers"], totals["own_right"], totals["left_out"]
    print(f"strangers named with another clip's gallery: {strangers}; right names with the own gallery: {own_names}")
    if args.leave_one_out:
        print(f"left-out performers named as someone else: {left_out_strangers}")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "strangers": strangers, "own_right": own_names,
                                         "left_out_strangers": left_out_strangers}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
