"""Tracklet linking on synthetic people whose colours are real body descriptors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from fancam.identity.appearance import Appearance
from fancam.identity.body import body_prototype, describe_bodies, similarity_matrix
from fancam.identity.faces import EMBEDDING_DIM
from fancam.identity.identify import expected_performers
from fancam.identity.linking import (
    Evidence,
    LinkingConfig,
    Tracklets,
    _body_evidence,
    _pairs_by_kind,
    _prototype_calibration,
    cluster_tracklets,
    describe_tracklets,
    discount_lookalikes,
    pairwise_evidence,
)
from fancam.types import Timeline, TrackTable

W, H = 640, 360
COLOURS = {"A": ((220, 30, 30), (20, 20, 200)), "B": ((30, 200, 40), (230, 220, 30))}


def _frame(people: list[tuple[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """A frame with a two-colour 'person' (top / legs) per entry, at x centre; returns image, boxes."""
    image = np.full((H, W, 3), 90, np.uint8)
    boxes = []
    for name, cx in people:
        top, legs = COLOURS[name]
        x1, x2 = int(cx - 40), int(cx + 40)
        image[60:180, x1:x2] = top
        image[180:330, x1:x2] = legs
        boxes.append([x1, 40, x2, 330])
    return image, np.array(boxes, np.float32)


def _scene(
    plan: list[tuple[int, int, str, float]], n_frames: int, lengths: dict[int, int] | None = None
) -> tuple[TrackTable, Timeline, Appearance]:
    """Tracklets from (tracklet id, first frame, person, x) plans, 30 frames each unless ``lengths``
    says otherwise; samples every 5 frames."""
    lengths = lengths or {}
    span = {tid: lengths.get(tid, 30) for tid, *_ in plan}
    rows, samples = [], []
    for tid, first, _, cx in plan:
        for f in range(first, first + span[tid]):
            rows.append((f, tid, [cx - 40, 40, cx + 40, 330]))
    table = TrackTable(
        frame=[r[0] for r in rows], track_id=[r[1] for r in rows], xyxy=[r[2] for r in rows],
        score=np.ones(len(rows)), observed=np.ones(len(rows), bool),
    ).sorted()
    bodies, frames = [], []
    for k in range(len(table)):
        f, tid = int(table.frame[k]), int(table.track_id[k])
        if f % 5:
            continue
        present = [(p, x) for t, first, p, x in plan if first <= f < first + span[t]]
        image, boxes = _frame(present)
        me = [t for t, first, p, x in plan if first <= f < first + span[t]].index(tid)
        bodies.append(describe_bodies(image, boxes, indices=[me])[0])
        samples.append(k)
        frames.append(f)
    appearance = _bodies_only(samples, frames, bodies)
    timeline = Timeline(np.arange(n_frames) / 30.0, np.zeros(1, np.int64))
    return table, timeline, appearance


def _bodies_only(samples, frames, bodies):
    """The appearance of body samples (rows ``samples`` at ``frames``) without any face."""
    n = len(samples)
    return Appearance(
        rows=np.array(samples), frames=np.array(frames), body=np.array(bodies, np.float32),
        face=np.full((n, EMBEDDING_DIM), np.nan, np.float32), face_quality=np.full(n, np.nan, np.float32),
        face_size=np.full(n, np.nan, np.float32),
    )


def _link(table, timeline, appearance, expected=None):
    tracklets = describe_tracklets(table, timeline, appearance)
    evidence = pairwise_evidence(tracklets, appearance, timeline, LinkingConfig())
    return tracklets, cluster_tracklets(tracklets, evidence, LinkingConfig(), expected)


def test_people_swapping_places_after_a_break_are_linked_by_appearance():
    # A left / B right, then (after a gap) A right / B left: position would link them wrongly.
    plan = [(1, 0, "A", 150.0), (2, 0, "B", 450.0), (3, 40, "A", 450.0), (4, 40, "B", 150.0)]
    table, timeline, appearance = _scene(plan, 70)
    tracklets, labels = _link(table, timeline, appearance)
    by_id = dict(zip(tracklets.ids.tolist(), labels.tolist(), strict=True))
    assert by_id[1] == by_id[3] and by_id[2] == by_id[4] and by_id[1] != by_id[2]


def test_tracklets_seen_together_are_never_merged():
    # Two identical-looking people side by side the whole time: one tracklet each, never one person.
    plan = [(1, 0, "A", 150.0), (2, 0, "A", 450.0), (3, 40, "A", 150.0)]
    table, timeline, appearance = _scene(plan, 70)
    tracklets, labels = _link(table, timeline, appearance)
    by_id = dict(zip(tracklets.ids.tolist(), labels.tolist(), strict=True))
    assert by_id[1] != by_id[2]
    assert tracklets.conflict[0, 1] and not tracklets.conflict[0, 2]


def test_expected_performers_counts_people_seen_together_long_enough():
    plan = [(1, 0, "A", 150.0), (2, 0, "B", 450.0), (3, 40, "A", 450.0)]
    table, timeline, _ = _scene(plan, 70)
    assert expected_performers(table, timeline, min_together_s=0.5) == 2
    # Nobody is seen for 10 frames in the middle, so no count is sustained over 2 s.
    assert expected_performers(table, timeline, min_together_s=2.0) == 0


def _without_samples_of(table: TrackTable, appearance: Appearance, tid: int) -> Appearance:
    keep = table.track_id[appearance.rows] != tid
    return Appearance(
        rows=appearance.rows[keep], frames=appearance.frames[keep], body=appearance.body[keep],
        face=appearance.face[keep], face_quality=appearance.face_quality[keep], face_size=appearance.face_size[keep],
    )


def test_piece_without_appearance_joins_the_only_performer_it_can_be():
    # A and B, then A again beside a piece of B with no appearance sample (cut out of a pile-up): it
    # shares frames with A, so with two performers it can only be B
    plan = [(1, 0, "A", 150.0), (2, 0, "B", 450.0), (3, 60, "A", 150.0), (4, 60, "B", 450.0)]  # 1 s apart
    table, timeline, appearance = _scene(plan, 90)
    appearance = _without_samples_of(table, appearance, 4)
    tracklets, labels = _link(table, timeline, appearance, expected=2)
    by_id = dict(zip(tracklets.ids.tolist(), labels.tolist(), strict=True))
    assert by_id[1] == by_id[3] != by_id[2] == by_id[4]
    # without a known number of performers nothing says who it is: it stays apart
    _, labels = _link(table, timeline, appearance)
    assert len(set(labels.tolist())) == 3


def test_piece_without_appearance_is_not_forced_when_two_performers_are_free():
    # the same piece, but a third performer C could be it as well: no guess
    plan = [(1, 0, "A", 150.0), (2, 0, "B", 450.0), (3, 60, "A", 150.0), (4, 60, "B", 450.0)]  # 1 s apart
    table, timeline, appearance = _scene(plan, 90)
    appearance = _without_samples_of(table, appearance, 4)
    tracklets, labels = _link(table, timeline, appearance, expected=1)
    by_id = dict(zip(tracklets.ids.tolist(), labels.tolist(), strict=True))
    assert by_id[1] == by_id[3] and by_id[4] not in (by_id[1],)


def test_fragment_that_is_one_too_many_joins_the_performer_it_resembles_most():
    # A and B dance together, then a short piece of A seen badly: its evidence says "different" from
    # both, below the veto, but with two performers it is one too many and it is nearer to A than to
    # B. Listed before A's tracklets, so an arbitrary pick would not find A.
    plan = [(1, 0, "B", 450.0), (2, 0, "A", 150.0), (3, 40, "B", 450.0), (4, 40, "A", 150.0),
            (5, 100, "A", 150.0)]  # 1 s after A's last tracklet: no continuity
    table, timeline, appearance = _scene(plan, 120, lengths={5: 10})
    tracklets = describe_tracklets(table, timeline, appearance)
    assert tracklets.ids.tolist() == [1, 2, 3, 4, 5]
    b, a, piece = [0, 2], [1, 3], 4
    log_odds = np.full((5, 5), -4.0)  # capped "different"
    log_odds[np.ix_(a, a)] = log_odds[np.ix_(b, b)] = 3.5
    log_odds[piece, a] = log_odds[a, piece] = -3.2
    evidence = Evidence(log_odds, np.ones((5, 5)))
    labels = cluster_tracklets(tracklets, evidence, LinkingConfig(), expected=2)
    by_id = dict(zip(tracklets.ids.tolist(), labels.tolist(), strict=True))
    assert by_id[5] == by_id[2] == by_id[4] != by_id[1] == by_id[3]
    # without the rule (nor the only-partner guess) the piece stays a third person
    alone = LinkingConfig(fragment_share=0.0, join_only_partner=False)
    assert len(set(cluster_tracklets(tracklets, evidence, alone, expected=2).tolist())) == 3
    # a duplicate box (shares frames with A and B: nobody) can only join the piece, but the piece
    # joins A first, and the duplicate stays apart
    with_duplicate = [*plan, (6, 10, "B", 300.0)]
    table, timeline, appearance = _scene(with_duplicate, 120, lengths={5: 10, 6: 8})
    tracklets = describe_tracklets(table, timeline, appearance)
    duplicate = 5
    log_odds = np.pad(log_odds, ((0, 1), (0, 1)), constant_values=-4.0)
    assert tracklets.conflict[duplicate, [0, 1]].all() and not tracklets.conflict[duplicate, piece]
    labels = cluster_tracklets(tracklets, Evidence(log_odds, np.ones((6, 6))), LinkingConfig(), expected=2)
    by_id = dict(zip(tracklets.ids.tolist(), labels.tolist(), strict=True))
    assert by_id[5] == by_id[2] == by_id[4] != by_id[1] == by_id[3] and by_id[6] not in (by_id[1], by_id[2])
    # a piece as long as a performer is not a fragment: it may be someone else
    table, timeline, appearance = _scene(plan, 170, lengths={5: 60})
    tracklets = describe_tracklets(table, timeline, appearance)
    labels = cluster_tracklets(tracklets, evidence, LinkingConfig(join_only_partner=False), expected=2)
    assert len(set(labels.tolist())) == 3


def test_trace_tells_merges_the_evidence_made_from_those_forced_by_the_count():
    # Two performers, four tracklets each one too many: A's pieces agree (+3.5), B's pieces neither
    # agree nor differ (-1, above the veto): only B's merge is forced by the count of performers.
    plan = [(1, 0, "B", 450.0), (2, 0, "A", 150.0), (3, 40, "B", 450.0), (4, 40, "A", 150.0)]
    table, timeline, appearance = _scene(plan, 80)
    tracklets = describe_tracklets(table, timeline, appearance)
    log_odds = np.full((4, 4), -4.0)
    log_odds[1, 3] = log_odds[3, 1] = 3.5
    log_odds[0, 2] = log_odds[2, 0] = -1.0
    steps: list[tuple[str, list[int], list[int], float]] = []
    labels = cluster_tracklets(tracklets, Evidence(log_odds, np.ones((4, 4))), LinkingConfig(), expected=2,
                               trace=lambda step, a, b, mean: steps.append((step, a, b, mean)))
    assert [(s, sorted(a + b), m) for s, a, b, m in steps] == [("evidence", [1, 3], 3.5), ("too-many", [0, 2], -1.0)]
    assert labels[0] == labels[2] != labels[1] == labels[3]


def _with_faces(table: TrackTable, appearance: Appearance, face_of: dict[int, str]) -> Appearance:
    """Give every sample the face of its tracklet's person (``face_of``: tracklet id -> face name)."""
    rng = np.random.default_rng(0)
    names = sorted(set(face_of.values()))
    vectors = rng.normal(size=(len(names), EMBEDDING_DIM))
    centre = {n: v / np.linalg.norm(v) for n, v in zip(names, vectors, strict=True)}
    faces = []
    for row in appearance.rows:
        v = centre[face_of[int(table.track_id[row])]] + 0.03 * rng.normal(size=EMBEDDING_DIM)
        faces.append(v / np.linalg.norm(v))
    n = len(appearance.rows)
    return Appearance(
        rows=appearance.rows, frames=appearance.frames, body=appearance.body,
        face=np.array(faces, np.float32), face_quality=np.ones(n, np.float32), face_size=np.full(n, 40.0, np.float32),
    )


