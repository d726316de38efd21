"""Camera path planning: framing, smoothness, lag, borders, lost targets and shot cuts."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from conftest import shared_file
from fancam.camera.plan import (
    ASPECTS,
    AUTO,
    FRAMINGS,
    CameraConfig,
    CropPath,
    SceneBoxes,
    check_framing,
    choose_framing,
    framing_preset,
    parse_aspect,
    plan_camera,
    uncertain_spans,
    write_crop_path,
)
from fancam.errors import InputError, UsageError
from fancam.geometry import head_point
from fancam.io.tables import CROP_COLUMNS, load_crop
from fancam.types import Timeline

FPS = 30.0
FRAME = (1280, 720)


def person(cx: np.ndarray, top: float = 200.0, height: float = 300.0) -> np.ndarray:
    """(F, 4) boxes of a standing person (width 0.4 h) whose centre x follows ``cx``."""
    cx = np.asarray(cx, np.float64)
    w = 0.4 * height
    return np.stack([cx - w / 2, np.full_like(cx, top), cx + w / 2, np.full_like(cx, top + height)], axis=1)


def timeline(n: int, shots: tuple[int, ...] = (0,), fps: float = FPS) -> Timeline:
    return Timeline(np.arange(n) / fps, np.asarray(shots, np.int64))


def lag_frames(camera: np.ndarray, target: np.ndarray, max_shift: int = 30) -> int:
    """Shift (frames) maximising the correlation of camera(f + s) with target(f); > 0 = camera late."""
    n = len(target)
    scores = {
        s: np.corrcoef(camera[max_shift + s: n - max_shift + s], target[max_shift: n - max_shift])[0, 1]
        for s in range(-max_shift, max_shift + 1)
    }
    return max(scores, key=scores.get)


def jitter(path: CropPath) -> float:
    """DESIGN.md jitter: mean |second difference of the crop centre| / crop height."""
    d2 = np.diff(path.centre.astype(np.float64), n=2, axis=0)
    return float(np.mean(np.hypot(d2[:, 0], d2[:, 1]) / path.height[1:-1]))


def inside(path: CropPath, points: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = path.xyxy.T
    return (x1 <= points[:, 0]) & (points[:, 0] <= x2) & (y1 <= points[:, 1]) & (points[:, 1] <= y2)


# ----------------------------------------------------------------------------------------- presets
def test_presets_and_aspects_parse() -> None:
    assert framing_preset("upper") is FRAMINGS["upper"]
    assert check_framing(AUTO) == "auto" and check_framing("face") == "face"
    with pytest.raises(UsageError, match="auto, full, upper, face"):
        check_framing("wide")
    assert parse_aspect("9:16") == pytest.approx(9 / 16)
    assert parse_aspect("4:5") == pytest.approx(0.8)
    with pytest.raises(UsageError, match="full, upper, face"):
        framing_preset("medium")
    for bad in ("916", "9:0", "a:b", "-9:16", "1:2:3"):
        with pytest.raises(UsageError, match="aspect"):
            parse_aspect(bad)


@pytest.mark.parametrize("framing", ["full", "upper", "face"])
def test_framing_sets_size_and_head_position(framing: str) -> None:
    """A still performer appears at the preset's scale, head point at the preset's height."""
    n = 90
    boxes = person(np.full(n, 640.0), top=150, height=400)
    preset = FRAMINGS[framing]
    path = plan_camera(boxes, FRAME, timeline(n), CameraConfig(framing=preset))
    assert (path.mode == "follow").all()
    assert np.allclose(path.height, min(720, preset.height_ratio * 400), rtol=0.02)
    head = head_point(boxes)
    head_y = (head[:, 1] - path.xyxy[:, 1]) / path.height
    if preset.height_ratio * 400 < 700:  # not clamped by the frame's top or bottom
        assert np.allclose(head_y, preset.head_y, atol=0.05)


@pytest.mark.parametrize("aspect", list(ASPECTS))
@pytest.mark.parametrize("framing", ["full", "face"])
def test_crop_stays_inside_frame_with_exact_aspect(aspect: str, framing: str) -> None:
    # A performer walking across the whole frame, into the corners, growing taller than the frame.
    n = 300
    t = np.arange(n) / FPS
    cx = np.interp(t, [0, 3, 6, 10], [-50, 1330, 100, 1200])
    height = np.interp(t, [0, 5, 10], [200, 900, 300])
    boxes = np.stack([cx - 0.2 * height, 700 - height, cx + 0.2 * height, np.full(n, 700.0)], axis=1)
    cfg = CameraConfig(framing=FRAMINGS[framing], aspect=ASPECTS[aspect])
    path = plan_camera(boxes, FRAME, timeline(n), cfg)
    x1, y1, x2, y2 = path.xyxy.astype(np.float64).T
    assert (x1 >= -1e-3).all() and (y1 >= -1e-3).all()
    assert (x2 <= FRAME[0] + 1e-3).all() and (y2 <= FRAME[1] + 1e-3).all()
    assert np.allclose((x2 - x1) / (y2 - y1), ASPECTS[aspect], rtol=1e-4)
    # The biggest crop is the largest of that aspect that fits (shrunk, never letterboxed).
    assert path.height.max() <= min(FRAME[1], FRAME[0] / ASPECTS[aspect]) + 1e-3


# ----------------------------------------------------------------------------------------- motion
def test_still_noisy_target_gives_a_still_camera() -> None:
    rng = np.random.default_rng(1)
    n = 300
    boxes = person(np.full(n, 640.0)) + rng.normal(0, 4, (n, 4))  # detector jitter of ~4 px
    path = plan_camera(boxes, FRAME, timeline(n), CameraConfig())
    assert np.ptp(path.centre, axis=0).max() < 0.5
    assert np.ptp(path.height) < 0.5
    assert jitter(path) < 1e-4


def test_moving_target_is_followed_without_lag() -> None:
    n = 600
    t = np.arange(n) / FPS
    cx = 640 + 300 * np.sin(2 * np.pi * t / 4)
    boxes = person(cx)
    for framing in ("full", "face"):
        path = plan_camera(boxes, FRAME, timeline(n), CameraConfig(framing=FRAMINGS[framing]))
        assert lag_frames(path.centre[:, 0], cx) == 0
        assert inside(path, head_point(boxes)).all()


def test_prototype_smoother_lags_on_the_same_target() -> None:
    """Sanity check of the lag measure: the seed's trailing median + mean smoother is late."""
    n = 600
    t = np.arange(n) / FPS
    cx = 640 + 300 * np.sin(2 * np.pi * t / 4)
    med = np.array([np.median(cx[max(0, i - 15): i + 1]) for i in range(n)])
    trailing = np.array([np.mean(med[max(0, i - 7): i + 1]) for i in range(n)])
    assert lag_frames(trailing, cx) >= 8


