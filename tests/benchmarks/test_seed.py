"""The seed prototype's outputs from an analysis: names per whole tracklet, and its lagging camera."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import shared_file
from fancam.errors import UsageError
from fancam.eval.metrics import crop_lag, crop_scores, evaluate
from fancam.identity.appearance import Appearance
from fancam.identity.gallery import Gallery, GalleryMember
from fancam.identity.people import Cast
from fancam.io.tables import CropTable, GroundTruth, load_crop, load_gt, load_tracks, write_tracks_csv
from fancam.pipeline.analyze import Analysis
from fancam.types import Timeline, TrackTable, VideoInfo
from seed import (
    CROP_VARIANTS,
    seed_crop_path,
    seed_identity,
    seed_target_boxes,
    seed_tracks,
    write_seed,
)

FPS = 30.0


def _unit(i: int) -> np.ndarray:
    v = np.zeros(128, np.float32)
    v[i] = 1.0
    return v


def _gallery(groups: dict[str, list[str]]) -> Gallery:
    """Members with one orthogonal embedding each (member k of the whole gallery -> axis k)."""
    members, k = [], 0
    for group, names in groups.items():
        for name in names:
            photos = (Path(f"{name}.jpg"),)
            members.append(GalleryMember(group, name, _unit(k)[None], photos, np.ones(1, np.float32)))
            k += 1
    return Gallery(Path("gallery"), tuple(members), model_id="test")


def _tracks(spans: dict[int, tuple[int, int]], x0: float = 100.0) -> TrackTable:
    """Tracklets present on [first, last] frames, side by side, 200 px tall boxes."""
    rows = [(f, t) for t, (a, b) in spans.items() for f in range(a, b + 1)]
    rows.sort()
    frame = np.array([f for f, _ in rows])
    tid = np.array([t for _, t in rows])
    x = x0 + 150.0 * tid
    xyxy = np.stack([x, np.full(len(x), 50.0), x + 80, np.full(len(x), 250.0)], axis=1)
    return TrackTable(frame, tid, xyxy, np.full(len(rows), 0.9), np.ones(len(rows), bool))


def _appearance(tracks: TrackTable, faces: dict[int, list[np.ndarray]]) -> Appearance:
    """One sample per listed face at the tracklet's first rows, plus one faceless sample per tracklet."""
    rows, emb = [], []
    for t in tracks.track_ids().tolist():
        mine = np.flatnonzero(tracks.track_id == t)
        vectors = faces.get(t, [])
        for k, v in enumerate(vectors):
            rows.append(mine[k])
            emb.append(v / np.linalg.norm(v))
        rows.append(mine[len(vectors)])
        emb.append(np.full(128, np.nan, np.float32))
    rows = np.array(rows)
    order = np.argsort(tracks.frame[rows], kind="stable")
    rows, emb = rows[order], np.array(emb, np.float32)[order]
    quality = np.where(np.isfinite(emb[:, 0]), 0.9, np.nan).astype(np.float32)
    return Appearance(rows, tracks.frame[rows], np.zeros((len(rows), 0), np.float32), emb, quality,
                      np.where(np.isfinite(quality), 40.0, np.nan).astype(np.float32))


def test_every_tracklet_named_no_unknown_duplicates_allowed() -> None:
    tracks = _tracks({1: (0, 29), 2: (0, 29), 3: (10, 29), 4: (0, 5)})
    a, b = _unit(0), _unit(1)
    faces = {
        1: [a + 0.1 * b, a],  # clearly A
        2: [a + 0.5 * b, b, a],  # 2 votes A, 1 vote B -> A, at the same time as tracklet 1
        4: [0.1 * a + 0.2 * b + _unit(5)],  # a stranger: still forced onto the closest member, B
        # 3 has no face: the seed still names it (all members tie -> the first one, A)
    }
    identity = seed_identity(tracks, _appearance(tracks, faces), _gallery({"g": ["A", "B"]}))
    assert identity.names == {1: "A", 2: "A", 3: "A", 4: "B"}
    assert identity.votes == {1: 2, 2: 2, 3: 0, 4: 1} and identity.faces == {1: 2, 2: 3, 3: 0, 4: 1}
    assert identity.guessed == 1 and identity.group == "g"
    assert identity.tracklets_of("A") == [1, 2, 3]  # most votes first, then lowest id
    rows = seed_tracks(tracks, Timeline(np.arange(30) / FPS, np.array([0])), identity)
    assert "unknown" not in set(rows.person.tolist()) and len(rows.frame) == len(tracks)
    at_12 = rows.person[rows.frame == 12].tolist()
    assert at_12.count("A") == 3  # one member in three places at once: the seed allows it


def test_group_vote_and_no_gallery() -> None:
    tracks = _tracks({1: (0, 9), 2: (0, 9), 3: (0, 9)})
    gallery = _gallery({"g1": ["A", "B"], "g2": ["C", "D"]})
    faces = {1: [_unit(2)], 2: [_unit(3), _unit(3) + 0.2 * _unit(0)]}
    identity = seed_identity(tracks, _appearance(tracks, faces), gallery)
    # Every face looks like group g2, so only C and D are candidates; faceless 3 gets g2's first, C.
    assert identity.group == "g2" and identity.names == {1: "C", 2: "D", 3: "C"}
    bare = seed_identity(tracks, _appearance(tracks, faces), None)
    assert bare.names == {1: "tracklet-1", 2: "tracklet-2", 3: "tracklet-3"}
    assert bare.group is None and bare.guessed == 0


