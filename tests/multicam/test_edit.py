"""A multi-angle fancam of a real clip end to end: angle choice, pictures and sound in sync, outputs."""

from __future__ import annotations

import csv
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from multicam_media import FPS, MEMBER, Angle, angles  # noqa: F401 - fixture
from scipy.optimize import linear_sum_assignment

from conftest import shared_file
from fancam.cli import main
from fancam.errors import EXIT_OK, InputError, UsageError
from fancam.geometry import iou_matrix
from fancam.multicam.align import align_pair, load_audio
from fancam.multicam.angles import MIN_MATCH, find_performer, position_evidence
from fancam.multicam.edit import (
    EDL_COLUMNS,
    MulticamResult,
    expand_videos,
    is_angle_folder,
    make_multicam,
    read_edl,
)
from fancam.pipeline.produce import RenderOptions, Selection, target_boxes

FRAME_S = 1 / FPS


@pytest.fixture(scope="module")
def edit(angles: dict[str, Angle], tmp_path_factory: pytest.TempPathFactory) -> MulticamResult:
    """``fancam render A B C --member P2 --gallery bench/gallery`` through the API."""
    out = tmp_path_factory.mktemp("out") / "p2.mp4"
    return make_multicam([angles[n].path for n in "ABC"], Selection(member=MEMBER), RenderOptions(output=out),
                         gallery=shared_file("bench/gallery"), progress=False)


def _used(result: MulticamResult, n: int) -> np.ndarray:
    used = np.full(n, -1)
    for shot in result.shots:
        used[shot.start: shot.end] = shot.angle
    return used


def _crop_rows(result: MulticamResult) -> list[dict[str, str]]:
    with open(result.crop_csv, newline="") as f:
        return list(csv.DictReader(f))


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_the_performer_is_found_in_the_angles_that_show_her(edit: MulticamResult) -> None:
    a, b, _ = edit.angles
    assert a.person is not None and a.person.label == MEMBER
    assert b.person is not None and b.person.label == MEMBER
    assert edit.audio == 0  # A: the clean sound, and the only one as long as the edit


def test_the_better_angle_is_chosen_and_the_worse_never(edit: MulticamResult, angles: dict[str, Angle]) -> None:
    n = len(_crop_rows(edit))
    assert n == 300  # every frame of A (10 s at 30 fps)
    used = _used(edit, n)
    t = np.arange(n) / FPS
    # C (blurred, smaller than A) is never better; before B exists only A can be used.
    assert 2 not in used
    assert set(used[t < angles["B"].truth_offset_s].tolist()) == {0}
    # Where B exists and shows her (twice A's pixels on her, her face visible), B is used most of the
    # time: all of it but the time to the next beat after it starts, and what the 2 s minimum shot
    # and cutting only on beats cost.
    assert np.count_nonzero(used == 1) >= 0.7 * (7.5 - 2.3) * FPS, edit.shots


def test_the_edit_respects_beats_and_the_minimum_shot(edit: MulticamResult, angles: dict[str, Angle]) -> None:
    ends = [round((angles[n].truth_offset_s + (angles[n].spec.end_s - angles[n].spec.start_s)) * FPS)
            for n in "ABC"]
    assert len(edit.shots) >= 3  # A, then B, then A again after B ends
    for shot in edit.shots[1:]:
        t = shot.start / FPS
        on_beat = np.min(np.abs(edit.beats.t - t)) <= FRAME_S
        assert on_beat or shot.start in ends, f"cut at {t:.3f} s is off the beat"
    assert min(s.end - s.start for s in edit.shots) >= 2.0 * FPS