def test_fast_move_is_followed_without_overshoot() -> None:
    n = 450
    t = np.arange(n) / FPS
    cx = np.interp(t, [0, 6, 6.4, 15], [400, 400, 800, 800])  # a 400 px dash in 0.4 s
    boxes = person(cx)
    for framing in ("full", "face"):
        path = plan_camera(boxes, FRAME, timeline(n), CameraConfig(framing=FRAMINGS[framing]))
        x = path.centre[:, 0]
        assert x.min() >= 400 - 0.5 and x.max() <= 800 + 0.5
        assert lag_frames(x, cx) == 0
        assert inside(path, head_point(boxes)).all()
        assert abs(x[-1] - 800) < 0.5 and abs(x[0] - 400) < 0.5


def test_zoom_does_not_pump_when_arms_go_up() -> None:
    """Raised arms stretch the box upwards for a moment; the crop size must not follow."""
    n = 300
    boxes = person(np.full(n, 640.0), top=250, height=300)
    for start in (40, 120, 200):
        boxes[start: start + 12, 1] -= 90  # arms up for 0.4 s: box 30% taller
    path = plan_camera(boxes, FRAME, timeline(n), CameraConfig())
    assert np.ptp(path.height) < 1.0


def test_arms_stretching_the_box_sideways_do_not_move_the_camera() -> None:
    n = 300
    boxes = person(np.full(n, 640.0))
    for start, side in ((40, 2), (130, 0), (220, 2)):
        sign = 1 if side == 2 else -1
        boxes[start: start + 12, side] += sign * 60  # an arm stretched out for 0.4 s
    path = plan_camera(boxes, FRAME, timeline(n), CameraConfig(framing=FRAMINGS["upper"]))
    assert np.ptp(path.centre[:, 0]) < 1.0


