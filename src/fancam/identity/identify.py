"""Identity: tracklets -> performers (linking), performers -> names (gallery) or numbers.

The result is a performer cluster per tracklet row and, with a gallery, a name per cluster; see
:mod:`fancam.identity.linking` and :mod:`fancam.identity.naming` for the evidence and the rules.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from fancam.identity.appearance import Appearance
from fancam.identity.crossing import motion_of
from fancam.identity.gallery import Gallery
from fancam.identity.linking import (
    Evidence,
    LinkingConfig,
    Tracklets,
    cluster_tracklets,
    describe_tracklets,
    pairwise_evidence,
)
from fancam.identity.naming import GalleryMatcher, NamingConfig, assign_people, choose_group, evidence_matrix
from fancam.identity.people import Naming
from fancam.tracking.tracklets import TrackletReport
from fancam.types import Timeline, TrackTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdentityConfig:
    """Identity settings.

    Attributes:
        linking: Tracklet linking.
        naming: Gallery naming.
        min_together_s: Performers counted as "seen together" must share at least this long.
    """

    linking: LinkingConfig = field(default_factory=LinkingConfig)
    naming: NamingConfig = field(default_factory=NamingConfig)
    min_together_s: float = 1.0


@dataclass(frozen=True)
class IdentityResult:
    """Who is who.

    Attributes:
        cluster: (M,) performer cluster of each tracklet row (0..C-1).
        naming: Name and naming confidence of each cluster (numbered performers: confidence 1).
        group: Gallery group found to perform, or None.
        membership: Probability that each tracklet (by id) belongs to its cluster (see
            :func:`tracklet_membership`).
    """

    cluster: NDArray[np.int64]
    naming: dict[int, Naming]
    group: str | None
    membership: dict[int, float] = field(default_factory=dict)


def expected_performers(tracks: TrackTable, timeline: Timeline, min_together_s: float) -> int:
    """Most tracklets present together for at least ``min_together_s`` (a lower bound on performers)."""
    if not len(tracks):
        return 0
    counts = np.bincount(tracks.frame, minlength=timeline.n_frames)
    fps = 1.0 / timeline.step_s
    window = max(1, int(round(min_together_s * fps)))
    if window >= len(counts):
        return int(counts.min())
    # Sliding minimum: the count sustained over each window, then its maximum.
    view = np.lib.stride_tricks.sliding_window_view(counts, window)
    return int(view.min(axis=1).max())


def identify(
    tracks: TrackTable,
    timeline: Timeline,
    appearance: Appearance,
    report: TrackletReport,
    gallery: Gallery | None,
    config: IdentityConfig,
) -> IdentityResult:
    """Link tracklets into performers and name them (see the module docstring)."""
    cuts = (
        {i.tracklet_id for i in report.tracklets if i.start_reason == "overlap"},
        {i.tracklet_id for i in report.tracklets if i.end_reason == "overlap"},
    )
    motion = motion_of(report.tracklets, tracks.track_ids())
    tracklets = describe_tracklets(tracks, timeline, appearance, cuts, motion)
    evidence = pairwise_evidence(tracklets, appearance, timeline, config.linking)
    expected = expected_performers(tracks, timeline, config.min_together_s)
    labels = cluster_tracklets(tracklets, evidence, config.linking, expected)
    log.info("%d tracklets -> %d performers (%d seen together)", len(tracklets), labels.max() + 1, expected)
    group: str | None = None
    naming = {c: Naming(confidence=1.0) for c in range(int(labels.max()) + 1)}
    own: NDArray[np.float64] | None = None
    if gallery is not None and len(gallery):
        gallery = choose_group(gallery, appearance, config.naming)
        group = gallery.groups[0] if len(gallery.groups) == 1 else None
        matcher = GalleryMatcher(gallery, evidence.face_calibration, evidence.body_calibration, config.naming)
        labels, naming, own = _name(tracklets, labels, appearance, matcher)
    index = {int(t): k for k, t in enumerate(tracklets.ids)}
    cluster = labels[np.array([index[int(t)] for t in tracks.track_id], np.int64)]
    member_of = _member_index(naming, gallery)
    frames = np.asarray(tracklets.last - tracklets.first + 1.0, np.float64)
    membership = tracklet_membership(labels, evidence, own, member_of, frames)
    return IdentityResult(
        cluster=cluster, naming=naming, group=group,
        membership={int(t): float(p) for t, p in zip(tracklets.ids, membership, strict=True)},
    )


def _member_index(naming: dict[int, Naming], gallery: Gallery | None) -> dict[int, int]:
    """Gallery member index of each named cluster."""
    if gallery is None:
        return {}
    keys = [m.key for m in gallery.members]
    return {c: keys.index(n.member) for c, n in naming.items() if n.member in keys}


def tracklet_membership(
    labels: NDArray[np.int64], evidence: Evidence, own_votes: NDArray[np.float64] | None,
    member_of: dict[int, int], length: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """(T,) probability that each tracklet belongs to its cluster (and, if named, to that member).

    A tracklet of a named cluster with face or body evidence of its own is judged by it: its log-odds
    of being that member over its best alternative (another member, or nobody in the gallery:
    ``own_votes``, see :func:`~fancam.identity.naming.evidence_matrix`); faces and body that disagree
    cancel out. Any other tracklet is judged by its
    links to the cluster's other tracklets (the weighted mean log-odds of
    :class:`~fancam.identity.linking.Evidence`; 0, i.e. even odds, when it was joined on no evidence),
    except that the longest tracklet of a numbered performer is what the performer *is* (1), and so
    is a tracklet alone in its cluster.

    Args:
        labels: (T,) cluster of each tracklet.
        evidence: Pairwise link evidence.
        own_votes: (T, M) each tracklet's own log-odds of being each member (None without a gallery).
        member_of: Gallery member index of each named cluster.
        length: (T,) tracklet lengths (any unit) to find the longest; default: the first is longest.
    """
    out = np.ones(len(labels))
    length = np.zeros(len(labels)) if length is None else np.asarray(length, np.float64)
    for c in np.unique(labels):
        k = np.flatnonzero(labels == c)
        m = member_of.get(int(c))
        anchor = int(k[np.argmax(length[k])])
        if len(k) < 2:
            continue
        for t in k:
            if own_votes is not None and m is not None and np.any(own_votes[t] != 0):
                rest = np.delete(own_votes[t], m)
                e = float(own_votes[t, m] - max(rest.max(initial=0.0), 0.0))
            elif m is None and t == anchor:
                continue
            else:
                others = k[k != t]
                w = evidence.weight[t, others]
                e = float((evidence.log_odds[t, others] * w).sum() / w.sum()) if w.sum() > 0 else 0.0
            out[t] = 1.0 / (1.0 + np.exp(-e))
    return out


def _name(
    tracklets: Tracklets, labels: NDArray[np.int64], appearance: Appearance, matcher: GalleryMatcher,
) -> tuple[NDArray[np.int64], dict[int, Naming], NDArray[np.float64]]:
    """Name clusters; clusters given the same member are merged into one performer.

    Returns the new labels, the naming of each cluster, and (T, M) each tracklet's own evidence.
    """
    # Each tracklet's own evidence: splits clusters the gallery contradicts, and gives memberships.
    own = np.nan_to_num(evidence_matrix(matcher, appearance, tracklets.sample_of, len(tracklets)), nan=0.0)
    labels = split_contradicted(labels, own, tracklets.sample_of, appearance, matcher)
    n = int(labels.max()) + 1
    conflict = np.zeros((n, n), bool)
    for a, b in zip(*np.nonzero(tracklets.conflict), strict=True):
        conflict[labels[a], labels[b]] = True
    scores = evidence_matrix(matcher, appearance, labels[tracklets.sample_of], n)
    keys = tuple(m.key for m in matcher.gallery.members)
    # Time on screen, in frames (the unit cancels out of the margins).
    span = np.asarray(tracklets.last - tracklets.first + 1, np.float64)
    seen = np.asarray(np.bincount(labels, weights=span, minlength=n), np.float64)
    naming = assign_people(scores, conflict, matcher.gallery.names, keys, matcher.config, seen)
    # One performer per member: clusters named alike become one.
    first_of: dict[str, int] = {}
    remap = np.arange(n)
    for c in range(n):
        member = naming[c].member
        if member is None:
            continue
        if member in first_of:
            remap[c] = first_of[member]
        else:
            first_of[member] = c
    merged = {int(remap[c]): naming[c] for c in range(n) if remap[c] == c}
    return remap[labels], merged, own


def split_contradicted(
    labels: NDArray[np.int64], own: NDArray[np.float64], sample_of: NDArray[np.int64], appearance: Appearance,
    matcher: GalleryMatcher,
) -> NDArray[np.int64]:
    """Split a cluster whose tracklets the gallery clearly names as two different members.

    In a cluster of several tracklets, the tracklets whose own evidence names member ``m`` with a lead
    of ``config.split_lead`` over every other member and over "nobody" leave it when the cluster's
    other tracklets, taken together, name another member with the same lead, and both sides have
    ``config.full_weight_samples`` samples with a face or a body (a split is never decided on a
    glimpse). A rest that merely looks unlike every photo (a performer's back, a dark stretch) is not
    evidence of someone else: it stays.
    """
    config = matcher.config
    labels = labels.copy()
    seen = np.any(appearance.body != 0, axis=1) | appearance.has_face  # samples with a cue
    for c in range(int(labels.max()) + 1):
        k = np.flatnonzero(labels == c)
        if len(k) < 2 or not own.shape[1]:
            continue
        best = np.argmax(own[k], axis=1)
        runner_up = np.array([max(np.delete(own[t], m).max(initial=0.0), 0.0)
                              for t, m in zip(k, best, strict=True)])
        lead = own[k, best] - runner_up
        for m in np.unique(best[lead >= config.split_lead]):
            mine = k[(best == m) & (lead >= config.split_lead)]
            rest = np.setdiff1d(np.flatnonzero(labels == c), mine)
            if not len(rest):
                continue
            part = np.where(np.isin(sample_of, rest), 0, -1)
            rest_scores = np.nan_to_num(evidence_matrix(matcher, appearance, part, 1)[0], nan=0.0)
            other = int(np.argmax(rest_scores))
            rest_lead = rest_scores[other] - max(np.delete(rest_scores, other).max(initial=0.0), 0.0)
            enough = min(int(np.isin(sample_of[seen], mine).sum()), int(np.isin(sample_of[seen], rest).sum()))
            if other != m and rest_lead >= config.split_lead and enough >= config.full_weight_samples:
                log.info("gallery evidence splits %d tracklet(s) (%s) off performer cluster %d (%s)",
                         len(mine), matcher.gallery.names[m], c, matcher.gallery.names[other])
                labels[mine] = labels.max() + 1
    return labels