def test_faces_that_clearly_differ_keep_look_alikes_apart_when_there_are_too_many_clusters():
    # A and B, then someone in A's outfit with another face: with two performers seen together the
    # third cluster is one too many, and without the face veto the outfit (+4) and the face (-4)
    # average to 0, above the "too many clusters" threshold, so the stranger would become A.
    plan = [(1, 0, "A", 150.0), (2, 0, "B", 450.0), (3, 60, "A", 150.0)]  # 1 s apart: no continuity
    table, timeline, appearance = _scene(plan, 90)
    appearance = _with_faces(table, appearance, {1: "a", 2: "b", 3: "stranger"})
    tracklets = describe_tracklets(table, timeline, appearance)
    evidence = pairwise_evidence(tracklets, appearance, timeline, LinkingConfig())
    assert evidence.face_calibration is not None  # the video's own faces calibrate the cue
    labels = cluster_tracklets(tracklets, evidence, LinkingConfig(), expected=2)
    assert len(set(labels.tolist())) == 3
    merged = cluster_tracklets(tracklets, evidence, LinkingConfig(face_veto=0.0), expected=2)
    by_id = dict(zip(tracklets.ids.tolist(), merged.tolist(), strict=True))
    assert by_id[1] == by_id[3] != by_id[2]
    # the same face in that outfit is A, veto or not
    appearance = _with_faces(table, appearance, {1: "a", 2: "b", 3: "a"})
    evidence = pairwise_evidence(tracklets, appearance, timeline, LinkingConfig())
    labels = cluster_tracklets(tracklets, evidence, LinkingConfig(), expected=2)
    by_id = dict(zip(tracklets.ids.tolist(), labels.tolist(), strict=True))
    assert by_id[1] == by_id[3] != by_id[2]