def test_frame_rate_does_not_change_the_path() -> None:
    """Parameters are in seconds: the same motion at 25 and 60 fps gives the same camera."""
    paths = {}
    for fps in (25.0, 60.0):
        t = np.arange(int(10 * fps)) / fps
        cx = np.interp(t, [0, 3, 5, 10], [300, 300, 900, 900])
        path = plan_camera(person(cx), FRAME, timeline(len(t), fps=fps), CameraConfig())
        paths[fps] = np.interp(np.arange(0, 9.9, 0.1), t, path.centre[:, 0])
    assert np.abs(paths[25.0] - paths[60.0]).max() < 15


# ----------------------------------------------------------------------------------------- lost target
def test_lost_target_holds_then_eases_out_and_back_in() -> None:
    # Lost in the middle of the picture for 5 s, found again 500 px away.
    n = 330
    boxes = person(np.full(n, 300.0))
    boxes[90:240] = np.nan
    boxes[240:] = person(np.full(n - 240, 800.0))
    cfg = CameraConfig()
    path = plan_camera(boxes, FRAME, timeline(n), cfg)
    mode, height, x = path.mode, path.height, path.centre[:, 0]
    hold = int(cfg.hold_s * FPS)  # 30 frames
    # She is most likely still where she was lost: the camera holds there, following, for hold_s ...
    assert (mode[: 90 + hold] == "follow").all() and np.allclose(x[: 90 + hold], 300, atol=0.5)
    # ... then eases out to the widest crop ...
    assert set(mode[90 + hold: 240 - hold]) == {"search", "wide"}
    ease_out = height[90 + hold: 90 + hold + int(cfg.ease_s * FPS)]
    assert (np.diff(ease_out) >= -1e-3).all()
    assert height[165] == pytest.approx(FRAME[1]) and (mode[155:175] == "wide").all()
    # ... and eases back in, so that it is on her hold_s before she is found (offline: she is there).
    assert (np.diff(height[180: 240 - hold]) <= 1e-3).all()
    assert (mode[240 - hold:] == "follow").all() and np.allclose(x[240 - hold:], 800, atol=0.5)
    # No jumps anywhere: the crop moves at most a few percent of its height per frame.
    step = np.abs(np.diff(path.xyxy.astype(np.float64), axis=0)).max(axis=1) / path.height[1:]
    assert step.max() < 0.05


def test_target_lost_at_the_frame_edge_is_not_held() -> None:
    # Lost at the left edge (she may have left the picture): a short hold in "search", then wide.
    n = 330
    boxes = person(np.full(n, 40.0))  # box x from -20 to 100: touches the edge
    boxes[90:240] = np.nan
    boxes[240:] = person(np.full(n - 240, 800.0))
    cfg = CameraConfig()
    path = plan_camera(boxes, FRAME, timeline(n), cfg)
    exit_hold = int(cfg.exit_hold_s * FPS)
    assert (path.mode[90: 90 + exit_hold] == "search").all()
    assert np.allclose(path.height[90: 90 + exit_hold], path.height[89], atol=0.01)  # no zoom yet
    assert "wide" in set(path.mode[90:210])
    assert (path.mode[240 - int(cfg.hold_s * FPS):] == "follow").all()  # found inside: held before
    # Coming in at the side (partly in the picture before she is detected): the camera meets her there.
    enters = np.full((n, 4), np.nan)
    enters[240:] = person(np.full(n - 240, 1240.0))  # box x from 1180 to 1300: touches the right edge
    path = plan_camera(enters, FRAME, timeline(n), cfg)
    assert (path.mode[:150] == "wide").all() and (path.mode[240 - int(cfg.hold_s * FPS):] == "follow").all()


