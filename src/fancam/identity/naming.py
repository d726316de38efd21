"""Name performers from a gallery, never forcing anyone onto a member, never one member twice at once.

Steps: find the group, weigh each cluster's evidence for each member, assign names under the rule
that no member is in two places at the same time.

Faces carry the names. On one dance clip members match *each other's* gallery photos at 0.95-0.96
(look-alike members, see faces.py), so a face's vote is its lead over the runner-up member
(``MEMBER_MARGIN`` = one unit), clipped, summed over the cluster's faces. A face that matches no member
well (below the size-dependent "unknown" threshold) votes for "nobody in the gallery".

Gallery photos that show the whole body (tall crops, as when the photos come from the same show) add
a one-sided body vote: a clear match counts for that member; a mismatch counts for nothing, because
photos from elsewhere show other clothes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from fancam.identity.appearance import Appearance
from fancam.identity.body import BodyCalibration, body_prototype, describe_bodies, similarity_matrix
from fancam.identity.faces import MEMBER_MARGIN, match_thresholds
from fancam.identity.gallery import Gallery, GalleryMember
from fancam.identity.people import UNKNOWN, Naming

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NamingConfig:
    """How much evidence names a cluster.

    Attributes:
        face_clip: Each face's vote (lead over the runner-up in ``MEMBER_MARGIN`` units) is clipped
            to +-this.
        accept: Least total vote that names a cluster (about two clear faces).
        unknown_share: A cluster whose faces mostly (this share) match nobody is ``unknown``.
        body_photo_aspect: Gallery photos at least this tall (height / width) are full-body photos.
        body_vote: Vote of a clear full-body match (calibrated P(same) > 0.5), scaled by its log-odds.
        min_group_share: Least share of the face votes the chosen group must have (else all groups
            remain candidates).
    """

    face_clip: float = 3.0
    accept: float = 2.0
    unknown_share: float = 0.6
    body_photo_aspect: float = 1.6
    body_vote: float = 1.0
    min_group_share: float = 0.5


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
    if len(has) and len(gallery):
        sim = gallery.similarity(appearance.face[has]).astype(np.float64)
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
            votes[c] += lead[k]
            nobody[c] += matches_nobody[k]
            n_faces[c] += 1
    return votes, np.where(n_faces > 0, nobody / np.maximum(n_faces, 1), 0.0)


def body_votes(
    gallery: Gallery, appearance: Appearance, cluster_of_sample: NDArray[np.int64], n_clusters: int,
    calibration: BodyCalibration | None, config: NamingConfig,
) -> NDArray[np.float64]:
    """(C, M) one-sided votes from full-body gallery photos (0 where there is none or no match)."""
    out = np.zeros((n_clusters, len(gallery)))
    if calibration is None or appearance.body.shape[1] == 0:
        return out
    photos = [_body_photos(m, config.body_photo_aspect) for m in gallery.members]
    if not any(len(p) for p in photos):
        return out
    for c in range(n_clusters):
        descs = appearance.body[cluster_of_sample == c]
        proto = body_prototype(descs) if len(descs) else None
        if proto is None or not proto.n:
            continue
        for j, member_descs in enumerate(photos):
            if len(member_descs):
                sim = float(np.nanmax(similarity_matrix(proto.centre[None], member_descs)))
                log_odds = float(calibration.log_odds(sim)) if np.isfinite(sim) else 0.0
                out[c, j] = config.body_vote * min(max(log_odds, 0.0), 3.0)
    return out


def _body_photos(member: GalleryMember, min_aspect: float) -> NDArray[np.float32]:
    """Body descriptors of a member's full-body photos (tall crops); (K, D), K may be 0."""
    descs = []
    for path in member.photos:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        h, w = image.shape[:2]
        if h < min_aspect * w:
            continue
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        descs.append(describe_bodies(np.asarray(rgb, np.uint8), np.array([[0, 0, w, h]], np.float32))[0])
    return np.array(descs, np.float32).reshape(len(descs), -1)


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
        if c in naming or votes[c, m] < config.accept or nobody_share[c] >= config.unknown_share:
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


def _unknown_confidence(votes: NDArray[np.float64], config: NamingConfig) -> float:
    """How sure "unknown" is: high when no member gets anywhere near the acceptance vote."""
    best = float(votes.max()) if len(votes) else 0.0
    return float(1.0 / (1.0 + np.exp((best - config.accept) / 2.0)))