def test_known_pairs_match_the_all_pairs_definition_without_building_it():
    """Same = one tracklet >= 0.5 s apart; different = conflicting tracklets within 2 s. Built per
    tracklet and per 2 s window (the all-pairs version took ~5 GB on a 10-minute clip)."""
    plan = [(1, 0, "A", 150), (2, 10, "B", 450), (3, 45, "A", 300), (4, 100, "B", 150), (5, 110, "A", 450)]
    table, timeline, appearance = _scene(plan, 160)
    tracklets = describe_tracklets(table, timeline, appearance)
    owner = tracklets.sample_of
    frames = appearance.frames
    same, different = _pairs_by_kind(tracklets, frames, owner, timeline, 0.5)
    i, j = np.triu_indices(len(frames), k=1)
    dt = np.abs(timeline.t[frames[i]] - timeline.t[frames[j]])
    want_same = (owner[i] == owner[j]) & (dt >= 0.5)
    want_diff = tracklets.conflict[owner[i], owner[j]] & (dt <= 2.0)
    assert want_same.any() and want_diff.any()
    assert set(zip(*same, strict=True)) == set(zip(i[want_same], j[want_same], strict=True))
    assert set(zip(*different, strict=True)) == set(zip(i[want_diff], j[want_diff], strict=True))
    assert len(same[0]) == want_same.sum() and len(different[0]) == want_diff.sum()