def test_gap_inside_the_picture_up_to_twice_hold_s_is_bridged() -> None:
    # 1.8 s without a box while she crosses 400 px: the camera pans along her estimated path.
    n = 240
    boxes = person(np.full(n, 300.0))
    boxes[120:] = person(np.full(n - 120, 700.0))
    boxes[66:120] = np.nan
    path = plan_camera(boxes, FRAME, timeline(n), CameraConfig())
    assert (path.mode == "follow").all()
    x = path.centre[:, 0]
    assert np.all(np.diff(x) >= -0.5) and 350 < x[93] < 650  # a smooth pan, not a hold and a jump
    step = np.abs(np.diff(path.xyxy.astype(np.float64), axis=0)).max(axis=1) / path.height[1:]
    assert step.max() < 0.05


def test_camera_is_on_the_target_from_the_cut_when_she_is_found_soon_after() -> None:
    # Shot 2 starts at frame 120; the detector finds her only 1 s later (merged with a neighbour,
    # blurred by the cut): the camera is on her from the first frame of the shot.
    n = 300
    boxes = person(np.full(n, 300.0))
    boxes[120:150] = np.nan
    boxes[150:] = person(np.full(n - 150, 900.0))
    path = plan_camera(boxes, FRAME, timeline(n, (0, 120)), CameraConfig())
    assert (path.mode == "follow").all()
    assert np.allclose(path.centre[120:150, 0], 900, atol=0.5)
    assert np.allclose(path.centre[:120, 0], 300, atol=0.5)  # no easing across the cut
    # Found 3 s after the cut: wide first, then on her hold_s before she is found.
    late = boxes.copy()
    late[120:210] = np.nan
    path = plan_camera(late, FRAME, timeline(n, (0, 120)), CameraConfig())
    assert path.mode[120] == "wide" and (path.mode[180:] == "follow").all()
    assert np.allclose(path.centre[180:210, 0], 900, atol=0.5)


def test_camera_widens_gently_while_following_a_long_estimate() -> None:
    # Lost in place for 6 s (rolling on the ground): held, following, and the crop widens a little
    # (she may have moved meanwhile), then tightens again when she is seen.
    n = 360
    boxes = person(np.full(n, 640.0))
    boxes[60:240] = np.nan
    cfg = CameraConfig()
    path = plan_camera(boxes, FRAME, timeline(n), cfg)
    assert (path.mode == "follow").all()
    base = path.height[0]
    assert path.height[150] > 1.1 * base and path.height.max() <= cfg.lost_zoom * base + 1
    assert path.height[-1] == pytest.approx(base, abs=1)
    assert np.allclose(path.centre[:, 0], 640, atol=0.5)
    # A short gap (bridged, 0.5 s) does not zoom at all.
    short = person(np.full(n, 640.0))
    short[100:115] = np.nan
    assert np.ptp(plan_camera(short, FRAME, timeline(n), cfg).height) < 1.0


