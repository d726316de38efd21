"""What fancam does with the content of real clips: nobody, one dancer, a crowd, a dancer who leaves,
damaged data in a real clip; and existing outputs with and without --force.

Short clips (1.5-3 s) keep each analysis to a few seconds; analyses are shared per module.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from badmedia import digest, garbage_copy, one_dancer_clip, snapshot, synth_video
from conftest import shared_file, trimmed_copy
from fancam.cli import main
from fancam.errors import EXIT_INPUT, EXIT_OK, EXIT_PROCESSING, EXIT_USAGE
from fancam.io.tables import load_crop
from fancam.io.video import probe
from fancam.pipeline.analyze import analyze

MIDDLE_DANCER = (125, 235)
"""Columns of the gillhung clip where only the middle dancer is (the others are blacked out)."""


def run(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    rc = main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def outputs(folder: Path) -> set[str]:
    """Visible files beside the inputs (hidden temporary files are checked separately)."""
    return {p.name for p in folder.iterdir() if not p.name.startswith(".")}


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every command from the test's own folder (outputs without -o go to the current folder)."""
    monkeypatch.chdir(tmp_path)


def analysis_folder(video: Path) -> Path:
    """The (cached) analysis folder of ``video`` in the user cache."""
    return analyze(video, progress=False).folder


@pytest.fixture(scope="module")
def solo(tmp_path_factory: pytest.TempPathFactory, gillhung_clip: Path) -> Path:
    """2 s of one dancer (the gillhung clip with the two others blacked out), analysed once."""
    folder = tmp_path_factory.mktemp("solo")
    video = one_dancer_clip(gillhung_clip, folder / "solo.mp4", 2.0, MIDDLE_DANCER)
    analyze(video, progress=False)
    return video