def test_a_cue_counts_only_what_exceeds_its_lookalikes():
    # Tracklets 0 and 1 share frames (different people) yet the cue gives them +3: its +3.5 between
    # 0 and 2 cannot tell 2 from 1's person, so only 0.5 of it counts; +2 (below the look-alike
    # level) becomes 0, not "different"; "different" stays; 3 and 4, with no look-alike, keep theirs.
    log_odds = np.array([
        [4.0, 3.0, 3.5, 2.0, np.nan],
        [3.0, 4.0, -1.0, -2.0, np.nan],
        [3.5, -1.0, 4.0, 0.0, np.nan],
        [2.0, -2.0, 0.0, 4.0, 2.5],
        [np.nan, np.nan, np.nan, 2.5, 4.0],
    ])
    known = np.zeros((5, 5), bool)
    known[0, 1] = known[1, 0] = True
    out = discount_lookalikes(log_odds, known)
    assert out[0, 2] == out[2, 0] == 0.5
    assert out[0, 3] == 0.0 and out[1, 2] == -1.0 and out[1, 3] == -2.0
    assert out[3, 4] == 2.5 and np.isnan(out[0, 4])
    # a known-different pair the cue already calls "different" discounts nothing
    known_apart = np.zeros((5, 5), bool)
    known_apart[1, 3] = known_apart[3, 1] = True
    np.testing.assert_array_equal(discount_lookalikes(log_odds, known_apart), log_odds)


