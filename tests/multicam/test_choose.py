"""Angle scores and the edit: hand-made scores with a known best edit."""

from __future__ import annotations

import numpy as np
import pytest

from fancam.camera.plan import FRAMINGS
from fancam.multicam.choose import (
    AngleView,
    ChooseConfig,
    Scores,
    Shot,
    bridge_gaps,
    choose_shots,
    nearest_frames,
    score_angles,
)
from fancam.types import Timeline, TrackTable

FPS = 30
BEATS = np.arange(0.26, 10.0, 0.5)  # 120 BPM, off the frame grid by a few ms


def _scores(total: np.ndarray, speed: np.ndarray | None = None) -> Scores:
    """Scores of A angles over 10 s at 30 fps; NaN in ``total`` = the angle has no frame there."""
    a, k = total.shape
    t = np.arange(k) / FPS
    frame = np.where(np.isfinite(total), np.arange(k)[None, :], -1)
    seen = np.isfinite(total)
    speed = np.zeros((a, k)) if speed is None else speed
    return Scores(t, frame, seen, {}, total, speed)


def _span(t0: float, t1: float, n: int = 10 * FPS) -> np.ndarray:
    t = np.arange(n) / FPS
    return (t >= t0 - 1e-9) & (t < t1 - 1e-9)


def _angles_per_frame(shots: list[Shot], n: int) -> np.ndarray:
    out = np.full(n, -1)
    for s in shots:
        out[s.start: s.end] = s.angle
    return out


def _check_edit(shots: list[Shot], scores: Scores, config: ChooseConfig, beats: np.ndarray | None) -> None:
    """Invariants of every edit: contiguous, covered, long enough shots, cuts on beats or at an angle's end."""
    n = len(scores.t)
    assert shots[0].start == 0 and shots[-1].end == n
    assert all(a.end == b.start and a.angle != b.angle for a, b in zip(shots[:-1], shots[1:], strict=True))
    used = _angles_per_frame(shots, n)
    assert np.all(scores.frame[used, np.arange(n)] >= 0), "an angle is used where it has no frame"
    if len(shots) > 1:
        assert min(s.end - s.start for s in shots) >= round(config.min_shot_s * FPS)
    for s in shots[1:]:
        t = scores.t[s.start]
        on_beat = beats is not None and np.min(np.abs(beats - t)) <= 0.5 / FPS
        ends = any(scores.frame[a, s.start - 1] >= 0 > scores.frame[a, s.start] for a in range(scores.n_angles))
        assert on_beat or ends, f"cut at {t:.3f} s is neither on a beat nor where an angle ends"


def test_a_better_angle_is_used_where_it_exists() -> None:
    total = np.full((2, 300), 0.5)
    total[1] = np.where(_span(3.0, 7.0), 0.9, np.nan)
    scores, config = _scores(total), ChooseConfig()
    shots = choose_shots(scores, BEATS, config)
    _check_edit(shots, scores, config, BEATS)
    used = _angles_per_frame(shots, 300)
    assert [s.angle for s in shots] == [0, 1, 0]
    # Angle 1 from the first beat after it starts (3.26 s) to the last beat before it ends (6.76 s):
    # staying the last 0.24 s and cutting off the beat would gain 0.4 x 0.24 s but cost 0.5 s.
    assert shots[1].start == round(3.26 * FPS) and shots[1].end == round(6.76 * FPS)
    assert set(used[_span(3.3, 6.7)].tolist()) == {1}


def test_a_short_advantage_is_not_worth_a_shot() -> None:
    total = np.array([np.full(300, 0.5), np.full(300, 0.3)])
    # Better for 1 s only: a shot lasts 2 s, so it would also show 1 s of the worse view, and cost two cuts.
    total[1, _span(4.0, 5.0)] = 0.7
    shots = choose_shots(_scores(total), BEATS, ChooseConfig())
    assert shots == [Shot(0, 300, 0)]


def test_equal_angles_do_not_flicker() -> None:
    rng = np.random.default_rng(0)
    total = 0.7 + 0.02 * rng.standard_normal((3, 300))
    scores, config = _scores(total), ChooseConfig()
    shots = choose_shots(scores, BEATS, config)
    _check_edit(shots, scores, config, BEATS)
    assert len(shots) == 1


def test_an_angle_that_ends_forces_a_cut() -> None:
    total = np.full((2, 300), np.nan)
    total[0, _span(0.0, 6.0)] = 0.9  # the better angle stops at 6 s
    total[1, _span(4.0, 10.0)] = 0.6
    scores, config = _scores(total), ChooseConfig()
    shots = choose_shots(scores, BEATS, config)
    _check_edit(shots, scores, config, BEATS)
    assert [s.angle for s in shots] == [0, 1]
    assert 4.0 <= scores.t[shots[1].start] <= 6.0


