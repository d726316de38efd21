"""A labelled clip's saved analysis, loaded for replaying the identity stage against its GT.

``bench_linking.py`` and ``bench_naming.py`` replay linking and naming with the code at hand on the
scan and appearance that ``bench_accuracy.py --work DIR`` saved (seconds instead of a re-analysis). The
GT is used to diagnose only; nothing of it reaches the product.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from clips import LabelledClip
from fancam.eval.metrics import match_keyframes
from fancam.identity.appearance import Appearance
from fancam.io.tables import GroundTruth, PredictedTracks, load_gt
from fancam.io.video import probe
from fancam.pipeline.analyze import AnalysisSettings
from fancam.pipeline.store import load_appearance, load_scan
from fancam.tracking.tracklets import TrackletReport, build_tracklets_explained
from fancam.types import Timeline, TrackTable


@dataclass(frozen=True)
class Replay:
    """A clip's saved analysis, ready for the identity stage, and its GT.

    Attributes:
        match: (G,) row of ``tracks`` matched to each GT row (-1: none), as the metrics match.
        votes: GT persons of each tracklet's matched keyframe rows, by tracklet id.
        who: The GT person of each tracklet (most keyframe rows), by tracklet id.
    """

    clip: LabelledClip
    tracks: TrackTable
    timeline: Timeline
    report: TrackletReport
    appearance: Appearance
    width: int
    height: int
    gt: GroundTruth
    match: NDArray[np.int64]
    votes: dict[int, Counter[str]]
    who: dict[int, str]


def load_replay(work: Path, clip: LabelledClip, settings: AnalysisSettings) -> Replay | None:
    """The saved analysis of ``clip`` in ``work`` with its tracklets rebuilt; None (said why) if unusable."""
    folder = work / f"accuracy-{clip.name}-fast-analysis"
    scanned = load_scan(folder / "scan.npz")
    if scanned is None:
        print(f"{clip.name}: no analysis in {folder} (run bench_accuracy.py --work {work} first)")
        return None
    info = probe(clip.video)
    timeline = scanned.timeline
    tracks, report = build_tracklets_explained(scanned.raw, timeline, (info.width, info.height), settings.tracklets)
    appearance = load_appearance(folder / "appearance.npz", len(tracks))
    if appearance is None:
        print(f"{clip.name}: the appearance in {folder} does not fit these tracklets; re-run bench_accuracy.py")
        return None
    gt = load_gt(clip.gt, n_frames=timeline.n_frames)
    pred = PredictedTracks("tracklets", tracks.frame, timeline.t[tracks.frame], tracks.track_id,
                           np.full(len(tracks), "x"), tracks.xyxy.astype(np.float64),
                           tracks.score.astype(np.float64))
    match = match_keyframes(gt, pred)
    votes: dict[int, Counter[str]] = {}
    for r in np.flatnonzero((match >= 0) & ~gt.uncertain):
        votes.setdefault(int(tracks.track_id[match[r]]), Counter())[str(gt.person[r])] += 1
    who = {t: v.most_common(1)[0][0] for t, v in votes.items()}
    return Replay(clip, tracks, timeline, report, appearance, info.width, info.height, gt, match, votes, who)