def test_body_map_of_tracklet_pairs_is_fitted_on_prototypes():
    # A and B dance together six times, 1 s apart: six prototype pairs of each kind.
    plan = [p for k in range(6) for p in ((2 * k + 1, 60 * k, "A", 150.0), (2 * k + 2, 60 * k, "B", 450.0))]
    table, timeline, appearance = _scene(plan, 360)
    tracklets = describe_tracklets(table, timeline, appearance)
    owner = tracklets.sample_of
    protos = [body_prototype(appearance.body[owner == k]) for k in range(len(tracklets))]
    centres = np.stack([p.centre for p in protos])
    sims = similarity_matrix(centres, centres)
    counts = np.array([p.n for p in protos])
    config = LinkingConfig()
    cal = _prototype_calibration(appearance.body, owner, sims, counts, tracklets.conflict, config)
    assert cal is not None
    a, b = np.arange(0, 12, 2), np.arange(1, 12, 2)
    assert (cal.log_odds(sims[np.ix_(a, a)]) > 0).all() and (cal.log_odds(sims[np.ix_(a, b)]) < 0).all()
    # the linking evidence uses it: A's tracklets alike, A and B apart
    body = _body_evidence(tracklets, appearance, timeline, config)
    assert (body.log_odds[a[0], a[1:]] > 0).all() and (body.log_odds[a[0], b] < 0).all()
    # with fewer pairs than the calibration needs there is no prototype map
    few = tracklets.conflict.copy()
    few[:, 4:] = few[4:, :] = False
    assert _prototype_calibration(appearance.body, owner, sims, counts, few, config) is None


def test_a_duplicate_box_is_no_lookalike_but_a_dancer_crossing_for_a_moment_is():
    # 1 and 2 dance side by side; 3 is a second box riding on 1 the whole time (IoU 0.78); 4 walks
    # past 1, overlapping her in one frame only (IoU 0.6); 5 is 1 again, later.
    plan = [(1, 0, "A", 150.0), (2, 0, "B", 450.0), (3, 0, "A", 160.0), (4, 29, "B", 170.0), (5, 100, "A", 150.0)]
    table, timeline, appearance = _scene(plan, 130)
    tracklets = describe_tracklets(table, timeline, appearance)
    assert tracklets.ids.tolist() == [1, 2, 3, 4, 5] and tracklets.seen_apart is not None
    assert tracklets.conflict[0, [1, 2, 3]].all()
    assert tracklets.seen_apart[0, 1] and tracklets.seen_apart[0, 3] and not tracklets.seen_apart[0, 2]
    np.testing.assert_array_equal(tracklets.seen_apart, tracklets.seen_apart.T)
    # the duplicate, as alike as 1 herself, does not make 1 a look-alike: her link to 5 keeps its weight
    body = _body_evidence(tracklets, appearance, timeline, LinkingConfig())
    every_conflict = replace(tracklets, seen_apart=tracklets.conflict)
    counted = _body_evidence(every_conflict, appearance, timeline, LinkingConfig())
    assert body.log_odds[0, 4] > 0 and counted.log_odds[0, 4] < body.log_odds[0, 4]


def _facts(spans: list[tuple[int, int]], conflicts: list[tuple[int, int]]) -> Tracklets:
    """Tracklet facts for hand-made evidence: (first, last) frames and the pairs sharing frames."""
    n = len(spans)
    conflict = np.zeros((n, n), bool)
    for a, b in conflicts:
        conflict[a, b] = conflict[b, a] = True
    boxes = np.zeros((n, 4), np.float32)
    return Tracklets(
        ids=np.arange(1, n + 1), first=np.array([f for f, _ in spans]), last=np.array([t for _, t in spans]),
        shot=np.zeros(n, np.int64), start_box=boxes, end_box=boxes, starts_clean=np.ones(n, bool),
        ends_clean=np.ones(n, bool), conflict=conflict, sample_of=np.zeros(0, np.int64),
    )


def _hand_evidence(appearance: dict[tuple[int, int], tuple[float, float]], continuity: dict[tuple[int, int], float],
                   n: int) -> Evidence:
    """Evidence as :func:`pairwise_evidence` combines it: one appearance cue ((log-odds, weight) per pair)
    and continuity log-odds, averaged with weight 1 per continuation."""
    lo, w, cont = np.zeros((n, n)), np.zeros((n, n)), np.zeros((n, n))
    for (a, b), (value, weight) in appearance.items():
        lo[a, b] = lo[b, a] = value
        w[a, b] = w[b, a] = weight
    for (a, b), value in continuity.items():
        cont[a, b] = cont[b, a] = value
    total, weight = lo * w + cont, w + (cont != 0)
    mean = np.where(weight > 0, total / np.maximum(weight, 1e-9), 0.0)
    return Evidence(mean, weight, looks=(lo * w, w.copy()), continuity=cont)