def test_head_stays_in_its_place_when_she_crouches_and_fast_dashes_do_not_jerk_the_camera() -> None:
    cfg = CameraConfig(framing=FRAMINGS["upper"])
    n = 300
    boxes = person(np.full(n, 640.0), top=150, height=500)
    boxes[100:118, 1] += 150  # crouches for 0.6 s: head 150 px lower
    path = plan_camera(boxes, FRAME, timeline(n), cfg)
    head = head_point(boxes)
    where = (head[:, 1] - path.xyxy[:, 1]) / path.height
    # The head never drifts more than 15% of the crop height from its place (0.30 of the height from
    # the top): never out of the top of an upper-body shot.
    assert (np.abs(where - cfg.framing.head_y) <= 0.15).all()
    # A dash faster than the planning grid (400 px in 0.3 s) is kept in the crop frame by frame, by
    # an eased correction: no kink of the path (a plain per-frame clamp gives 0.073 crop heights).
    t = np.arange(n) / FPS
    dash = person(np.interp(t, [0, 5, 5.3, 10], [400, 400, 800, 800]))
    path = plan_camera(dash, FRAME, timeline(n), CameraConfig())
    assert inside(path, head_point(dash)).all()
    d2 = np.abs(np.diff(path.centre[:, 0].astype(np.float64), n=2))
    assert d2.max() < 0.05 * path.height[0]


def test_short_gap_is_bridged_and_flicker_ignored() -> None:
    n = 300
    t = np.arange(n) / FPS
    boxes = person(np.interp(t, [0, 10], [300, 900]))
    boxes[100:115] = np.nan  # 0.5 s occlusion: bridged, the camera stays on her estimated position
    path = plan_camera(boxes, FRAME, timeline(n), CameraConfig())
    assert (path.mode == "follow").all()
    assert not path.hidden.any()  # nobody else is known: bridged, not "hidden"
    assert np.ptp(path.height) < 1.0  # no zoom-out for a short occlusion
    flicker = np.full((n, 4), np.nan)
    flicker[150:153] = boxes[150:153]  # seen for 0.1 s only
    path = plan_camera(flicker, FRAME, timeline(n), CameraConfig())
    assert (path.mode == "wide").all()
    choppy = boxes.copy()
    for start in range(0, n, 15):
        choppy[start + 9: start + 15] = np.nan  # seen 0.3 s, lost 0.2 s, over and over
    path = plan_camera(choppy, FRAME, timeline(n), CameraConfig())
    assert set(path.mode) == {"follow"}  # followed throughout, never zoomed out
    assert np.ptp(path.height) < 1.0


def scene(boxes: np.ndarray, frames: range | np.ndarray) -> SceneBoxes:
    """SceneBoxes of one other person with ``boxes`` (F, 4) at ``frames``."""
    frames = np.asarray(list(frames))
    return SceneBoxes(frames, boxes[frames])


def test_target_hidden_behind_someone_is_held_not_lost() -> None:
    # She walks behind a group (one merged box, x 480-920) and is not detected for 4 s; their box
    # covers her interpolated position the whole time: the camera follows that estimate, flagged.
    n = 300
    t = np.arange(n) / FPS
    cx = np.interp(t, [0, 10], [300, 1100])
    boxes = person(cx)
    boxes[90:210] = np.nan  # she walks from x=540 to x=860 meanwhile
    occluder = np.tile([480.0, 180.0, 920.0, 520.0], (n, 1))
    others = scene(occluder, range(n))
    path = plan_camera(boxes, FRAME, timeline(n), CameraConfig(), others)
    assert (path.mode == "follow").all()
    assert path.hidden[90:210].all() and not path.hidden[:90].any() and not path.hidden[210:].any()
    # At most a gentle widening (lost_zoom: she may have moved), no ease out to the wide shot.
    assert path.height.max() <= CameraConfig().lost_zoom * path.height[0] + 1
    # The camera keeps panning along her estimated path (no hold-and-jump).
    assert np.all(np.diff(path.centre[60:240, 0]) >= -0.5)
    # Without the occluder the same 4 s gap (she reappears 1.1 box heights away) eases out.
    lost = plan_camera(boxes, FRAME, timeline(n), CameraConfig())
    assert "wide" in set(lost.mode[90:210]) and not lost.hidden.any()


