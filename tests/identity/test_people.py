"""People numbering and the clearest view used by the contact sheet."""

from __future__ import annotations

import numpy as np

from fancam.identity.people import Naming, Person, Stretch, bridge_gaps, crowding, make_people
from fancam.types import Timeline, TrackTable


def _table(rows):
    return TrackTable(
        frame=[r[0] for r in rows], track_id=[r[1] for r in rows], xyxy=[r[2] for r in rows],
        score=[r[3] for r in rows], observed=np.ones(len(rows), bool),
    )


def test_people_are_numbered_by_prominence_and_named():
    # tracklet 1: small, long; tracklet 2: large, long -> more prominent; tracklet 3: tiny, short
    rows = []
    for f in range(30):
        rows.append((f, 1, [0, 100, 20, 150], 0.9))
        rows.append((f, 2, [100, 0, 200, 300], 0.9))
    rows.append((0, 3, [300, 0, 305, 10], 0.5))
    table = _table(rows)
    timeline = Timeline(np.arange(30) / 30.0, np.zeros(1))
    cast = make_people(table, table.track_id.copy(), {2: Naming("Bea", "g/Bea", 0.9)}, timeline, 300)
    assert [p.label for p in cast.people] == ["Bea", "person-2", "person-3"]
    assert [p.tracklets for p in cast.people] == [(2,), (1,), (3,)]
    assert cast.people[0].first_seen_s == 0.0 and abs(cast.people[0].last_seen_s - 29 / 30) < 1e-9
    assert (cast.person[table.track_id == 2] == 1).all()


def test_negative_cluster_rows_belong_to_nobody():
    table = _table([(0, 1, [0, 0, 10, 10], 1.0), (0, 2, [20, 0, 30, 10], 1.0)])
    cast = make_people(table, np.array([0, -1]), {}, Timeline(np.zeros(1), np.zeros(1)), 100)
    assert cast.person.tolist() == [1, 0]
    assert cast.label_of_rows().tolist() == ["person-1", "unknown"]


def test_crowding_is_the_largest_iou_with_another_box_of_the_same_frame():
    table = _table([
        (0, 1, [0, 0, 10, 10], 1.0), (0, 2, [5, 0, 15, 10], 1.0),  # IoU 1/3
        (1, 1, [0, 0, 10, 10], 1.0),  # alone
    ])
    np.testing.assert_allclose(crowding(table), [1 / 3, 1 / 3, 0.0])


def test_person_json_round_trips():
    rows = [(f, 1, [0, 10, 20, 150], 0.9) for f in range(3)]
    table = _table(rows)
    cast = make_people(table, table.track_id.copy(), {1: Naming("Bea", "g/Bea", 0.87654)},
                       Timeline(np.arange(3) / 30.0, np.zeros(1)), 300)
    person = cast.people[0]
    again = Person.from_json(person.to_json())
    assert again.to_json() == person.to_json()
    assert (again.id, again.label, again.member, again.tracklets) == (1, "Bea", "g/Bea", (1,))


def _two_stretch_table():
    """Tracklet 1 at 0-0.9 s, tracklet 2 at 1.0-1.9 s, tracklet 3 at 3.0-3.9 s (30 fps), one performer."""
    rows = [(f, 1, [0, 10, 20, 150], 0.9) for f in range(0, 28)]
    rows += [(f, 2, [0, 10, 20, 150], 0.9) for f in range(30, 58)]
    rows += [(f, 3, [0, 10, 20, 150], 0.9) for f in range(90, 118)]
    return _table(rows), Timeline(np.arange(120) / 30.0, np.zeros(1))


def test_stretches_carry_naming_times_membership_and_the_person_their_mean():
    table, timeline = _two_stretch_table()
    cluster = np.zeros(len(table), np.int64)
    cast = make_people(table, cluster, {0: Naming("Bea", "g/Bea", 0.9)}, timeline, 300,
                       membership={1: 1.0, 2: 0.3, 3: 0.5})
    stretches = cast.stretches_of(1)
    assert [s.tracklet for s in stretches] == [1, 2, 3]
    np.testing.assert_allclose([s.confidence for s in stretches], [0.9, 0.27, 0.45])
    assert stretches[1].start_s == 1.0 and abs(stretches[1].end_s - 57 / 30) < 1e-9
    # The performer's confidence is the duration-weighted mean (equal durations here).
    assert abs(cast.people[0].confidence - (0.9 + 0.27 + 0.45) / 3) < 1e-9
    # Numbered performers: the number cannot be wrong, only the joins.
    numbered = make_people(table, cluster, {}, timeline, 300, membership={1: 1.0, 2: 1.0, 3: 1.0})
    assert numbered.people[0].confidence == 1.0