def _pile_up() -> tuple[Tracklets, Evidence]:
    """Performers P (0) and Q (1) seen together, and one piece of each from a pile-up (2 of P, 3 of
    Q), seen together and after both performers' tracklets have ended, with gillhung_dance2's kind
    of evidence: the appearance of pile-up pieces says "different" (-2.4 to -2.6) from both
    performers, most often against the performer seen most, and only where the pieces meet the
    performers' tracklets does motion tell who continues whom (+0.4 for P's piece and P, -1.5 for
    it and Q, -0.9 for Q's piece and P)."""
    tracklets = _facts([(0, 299), (0, 299), (310, 340), (310, 340)], [(0, 1), (2, 3)])
    evidence = _hand_evidence(
        {(2, 0): (-2.6, 6.0), (2, 1): (-2.6, 3.0), (3, 0): (-2.4, 3.0), (3, 1): (-2.4, 2.0)},
        {(2, 0): 0.4, (2, 1): -1.5, (3, 0): -0.9}, 4)
    return tracklets, evidence


def test_forced_merges_chosen_together_put_pile_up_pieces_on_their_own_performers():
    tracklets, evidence = _pile_up()
    # One best pair at a time, Q's piece joins P first (mean -2.03, the least "different"), and P's
    # piece then has only Q left.
    greedy = cluster_tracklets(tracklets, evidence, LinkingConfig(joint_forced=False), expected=2)
    assert greedy[3] == greedy[0] and greedy[2] == greedy[1]
    steps: list[tuple[str, list[int], list[int]]] = []
    labels = cluster_tracklets(tracklets, evidence, LinkingConfig(), expected=2,
                               trace=lambda step, a, b, mean: steps.append((step, a, b)))
    assert labels[2] == labels[0] != labels[1] == labels[3]
    assert sorted((s, sorted(a + b)) for s, a, b in steps) == [("too-many", [0, 2]), ("too-many", [1, 3])]


def test_forced_merges_chosen_together_find_more_merges_than_greedy():
    # Performers A (0) and B (1); piece u (2) resembles A a little more than B, piece v (3) can only
    # be A (it shares frames with B and with u). Greedy puts u on A and leaves v a third person;
    # chosen together, u is B and v is A: two performers, as many as were seen together.
    tracklets = _facts([(0, 99), (0, 99), (200, 299), (200, 299)], [(0, 1), (2, 3), (3, 1)])
    evidence = _hand_evidence({(2, 0): (-0.5, 1.0), (2, 1): (-1.0, 1.0), (3, 0): (-1.5, 1.0)}, {}, 4)
    greedy = cluster_tracklets(tracklets, evidence, LinkingConfig(joint_forced=False, fragment_share=0.0), expected=2)
    assert len(set(greedy.tolist())) == 3
    labels = cluster_tracklets(tracklets, evidence, LinkingConfig(fragment_share=0.0), expected=2)
    assert labels[3] == labels[0] != labels[1] == labels[2]


def test_forced_merges_keep_greedy_choice_when_the_joint_one_is_not_clearly_better():
    # The pile-up with the motion evidence gone: the appearance alone says "different" about alike
    # for both pieces and both performers, a coin flip; greedy's choice stands.
    tracklets, _ = _pile_up()
    flat = _hand_evidence(
        {(2, 0): (-2.3, 6.0), (2, 1): (-2.45, 3.0), (3, 0): (-2.2, 3.0), (3, 1): (-2.3, 2.0)}, {}, 4)
    greedy = cluster_tracklets(tracklets, flat, LinkingConfig(joint_forced=False), expected=2)
    assert (cluster_tracklets(tracklets, flat, LinkingConfig(), expected=2) == greedy).all()
    assert (cluster_tracklets(tracklets, flat, LinkingConfig(joint_margin=0.0), expected=2) != greedy).any()


# --- close-ups cut by the frame bottom -----------------------------------------------------------

LOOKS = {"A": ((220, 30, 30), (20, 20, 200), (20, 20, 200)), "B": ((30, 200, 40), (230, 220, 30), (230, 220, 30)),
         "C": ((220, 30, 30), (20, 20, 200), (230, 220, 30))}  # C: A's top and hips, B's legs


