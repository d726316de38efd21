"""The miss diagnosis gives every unmatched GT row exactly one cause, and the right one when the cause is known."""

from __future__ import annotations

import numpy as np

from bench_detect_misses import CAUSES, detection_frames, diagnose, variant_value
from clips import clip_named
from fancam.io.tables import load_gt


def _total(causes: dict[str, int]) -> int:
    return sum(n for cause, n in causes.items() if cause in CAUSES)


def test_every_missed_row_gets_one_cause() -> None:
    # hamilton: 4 shots (the schedule replay is checked against the scan inside diagnose), 21 GT rows.
    result = diagnose(clip_named("hamilton"), {}, {}, listing=False)
    assert result["n"] == int((~load_gt(clip_named("hamilton").gt).uncertain).sum())
    assert _total(result["causes"]) == result["n"] - result["hit"] == len(result["rows"])
    assert {row["cause"] for row in result["rows"]} <= set(CAUSES)


def test_an_impossible_score_threshold_shows_as_low_score() -> None:
    # Nobody scores 0.99 on fiyud, so every GT row is found by the raw detector but cut by the threshold.
    result = diagnose(clip_named("fiyud"), {"score_threshold": 0.99}, {}, listing=False)
    assert result["hit"] == 0
    assert result["causes"] == {"low score": result["n"]}


def test_dropping_every_tracklet_shows_as_dropped() -> None:
    # Tracklets must last 100 s: the detector and tracker find everyone, the tracklet rules drop them.
    result = diagnose(clip_named("fiyud"), {}, {"tk_min_duration_s": 100.0}, listing=False)
    assert result["hit"] == 0
    assert result["causes"]["dropped"] == result["n"]


def test_schedule_replay_detects_every_stride_and_shot_ends() -> None:
    frames = detection_frames(20, np.array([0, 7]), stride=3, ends=True)
    assert frames == [0, 3, 6, 7, 10, 13, 16, 19]
    assert detection_frames(20, np.array([0, 7]), stride=3, ends=False) == [0, 3, 6, 7, 10, 13, 16, 19]
    assert detection_frames(10, np.array([0]), stride=4, ends=False) == [0, 4, 8]
    assert detection_frames(10, np.array([0]), stride=4, ends=True) == [0, 4, 8, 9]


def test_a_tracker_variant_reaches_the_tracker() -> None:
    # No score reaches 1.0, so no track is ever confirmed: the detector finds everyone on fiyud (share 1 by
    # default), and every GT row is left to the tracker.
    result = diagnose(clip_named("fiyud"), {}, {"tr_high_score": 1.0, "tr_weak_score": 1.0}, listing=False)
    assert result["hit"] == 0
    assert result["causes"] == {"tracker": result["n"]}


def test_variant_values_are_numbers_flags_none_or_words() -> None:
    assert variant_value("0.25") == 0.25
    assert variant_value("False") is False and variant_value("true") is True
    assert variant_value("none") is None
    assert variant_value("alive") == "alive"