def test_no_cut_while_she_jumps_across_the_frame() -> None:
    total = np.full((2, 300), 0.5)
    total[1] = np.where(_span(3.0, 10.0), 0.9, np.nan)
    speed = np.zeros((2, 300))
    speed[:, _span(2.9, 4.3)] = 2.5  # a jump across the frame, seen in both angles
    scores, config = _scores(total, speed), ChooseConfig()
    shots = choose_shots(scores, BEATS, config)
    _check_edit(shots, scores, config, BEATS)
    assert [s.angle for s in shots] == [0, 1]
    cut = scores.t[shots[1].start]
    assert cut == pytest.approx(4.76, abs=0.5 / FPS)  # the first beat after the jump
    # Without the rule the cut would fall on the first beat in angle 1's range.
    free = choose_shots(_scores(total), BEATS, config)
    assert scores.t[free[1].start] == pytest.approx(3.26, abs=0.5 / FPS)


def test_without_a_beat_cuts_fall_on_a_grid() -> None:
    total = np.full((2, 300), 0.5)
    total[1] = np.where(_span(3.1, 10.0), 0.9, np.nan)
    config = ChooseConfig(grid_s=0.5)
    shots = choose_shots(_scores(total), None, config)
    assert [s.angle for s in shots] == [0, 1]
    assert shots[1].start == round(3.5 * FPS)  # the first grid point where angle 1 exists


def test_score_terms_prefer_the_larger_whole_unoccluded_view() -> None:
    n = 60
    timeline = Timeline(np.arange(n) / FPS, np.zeros(1, np.int64))
    box = np.array([100.0, 100.0, 160.0, 300.0])  # 200 px tall in a 640x360... frame
    small = np.tile(box / 2, (n, 1))  # the same moment seen from farther away
    big = np.tile(box, (n, 1))
    nobody = TrackTable.empty()
    covering = TrackTable(np.arange(n), np.full(n, 9), np.tile([[120.0, 100.0, 200.0, 300.0]], (n, 1)),
                          np.ones(n), np.ones(n, bool))
    views = [
        AngleView(timeline, (360, 640), small, nobody, None, 0.0, 1.0),
        AngleView(timeline, (360, 640), big, nobody, None, 0.0, 1.0),
        AngleView(timeline, (360, 640), big, covering, None, 0.0, 1.0),  # someone stands in front
    ]
    scores = score_angles(timeline.t, views, FRAMINGS["full"])
    assert scores.parts["size"][0].mean() == pytest.approx(0.5)
    assert scores.parts["size"][1].mean() == pytest.approx(1.0)
    assert scores.parts["clear"][1].mean() == 1.0
    assert scores.parts["clear"][2].mean() == pytest.approx(1 - 40 / 60)
    assert np.all(scores.total[1] > scores.total[0]) and np.all(scores.total[1] > scores.total[2])


def test_an_angle_is_only_scored_where_it_has_frames() -> None:
    n = 90
    timeline = Timeline(np.arange(n) / FPS, np.zeros(1, np.int64))
    boxes = np.tile([100.0, 100.0, 160.0, 300.0], (n, 1))
    late = AngleView(timeline, (360, 640), boxes, TrackTable.empty(), None, 1.0, 1.0)  # starts at 1 s
    out_t = np.arange(150) / FPS
    scores = score_angles(out_t, [late], FRAMINGS["full"])
    assert np.all(scores.frame[0, :30] == -1) and np.all(np.isnan(scores.total[0, :30]))
    assert scores.frame[0, 30] == 0 and scores.frame[0, 119] == 89 and np.all(scores.frame[0, 120:] == -1)


def test_bridge_gaps_fills_short_gaps_only() -> None:
    t = np.arange(100) / FPS
    boxes = np.tile([0.0, 0.0, 10.0, 20.0], (100, 1))
    boxes[10:20] = np.nan  # 0.37 s gap: bridged
    boxes[40:90] = np.nan  # 1.7 s gap: kept
    out = bridge_gaps(boxes, t, 1.0)
    assert np.isfinite(out[10:20]).all() and np.isnan(out[40:90]).all()


def test_nearest_frames() -> None:
    source = np.array([0.0, 0.04, 0.08, 0.12])
    assert nearest_frames(np.array([-0.1, 0.0, 0.05, 0.13, 0.2]), source, 0.02).tolist() == [-1, 0, 1, 3, -1]
