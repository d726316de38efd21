"""Is the body cue between two tracklets worse when their views differ? AUC split by view comparability.

Replays linking's tracklet-pair body log-odds (``fancam.identity.linking._body_evidence``: prototypes,
clipped at +-max_cue_log_odds) on the saved analyses of ``bench_accuracy.py`` and compares
same-person with different-person pairs of GT-labelled tracklets, split by how comparable the two
views are, measured from the sampled boxes of each tracklet:

- height: ratio of the two tracklets' median box heights (a close-up against a wide shot: 2-3x);
- aspect: ratio of their median box aspect ratios (wide stance, arms out, a box cut in half);
- edge: how many of the two are cut by a frame edge (most sampled boxes within 2 px of an edge);

each within one shot and across shots. Per bin: pairs, mean log-odds, same pairs below -2 (a split
threat), different pairs above 0 (a merge threat) and the AUC. Run after ``bench_accuracy.py`` with
the same ``--work`` (seconds):

    python benchmarks/bench_body_views.py --work DIR [--clip NAME ...] [--per-clip]
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from clips import CLIPS, SHARED, clip_named
from fancam.identity import linking
from fancam.identity.crossing import motion_of
from fancam.pipeline.analyze import AnalysisSettings
from replay import Replay, load_replay

DEFAULT_WORK = Path(os.environ.get("TMPDIR", "/tmp")) / "fancam-bench"
EDGE_PX = 2.0
# (name, bin edges) of each comparability measure; the edge measure counts 0, 1 or 2 cut tracklets.
MEASURES: dict[str, list[float]] = {
    "height": [1.0, 1.25, 1.6, 2.2, np.inf],
    "aspect": [1.0, 1.2, 1.4, 1.7, np.inf],
    "edge": [0, 1, 2, 3],
}

# One pair: (clip, measure, same/cross shot, bin) -> ([same-person log-odds], [different-person log-odds]).
Bins = dict[tuple[str, str, str, int], tuple[list[float], list[float]]]


def auc(same: list[float], diff: list[float]) -> float:
    """P(a same-person pair scores above a different-person pair), ties half."""
    if not same or not diff:
        return float("nan")
    s, d = np.asarray(same)[:, None], np.asarray(diff)[None, :]
    return float(np.mean((s > d) + 0.5 * (s == d)))


def bin_of(measure: str, x: float) -> int:
    """The bin of value ``x`` of ``measure`` (a ratio >= 1, or a count of cut tracklets)."""
    return int(np.searchsorted(MEASURES[measure], x, side="right")) - 1


def per_tracklet(loaded: Replay, owner: NDArray[np.int64], n: int,
                 value: Callable[[NDArray[np.float32]], NDArray[np.float64]]) -> NDArray[np.float64]:
    """The median of ``value(sampled boxes)`` over each tracklet's appearance samples (NaN: none)."""
    v = value(loaded.tracks.xyxy[loaded.appearance.rows])
    return np.array([float(np.median(v[owner == k])) if np.any(owner == k) else np.nan for k in range(n)])


def collect(loaded: Replay, bins: Bins) -> None:
    """Add the labelled tracklet pairs of one clip to ``bins``."""
    tracks, timeline, report, appearance = loaded.tracks, loaded.timeline, loaded.report, loaded.appearance
    cuts = ({i.tracklet_id for i in report.tracklets if i.start_reason == "overlap"},
            {i.tracklet_id for i in report.tracklets if i.end_reason == "overlap"})
    tracklets = linking.describe_tracklets(tracks, timeline, appearance, cuts,
                                           motion_of(report.tracklets, tracks.track_ids()))
    n = len(tracklets)
    body = linking._body_evidence(tracklets, appearance, timeline, AnalysisSettings(quality="fast").identity.linking)
    who = [loaded.who.get(int(t), "-") for t in tracklets.ids]
    owner = tracklets.sample_of
    w, h = float(loaded.width), float(loaded.height)
    height = per_tracklet(loaded, owner, n, lambda b: (b[:, 3] - b[:, 1]).astype(np.float64))
    aspect = per_tracklet(loaded, owner, n, lambda b: ((b[:, 2] - b[:, 0]) / (b[:, 3] - b[:, 1])).astype(np.float64))
    cut = per_tracklet(loaded, owner, n, lambda b: ((b[:, 0] <= EDGE_PX) | (b[:, 1] <= EDGE_PX) | (
        b[:, 2] >= w - EDGE_PX) | (b[:, 3] >= h - EDGE_PX)).astype(np.float64)) >= 0.5

    def ratio(v: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(np.maximum.outer(v, v) / np.minimum.outer(v, v), np.float64)

    values = {"height": ratio(height), "aspect": ratio(aspect), "edge": np.add.outer(cut, cut).astype(np.float64)}
    for i, j in zip(*np.triu_indices(n, k=1), strict=True):
        lo = float(body.log_odds[i, j])
        if who[i] == "-" or who[j] == "-" or not np.isfinite(lo):
            continue
        shot = "same shot " if tracklets.shot[i] == tracklets.shot[j] else "cross-shot"
        for name in MEASURES:
            x = float(values[name][i, j])
            if not np.isfinite(x):
                continue
            b = bin_of(name, x)
            for clip in (loaded.clip.name, "ALL"):
                bins.setdefault((clip, name, shot, b), ([], []))[0 if who[i] == who[j] else 1].append(lo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch folder of bench_accuracy.py")
    parser.add_argument("--clip", action="append", choices=[c.name for c in CLIPS], help="clip(s) (default: all)")
    parser.add_argument("--per-clip", action="store_true", help="print every clip's bins, not only ALL")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
    os.environ.setdefault("FANCAM_MODEL_MIRROR", str(SHARED / "models"))
    bins: Bins = {}
    for clip in [clip_named(n) for n in args.clip] if args.clip else list(CLIPS):
        loaded = load_replay(args.work, clip, AnalysisSettings(quality="fast"))
        if loaded is not None:
            collect(loaded, bins)
    for key in sorted(bins, key=lambda k: (k[0] != "ALL", k[0], list(MEASURES).index(k[1]), k[2], k[3])):
        clip, name, shot, b = key
        if clip != "ALL" and not args.per_clip:
            continue
        same, diff = bins[key]
        edges = MEASURES[name]
        span = f"{edges[b]:g} cut" if name == "edge" else f"{edges[b]:g}-{edges[b + 1]:g}"
        mean_s = f"{np.mean(same):+.2f}" if same else "  nan"
        mean_d = f"{np.mean(diff):+.2f}" if diff else "  nan"
        print(f"{clip:9s} {name:6s} {shot} {span:9s} same {len(same):3d} mean {mean_s}"
              f" (< -2: {sum(x < -2 for x in same):2d})  diff {len(diff):4d} mean {mean_d}"
              f" (> 0: {sum(x > 0 for x in diff):2d})  AUC {auc(same, diff):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
