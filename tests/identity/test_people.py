"""People numbering and the clearest view used by the contact sheet."""

from __future__ import annotations

import numpy as np

from fancam.identity.people import Naming, Person, crowding, make_people
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