def test_pictures_come_from_the_right_source_frame(edit: MulticamResult, angles: dict[str, Angle]) -> None:
    rows = _crop_rows(edit)
    out = _frames(edit.output)
    assert len(out) == len(rows) == 300
    used = _used(edit, len(rows))
    names = {str(angles[n].path): n for n in "ABC"}
    for angle in (0, 1):
        k = int(np.flatnonzero(used == angle)[len(np.flatnonzero(used == angle)) // 2])  # mid-shot
        row = rows[k]
        name = names[row["source"]]
        frame = int(row["frame"])
        # The truth: output time k/FPS on A's clock is the angle's time k/FPS - offset.
        assert abs(frame - (k / FPS - angles[name].truth_offset_s) * FPS) <= 1, (name, k, frame)
        source = _frames(angles[name].path)
        box = [float(row[c]) for c in ("x1", "y1", "x2", "y2")]
        here = _difference(source[frame], box, out[k])
        assert here < 12, (name, here)
        neighbours = min(_difference(source[frame + d], box, out[k]) for d in (-3, 3))
        assert here < neighbours, "a neighbouring source frame matches better"


def _difference(source: np.ndarray, box: list[float], picture: np.ndarray) -> float:
    """Mean absolute difference between ``box`` of a source frame, scaled, and an output picture."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    h, w = picture.shape[:2]
    crop = cv2.resize(source[y1:y2, x1:x2], (w, h), interpolation=cv2.INTER_AREA)
    return float(np.mean(np.abs(crop.astype(np.float64) - picture)))


def test_the_sound_is_in_sync_with_the_pictures(edit: MulticamResult, angles: dict[str, Angle]) -> None:
    # The output's time 0 is A's time 0: its sound must align with A's at offset 0.
    alignment = align_pair(load_audio(angles["A"].path), load_audio(edit.output))
    assert abs(alignment.offset_s) < 0.003
    with av.open(str(edit.output)) as container:
        assert container.streams.audio and container.streams.video


def test_the_edl_lists_the_shots(edit: MulticamResult, angles: dict[str, Angle]) -> None:
    rows = read_edl(edit.edl)
    assert list(rows[0]) == list(EDL_COLUMNS)
    assert len(rows) == len(edit.shots)
    assert float(rows[0]["start"]) == 0.0
    assert abs(float(rows[-1]["end"]) - 10.0) < FRAME_S
    for a, b in zip(rows[:-1], rows[1:], strict=True):
        assert a["end"] == b["start"] and a["source"] != b["source"]
    for row in rows:
        name = Path(row["source"]).stem
        # Output time = source time + the angle's offset (within a frame).
        assert abs(float(row["start"]) - float(row["source_start"]) - angles[name].truth_offset_s) <= FRAME_S
        x1, y1, x2, y2 = (float(row[c]) for c in ("x1", "y1", "x2", "y2"))
        assert 0 <= x1 < x2 and 0 <= y1 < y2 and (x2 - x1) / (y2 - y1) == pytest.approx(9 / 16, abs=0.02)
    png = edit.timeline_png.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_person_number_is_matched_across_angles(edit: MulticamResult, angles: dict[str, Angle]) -> None:
    # --person N names a performer of the first video; the match in B (mirrored, zoomed) must be the
    # same dancer: the one B's gallery naming calls P2, whose boxes map onto A's boxes of her.
    analyses = [a.analysis for a in edit.angles]
    first = edit.angles[0].person
    assert first is not None
    # Appearance alone is weak here (A is 180x320: a face at best in a few frames, depending on the
    # detector's boxes; P2's mask; B is 25% brighter): it may or may not reach MIN_MATCH, but it never
    # names another dancer.
    alone = find_performer(analyses, Selection(person=first.id))[1][0]
    assert alone is None or alone.label == MEMBER
    # The position cue tells on its own: one mapping carries all three dancers of A onto B's, one to
    # one, every gallery name onto the same name, and her onto P2.
    alignments = [a.alignment for a in edit.angles]
    position = position_evidence(analyses[0], analyses[1], alignments[0], alignments[1])
    rows, cols = linear_sum_assignment(-position)
    carried = [(r, c) for r, c in zip(rows, cols, strict=True) if position[r, c] >= MIN_MATCH]
    assert len(carried) == 3, position
    people_a, people_b = analyses[0].cast.people, analyses[1].cast.people
    for r, c in carried:
        if people_a[r].member is not None and people_b[c].member is not None:
            assert people_a[r].label == people_b[c].label, position
    assert people_b[dict(carried)[[p.id for p in people_a].index(first.id)]].label == MEMBER
    found = find_performer(analyses, Selection(person=first.id), alignments)
    person_b, evidence = found[1]
    assert person_b is not None and person_b.label == MEMBER and evidence >= 2
    box_a = target_boxes(analyses[0], first)
    box_b = target_boxes(analyses[1], person_b)
    ious = []
    for f in range(0, analyses[1].timeline.n_frames, 10):
        fa = f + round(angles["B"].truth_offset_s * FPS)
        if np.isfinite(box_b[f]).all() and fa < len(box_a) and np.isfinite(box_a[fa]).all():
            in_source = angles["B"].to_source_box(box_b[f])
            ious.append(iou_matrix(in_source, angles["A"].to_source_box(box_a[fa]))[0, 0])
    assert len(ious) >= 5 and np.median(ious) > 0.6


def test_cli_with_person_number(edit: MulticamResult, angles: dict[str, Angle], tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    first = edit.angles[0].person
    assert first is not None
    out = tmp_path / "cli.mp4"
    code = main(["-q", "render", str(angles["A"].path), str(angles["B"].path), "--person", str(first.id),
                 "--gallery", str(shared_file("bench/gallery")), "-o", str(out)])
    text = capsys.readouterr().out
    assert code == EXIT_OK, text
    for suffix in (".mp4", ".edl.csv", ".crop.csv", ".timeline.png"):
        assert out.with_name("cli" + suffix).is_file()
    assert "B.mp4: offset +2.300 s" in text
    assert len({r["source"] for r in read_edl(out.with_name("cli.edl.csv"))}) == 2


def test_inputs_and_usage_are_checked(angles: dict[str, Angle], tmp_path: Path) -> None:
    folder = tmp_path / "angles"
    folder.mkdir()
    for name in "BA":
        (folder / f"{name}.mp4").symlink_to(angles[name].path)
    (folder / "notes.txt").write_text("not a video")
    assert [p.name for p in expand_videos([folder])] == ["A.mp4", "B.mp4"]
    assert is_angle_folder(folder) and not is_angle_folder(tmp_path) and not is_angle_folder(folder / "A.mp4")
    with pytest.raises(InputError, match="given twice"):
        expand_videos([angles["A"].path, folder / "A.mp4"])
    with pytest.raises(InputError, match="holds no video"):
        expand_videos([tmp_path])
    with pytest.raises(UsageError, match="at least two videos"):
        make_multicam([angles["A"].path], Selection(person=1), RenderOptions(), progress=False)
    with pytest.raises(UsageError, match="choose one performer"):
        make_multicam([angles["A"].path, angles["B"].path], Selection(all=True), RenderOptions(), progress=False)