def test_one_person(capsys: pytest.CaptureFixture, solo: Path, tmp_path: Path) -> None:
    before = digest(solo)
    rc, out, err = run(capsys, "analyze", solo)
    assert rc == EXIT_OK, err
    assert len(out.splitlines()) == 2 and out.splitlines()[1].startswith("  person 1: person-1  seen 0.")
    people = json.loads((analysis_folder(solo) / "people.json").read_text())["people"]
    assert len(people) == 1
    out_file = tmp_path / "one.mp4"
    rc, out, err = run(capsys, "render", solo, "--person", "1", "-o", out_file)
    assert rc == EXIT_OK, err
    assert f"wrote {out_file} (" in out and f"wrote {tmp_path / 'one.crop.csv'}" in out
    info = probe(out_file)
    assert info.height > info.width and abs(info.duration_s - 2.0) < 0.1
    crop = load_crop(tmp_path / "one.crop.csv")
    assert len(crop.frame) == info.n_frames and (crop.mode == "follow").mean() > 0.9
    rc, out, err = run(capsys, "people", solo, "-o", tmp_path / "sheet.jpg")
    assert rc == EXIT_OK and (tmp_path / "sheet.jpg").stat().st_size > 1000
    assert digest(solo) == before
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_existing_output_needs_force(capsys: pytest.CaptureFixture, solo: Path, tmp_path: Path) -> None:
    out_file = tmp_path / "fancam.mp4"
    assert run(capsys, "render", solo, "--person", "1", "-o", out_file, "--end", "1")[0] == EXIT_OK
    first = snapshot(tmp_path)
    rc, _, err = run(capsys, "render", solo, "--person", "1", "-o", out_file)
    assert rc == EXIT_INPUT
    assert f"'{out_file}' already exists; use --force to overwrite it" in err
    assert snapshot(tmp_path) == first
    rc, out, err = run(capsys, "render", solo, "--person", "1", "-o", out_file, "--force")
    assert rc == EXIT_OK, err
    assert abs(probe(out_file).duration_s - 2.0) < 0.1, "replaced by the new, longer render"
    assert outputs(tmp_path) == {"fancam.mp4", "fancam.crop.csv"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_default_outputs_in_the_current_folder(capsys: pytest.CaptureFixture, solo: Path, tmp_path: Path) -> None:
    before = outputs(solo.parent)
    rc, out, _ = run(capsys, "render", solo, "--person", "1", "--end", "0.5")
    assert rc == EXIT_OK
    fancam = tmp_path / "solo.person-1.mp4"
    assert fancam.is_file() and (tmp_path / "solo.person-1.crop.csv").is_file()
    assert outputs(solo.parent) == before
    kept = digest(fancam)
    rc, _, err = run(capsys, "render", solo, "--all")
    assert rc == EXIT_INPUT and f"'{fancam}' already exists" in err
    assert digest(fancam) == kept


def test_unknown_person_and_member(capsys: pytest.CaptureFixture, solo: Path) -> None:
    before = outputs(solo.parent)
    rc, _, err = run(capsys, "render", solo, "--person", "7")
    assert rc == EXIT_USAGE
    assert "no person 7; this video has --person 1 (see `fancam people VIDEO`)" in err
    rc, _, err = run(capsys, "render", solo, "--member", "Jisoo")
    assert rc == EXIT_USAGE and "--member needs --gallery" in err
    rc, _, err = run(capsys, "render", solo, "--person", "1", "--start", "5")
    assert rc == EXIT_USAGE and "no video frame in 5 s to the end: the video is 2.0 s long" in err
    assert outputs(solo.parent) == before


def test_no_people_gives_a_clear_message_and_no_video(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    video = synth_video(tmp_path / "empty_stage.mp4", n=45, size=(320, 240), audio=True)
    before = digest(video)
    for argv in (["analyze", video], ["render", video, "--all"], ["people", video]):
        rc, out, err = run(capsys, *argv)
        assert rc == EXIT_PROCESSING, argv
        assert (f"fancam: error: no people found in '{video}': the person detector (yolox-nano) found "
                "nobody in 45 frames") in err
    assert digest(video) == before
    assert outputs(tmp_path) == {"empty_stage.mp4"}


def test_crowd_of_twenty(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    """MOT20-08: a street crowd of 20+ people; the large ones in front are followed."""
    source = shared_file("data/dlib_motchallenge_clips/MOT20-08_x264.mp4")
    video = trimmed_copy(source, tmp_path / "crowd.mp4", 1.5)
    rc, out, err = run(capsys, "analyze", video)
    assert rc == EXIT_OK, err
    people = json.loads((analysis_folder(video) / "people.json").read_text())["people"]
    assert len(people) >= 3
    assert len({p["name"] for p in people}) == len(people)
    rc, out, err = run(capsys, "render", video, "--person", "1", "-o", tmp_path / "p1.mp4")
    assert rc == EXIT_OK, err
    assert probe(tmp_path / "p1.mp4").n_frames > 30


def test_crowd_too_small_to_detect(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    """MOT20-05: a night crowd seen from above (people ~10-20% of the frame tall)."""
    source = shared_file("data/dlib_motchallenge_clips/MOT20-05-raw_even_shorter.mp4")
    video = trimmed_copy(source, tmp_path / "night.mp4", 1.0)
    # The SSD finds nobody: a one-line message with a way out.
    rc, _, err = run(capsys, "render", video, "--person", "1", "--detector", "ssd")
    assert rc == EXIT_PROCESSING
    assert "the person detector (ssd) found nobody in" in err and "try --quality balanced" in err
    assert outputs(tmp_path) == {"night.mp4"}
    # The default (YOLOX-nano; tiles on this wide shot of small people) finds people to follow.
    rc, _, err = run(capsys, "render", video, "--person", "1", "-o", tmp_path / "p1.mp4")
    assert rc == EXIT_OK, err
    assert probe(tmp_path / "p1.mp4").n_frames > 20


def test_target_absent_for_most_of_the_video(
    capsys: pytest.CaptureFixture, gillhung_clip: Path, tmp_path: Path
) -> None:
    video = one_dancer_clip(gillhung_clip, tmp_path / "brief.mp4", 3.0, MIDDLE_DANCER, visible_s=0.8)
    rc, out, err = run(capsys, "render", video, "--person", "1")
    assert rc == EXIT_OK, err
    # Issue 12.4: the notice reads "of the video" (it said "of 0 s to the end").
    assert re.search(r"person-1 \(person 1, on screen 0\.0-0\.[6-9] s\) can be followed for only 2\d% of "
                     r"the video; the rest of the time the camera holds where they were last seen", err)
    crop = load_crop(tmp_path / "brief.person-1.crop.csv")
    times = crop.t
    assert abs(probe(tmp_path / "brief.person-1.mp4").duration_s - 3.0) < 0.1
    assert (crop.mode[times > 1.5] == "wide").all()
    assert (crop.mode[times < 0.6] == "follow").all()
    rc, _, err = run(capsys, "render", video, "--person", "1", "--start", "1.5", "-o", tmp_path / "late.mp4")
    assert rc == EXIT_USAGE
    assert re.search(r"person-1 \(person 1, on screen 0\.0-0\.[6-9] s\) is not on screen in 1\.5 s to the "
                     r"end; choose another --start/--end", err)
    assert not (tmp_path / "late.mp4").exists()


def test_garbage_in_a_real_clip_is_skipped_with_a_warning(
    capsys: pytest.CaptureFixture, solo: Path, tmp_path: Path
) -> None:
    video = garbage_copy(solo, tmp_path / "damaged.mp4", at=0.3, length=6000)
    before = digest(video)
    rc, out, err = run(capsys, "analyze", video)
    assert rc == EXIT_OK, err
    warning = [line for line in err.splitlines() if "could not decode" in line]
    assert len(warning) == 1 and warning[0].endswith("s; those parts were skipped")
    start, end = (float(v) for v in warning[0].split("could not decode ")[1].split(" s;")[0].split("-")[:2])
    assert 0 < start < end < 2.0
    assert "person 1" in out
    rc, _, err = run(capsys, "render", video, "--person", "1")
    assert rc == EXIT_OK, err
    assert digest(video) == before
    times = load_crop(tmp_path / "damaged.person-1.crop.csv").t
    assert times[-1] > end, "the frames after the damage are rendered"
    assert not np.any((times > start + 0.05) & (times < end - 0.05)), "no frame invented inside the gap"


def test_inputs_of_a_crashed_render_are_untouched(
    capsys: pytest.CaptureFixture, solo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A render that fails half-way (here: the encoder breaks) leaves no output and the old one intact."""
    import fancam.io.encode

    out_file = tmp_path / "keep.mp4"
    out_file.write_bytes(b"yesterday's render")
    real = fancam.io.encode.VideoWriter.write

    def failing(self, frame, t):
        if self.frames_written == 20:
            raise OSError(28, "No space left on device", str(self.path))
        return real(self, frame, t)

    monkeypatch.setattr(fancam.io.encode.VideoWriter, "write", failing)
    folder = analysis_folder(solo)
    analysis_before = snapshot(folder)
    del analysis_before["about.json"]  # its time stamp is the analysis' last use
    video_before = digest(solo)
    rc, _, err = run(capsys, "render", solo, "--person", "1", "-o", out_file, "--force")
    assert rc == EXIT_INPUT
    assert "No space left on device" in err and "free disk space" in err
    assert out_file.read_bytes() == b"yesterday's render"
    assert outputs(tmp_path) == {"keep.mp4"} and not list(tmp_path.glob(".*"))
    assert digest(solo) == video_before
    assert {k: v for k, v in snapshot(folder).items() if k != "about.json"} == analysis_before