def test_tracks_csv_round_trip(tmp_path: Path) -> None:
    tracks = _tracks({2: (0, 4), 1: (3, 8)})
    identity = seed_identity(tracks, _appearance(tracks, {}), None)
    rows = seed_tracks(tracks, Timeline(np.arange(9) / FPS, np.array([0])), identity)
    loaded = load_tracks(write_tracks_csv(tmp_path / "tracks.csv", rows))
    assert loaded.frame.tolist() == rows.frame.tolist() and loaded.person.tolist() == rows.person.tolist()
    assert loaded.frame.tolist() == sorted(loaded.frame.tolist())
    np.testing.assert_allclose(loaded.xyxy, rows.xyxy, atol=0.05)


def _moving_target(n: int) -> TrackTable:
    """One person swaying left and right (period 2 s, +-150 px) in a 960x540 frame."""
    f = np.arange(n)
    cx = 480 + 150 * np.sin(2 * np.pi * f / (2 * FPS))
    xyxy = np.stack([cx - 50, np.full(n, 100.0), cx + 50, np.full(n, 400.0)], axis=1)
    return TrackTable(f, np.ones(n, np.int64), xyxy, np.full(n, 0.9), np.ones(n, bool))


def test_seed_camera_lags_a_moving_target() -> None:
    n = 240
    tracks = _moving_target(n)
    timeline = Timeline(np.arange(n) / FPS, np.array([0]))
    identity = seed_identity(tracks, _appearance(tracks, {}), None)
    for variant, config in CROP_VARIANTS.items():
        path = seed_crop_path(tracks, timeline, identity, "tracklet-1", (960, 540), config)
        assert len(path) == n and set(path.mode.tolist()) == {"follow"}
        # Score the lag against keyframes every 0.5 s of the true motion, as `fancam eval` does.
        keys = np.arange(0, n, 15)
        gt = GroundTruth("synthetic", keys, keys / FPS, np.array(["A"] * len(keys)),
                         tracks.xyxy[keys].astype(np.float64), *(np.zeros(len(keys), bool),) * 3)
        crop = CropTable("seed", np.arange(n), timeline.t, path.xyxy.astype(np.float64), path.mode)
        lag = crop_lag(gt, crop, "A")
        # Median over 15 frames (~7 late) then mean over 8 (~3.5 late): about 10 frames, 0.35 s.
        assert lag is not None and 7 <= lag <= 14, (variant, lag)
    w = path.xyxy[:, 2] - path.xyxy[:, 0]
    h = path.xyxy[:, 3] - path.xyxy[:, 1]
    np.testing.assert_allclose(w / h, 9 / 16, rtol=1e-4)


def test_duplicates_follow_the_most_voted_tracklet() -> None:
    tracks = _tracks({1: (0, 9), 2: (5, 14)})
    faces = {1: [_unit(0)], 2: [_unit(0), _unit(0)]}
    identity = seed_identity(tracks, _appearance(tracks, faces), _gallery({"g": ["A", "B"]}))
    boxes = seed_target_boxes(tracks, identity, "A", 16)
    x1 = boxes[:, 0]
    assert np.isnan(x1[15]) and (x1[:5] == 250).all() and (x1[5:15] == 400).all()
    with pytest.raises(UsageError, match="named no tracklet 'B'"):
        seed_crop_path(tracks, Timeline(np.arange(16) / FPS, np.array([0])), identity, "B", (960, 540))


def test_write_seed_on_real_labels(tmp_path: Path) -> None:
    """The bench clip's hand-labelled P1..P3 as tracklets: seed outputs score like ours, camera late."""
    gt = load_gt(shared_file("bench/gillhung_dance.csv"))
    n = int(gt.frame.max()) + 1
    frames, ids, boxes = [], [], []
    for k, name in enumerate(("P1", "P2", "P3"), start=1):
        rows = np.flatnonzero(gt.person == name)
        f = np.arange(gt.frame[rows].min(), gt.frame[rows].max() + 1)
        frames.append(f)
        ids.append(np.full(len(f), k))
        boxes.append(np.stack([np.interp(f, gt.frame[rows], gt.xyxy[rows, j]) for j in range(4)], axis=1))
    tracks = TrackTable(np.concatenate(frames), np.concatenate(ids), np.concatenate(boxes),
                        np.full(sum(map(len, frames)), 0.9), np.ones(sum(map(len, frames)), bool)).sorted()
    faces = {1: [_unit(0)] * 3, 2: [_unit(1)] * 2, 3: [_unit(2), _unit(0) + _unit(2) * 1.2]}
    _appearance(tracks, faces).save(tmp_path / "appearance.npz")
    info = VideoInfo(tmp_path / "dance.mp4", 360, 640, 0, FPS, n / FPS, n, "h264", False)
    timeline = Timeline(np.arange(n) / FPS, np.array([0]))
    analysis = Analysis(tmp_path, info, timeline, tracks, Cast(np.ones(len(tracks), np.int64), ()), {})
    out = write_seed(analysis, tmp_path / "seed", _gallery({"gillhung_dance": ["P1", "P2", "P3"]}))
    assert out.identity.names == {1: "P1", 2: "P2", 3: "P3"}
    assert sorted(out.crops) == [(p, v) for p in ("P1", "P2", "P3") for v in CROP_VARIANTS]
    for (target, _), path in out.crops.items():
        report = evaluate(out.tracks_csv, gt, named=True, crop_csv=path, target=target, frame_size=(360, 640))
        assert report.identity.accuracy == 1.0
        assert report.crop.hit_rate > 0.8 and report.crop.wide_share == 0.0
        assert report.crop.lag_frames is not None and report.crop.lag_frames > 0  # the seed is late
        assert len(load_crop(path).frame) == n
    # Directly, too: the real labels' motion makes the trailing smoother late by several frames.
    scores = crop_scores(gt, load_crop(out.crops[("P1", "seed")]), "P1", (360, 640))
    assert scores.lag_frames >= 5