def test_target_hidden_at_the_end_of_a_shot_is_held_while_covered() -> None:
    n = 300
    boxes = person(np.full(n, 640.0))
    boxes[150:] = np.nan  # she disappears behind someone for the rest of the shot ...
    occluder = np.tile([560.0, 180.0, 720.0, 520.0], (n, 1))
    others = scene(occluder, range(0, 240))  # ... who walks away at frame 240
    path = plan_camera(boxes, FRAME, timeline(n), CameraConfig(), others)
    assert path.hidden[150:240].all() and not path.hidden[240:].any()
    # Still following when uncovered (for hold_s: undetected is not gone), then easing out.
    hold = 240 + int(CameraConfig().hold_s * FPS)
    assert (path.mode[:hold] == "follow").all()
    assert set(path.mode[hold:]) <= {"search", "wide"} and "wide" in set(path.mode[hold:])
    assert np.allclose(path.centre[:hold, 0], 640, atol=0.5)


def test_target_lost_in_place_is_held() -> None:
    # Dancers rolling on the ground in the dark: no box for 3 s, found again where she was lost.
    n = 300
    boxes = person(np.full(n, 640.0))
    boxes[90:180] = np.nan
    boxes[180:] = person(np.full(n - 180, 700.0))  # 60 px away: 0.2 box heights
    path = plan_camera(boxes, FRAME, timeline(n), CameraConfig())
    assert (path.mode == "follow").all() and not path.hidden.any()
    assert np.ptp(path.height) < 1.0
    # At the frame's edge she may have left the picture: held for a short while only (1.5 s), a 3 s
    # gap eases out (and back in, to meet her where she is found).
    edge = person(np.full(n, 40.0))
    edge[90:135] = np.nan
    assert (plan_camera(edge, FRAME, timeline(n), CameraConfig()).mode == "follow").all()
    edge[90:180] = np.nan
    path = plan_camera(edge, FRAME, timeline(n), CameraConfig())
    assert (path.mode[90:135] == "search").all() and path.height[130] > 1.2 * path.height[80]
    # Longer than in_place_max_s (8 s): eases out too.
    n = 400
    long = person(np.full(n, 640.0))
    long[30:330] = np.nan  # 10 s
    path = plan_camera(long, FRAME, timeline(n), CameraConfig())
    assert "wide" in set(path.mode[30:330])


def test_wide_shot_frames_the_people_when_the_target_is_not_in_the_shot() -> None:
    # Landscape: a 9:16 "wide" crop is a slice of the frame; it shows the people in that shot.
    n = 240
    boxes = person(np.full(n, 300.0))
    boxes[120:] = np.nan  # shot 2 does not show her
    others = scene(person(np.full(n, 1050.0), top=100, height=500), range(120, n))
    path = plan_camera(boxes, FRAME, timeline(n, (0, 120)), CameraConfig(), others)
    assert (path.mode[120:] == "wide").all()
    assert np.allclose(path.centre[120:, 0], 1050, atol=1)
    assert path.height[120:].min() == pytest.approx(FRAME[1])


