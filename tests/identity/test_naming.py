"""Naming rules: a joint one-to-one assignment, a name only with a clear margin, never one member twice at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fancam.identity.naming import NamingConfig, assign_people

NAMES = ("Ana", "Bea", "Cy")
KEYS = tuple(f"grp/{n}" for n in NAMES)


def _assign(evidence, conflict, seen=None):
    evidence = np.asarray(evidence, float)
    naming = assign_people(evidence, np.asarray(conflict, bool), NAMES, KEYS, NamingConfig(),
                           None if seen is None else np.asarray(seen, float))
    return [naming[c].label for c in range(len(evidence))]


def _together(n):
    return np.ones((n, n)) - np.eye(n)


def test_each_cluster_gets_its_clear_best_member():
    evidence = [[5, 0, -3], [-2, 4, 0], [0, -1, 3]]
    assert _assign(evidence, _together(3)) == ["Ana", "Bea", "Cy"]


def test_the_assignment_is_joint_not_greedy():
    # Both clusters look most like Ana; cluster 1 looks like nobody else, cluster 0 also clearly like
    # Bea. Greedy (strongest pair first) would give Ana to cluster 0 and leave cluster 1 unknown; the
    # joint assignment gives Ana to cluster 1 and Bea to cluster 0.
    evidence = [[5, 3, -4], [4, -3, -4]]
    assert _assign(evidence, _together(2)) == ["Bea", "Ana"]


def test_a_member_is_never_given_to_two_clusters_seen_together():
    evidence = [[5, -2, -3], [4, -4, -2]]
    assert _assign(evidence, _together(2)) == ["Ana", "unknown"]


def test_clusters_never_seen_together_may_share_a_member():
    # Ana left and came back: two clusters, never on screen together, both clearly Ana.
    evidence = [[5, 0, -3], [4, -4, -2]]
    assert _assign(evidence, np.zeros((2, 2))) == ["Ana", "Ana"]


def test_low_margin_or_negative_evidence_stays_unknown():
    # 0.7 for one member, 0.3 for another: below the margin, unknown.
    assert _assign([[0.7, 0.3, -2.0]], np.zeros((1, 1))) == ["unknown"]
    assert _assign([[3.0, 0.3, -2.0]], np.zeros((1, 1))) == ["Ana"]
    # A stranger: every member is unlikely.
    assert _assign([[-0.5, -4.0, -6.0]], np.zeros((1, 1))) == ["unknown"]
    # Two members alike (one costume): the best is no better than the second.
    assert _assign([[4.0, 3.6, -2.0]], np.zeros((1, 1))) == ["unknown"]


def test_someone_of_the_gallery_with_a_thin_lead_is_named_as_a_flagged_guess():
    # tiktok ballet: P1 and P4 are named clearly; P3's flat body evidence says "someone of the
    # gallery" (+5.7 against nobody) and leads the runner-up P2 by 0.6 only (one costume). The name is
    # given, with a confidence the UI flags as uncertain, not replaced by unknown.
    from fancam.ui.summary import UNCERTAIN_BELOW

    names, keys = ("P1", "P2", "P3", "P4"), tuple(f"ballet/P{k}" for k in range(1, 5))
    evidence = np.array([[5.8, 5.1, 5.7, 5.4], [2.5, 2.1, -1.9, 6.5], [6.5, -9.2, -11.4, -10.5]])
    naming = assign_people(evidence, _together(3).astype(bool), names, keys, NamingConfig())
    assert [naming[c].label for c in range(3)] == ["P3", "P4", "P1"]
    assert 0.5 < naming[0].confidence < UNCERTAIN_BELOW < min(naming[1].confidence, naming[2].confidence)
    # The same thin lead without the evidence that it is anyone of the gallery names nobody: the
    # lead over the runner-up does not lower the bar for "someone in the gallery at all".
    weak = np.array([[0.9, 0.2, 0.3, 0.1]])
    assert assign_people(weak, np.zeros((1, 1), bool), names, keys, NamingConfig())[0].label == "unknown"
    # A lead below min_member_margin stays unknown however sure "someone" is.
    tied = np.array([[5.8, 5.5, 5.7, 5.4]])
    assert assign_people(tied, np.zeros((1, 1), bool), names, keys, NamingConfig())[0].label == "unknown"
    # A guess never joins a cluster to another one of that member (clusters named alike are merged):
    # the clear one takes P3, the guess, never seen with it, stays unknown.
    two = np.array([[-3.0, -3.0, 6.0, -3.0], [5.1, 4.9, 5.8, 5.2]])
    naming = assign_people(two, np.array([[False, False], [False, False]]), names, keys, NamingConfig())
    assert [naming[0].label, naming[1].label] == ["P3", "unknown"]
    # ... while a clear name may be given twice to clusters never seen together (left and came back).
    naming = assign_people(two[[0, 0]], np.zeros((2, 2), bool), names, keys, NamingConfig())
    assert [naming[0].label, naming[1].label] == ["P3", "P3"]


def test_time_on_screen_decides_between_a_performer_and_a_lookalike_glimpse():
    # gillhung_dance2: P4's 22 s cluster (3.7 for P4) and a 1 s box seen at the same time (3.1): the
    # performer takes P4 clearly; by evidence alone the two were too close to name either.
    evidence = [[3.7, -3.0, -3.0], [3.1, -3.0, -3.0]]
    assert _assign(evidence, _together(2), seen=[22.0, 1.0]) == ["Ana", "unknown"]
    assert _assign(evidence, _together(2), seen=[1.0, 1.0]) == ["unknown", "unknown"]


def test_confidence_grows_with_the_margin():
    naming = assign_people(np.array([[1.5, 0.0, 0.0], [6.0, 0.0, 0.0]]), np.zeros((2, 2), bool), NAMES, KEYS,
                           NamingConfig())
    assert naming[0].label == naming[1].label == "Ana"
    assert 0.5 < naming[0].confidence < naming[1].confidence < 1.0


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


def _appearance(bodies: list[np.ndarray]):
    from fancam.identity.appearance import Appearance

    n = len(bodies)
    return Appearance(
        rows=np.arange(n), frames=np.full(n, 300), body=np.stack(bodies),
        face=np.full((n, 128), np.nan, np.float32), face_quality=np.full(n, np.nan, np.float32),
        face_size=np.full(n, np.nan, np.float32),
    )


def _body_gallery(photos: dict[str, np.ndarray], names: list[str], *, faceless_member: bool = False):
    from fancam.identity.gallery import Gallery, GalleryMember

    no_face = np.zeros((0, 128), np.float32)
    members = tuple(GalleryMember("g", n, no_face, (), np.zeros(0, np.float32), photos[n][None],
                                  (Path(f"{n}.jpg"),)) for n in names)
    if faceless_member:  # a member with no body photo either (impossible when loaded; a face-only member)
        members += (GalleryMember("g", "P4", no_face, (), np.zeros(0, np.float32)),)
    return Gallery(Path("."), members)


CALIBRATION_SLOPE, CALIBRATION_INTERCEPT = 40.0, -34.0  # even odds at body similarity 0.85


def test_body_evidence_names_by_outfit_and_identical_costumes_name_nobody():
    from fancam.identity.body import BodyCalibration
    from fancam.identity.naming import GalleryMatcher, evidence_matrix

    video = _gillhung_bodies(300)  # the clusters: one sample each of P1, P2, P3
    photos = _gillhung_bodies(30)  # the gallery: other moments of the same dancers
    names = ["P1", "P2", "P3"]
    appearance = _appearance([video[n] for n in names])
    calibration = BodyCalibration(CALIBRATION_SLOPE, CALIBRATION_INTERCEPT)
    clusters = np.arange(3)
    gallery = _body_gallery(photos, names, faceless_member=True)
    config = NamingConfig(full_weight_samples=1)
    evidence = evidence_matrix(GalleryMatcher(gallery, None, calibration, config), appearance, clusters, 3)
    assert evidence.shape == (3, 4) and np.isnan(evidence[:, 3]).all()  # no photo: no opinion
    # P2 dresses differently from P1 and P3 (who share an outfit): P2 is named by body alone.
    assert np.nanargmax(evidence[1]) == 1
    keys = tuple(m.key for m in gallery.members)
    naming = assign_people(evidence, np.ones((3, 3), bool) & ~np.eye(3, dtype=bool), gallery.names, keys, config)
    assert naming[1].label == "P2"
    assert {naming[0].label, naming[2].label} <= {"P1", "P3", "unknown"}  # never P2
    # Identical costumes: every member's photo matches alike, so nobody is named.
    same = _body_gallery({n: photos["P2"] for n in names}, names)
    flat = evidence_matrix(GalleryMatcher(same, None, calibration, config), appearance, clusters, 3)
    naming = assign_people(flat, np.ones((3, 3), bool) & ~np.eye(3, dtype=bool), same.names,
                           tuple(m.key for m in same.members), config)
    assert all(n.label == "unknown" for n in naming.values())
    # Without a calibration of the video's body cue the body has no opinion.
    assert np.isnan(evidence_matrix(GalleryMatcher(gallery, None, None, config), appearance, clusters, 3)).all()


def test_a_cluster_the_gallery_names_as_two_members_is_split_but_not_on_a_glimpse():
    from fancam.identity.body import BodyCalibration
    from fancam.identity.identify import split_contradicted
    from fancam.identity.naming import GalleryMatcher, evidence_matrix

    frames = (60, 150, 300)
    seen = [_gillhung_bodies(f) for f in frames]
    photos = _gillhung_bodies(30)
    gallery = _body_gallery(photos, ["P1", "P2"])
    # Even odds at 0.93: P2's samples match her photo at 0.98-0.99, P1's at 0.88, and the reverse.
    calibration = BodyCalibration(60.0, -60.0 * 0.93)

    def split(bodies, sample_of, gal=gallery):
        appearance = _appearance(bodies)
        matcher = GalleryMatcher(gal, None, calibration, NamingConfig())
        own = evidence_matrix(matcher, appearance, sample_of, 2)
        labels = split_contradicted(np.zeros(2, np.int64), own, sample_of, appearance, matcher)
        return labels[0] != labels[1]

    p1, p2 = [s["P1"] for s in seen], [s["P2"] for s in seen]
    # One cluster made of two tracklets, P2 (3 samples) wrongly joined with P1 (3 samples): split.
    assert split(p2 + p1, np.array([0, 0, 0, 1, 1, 1]))
    # The same with a single sample of P1 (a glimpse): no decision on so little.
    assert not split(p2 + p1[:1], np.array([0, 0, 0, 1]))
    # Two tracklets of P2 stay together.
    assert not split(p2 + p2, np.array([0, 0, 0, 1, 1, 1]))
    # A rest that matches nobody in the gallery is no evidence of someone else: P1 without her photo.
    assert not split(p2 + p1, np.array([0, 0, 0, 1, 1, 1]), _body_gallery(photos, ["P2"]))


def test_no_evidence_names_nobody_even_in_a_one_member_gallery():
    # A cluster without a face or body sample (or a member without photos for the cues it has) has no
    # opinion: worth exactly "nobody", never a name.
    from fancam.identity.body import BodyCalibration
    from fancam.identity.naming import GalleryMatcher, evidence_matrix

    photos = _gillhung_bodies(30)
    gallery = _body_gallery(photos, ["P2"])
    appearance = _appearance([np.zeros_like(photos["P2"])])  # a sample with no body descriptor
    matcher = GalleryMatcher(gallery, None, BodyCalibration(CALIBRATION_SLOPE, CALIBRATION_INTERCEPT),
                             NamingConfig())
    evidence = evidence_matrix(matcher, appearance, np.zeros(1, np.int64), 1)
    assert np.isnan(evidence).all()
    naming = assign_people(evidence, np.zeros((1, 1), bool), gallery.names, ("g/P2",), NamingConfig())
    assert naming[0].label == "unknown"


def test_a_matching_face_vouches_only_for_members_with_face_photos():
    # Ana is known by a face photo, Bea by a body photo only. A cluster whose face is Ana's and whose
    # body is unlike Bea's photo is Ana: the face that matches Ana says nothing for Bea (it once lifted
    # every member alike, so Bea tied with Ana and a bystander's face made anyone a candidate).
    from fancam.identity.appearance import Appearance
    from fancam.identity.body import BodyCalibration
    from fancam.identity.gallery import Gallery, GalleryMember
    from fancam.identity.naming import GalleryMatcher, evidence_matrix

    bodies, photos = _gillhung_bodies(300), _gillhung_bodies(30)
    face = np.zeros(128, np.float32)
    face[0] = 1.0
    ana = GalleryMember("g", "Ana", face[None], (Path("ana.jpg"),), np.ones(1, np.float32))
    bea = GalleryMember("g", "Bea", np.zeros((0, 128), np.float32), (), np.zeros(0, np.float32),
                        photos["P1"][None], (Path("bea.jpg"),))
    gallery = Gallery(Path("."), (ana, bea))
    appearance = Appearance(
        rows=np.arange(1), frames=np.full(1, 300), body=bodies["P2"][None], face=face[None],
        face_quality=np.ones(1, np.float32), face_size=np.full(1, 80.0, np.float32),
    )
    calibration = BodyCalibration(60.0, -60.0 * 0.93)  # P2's body matches P1's photo at 0.88: -3
    config = NamingConfig(full_weight_samples=1)
    matcher = GalleryMatcher(gallery, calibration, calibration, config)
    evidence = evidence_matrix(matcher, appearance, np.zeros(1, np.int64), 1)
    assert evidence[0, 0] > config.min_margin > 0 > evidence[0, 1]  # Ana; Bea: her body photo says no
    naming = assign_people(evidence, np.zeros((1, 1), bool), gallery.names, ("g/Ana", "g/Bea"), config)
    assert naming[0].label == "Ana"


def test_one_matching_face_against_a_body_that_says_no_names_nobody_three_faces_name():
    # The gallery offset (photos are other moments than the video's calibration pairs) corrects the
    # cue that vouches for the member, in proportion to that cue's samples: one face at log-odds 1.5
    # is no name when the body matches the member's photo at -3 (it was: the body's samples lent the
    # face their weight, as when miryala's men were named after ballet dancers); three faces are.
    from fancam.identity.appearance import Appearance
    from fancam.identity.body import BodyCalibration
    from fancam.identity.gallery import Gallery, GalleryMember
    from fancam.identity.naming import GalleryMatcher, evidence_matrix

    calibration = BodyCalibration(60.0, -60.0 * 0.93)
    photo = np.zeros(128, np.float32)
    photo[0] = 1.0
    face = np.zeros(128, np.float32)
    face[0], face[1] = 0.955, np.sqrt(1 - 0.955**2)  # similarity 0.955: log-odds 1.5
    ana = GalleryMember("g", "Ana", photo[None], (Path("ana.jpg"),), np.ones(1, np.float32),
                        _gillhung_bodies(30)["P1"][None], (Path("ana-body.jpg"),))
    gallery = Gallery(Path("."), (ana,))
    bodies = [_gillhung_bodies(f)["P2"] for f in (60, 150, 300)]  # P2's body matches P1's photo at -3
    config = NamingConfig()
    matcher = GalleryMatcher(gallery, calibration, calibration, config)

    def label(n_faces):
        faces = np.full((3, 128), np.nan, np.float32)
        faces[:n_faces] = face
        known = np.isfinite(faces[:, 0])
        appearance = Appearance(
            rows=np.arange(3), frames=np.array([60, 150, 300]), body=np.stack(bodies), face=faces,
            face_quality=np.where(known, 1.0, np.nan).astype(np.float32),
            face_size=np.where(known, 80.0, np.nan).astype(np.float32),
        )
        evidence = evidence_matrix(matcher, appearance, np.zeros(3, np.int64), 1)
        return assign_people(evidence, np.zeros((1, 1), bool), gallery.names, ("g/Ana",), config)[0].label

    assert label(1) == "unknown"
    assert label(3) == "Ana"


def test_a_photo_of_part_of_the_body_weighs_as_much_as_it_shows():
    # An upper-body photo compares only the stripes it shows: a match on half the body is half the
    # evidence (a bystander in a similar top must not look like the member as surely as a whole match).
    from fancam.identity.body import DEFAULT_CONFIG, BodyCalibration, similarity_matrix
    from fancam.identity.naming import body_log_odds

    video = _gillhung_bodies(300)
    photo = _gillhung_bodies(30)["P2"].copy()
    layout = DEFAULT_CONFIG.layout
    shown = layout.present(photo)
    lower = [b for b in range(len(layout.starts)) if b >= len(layout.starts) // 2]
    for b in lower:
        photo[layout.starts[b]:layout.starts[b] + layout.sizes[b]] = 0
    share = float((layout.present(photo) * layout.weights).sum() / layout.weights.sum())
    assert shown.all() and 0.4 < share < 0.6
    calibration = BodyCalibration(CALIBRATION_SLOPE, CALIBRATION_INTERCEPT)
    gallery = _body_gallery({"P2": photo}, ["P2"])
    appearance = _appearance([video["P2"], video["P1"]])
    out = body_log_odds(gallery, appearance, np.arange(2), 2, calibration)
    full = calibration.log_odds(similarity_matrix(np.stack([video["P2"], video["P1"]]), photo[None])[:, 0])
    np.testing.assert_allclose(out[:, 0], share * full, rtol=1e-5)
    assert out[0, 0] > 0 > out[1, 0]  # still P2's, still not P1's


def _face_member(name: str, face: np.ndarray, quality: float, body: np.ndarray | None = None):
    from fancam.identity.gallery import GalleryMember

    bodies = np.zeros((0, body.shape[0] if body is not None else 0), np.float32) if body is None else body[None]
    return GalleryMember("g", name, face[None], (Path(f"{name}.jpg"),), np.full(1, quality, np.float32),
                         *((bodies, (Path(f"{name}-body.jpg"),)) if body is not None else ()))


def _faces_appearance(faces: np.ndarray, bodies: np.ndarray | None = None):
    from fancam.identity.appearance import Appearance

    n = len(faces)
    return Appearance(
        rows=np.arange(n), frames=np.arange(n) * 30, face=faces.astype(np.float32),
        body=np.zeros((n, 0), np.float32) if bodies is None else bodies,
        face_quality=np.ones(n, np.float32), face_size=np.full(n, 80.0, np.float32),
    )


def test_a_blurred_face_photo_names_nobody_and_a_middling_one_tells_apart_but_does_not_vouch():
    # The make_gallery crops of 360p clips have faces of quality 0-0.05: they embed near every small
    # face (hamilton's alex matched linedance P7's 0.02 and 0.05 photos and was named P7 at 0.88).
    # Such a photo is not used; one of quality 0.2 tells members apart but does not say that the
    # cluster is anyone in the gallery at all; a sharp one does.
    from fancam.identity.body import BodyCalibration
    from fancam.identity.gallery import Gallery
    from fancam.identity.naming import GalleryMatcher, evidence_matrix

    calibration = BodyCalibration(60.0, -60.0 * 0.93)  # similarity 0.99: log-odds +3.6
    photo = np.zeros(128, np.float32)
    photo[0] = 1.0
    face = np.zeros(128, np.float32)
    face[0], face[1] = 0.99, np.sqrt(1 - 0.99**2)
    appearance = _faces_appearance(np.stack([face] * 3))
    config = NamingConfig()

    def label(quality: float) -> str:
        gallery = Gallery(Path("."), (_face_member("Ana", photo, quality),))
        evidence = evidence_matrix(GalleryMatcher(gallery, calibration, None, config), appearance,
                                   np.zeros(3, np.int64), 1)
        return assign_people(evidence, np.zeros((1, 1), bool), gallery.names, ("g/Ana",), config)[0].label

    assert label(0.9) == "Ana"
    assert label(0.2) == "unknown"  # tells apart, does not vouch
    assert label(0.05) == "unknown"  # not used at all

    # A middling photo still tells two members apart when a body photo vouches (both members'
    # bodies match alike): Ana's face photo matches, Bea's does not.
    bodies = _gillhung_bodies(300)
    body_photo = _gillhung_bodies(30)["P2"]
    other = np.zeros(128, np.float32)
    other[2] = 1.0
    gallery = Gallery(Path("."), (_face_member("Ana", photo, 0.2, body_photo),
                                  _face_member("Bea", other, 0.2, body_photo)))
    body_calibration = BodyCalibration(CALIBRATION_SLOPE, CALIBRATION_INTERCEPT)
    seen = _faces_appearance(np.stack([face] * 3), np.stack([bodies["P2"]] * 3))
    matcher = GalleryMatcher(gallery, calibration, body_calibration, config)
    evidence = evidence_matrix(matcher, seen, np.zeros(3, np.int64), 1)
    naming = assign_people(evidence, np.zeros((1, 1), bool), gallery.names, ("g/Ana", "g/Bea"), config)
    assert naming[0].label == "Ana"
    # The same photos below the quality that is used at all: nothing tells Ana from Bea.
    blurred = Gallery(Path("."), (_face_member("Ana", photo, 0.05, body_photo),
                                  _face_member("Bea", other, 0.05, body_photo)))
    evidence = evidence_matrix(GalleryMatcher(blurred, calibration, body_calibration, config), seen,
                               np.zeros(3, np.int64), 1)
    naming = assign_people(evidence, np.zeros((1, 1), bool), blurred.names, ("g/Ana", "g/Bea"), config)
    assert naming[0].label == "unknown"
