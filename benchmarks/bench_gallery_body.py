"""What the body cue of gallery photos is worth: body matching of gallery photos against video tracklets.

For each labelled clip: the analysis (reused from its folder), the gallery loaded with the preset's
person detector (whole-person photos get a body descriptor, see fancam.identity.gallery), and each
tracklet's GT person (the GT person its boxes match at IoU >= 0.5 on most keyframes). Per tracklet with
body samples, the body prototype is compared with every member's body photos (best photo), and the
similarity turned into log-odds with the video's own body calibration (fancam.identity.linking).

Reported per clip:
- AUC: genuine (tracklet, its member) vs impostor (tracklet, another member) similarities;
- rank-1: share of tracklets whose best-matching member is their GT person;
- vote precision / recall: of the tracklets whose body evidence (fancam.identity.naming.evidence_matrix,
  body cue only) leads every other member and "nobody" by the naming margin, the share that points to
  the right member, and the share of tracklets that point to anyone.

    python benchmarks/bench_gallery_body.py CLIP VIDEO GT.csv GALLERY ANALYSIS_DIR [--quality fast]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from fancam.geometry import iou_matrix
from fancam.identity.gallery import load_gallery
from fancam.identity.identify import IdentityConfig
from fancam.identity.linking import describe_tracklets, pairwise_evidence
from fancam.identity.naming import GalleryMatcher, NamingConfig, body_log_odds, evidence_matrix
from fancam.io.tables import load_gt
from fancam.pipeline.analyze import AnalysisSettings, _person_detector, analyze, make_face_analyzer
from fancam.pipeline.store import APPEARANCE_FILE, load_appearance


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that a genuine similarity beats an impostor one (ties count half)."""
    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    if not len(pos) or not len(neg):
        return float("nan")
    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def tracklet_truth(tracks, gt) -> dict[int, str]:
    """GT person of each tracklet: the one its boxes match (IoU >= 0.5) on most keyframes."""
    votes: dict[int, dict[str, int]] = {}
    for f in np.unique(gt.frame):
        g = np.flatnonzero(gt.frame == f)
        r = np.flatnonzero(tracks.frame == f)
        if not len(r):
            continue
        iou = iou_matrix(gt.xyxy[g], tracks.xyxy[r])
        for a, gi in enumerate(g):
            b = int(np.argmax(iou[a]))
            if iou[a, b] >= 0.5:
                t = int(tracks.track_id[r[b]])
                votes.setdefault(t, {}).setdefault(str(gt.person[gi]), 0)
                votes[t][str(gt.person[gi])] += 1
    return {t: max(v, key=v.get) for t, v in votes.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip")
    parser.add_argument("video", type=Path)
    parser.add_argument("gt", type=Path)
    parser.add_argument("gallery", type=Path)
    parser.add_argument("analysis", type=Path)
    parser.add_argument("--quality", default="fast")
    args = parser.parse_args(argv)
    settings = AnalysisSettings(quality=args.quality)
    result = analyze(args.video, out=args.analysis, settings=settings, progress=False)
    tracks, timeline = result.tracks, result.timeline
    appearance = load_appearance(args.analysis / APPEARANCE_FILE, len(tracks))
    names = settings.model_names()
    gallery = load_gallery(args.gallery, make_face_analyzer(names), people=_person_detector(names))
    gt = load_gt(args.gt)
    truth = tracklet_truth(tracks, gt)
    tracklets = describe_tracklets(tracks, timeline, appearance)
    evidence = pairwise_evidence(tracklets, appearance, timeline, IdentityConfig().linking)
    n = len(tracklets)
    of_sample = tracklets.sample_of
    lo = body_log_odds(gallery, appearance, of_sample, n, evidence.body_calibration)
    config = NamingConfig()
    matcher = GalleryMatcher(gallery, None, evidence.body_calibration, dataclasses.replace(config, face_weight=0.0))
    body_only = np.nan_to_num(evidence_matrix(matcher, appearance, of_sample, n), nan=0.0)
    member_names = [m.name for m in gallery.members]
    pos, neg, rank1, voted, right = [], [], [], 0, 0
    for k, t in enumerate(tracklets.ids):
        person = truth.get(int(t))
        if person is None or person not in member_names or not np.isfinite(lo[k]).any():
            continue
        j = member_names.index(person)
        pos.append(lo[k, j])
        neg.extend(np.delete(lo[k], j))
        rank1.append(int(np.nanargmax(lo[k])) == j)
        best = int(np.argmax(body_only[k]))
        runner_up = max(np.delete(body_only[k], best).max(initial=0.0), 0.0)
        if body_only[k, best] - runner_up >= config.min_margin:
            voted += 1
            right += best == j
    report = {
        "clip": args.clip, "quality": args.quality, "tracklets": len(rank1),
        "calibrated": evidence.body_calibration is not None,
        "body_photos": {m.name: len(m.body_photos) for m in gallery.members},
        "auc": round(auc(np.array(pos), np.array(neg)), 3),
        "rank1": round(float(np.mean(rank1)), 3) if rank1 else None,
        "vote_recall": round(voted / len(rank1), 3) if rank1 else None,
        "vote_precision": round(right / voted, 3) if voted else None,
        "genuine_log_odds_q10_50": [round(float(v), 2) for v in np.nanpercentile(pos, [10, 50])] if pos else None,
        "impostor_log_odds_q50_90": [round(float(v), 2) for v in np.nanpercentile(neg, [50, 90])] if neg else None,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