def test_auto_framing_picks_upper_body_in_a_tight_group_and_full_body_for_a_soloist() -> None:
    n = 60
    t = timeline(n)
    portrait = (720, 1280)
    # Five dancers in a line filling a portrait frame: a full-body crop shows two neighbours.
    line = [person(np.full(n, x), top=500, height=500) for x in (80, 220, 360, 500, 640)]
    others = SceneBoxes(np.concatenate([np.arange(n)] * 4),
                        np.concatenate([b for k, b in enumerate(line) if k != 2]))
    choice = choose_framing(line[2], portrait, 9 / 16, others)
    assert choice.framing is FRAMINGS["upper"]
    assert choice.others_in_full == pytest.approx(2.0)
    assert choice.reason.startswith("upper body (a 9:16 full-body crop shows 2.0 other people")
    # Upper body is then what the camera uses.
    path = plan_camera(line[2], portrait, t, CameraConfig(framing=choice.framing), others)
    assert np.allclose(path.height, FRAMINGS["upper"].height_ratio * 500, rtol=0.02)
    # A soloist on a landscape stage, the pianist far away: full body.
    pianist = SceneBoxes(np.arange(n), person(np.full(n, 100.0), top=400, height=150))
    choice = choose_framing(person(np.full(n, 900.0)), FRAME, 9 / 16, pianist)
    assert choice.framing is FRAMINGS["full"] and choice.others_in_full == 0.0
    assert choice.reason.startswith("full body")
    # Alone, or nobody known: full body.
    assert choose_framing(person(np.full(n, 900.0)), FRAME, 4 / 5).framing is FRAMINGS["full"]
    # Never seen: nothing to measure, full body.
    assert choose_framing(np.full((n, 4), np.nan), FRAME, 9 / 16, pianist).framing is FRAMINGS["full"]


def test_target_never_seen_gives_the_wide_shot() -> None:
    path = plan_camera(np.full((60, 4), np.nan), (640, 360), timeline(60), CameraConfig())
    assert (path.mode == "wide").all()
    assert np.allclose(path.xyxy, [[(640 - 360 * 9 / 16) / 2, 0, (640 + 360 * 9 / 16) / 2, 360]])


# ----------------------------------------------------------------------------------------- cuts
def test_no_interpolation_across_a_cut() -> None:
    n = 240
    cx = np.where(np.arange(n) < 120, 300.0, 360.0)  # after the cut the target is 60 px to the right
    boxes = person(cx)
    path = plan_camera(boxes, FRAME, timeline(n, (0, 120)), CameraConfig())
    x = path.centre[:, 0]
    assert np.allclose(x[:120], 300, atol=0.5) and np.allclose(x[120:], 360, atol=0.5)
    assert (path.mode == "follow").all()
    # The same boxes without the cut: a smooth pan with intermediate positions.
    smooth = plan_camera(boxes, FRAME, timeline(n), CameraConfig()).centre[:, 0]
    assert ((smooth > 305) & (smooth < 355)).sum() > 10


def test_target_absent_after_a_cut_goes_wide_then_reacquires() -> None:
    n = 360
    boxes = person(np.full(n, 300.0))
    boxes[120:240] = np.nan  # shot 2 (120-239) does not show the target
    boxes[240:] = person(np.full(120, 1000.0))  # shot 3 shows it elsewhere
    path = plan_camera(boxes, FRAME, timeline(n, (0, 120, 240)), CameraConfig())
    assert (path.mode[:120] == "follow").all()
    assert (path.mode[120:240] == "wide").all()
    assert (path.mode[240:] == "follow").all()
    assert np.allclose(path.centre[240:, 0], 1000, atol=1)
    # Shot 1's crop ends on the target, not easing towards shot 2 or 3.
    assert np.allclose(path.xyxy[100:120], path.xyxy[100], atol=0.01)


# ----------------------------------------------------------------------------------------- uncertainty
def test_uncertain_spans_are_where_the_camera_follows_a_doubtful_box() -> None:
    n = 300  # 10 s
    path = plan_camera(person(np.full(n, 640.0)), FRAME, timeline(n), CameraConfig())
    conf = np.full(n, 0.9)
    conf[30:60] = 0.3  # 1.0-2.0 s doubtful
    conf[60:66] = np.nan  # no box (bridged): joins the two doubtful runs
    conf[66:90] = 0.2
    conf[150:180] = 0.4  # 5.0-6.0 s
    assert uncertain_spans(path, timeline(n), conf, 0.5) == [(1.0, 89 / FPS), (5.0, 179 / FPS)]
    # Not where the camera follows nobody (wide), nor outside the rendered frames.
    wide = CropPath(path.xyxy, np.where(np.arange(n) >= 150, "wide", path.mode))
    assert uncertain_spans(wide, timeline(n), conf, 0.5) == [(1.0, 89 / FPS)]
    assert uncertain_spans(path, timeline(n), conf, 0.5, frames=np.arange(n) >= 75) == [
        (2.5, 89 / FPS), (5.0, 179 / FPS)]
    # Spans more than join_s apart stay apart; a higher threshold finds more.
    assert len(uncertain_spans(path, timeline(n), conf, 0.5, join_s=0.1)) == 3
    assert uncertain_spans(path, timeline(n), conf, 0.95) == [(0.0, 299 / FPS)]


