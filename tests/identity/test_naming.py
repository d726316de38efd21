"""Naming rules: accept only clear evidence, never one member twice at once, unknown otherwise."""

from __future__ import annotations

import numpy as np

from fancam.identity.naming import NamingConfig, assign_names

NAMES = ("Ana", "Bea", "Cy")
KEYS = tuple(f"grp/{n}" for n in NAMES)


def _assign(votes, conflict, nobody=None):
    votes = np.asarray(votes, float)
    nobody = np.zeros(len(votes)) if nobody is None else np.asarray(nobody, float)
    naming = assign_names(votes, nobody, np.asarray(conflict, bool), NAMES, KEYS, NamingConfig())
    return [naming[c].label for c in range(len(votes))]


def test_each_cluster_gets_its_clear_best_member():
    votes = [[9, 0, -3], [-2, 8, 0], [0, -1, 7]]
    conflict = np.ones((3, 3)) - np.eye(3)
    assert _assign(votes, conflict) == ["Ana", "Bea", "Cy"]


def test_a_member_is_never_given_to_two_clusters_seen_together():
    # Clusters 0 and 1 co-occur and both look most like Ana; the stronger keeps her, the other does
    # not fall back to Ana (it takes its own next clear option, or unknown).
    votes = [[9, 0, -3], [6, -4, -2]]
    conflict = [[0, 1], [1, 0]]
    assert _assign(votes, conflict) == ["Ana", "unknown"]


def test_clusters_never_seen_together_may_share_a_member():
    # Ana left and came back: two clusters, no conflict, both clearly Ana.
    votes = [[9, 0, -3], [6, -4, -2]]
    assert _assign(votes, np.zeros((2, 2))) == ["Ana", "Ana"]


def test_weak_evidence_or_nobody_faces_give_unknown():
    votes = [[1.5, 0, 0], [9, 0, 0]]  # cluster 0 below the acceptance vote
    assert _assign(votes, np.zeros((2, 2))) == ["unknown", "Ana"]
    # cluster 1 has a strong vote but most of its faces match nobody in the gallery
    assert _assign(votes, np.zeros((2, 2)), nobody=[0.0, 0.8]) == ["unknown", "unknown"]


def _gillhung_bodies(frame_index: int) -> dict[str, np.ndarray]:
    """Body descriptors of the three gillhung dancers at a GT keyframe (real pixels, GT boxes)."""
    from conftest import shared_file
    from fancam.identity.body import describe_bodies
    from fancam.io.tables import load_gt
    from fancam.io.video import iter_frames

    gt = load_gt(shared_file("bench/gillhung_dance.csv"))
    rows = np.flatnonzero(gt.frame == frame_index)
    for frame in iter_frames(shared_file("data/gillhung_dance/dance.mp4")):
        if frame.index == frame_index:
            descs = describe_bodies(frame.rgb(), gt.xyxy[rows])
            return {str(gt.person[k]): descs[i] for i, k in enumerate(rows)}
    raise AssertionError(frame_index)


def test_body_votes_need_a_lead_over_the_other_members_and_skip_members_without_body_photos():
    from pathlib import Path

    from fancam.identity.appearance import Appearance
    from fancam.identity.body import BodyCalibration
    from fancam.identity.gallery import Gallery, GalleryMember
    from fancam.identity.naming import body_votes

    video = _gillhung_bodies(300)  # the clusters: one sample each of P1, P2, P3
    photos = _gillhung_bodies(30)  # the gallery: other moments of the same dancers
    names = ["P1", "P2", "P3"]
    appearance = Appearance(
        rows=np.arange(3), frames=np.full(3, 300), body=np.stack([video[n] for n in names]),
        face=np.full((3, 128), np.nan, np.float32), face_quality=np.full(3, np.nan, np.float32),
        face_size=np.full(3, np.nan, np.float32),
    )
    no_face = np.zeros((0, 128), np.float32)

    def member(name, body):
        return GalleryMember("g", name, no_face, (), np.zeros(0, np.float32), body[None],
                             (Path(f"{name}.jpg"),))

    gallery = Gallery(Path("."), tuple(member(n, photos[n]) for n in names) + (
        GalleryMember("g", "P4", no_face, (), np.zeros(0, np.float32)),  # no body photo at all
    ))
    calibration = BodyCalibration(slope=40.0, intercept=-34.0)  # even odds at similarity 0.85
    clusters = np.arange(3)
    votes = body_votes(gallery, appearance, clusters, 3, calibration, NamingConfig())
    assert votes.shape == (3, 4) and (votes[:, 3] == 0).all()
    # P2 dresses differently: a clear vote for P2 only (P1 and P3 share an outfit, their votes are
    # weaker but never for someone else).
    assert votes[1].argmax() == 1 and votes[1, 1] > 0 and (np.delete(votes[1], 1) == 0).all()
    for c in (0, 2):
        assert (np.delete(votes[c], c) == 0).all()
    # Identical costumes: every member's photo matches alike, so nobody gets a body vote.
    same = Gallery(Path("."), tuple(member(n, photos["P2"]) for n in names))
    assert (body_votes(same, appearance, clusters, 3, calibration, NamingConfig()) == 0).all()
    # Without a calibration of the video's body cue there is no body vote.
    assert (body_votes(gallery, appearance, clusters, 3, None, NamingConfig()) == 0).all()


def test_a_weak_vote_far_ahead_of_every_other_member_names():
    # gillhung_dance2 (balanced): P1's night-time faces sum to about -0.1 for him, -10..-30 for the
    # others, and his body adds 1.4: "P1 or nobody". A weak vote with no clear lead stays unknown, and
    # so does a cluster whose every vote is negative (a stranger).
    assert _assign([[1.2, -9.7, -26.0]], np.zeros((1, 1))) == ["Ana"]
    assert _assign([[1.2, -1.0, -2.0]], np.zeros((1, 1))) == ["unknown"]
    assert _assign([[-0.5, -9.0, -20.0]], np.zeros((1, 1))) == ["unknown"]
