"""The switch diagnosis finds every change of GT performer inside a tracklet, and nothing else."""

from __future__ import annotations

from bench_switches import switches


def test_every_change_of_performer_is_one_switch() -> None:
    seq = {
        1: [(0, "P1"), (15, "P1"), (30, "P2"), (45, "P2"), (60, "P1")],  # two switches: 15->30, 45->60
        2: [(0, "P3"), (15, "P3")],  # one performer all along
        3: [(30, "P4")],  # a single keyframe cannot switch
    }
    assert switches(seq) == [
        {"tracklet": 1, "from": "P1", "to": "P2", "last_frame_before": 15, "first_frame_after": 30},
        {"tracklet": 1, "from": "P2", "to": "P1", "last_frame_before": 45, "first_frame_after": 60},
    ]