# ----------------------------------------------------------------------------------------- csv
def test_crop_csv_roundtrip(tmp_path) -> None:
    n = 50
    tl = timeline(n)
    path = plan_camera(person(np.full(n, 500.0)), FRAME, tl, CameraConfig())
    out = write_crop_path(tmp_path / "clip.crop.csv", path, tl, np.arange(10, 40))
    with open(out, newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == CROP_COLUMNS == ("frame", "t", "x1", "y1", "x2", "y2", "mode")
    assert [int(r[0]) for r in rows[1:]] == list(range(10, 40))
    back = load_crop(out)
    assert np.array_equal(back.frame, np.arange(10, 40))
    assert np.allclose(back.t, tl.t[10:40], atol=1e-6)
    assert np.allclose(back.xyxy, path.xyxy[10:40], atol=0.01)
    assert (back.mode == path.mode[10:40]).all()
    assert [p.name for p in tmp_path.iterdir()] == ["clip.crop.csv"]  # no temp file left
    (tmp_path / "bad.csv").write_text("frame,t,x,y\n1,2,3,4\n")
    with pytest.raises(InputError, match="lacks column"):
        load_crop(tmp_path / "bad.csv")


def test_crop_path_validates_shapes_and_modes() -> None:
    with pytest.raises(ValueError):
        CropPath(np.zeros((3, 4)), np.array(["follow"] * 2))
    with pytest.raises(ValueError):
        CropPath(np.zeros((1, 4)), np.array(["zoom"]))
    with pytest.raises(ValueError):
        CropPath(np.zeros((2, 4)), np.array(["follow"] * 2), np.zeros(3, bool))
    assert not CropPath(np.zeros((2, 4)), np.array(["follow"] * 2)).hidden.any()
    with pytest.raises(ValueError):
        SceneBoxes(np.arange(3), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="one row per frame"):
        plan_camera(np.zeros((5, 4)), FRAME, timeline(6), CameraConfig())


# ----------------------------------------------------------------------------------------- real clip
def test_real_clip_labels_are_followed_steadily() -> None:
    """gillhung: the hand-labelled P2 track (every 15 frames, linear in between)."""
    gt = shared_file("bench/gillhung_dance.csv")
    with open(gt, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["person"] == "P2"]
    keys = np.array([int(r["frame"]) for r in rows])
    keyboxes = np.array([[float(r[k]) for k in ("x1", "y1", "x2", "y2")] for r in rows])
    n = 825
    boxes = np.full((n, 4), np.nan)
    span = np.arange(keys[0], keys[-1] + 1)
    boxes[span] = np.stack([np.interp(span, keys, keyboxes[:, k]) for k in range(4)], axis=1)
    for framing in ("full", "face"):
        path = plan_camera(boxes, (360, 640), timeline(n), CameraConfig(framing=FRAMINGS[framing]))
        seen = np.isfinite(boxes).all(axis=1)
        assert inside(path, np.nan_to_num(head_point(boxes)))[seen].all()
        # Naive camera: a crop of the same height centred on the head point in every frame.
        d2 = np.diff(head_point(boxes[seen]), n=2, axis=0)
        naive = float(np.mean(np.hypot(d2[:, 0], d2[:, 1]))) / float(path.height.mean())
        assert jitter(path) < 0.25 * naive