def test_uncertain_spans_join_close_stretches_and_skip_confident_ones():
    table, timeline = _two_stretch_table()
    cast = make_people(table, np.zeros(len(table), np.int64), {}, timeline, 300,
                       membership={1: 0.4, 2: 0.2, 3: 0.9})
    # Tracklets 1 and 2 are 0.1 s apart: one span; tracklet 3 is confident.
    assert cast.uncertain_spans(1) == [(0.0, 57 / 30)]
    assert cast.uncertain_spans(1, threshold=0.3) == [(1.0, 57 / 30)]
    assert cast.uncertain_spans(1, threshold=0.95) == [(0.0, 57 / 30), (3.0, 117 / 30)]
    assert cast.uncertain_spans(1, threshold=0.95, join_s=2.0) == [(0.0, 117 / 30)]
    assert cast.uncertain_spans(2) == []  # nobody with that id: nothing uncertain


def test_stretch_json_round_trips():
    table, timeline = _two_stretch_table()
    cast = make_people(table, np.zeros(len(table), np.int64), {}, timeline, 300, membership={2: 0.25})
    for stretch in cast.stretches:
        assert Stretch.from_json(stretch.to_json()) == stretch


def _pieces(*pieces):
    """Rows of tracklets given as (track_id, first frame, last frame, x offset)."""
    return _table([(f, k, [x + f, 0, x + f + 10, 40], 0.9) for k, a, b, x in pieces for f in range(a, b + 1)])


def test_bridge_fills_a_short_gap_between_two_tracklets_of_one_performer():
    table = _pieces((1, 0, 9, 0), (2, 15, 29, 0), (3, 0, 29, 100))
    person = np.where(table.track_id == 3, 2, 1)
    timeline = Timeline(np.arange(30) / 30.0, np.zeros(1))
    rows, owner = bridge_gaps(table, person, timeline, max_gap_s=1.0)
    assert rows.frame.tolist() == [10, 11, 12, 13, 14] and owner.tolist() == [1] * 5
    assert rows.track_id.tolist() == [1] * 5  # the tracklet before the gap goes on
    assert not rows.observed.any() and (rows.score == 0).all()  # predicted, not detected
    # straight line from frame 9 (x1 = 9) to frame 15 (x1 = 15)
    np.testing.assert_allclose(rows.xyxy[:, 0], [10, 11, 12, 13, 14])


def test_bridge_leaves_long_gaps_cuts_and_nobody_alone():
    table = _pieces((1, 0, 9, 0), (2, 15, 29, 0))
    t = np.arange(30) / 30.0
    assert len(bridge_gaps(table, np.ones(len(table), np.int64), Timeline(t, np.zeros(1)), 0.1)[0]) == 0
    cut = Timeline(t, np.array([0, 12]))  # a camera cut inside the gap
    assert len(bridge_gaps(table, np.ones(len(table), np.int64), cut, 1.0)[0]) == 0
    assert len(bridge_gaps(table, np.zeros(len(table), np.int64), Timeline(t, np.zeros(1)), 1.0)[0]) == 0


def test_bridge_takes_the_next_tracklet_when_the_first_goes_on_as_someone_else():
    # tracklet 1 is person 1 until frame 9, then (identity split it) person 2; person 1 goes on in 2
    table = _pieces((1, 0, 29, 0), (2, 15, 29, 100))
    person = np.where((table.track_id == 1) & (table.frame <= 9), 1, 2)
    person[table.track_id == 2] = 1
    rows, owner = bridge_gaps(table, person, Timeline(np.arange(30) / 30.0, np.zeros(1)), 1.0)
    assert rows.frame.tolist() == [10, 11, 12, 13, 14] and rows.track_id.tolist() == [2] * 5
    assert owner.tolist() == [1] * 5


def test_bridges_of_two_performers_never_give_one_tracklet_two_rows_in_a_frame():
    # Tracklet 1 is person 1 until frame 9 and person 2 from frame 20 (identity split it); person 1
    # goes on in tracklet 2 from frame 15, so her gap 10-14 is bridged under tracklet 1. Person 2 was
    # tracklet 3 until frame 12, which then goes on as person 3: his gap 13-19 could only go under
    # tracklet 1, which already has bridge rows at 13 and 14, so it is left open.
    table = _pieces((1, 0, 9, 0), (1, 20, 29, 200), (2, 15, 29, 0), (3, 0, 29, 200))
    person = np.ones(len(table), np.int64)
    person[(table.track_id == 1) & (table.frame >= 20)] = 2
    person[table.track_id == 3] = np.where(table.frame[table.track_id == 3] <= 12, 2, 3)
    rows, owner = bridge_gaps(table, person, Timeline(np.arange(30) / 30.0, np.zeros(1)), 1.0)
    keys = list(zip(rows.frame.tolist(), rows.track_id.tolist(), strict=True))
    keys += list(zip(table.frame.tolist(), table.track_id.tolist(), strict=True))
    assert len(keys) == len(set(keys))
    assert owner.tolist() == [1] * 5 and rows.frame.tolist() == [10, 11, 12, 13, 14]
