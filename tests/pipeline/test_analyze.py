"""The analysis folder: contract files (DESIGN.md) and reuse of valid caches."""

from __future__ import annotations

import csv
import json

import numpy as np

from fancam.io.tables import load_tracks
from fancam.pipeline.analyze import analyze


def test_tracks_csv_has_the_contract_columns_and_every_frame(gillhung_analysis):
    path = gillhung_analysis.folder / "tracks.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["frame", "t", "tracklet", "person", "x1", "y1", "x2", "y2", "score"]
    by_tracklet: dict[str, list[int]] = {}
    for r in rows:
        by_tracklet.setdefault(r["tracklet"], []).append(int(r["frame"]))
        assert float(r["x2"]) > float(r["x1"]) and float(r["y2"]) > float(r["y1"])
        # t comes from timestamps: this clip is constant 30 fps from pts 0
        assert abs(float(r["t"]) - int(r["frame"]) / 30) < 1e-3
    for frames in by_tracklet.values():
        # one row per decoded frame between a tracklet's first and last frame
        assert frames == list(range(frames[0], frames[-1] + 1))
    names = {r["person"] for r in rows}
    assert names <= {"P1", "P2", "P3", "unknown"}


def test_tracks_csv_carries_a_performer_across_short_gaps_between_her_tracklets(gillhung_analysis):
    # gillhung_dance f.. : a dancer's track ends for a few frames and identity joins the two pieces;
    # tracks.csv fills the gap with score-0 rows, as inside a tracklet (identity/people.bridge_gaps).
    tracks = load_tracks(gillhung_analysis.folder / "tracks.csv")
    filled = np.flatnonzero(tracks.score == 0)
    assert len(filled) > 0
    for i in filled:
        mine = (tracks.person == tracks.person[i]) & (tracks.score > 0)
        before = tracks.t[mine & (tracks.frame < tracks.frame[i])]
        after = tracks.t[mine & (tracks.frame > tracks.frame[i])]
        assert len(before) and len(after) and after.min() - before.max() <= 1.0 + 1e-6


def test_people_json_lists_each_performer(gillhung_analysis):
    doc = json.loads((gillhung_analysis.folder / "people.json").read_text())
    people = doc["people"]
    # The three dancers and nobody else (P2's last 0.5 s after the pile-up at the very end, f807-f822,
    # is hers: tests/identity/test_identify.py).
    assert [p["id"] for p in people] == [1, 2, 3]
    assert all(p["seen_s"] >= 20 for p in people)
    for p in people:
        assert {"id", "name", "confidence", "first_seen_s", "last_seen_s"} <= set(p)
        assert 0.0 <= p["confidence"] <= 1.0
        assert 0.0 <= p["first_seen_s"] < p["last_seen_s"] <= 27.5
    assert (gillhung_analysis.folder / "identity_timeline.png").stat().st_size > 1000


def test_rerun_reuses_every_stage(gillhung_analysis, bench_gallery):
    folder = gillhung_analysis.folder
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.suffix in (".npz", ".csv")}
    again = analyze(gillhung_analysis.info.path, gallery=bench_gallery, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.suffix in (".npz", ".csv")} == stamps
    np.testing.assert_array_equal(again.cast.person, gillhung_analysis.cast.person)
    assert again.stage_seconds.get("detect") is None  # nothing was detected again
    assert again.reused == ("scan", "appearance", "identity")
    assert again.recorded_seconds == gillhung_analysis.recorded_seconds  # the times of the run that did it
    assert again.recorded_seconds["detect"] > 0 and again.recorded_seconds["appearance"] > 0