def _person(image, name, x1, y1, scale):
    """Paint a person of LOOKS (top / hips / legs) whose 96 x 290 px body (head room 20, top 120, hips
    60, legs 90) starts at (x1, y1),
    ``scale`` times larger; returns the box (cut by the frame)."""
    top, hips, legs = LOOKS[name]
    for (a, b), colour in (((20, 140), top), ((140, 200), hips), ((200, 290), legs)):
        image[int(y1 + a * scale) : int(y1 + b * scale), int(x1) : int(x1 + 96 * scale)] = colour
    return [x1, y1, x1 + 96 * scale, min(y1 + 290 * scale, image.shape[0] - 1)]


def _wide_and_close_scene():
    """A, B and C dance together four times (1 s each, 1 s apart), then close-ups of A and of B alone."""
    rows, bodies, samples, frames = [], [], [], []
    tid = 0
    for k in range(4):
        for name, x in (("A", 80), ("B", 280), ("C", 480)):
            tid += 1
            rows += [(f, tid, name, ("wide", x)) for f in range(60 * k, 60 * k + 30)]
    for name, first in (("A", 240), ("B", 300)):
        tid += 1
        rows += [(f, tid, name, ("close", 200)) for f in range(first, first + 30)]
    table = TrackTable(frame=[r[0] for r in rows], track_id=[r[1] for r in rows],
                       xyxy=np.zeros((len(rows), 4)), score=np.ones(len(rows)),
                       observed=np.ones(len(rows), bool))
    boxes = []
    for _, _, name, (kind, x) in rows:
        image = np.full((H, W, 3), 90, np.uint8)
        boxes.append(_person(image, name, x, 40, 1.0) if kind == "wide" else _person(image, name, x, 0, 2.5))
    table = replace(table, xyxy=np.array(boxes, np.float32)).sorted()
    for k in range(len(table)):
        f, t = int(table.frame[k]), int(table.track_id[k])
        if f % 5:
            continue
        here = np.flatnonzero(table.frame == f)
        image = np.full((H, W, 3), 90, np.uint8)
        for r in here:
            name, (kind, x) = next((n, p) for ff, tt, n, p in rows if ff == f and tt == table.track_id[r])
            _person(image, name, x, 40 if kind == "wide" else 0, 1.0 if kind == "wide" else 2.5)
        close = next(p[0] == "close" for ff, tt, _, p in rows if ff == f and tt == t)
        face = [290 * 2.5 / 11 if close else np.nan]  # a face of the close-up's 725 px body
        bodies.append(describe_bodies(image, table.xyxy[here], indices=[int(np.flatnonzero(here == k)[0])],
                                      face_sides=face)[0])
        samples.append(k)
        frames.append(f)
    appearance = _bodies_only(samples, frames, bodies)
    return table, Timeline(np.arange(330) / 30.0, np.zeros(1, np.int64)), appearance


def test_close_up_evidence_counts_only_what_the_stripes_it_shows_can_tell():
    table, timeline, appearance = _wide_and_close_scene()
    tracklets = describe_tracklets(table, timeline, appearance)
    body = _body_evidence(tracklets, appearance, timeline, LinkingConfig())
    index = {int(t): k for k, t in enumerate(tracklets.ids)}
    wide = {name: [index[t] for t in range(first, 13, 3)] for name, first in (("A", 1), ("B", 2), ("C", 3))}
    close_a, close_b = index[13], index[14]
    # B's top is hers alone: her close-up joins her on positive evidence, and is not A.
    assert (body.log_odds[close_b, wide["B"]] > 0.5).all()
    assert (body.log_odds[close_b, wide["A"]] < -1.0).all()
    # A and C differ only in the legs, below the close-up: A's close-up cannot tell them apart, so it is
    # as like one as the other, and only as sure as the shown stripes tell the known pairs apart.
    assert np.allclose(body.log_odds[close_a, wide["A"]], body.log_odds[close_a, wide["C"]], atol=0.5)
    assert (body.log_odds[close_a, wide["C"]] < 1.5).all()
    # The map fitted on whole prototypes (where A and C differ) would call that match certain.
    owner = tracklets.sample_of
    centres = np.stack([body_prototype(appearance.body[owner == k]).centre for k in range(len(tracklets))])
    sims = similarity_matrix(centres, centres)
    counts = np.bincount(owner, minlength=len(tracklets))
    whole = _prototype_calibration(appearance.body, owner, sims, counts, tracklets.conflict, LinkingConfig())
    assert whole is not None and (whole.log_odds(sims[close_a, wide["C"]]) > 4.0).all()
