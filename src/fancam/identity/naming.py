"""Name performers from a gallery: a joint assignment with a margin, never a member twice at once.

Steps: find the group; weigh each performer cluster's evidence for each member; split clusters the
gallery names as two members; assign members to clusters jointly; name only with a clear margin.

**Evidence** (:func:`evidence_matrix`) is in log-odds "this cluster is this member", on the video's own
calibrations (the maps linking fits on pairs known to be one person or two, see
:mod:`fancam.identity.linking`): each face's similarity to a member's face photos, and the cluster's
body prototype's similarity to the member's whole-person photos (:mod:`fancam.identity.gallery`
finds them: fronts, backs, full-body crops). Which member: every cue's evidence relative to its best
member; whether anyone in the gallery at all: the best-matching cue among those with photos of that
member (bodies filmed under other light do not veto faces that match, and faces that match members
known by their faces do not vouch for a member known only by body photos). A face photo's quality
decides what it may say: a blurred or tiny face (a crop of a 360p video) embeds near every small face
and says nothing; a middling one tells members apart but only a sharp one vouches that a cluster is
anyone in the gallery (``min_photo_quality``, ``vouch_photo_quality``): without that, another group's
gallery named strangers. A cue seen in fewer than
``full_weight_samples`` samples counts proportionally less; a member without photos for any cue the
cluster shows is no candidate. Where
members look alike (one costume, one dance group's faces) the calibration is flat and so is the
evidence: nobody is named rather than a guess, unless the cluster is clearly someone of the
gallery and one member leads the others a little (see **Assignment**).

**Assignment** (:func:`assign_people`): members are assigned one-to-one (Hungarian) among the clusters
that meet in time, maximising the evidence weighted by time on screen (a long performer outweighs a
glimpse that looks alike); "nobody in the gallery" is worth 0. Two margins, per second of the
cluster: what the best assignment loses when the cluster may take no member (is it anyone in the
gallery: ``min_margin``), and when it may not take its member (which one: ``min_member_margin``, a
lower bar). A name whose lead over the runner-up member is thin (one costume: tiktok ballet's P3, left
with P2 and P3 once P1 and P4 are named) is given with its low confidence, which the people sheet
and the UI flag as uncertain, rather than ``unknown``, which is surely wrong for a member. Clusters
that never meet may share a member (a performer who left and came back): the caller merges them.

**Splits** (:func:`fancam.identity.identify.split_contradicted`): a cluster whose tracklets the
gallery clearly names as two different members is split before naming; a rest that merely matches
nobody well (a back, a dark stretch) is no evidence of someone else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from fancam.identity.appearance import Appearance
from fancam.identity.body import DEFAULT_CONFIG as BODY_CONFIG
from fancam.identity.body import BodyCalibration, body_prototype, similarity_matrix
from fancam.identity.faces import MEMBER_MARGIN, match_thresholds
from fancam.identity.gallery import Gallery
from fancam.identity.people import UNKNOWN, Naming

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NamingConfig:
    """How much evidence names a cluster.

    Measured with benchmarks/bench_accuracy.py (fast preset) on the 7 labelled clips; the numbers are
    identity accuracy with the gallery on bench, dance2, fiyud, ballet, hamilton, miryala, linedance.

    Attributes:
        min_group_share: Least share of the face votes the chosen group must have (else all groups
            remain candidates).
        cue_clip: Each cue's log-odds (per face, per body prototype) are clipped to +-this: one
            overconfident match must not decide alone. 4, 6 and 8 give the same names on all 7 clips.
        full_weight_samples: A cue seen in fewer samples (faces, bodies) of a cluster counts
            proportionally less; a split needs this many samples with a cue on each side (the split
            never fires on the 7 clips; 1 and 5 give the same names).
        face_weight: Weight of the face cue (0.5: same names; 2: miryala 0.682, linedance 0.642
            instead of 0.711 and 0.688: their 640x360 faces are small and alike).
        body_weight: Weight of the body cue (0.5: miryala 0.587, linedance 0.642; 2: linedance 0.761,
            P1 named, the others unchanged; not adopted: measured on too few body-only galleries).
        gallery_offset: Log-odds added to the evidence that a cluster is someone in the gallery (in
            proportion to how much evidence there is). Gallery photos are other moments (or cameras)
            than the pairs the video's calibrations are fitted on, so genuine matches sit lower than
            within-video ones (body: 10th percentile -4.3 to +6.4 on five galleries,
            benchmarks/bench_gallery_body.py). 0 and 0.5 leave miryala's P2 unknown (0.682) and name
            nobody with bench's head-blurred body photos; 1.5: same names as 1. Galleries of the other
            clips named 4 people in the 42 (gallery, other clip) pairs (the 7 galleries; offset in
            proportion to the vouching cue's samples, see :func:`evidence_matrix`), none since
            ``min_photo_quality`` (benchmarks/bench_naming.py); offset 0.5 then: miryala 0.701.
        min_margin: Least margin (log-odds per second of the cluster, see :func:`assign_people`) over
            "nobody in the gallery" that names a cluster: 1 = odds of e:1 that it is someone of the
            gallery. As the only margin (which member too): 0.5: linedance 0.761 (P1, at 0.97,
            named); 1.5: miryala 0.682, linedance 0.642; 2: dance2 0.683, miryala 0.587, linedance
            0.642. 0.5 (with ``min_member_margin`` 0.5) names 5 strangers in the 42 wrong-gallery
            pairs of benchmarks/bench_naming.py (margins 0.65-0.71 over nobody), 1: none. Hamilton's
            Obama (one face, 0.900 to his photos, -0.1 against nobody) stays unknown: judged against
            impostors instead (the face log-odds' lead over the other members and over the video's
            other clusters, the lesser of the two) he scores 1.45, and strangers in the 42 pairs
            score up to 2.41 (ballet's gallery on hamilton's Alex Lacamoire), so no bar names him
            without naming them.
        min_member_margin: Least margin over the best assignment without the cluster's member (which
            member), given the ``min_margin`` over nobody. Such a name has a confidence of
            sigmoid(margin): 0.62 at 0.5, flagged uncertain in the UI below 0.75. Measured with
            benchmarks/bench_naming.py (saved fast analyses, the 7 clips, 42 wrong-gallery pairs,
            leave-one-out): 0.25 and 0.5 name ballet's P3 (lead 0.6 over P2 on flat body evidence,
            identity with the gallery 0.722 -> 0.833 = without) and nothing else changes (28 -> 29
            right names, strangers 0, left-out members named 3 as before); 0.75 and 1 (the single
            margin before): P3 unknown.
        split_lead: Least lead (log-odds over every other member and over nobody) with which a
            cluster's tracklets, and the rest of the cluster, must name two different members for
            the cluster to be split (1 and 3: same names on the 7 clips).
        min_photo_quality: Face photos of a lower quality (:class:`fancam.identity.faces.FaceQuality`
            score: size, sharpness, frontality) are not used at all: a tiny or blurred face embeds
            near every other small face. The make_gallery crops of the 360p clips have faces of
            quality 0 (miryala, all 19), 0.02-0.05 (linedance P5, P7) and 0.0-0.16 (ballet, 5 of 9);
            with them, 4 strangers were named in the 42 (clip, other clip's gallery) pairs of
            benchmarks/bench_naming.py (hamilton's alex as linedance/P7 at 0.88 on two faces
            matching P7's 0.02 and 0.05 photos). 0.1 and 0.2 (with ``vouch_photo_quality`` 0.3):
            no stranger, the same 28 right names on the 7 own galleries.
        vouch_photo_quality: The face cue says that a cluster is someone in the gallery at all
            (the level of :func:`evidence_matrix`) only from face photos of at least this quality;
            photos between ``min_photo_quality`` and this still tell members apart. Photos of the
            benchmarks' galleries that vouch: bench 0.34-0.81, dance2 0.31-0.91, fiyud 0.72-0.91,
            hamilton's portraits 0.65-0.94; ballet's crops 0.25 and 0.46 at best. Without it
            (``min_photo_quality`` alone, 0.1 or 0.15) hamilton's alex is named ballet/P1 (0.74) on
            faces matching P1's 0.16 photo; 0.2, 0.3 and 0.4 give no stranger and the same names.
    """

    min_group_share: float = 0.5
    cue_clip: float = 6.0
    full_weight_samples: int = 3
    face_weight: float = 1.0
    body_weight: float = 1.0
    gallery_offset: float = 1.0
    min_margin: float = 1.0
    min_member_margin: float = 0.5
    split_lead: float = 2.0
    min_photo_quality: float = 0.1
    vouch_photo_quality: float = 0.3


def choose_group(gallery: Gallery, appearance: Appearance, config: NamingConfig) -> Gallery:
    """The members of the group performing in the video (by a vote of the video's faces)."""
    if len(gallery.groups) <= 1:
        return gallery
    faces = appearance.face[appearance.has_face]
    votes = gallery.vote_groups(faces, weights=appearance.face_quality[appearance.has_face])
    log.info("group vote: %s", ", ".join(f"{v.group} {v.score:.2f} ({v.n_faces})" for v in votes))
    if votes and votes[0].score >= config.min_group_share:
        return gallery.subset(votes[0].group)
    log.warning("could not tell which gallery group performs; every member stays a candidate")
    return gallery


def body_log_odds(
    gallery: Gallery, appearance: Appearance, cluster_of_sample: NDArray[np.int64], n_clusters: int,
    calibration: BodyCalibration | None,
) -> NDArray[np.float64]:
    """(C, M) log-odds "same person" of each cluster's body prototype and each member's best body photo.

    A photo's log-odds are weighted by the share of the body (stripe weight) it shows: an upper-body
    photo (:data:`fancam.identity.gallery.UPPER_BODY_ASPECT`) compares only its stripes, and half a
    body matching is half the evidence. NaN where the member has no body photo, the cluster no body
    sample, or there is no calibration.
    """
    out = np.full((n_clusters, len(gallery)), np.nan)
    if calibration is None or appearance.body.shape[1] == 0:
        return out
    photos = [m.body for m in gallery.members]
    if not any(len(p) for p in photos) or photos[0].shape[1] != appearance.body.shape[1]:
        return out
    layout = BODY_CONFIG.layout
    for c in range(n_clusters):
        proto = body_prototype(appearance.body[cluster_of_sample == c])
        if not proto.n:
            continue
        for j, member_descs in enumerate(photos):
            if len(member_descs):
                sims = similarity_matrix(proto.centre[None], member_descs)[0]
                # The share of the body each photo shows (a photo of the upper body is weaker evidence).
                shown = (layout.present(member_descs) * layout.weights).sum(axis=1) / layout.weights.sum()
                lo = shown * calibration.log_odds(np.where(np.isfinite(sims), sims, 0.0))
                if np.isfinite(sims).any():
                    out[c, j] = float(np.max(lo[np.isfinite(sims)]))
    return out


# ------------------------------------------------------------------------------ joint assignment
def face_log_odds(
    gallery: Gallery, appearance: Appearance, cluster_of_sample: NDArray[np.int64], n_clusters: int,
    calibration: BodyCalibration | None, clip: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(C, M) mean log-odds "same person" of each cluster's faces and each member's face photos.

    Each face's best similarity to a member's photos goes through the video's own face calibration
    (fitted on faces of one tracklet vs faces seen together, as linking does), else the still-photo
    thresholds, and is clipped to +-``clip``. Returns the means (NaN where the member has no face
    photo or the cluster no face) and the number of faces per cluster.
    """
    out = np.full((n_clusters, len(gallery)), np.nan)
    counts = np.zeros(n_clusters)
    has = np.flatnonzero(appearance.has_face & (cluster_of_sample >= 0))
    face_members = np.flatnonzero(gallery.has_faces)
    if not len(has) or not len(face_members):
        return out, counts
    sim = gallery.similarity(appearance.face[has]).astype(np.float64)[:, face_members]
    if calibration is not None:
        lo = calibration.log_odds(sim)
    else:
        same, unknown = match_thresholds(appearance.face_size[has])
        mid = 0.5 * (same + unknown)
        lo = (sim - mid[:, None]) / (0.5 * MEMBER_MARGIN)
    lo = np.clip(lo, -clip, clip)
    owner = cluster_of_sample[has]
    for c in np.unique(owner):
        rows = owner == c
        out[c, face_members] = lo[rows].mean(axis=0)
        counts[c] = rows.sum()
    return out, counts


@dataclass(frozen=True)
class GalleryMatcher:
    """What a video's samples are compared with: the gallery, the video's own calibrations, the rules.

    Attributes:
        gallery: The gallery (of the performing group).
        face_calibration: The video's face similarity -> log-odds map (None: still-photo thresholds).
        body_calibration: The video's body similarity -> log-odds map (None: no body evidence).
        config: Naming rules.
    """

    gallery: Gallery
    face_calibration: BodyCalibration | None
    body_calibration: BodyCalibration | None
    config: NamingConfig


def evidence_matrix(
    matcher: GalleryMatcher, appearance: Appearance, cluster_of_sample: NDArray[np.int64], n_clusters: int,
) -> NDArray[np.float64]:
    """(C, M) log-odds that each cluster is each member against "nobody in the gallery" (0).

    Which member: each cue's log-odds relative to its best member (a member without photos for a cue
    gets that cue's average), weighed by the cue's samples (``full_weight_samples``). Whether anyone
    at all: the best-matching cue's level (a cue that matches every member poorly, e.g. bodies filmed
    under other lighting, does not veto a face that matches), plus ``gallery_offset`` times the
    samples of the cue that sets that level. NaN where no cue has an opinion on the member (no photo
    of the cue the cluster shows): such a member is never assigned to that cluster.

    Both the level and its offset are the vouching cue's own, per member (measured with
    benchmarks/bench_accuracy.py, fast, the 7 labelled clips and the 42 pairs of a clip with another
    clip's gallery):

    - A cue vouches only for the members it has photos of. On divyanshu_line_dance (performers seen
      from behind; a body photo of each, face photos of three) bystanders' faces matching those three
      lifted the four body-only members too, so a bystander cluster took P1 in the alternative
      assignment and P1's margin fell to 0.91: identity with the gallery 0.776 -> 0.851 (= without).
    - One face does not borrow the weight of body samples that say no: a man of miryala_stage_dance
      was named after a ballet dancer on one face. Strangers named in the 42 pairs: 5 -> 4.

    Every other clip names the same people as before either change.
    """
    gallery, config = matcher.gallery, matcher.config
    face_calibration, body_calibration = matcher.face_calibration, matcher.body_calibration
    face, n_faces = face_log_odds(gallery.with_face_quality(config.min_photo_quality), appearance,
                                  cluster_of_sample, n_clusters, face_calibration, config.cue_clip)
    # Whether anyone at all: only from face photos sharp enough to vouch (config.vouch_photo_quality).
    sharp = gallery.with_face_quality(max(config.vouch_photo_quality, config.min_photo_quality))
    face_vouch = face_log_odds(sharp, appearance, cluster_of_sample, n_clusters, face_calibration, config.cue_clip)[0]
    body = np.clip(body_log_odds(gallery, appearance, cluster_of_sample, n_clusters, body_calibration),
                   -config.cue_clip, config.cue_clip)
    valid = np.any(appearance.body != 0, axis=1)
    n_bodies = np.bincount(cluster_of_sample[valid & (cluster_of_sample >= 0)], minlength=n_clusters)
    wf = np.minimum(n_faces, config.full_weight_samples)[:, None] / config.full_weight_samples
    wb = np.minimum(n_bodies[:n_clusters], config.full_weight_samples)[:, None] / config.full_weight_samples
    relative = np.zeros((n_clusters, len(gallery)))
    level = np.full((n_clusters, len(gallery)), -np.inf)
    # How much evidence the cue that sets the level has (0 = none: the offset adds nothing).
    level_samples = np.zeros((n_clusters, len(gallery)))
    cues = ((wf, config.face_weight * wf, face, face_vouch), (wb, config.body_weight * wb, body, body))
    for samples, cue_weight, cue, vouching in cues:
        known = np.isfinite(cue)
        seen = known.any(axis=1) & (cue_weight[:, 0] > 0)
        best = np.where(seen, np.nanmax(np.where(known, cue, -np.inf), axis=1), 0.0)
        gap = np.where(known, cue - best[:, None], np.nan)  # <= 0: how far below this cue's best member
        # A member without photos for this cue: the cue's average gap (no information either way).
        mean_gap = np.array([np.nanmean(g) if np.isfinite(g).any() else 0.0 for g in gap])
        relative += cue_weight * np.where(known, gap, mean_gap[:, None])
        # The cue vouches that the cluster is someone in the gallery only for members it has photos
        # of (good enough to vouch), at the level of its best such photos.
        can_vouch = np.isfinite(vouching)
        vouched = can_vouch.any(axis=1) & (cue_weight[:, 0] > 0)
        top = np.where(vouched, np.nanmax(np.where(can_vouch, vouching, -np.inf), axis=1), 0.0)
        vouches = vouched[:, None] & can_vouch
        lifts = vouches & ((cue_weight[:, 0] * top)[:, None] > level)
        level = np.where(lifts, (cue_weight[:, 0] * top)[:, None], level)
        level_samples = np.where(lifts, samples, level_samples)
    # Which member: every cue's relative evidence; whether anyone at all: the cue that matches best (a
    # cue that matches every member poorly, e.g. bodies under other lighting, does not veto the other),
    # corrected by the gallery offset in proportion to that cue's samples (not the other cue's).
    level = np.where(np.isfinite(level), level, 0.0)
    out = relative + level + config.gallery_offset * level_samples
    # No cue says anything about this member for this cluster: no evidence, never a candidate.
    return np.where(np.isfinite(face) | np.isfinite(body), out, np.nan)


def assign_people(
    evidence: NDArray[np.float64], conflict: NDArray[np.bool_], names: tuple[str, ...], keys: tuple[str, ...],
    config: NamingConfig, seen_s: NDArray[np.float64] | None = None,
) -> dict[int, Naming]:
    """Name clusters: a joint assignment among the clusters each one is seen with, and its margin.

    For each cluster ``c``, the members are assigned one-to-one (Hungarian, maximising the summed
    evidence; "nobody" is worth 0 to every cluster) among ``c`` and the clusters
    it meets in time (``conflict``): those compete for the same members, the others may be the same
    person (a performer who left and came back). ``c``'s margin is how much that best assignment loses
    when ``c`` may not take its member; it must be at least ``config.min_member_margin``, and what
    the assignment loses when ``c`` may take no member at all at least ``config.min_margin``.
    Clusters are then named by decreasing margin, each with its member unless that member already
    names a cluster it meets, or any cluster when ``c``'s margin is below ``config.min_margin`` (a
    guess does not merge two clusters): else ``unknown``. The confidence of a name is sigmoid(margin).
    """
    n_clusters, n_members = evidence.shape
    seen = np.ones(n_clusters) if seen_s is None else np.maximum(np.asarray(seen_s, np.float64), 1e-6)
    # What is at stake: log-odds against "nobody", times the time the cluster is on screen.
    gain = evidence * seen[:, None]
    proposals = []
    for c in range(n_clusters):
        group = np.concatenate([[c], np.flatnonzero(conflict[c])])
        local = gain[group]
        total, pairs = _best_assignment(local, 0.0)
        m = next((mm for cc, mm in pairs if cc == 0), None)
        if m is None:
            continue
        other = local.copy()
        other[0, m] = -np.inf
        margin = (total - _best_assignment(other, 0.0)[0]) / seen[c]
        # Whether anyone at all: what the assignment loses when c may take no member.
        nobody = local.copy()
        nobody[0, :] = -np.inf
        anyone = (total - _best_assignment(nobody, 0.0)[0]) / seen[c]
        proposals.append((margin, c, m, anyone))
    naming: dict[int, Naming] = {}
    for margin, c, m, anyone in sorted(proposals, reverse=True):
        if margin < config.min_member_margin:
            break
        if anyone < config.min_margin:
            continue
        # A member names one of the clusters seen together; a thin lead (a guess) never joins a
        # cluster to another one of the member (the caller merges clusters named alike).
        thin = margin < config.min_margin
        if any(n.member == keys[m] and (conflict[c, o] or thin) for o, n in naming.items()):
            continue
        naming[c] = Naming(label=names[m], member=keys[m], confidence=_sigmoid(margin))
    for c in range(n_clusters):
        if c not in naming:
            best = float(np.nanmax(evidence[c], initial=0.0)) if n_members else 0.0
            naming[c] = Naming(label=UNKNOWN, member=None, confidence=_sigmoid(-best))
    return naming


def _best_assignment(evidence: NDArray[np.float64], nobody: float) -> tuple[float, list[tuple[int, int]]]:
    """(total, [(cluster, member)]) of the best one-to-one assignment; "nobody" is worth ``nobody``."""
    n_clusters, n_members = evidence.shape
    big = 1e6
    gain = np.full((n_clusters, n_members + n_clusters), -big)
    gain[:, :n_members] = np.where(np.isfinite(evidence), evidence, -big)
    gain[np.arange(n_clusters), n_members + np.arange(n_clusters)] = nobody
    rows, cols = linear_sum_assignment(-gain)
    total = float(gain[rows, cols].sum())
    return total, [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if c < n_members]


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))
