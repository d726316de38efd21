"""Name performers from a gallery, never forcing anyone onto a member, never one member twice at once.

Steps: find the group, weigh each cluster's evidence for each member, assign names under the rule
that no member is in two places at the same time.

Faces carry the names. On one dance clip members match *each other's* gallery photos at 0.95-0.96
(look-alike members, see faces.py), so a face's vote is its lead over the runner-up member
(``MEMBER_MARGIN`` = one unit), clipped, summed over the cluster's faces. A face that matches no member
well (below the size-dependent "unknown" threshold) votes for "nobody in the gallery".

Gallery photos that show the whole person (:mod:`fancam.identity.gallery` finds them, faces or backs)
add a body vote, on the video's own body calibration (similarity -> log-odds "same person"): a cluster
votes for a member when its body matches that member's photos *better than any other member's* and not
implausibly in absolute terms (``NamingConfig.body_floor``); the vote is the smaller of the two
margins, in log-odds, clipped. So identical costumes (every member matches alike) give no body vote
rather than a wrong one, while back views and same-show photos can name on their own. Photos in other
clothes are not caught by this rule (the margin between two poor matches can be large): faces outvote
the body where the cluster shows any.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fancam.identity.appearance import Appearance
from fancam.identity.body import BodyCalibration, body_prototype, similarity_matrix
from fancam.identity.faces import MEMBER_MARGIN, match_thresholds
from fancam.identity.gallery import Gallery
from fancam.identity.people import UNKNOWN, Naming
from scipy.optimize import linear_sum_assignment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NamingConfig:
    """How much evidence names a cluster.

    Attributes:
        face_clip: Each face's vote (lead over the runner-up in ``MEMBER_MARGIN`` units) is clipped
            to +-this.
        accept: Least total vote that names a cluster (about two clear faces).
        relative_lead: A cluster whose best member's vote is positive but below ``accept`` is named
            all the same when that vote leads every other member's by this much (three clear faces):
            "this member or nobody", and the faces that match nobody are few (``unknown_share``).
        unknown_share: A cluster whose faces mostly (this share) match nobody is ``unknown``.
        body_vote: Weight of the body vote (log-odds margin of the best member's photos over the
            runner-up's and over even odds) against the face votes.
        body_clip: The body vote (before weighting) is clipped to this.
        body_floor: Log-odds (on the video's body calibration) below which a member's photos are too
            unlike a cluster to vote for it, however much worse the other members match. Gallery photos
            are other moments (or other cameras) than the pairs the calibration is fitted on, so
            genuine matches sit lower than within-video ones: their 10th percentile is -4.3 to +6.4 on
            five galleries (bench, dance2, fiyud, ballet make_gallery crops and bench crops with the
            head blurred away, benchmarks/bench_gallery_body.py).
        min_group_share: Least share of the face votes the chosen group must have (else all groups
            remain candidates).
    """

    face_clip: float = 3.0
    accept: float = 2.0
    relative_lead: float = 6.0
    unknown_share: float = 0.6
    body_vote: float = 1.0
    body_clip: float = 3.0
    body_floor: float = -4.0
    min_group_share: float = 0.5
    cue_clip: float = 6.0
    full_weight_samples: float = 3.0
    face_weight: float = 1.0
    body_weight: float = 1.0
    min_log_odds: float = 0.0
    min_margin: float = 1.0
    split_lead: float = 2.0
    split_gap: float = 4.0


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


def member_votes(
    gallery: Gallery, appearance: Appearance, cluster_of_sample: NDArray[np.int64], n_clusters: int,
    config: NamingConfig,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Face votes of each cluster for each member, and each cluster's share of "nobody" faces.

    Returns:
        ((C, M) summed votes, (C,) share of faces that match no member).
    """
    votes = np.zeros((n_clusters, len(gallery)))
    nobody = np.zeros(n_clusters)
    n_faces = np.zeros(n_clusters)
    has = np.flatnonzero(appearance.has_face & (cluster_of_sample >= 0))
    # Members known by body photos only have no face opinion: they neither get nor lose face votes.
    face_members = np.flatnonzero(gallery.has_faces)
    if len(has) and len(face_members):
        sim = gallery.similarity(appearance.face[has]).astype(np.float64)[:, face_members]
        _, unknown = match_thresholds(appearance.face_size[has])
        if sim.shape[1] > 1:
            top2 = np.sort(sim, axis=1)[:, -2]
            best = sim.max(axis=1)
            runner_up = np.where(sim >= best[:, None], top2[:, None], best[:, None])
            lead = np.clip((sim - runner_up) / MEMBER_MARGIN, -config.face_clip, config.face_clip)
        else:
            lead = np.clip((sim - unknown[:, None]) / MEMBER_MARGIN, -config.face_clip, config.face_clip)
        matches_nobody = sim.max(axis=1) < unknown
        lead[matches_nobody] = np.minimum(lead[matches_nobody], 0.0)
        for k, c in enumerate(cluster_of_sample[has]):
            votes[c, face_members] += lead[k]
            nobody[c] += matches_nobody[k]
            n_faces[c] += 1
    return votes, np.where(n_faces > 0, nobody / np.maximum(n_faces, 1), 0.0)


def body_votes(
    gallery: Gallery, appearance: Appearance, cluster_of_sample: NDArray[np.int64], n_clusters: int,
    calibration: BodyCalibration | None, config: NamingConfig,
) -> NDArray[np.float64]:
    """(C, M) body votes from the gallery's whole-person photos (see the module docstring).

    0 where a member has no body photo, where the cluster has no body sample, without a calibration,
    or where the match is not both good and better than every other member's.
    """
    log_odds = body_log_odds(gallery, appearance, cluster_of_sample, n_clusters, calibration)
    out = np.zeros((n_clusters, len(gallery)))
    for c in range(n_clusters):
        row = log_odds[c]
        known = np.flatnonzero(np.isfinite(row))
        for j in known:
            others = row[known[known != j]]
            margin = row[j] - (others.max() if len(others) else 0.0)
            plausible = row[j] - config.body_floor
            out[c, j] = config.body_vote * float(np.clip(min(plausible, margin), 0.0, config.body_clip))
    return out


def body_log_odds(
    gallery: Gallery, appearance: Appearance, cluster_of_sample: NDArray[np.int64], n_clusters: int,
    calibration: BodyCalibration | None,
) -> NDArray[np.float64]:
    """(C, M) log-odds "same person" of each cluster's body prototype and each member's best body photo.

    NaN where the member has no body photo, the cluster no body sample, or there is no calibration.
    """
    out = np.full((n_clusters, len(gallery)), np.nan)
    if calibration is None or appearance.body.shape[1] == 0:
        return out
    photos = [m.body for m in gallery.members]
    if not any(len(p) for p in photos) or photos[0].shape[1] != appearance.body.shape[1]:
        return out
    for c in range(n_clusters):
        proto = body_prototype(appearance.body[cluster_of_sample == c])
        if not proto.n:
            continue
        for j, member_descs in enumerate(photos):
            if len(member_descs):
                sims = similarity_matrix(proto.centre[None], member_descs)[0]
                if np.isfinite(sims).any():
                    out[c, j] = float(calibration.log_odds(float(np.nanmax(sims))))
    return out


def assign_names(
    votes: NDArray[np.float64], nobody_share: NDArray[np.float64], conflict: NDArray[np.bool_],
    names: tuple[str, ...], keys: tuple[str, ...], config: NamingConfig,
) -> dict[int, Naming]:
    """Greedy constrained assignment: strongest (cluster, member) votes first.

    A cluster gets a member when its vote reaches ``config.accept``, is its best remaining option,
    and no cluster it co-occurs with (``conflict``, (C, C)) already has that member. Everything else
    is ``unknown``. Several non-conflicting clusters may get one member (the caller merges them).
    """
    n_clusters, n_members = votes.shape
    naming: dict[int, Naming] = {}
    taken: dict[int, list[int]] = {}
    order = np.dstack(np.unravel_index(np.argsort(-votes, axis=None), votes.shape))[0]
    for c, m in order:
        c, m = int(c), int(m)
        if c in naming or not _accepted(votes[c], m, config) or nobody_share[c] >= config.unknown_share:
            continue
        if any(conflict[c, other] for other in taken.get(m, [])):
            continue
        others = np.delete(votes[c], m)
        lead = votes[c, m] - (others.max() if len(others) else 0.0)
        confidence = float(1.0 / (1.0 + np.exp(-min(lead, votes[c, m]) / 2.0)))
        naming[c] = Naming(label=names[m], member=keys[m], confidence=confidence)
        taken.setdefault(m, []).append(c)
    for c in range(n_clusters):
        if c not in naming:
            naming[c] = Naming(label=UNKNOWN, member=None, confidence=_unknown_confidence(votes[c], config))
    return naming


def _accepted(votes: NDArray[np.float64], m: int, config: NamingConfig) -> bool:
    """Whether a cluster's vote for member ``m`` is enough to name it (see :class:`NamingConfig`)."""
    if votes[m] >= config.accept:
        return True
    others = np.delete(votes, m)
    return bool(votes[m] > 0 and (not len(others) or votes[m] - others.max() >= config.relative_lead))


def _unknown_confidence(votes: NDArray[np.float64], config: NamingConfig) -> float:
    """How sure "unknown" is: high when no member gets anywhere near the acceptance vote."""
    best = float(votes.max()) if len(votes) else 0.0
    return float(1.0 / (1.0 + np.exp((best - config.accept) / 2.0)))


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


def evidence_matrix(
    gallery: Gallery, appearance: Appearance, cluster_of_sample: NDArray[np.int64], n_clusters: int,
    face_calibration: BodyCalibration | None, body_calibration: BodyCalibration | None, config: NamingConfig,
) -> NDArray[np.float64]:
    """(C, M) log-odds that each cluster is each member: face and body cues, each weighed by its samples."""
    face, n_faces = face_log_odds(gallery, appearance, cluster_of_sample, n_clusters, face_calibration,
                                  config.cue_clip)
    body = np.clip(body_log_odds(gallery, appearance, cluster_of_sample, n_clusters, body_calibration),
                   -config.cue_clip, config.cue_clip)
    valid = np.any(appearance.body != 0, axis=1)
    n_bodies = np.bincount(cluster_of_sample[valid & (cluster_of_sample >= 0)], minlength=n_clusters)
    wf = np.minimum(n_faces, config.full_weight_samples)[:, None] / config.full_weight_samples
    wb = np.minimum(n_bodies[:n_clusters], config.full_weight_samples)[:, None] / config.full_weight_samples
    return config.face_weight * wf * np.nan_to_num(face) + config.body_weight * wb * np.nan_to_num(body)


def assign_people(
    evidence: NDArray[np.float64], conflict: NDArray[np.bool_], names: tuple[str, ...], keys: tuple[str, ...],
    config: NamingConfig, seen_s: NDArray[np.float64] | None = None,
) -> dict[int, Naming]:
    """Name clusters: a joint assignment among the clusters each one is seen with, and its margin.

    For each cluster ``c``, the members are assigned one-to-one (Hungarian, maximising the summed
    evidence; "nobody" is worth ``config.min_log_odds`` to every cluster) among ``c`` and the clusters
    it meets in time (``conflict``): those compete for the same members, the others may be the same
    person (a performer who left and came back). ``c``'s margin is how much that best assignment loses
    when ``c`` may not take its member. Clusters are then named by decreasing margin, each with its
    member unless that member already names a cluster it meets, and only with a margin of at least
    ``config.min_margin``: else ``unknown``.
    """
    n_clusters, n_members = evidence.shape
    seen = np.ones(n_clusters) if seen_s is None else np.maximum(np.asarray(seen_s, np.float64), 1e-6)
    # What is at stake: log-odds above "nobody", times the time the cluster is on screen.
    gain = (evidence - config.min_log_odds) * seen[:, None]
    proposals = []
    for c in range(n_clusters):
        group = np.concatenate([[c], np.flatnonzero(conflict[c])])
        local = gain[group]
        total, pairs = _best_assignment(local, 0.0)
        m = next((mm for cc, mm in pairs if cc == 0), None)
        if m is None:
            continue
        local = local.copy()
        local[0, m] = -np.inf
        margin = (total - _best_assignment(local, 0.0)[0]) / seen[c]
        proposals.append((margin, c, m))
    naming: dict[int, Naming] = {}
    for margin, c, m in sorted(proposals, reverse=True):
        if margin < config.min_margin:
            break
        if any(n.member == keys[m] and conflict[c, o] for o, n in naming.items()):
            continue
        naming[c] = Naming(label=names[m], member=keys[m], confidence=_sigmoid(margin))
    for c in range(n_clusters):
        if c not in naming:
            best = float(evidence[c].max()) if n_members else config.min_log_odds
            naming[c] = Naming(label=UNKNOWN, member=None, confidence=_sigmoid(config.min_log_odds - best))
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
