"""`fancam render` on real clips: the framing it picks and says, its notices, and the wide shot.

Issue 12: the default framing makes the chosen performer the subject of the shot and says so (items 2),
a performer off screen in a landscape video leaves the camera on the people on screen, not on a slice of
the middle (4), and small crops scaled up are announced once without ``-v`` (5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import shared_file
from fancam.cli import main
from fancam.geometry import head_point
from fancam.io.tables import load_crop, load_tracks


def run(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    rc = main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def analysis_of(clip: Path, folder: Path) -> Path:
    """``fancam analyze CLIP --out FOLDER`` (renders then read it with ``--analysis FOLDER``)."""
    assert main(["-q", "analyze", str(clip), "--out", str(folder)]) == 0
    return folder


@pytest.fixture(scope="module")
def fiyud_analysis(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Analysis folder of fiyud_dance3 (3 women side by side, portrait 720x1280, 8.9 s)."""
    return analysis_of(shared_file("data/fiyud_dance3/dance.mp4"), tmp_path_factory.mktemp("fiyud") / "analysis")


def _width_share(crop_csv: Path, width: int) -> float:
    crop = load_crop(crop_csv)
    follow = crop.mode == "follow"
    return float(np.median(crop.xyxy[follow, 2] - crop.xyxy[follow, 0]) / width)


@pytest.mark.slow
def test_default_framing_makes_the_performer_the_subject_and_says_so(
    capsys: pytest.CaptureFixture, tmp_path: Path, fiyud_analysis: Path
) -> None:
    clip = shared_file("data/fiyud_dance3/dance.mp4")
    common = ["--person", "1", "--analysis", fiyud_analysis, "--end", "3"]
    # Default (auto): upper body, said on one line; the crop is about a third of the frame's width.
    rc, out, err = run(capsys, "render", clip, *common, "-o", tmp_path / "auto.mp4")
    assert rc == 0, err
    lines = [line for line in err.splitlines() if "framing:" in line]
    assert len(lines) == 1 and "auto.mp4: framing: upper body (a 9:16 full-body crop shows" in lines[0]
    assert all(line.startswith("wrote ") for line in out.splitlines())  # stdout: the files written
    assert _width_share(tmp_path / "auto.crop.csv", 720) < 0.4  # measured 0.32
    # An explicit preset is kept and not commented on: full body shows most of the group (0.58).
    rc, out, err = run(capsys, "render", clip, *common, "--framing", "full", "-o", tmp_path / "full.mp4")
    assert rc == 0, err
    assert "framing:" not in out + err
    assert _width_share(tmp_path / "full.crop.csv", 720) > 0.5
    # 4:5 (a full-body crop 82-86 % of the width): upper body too.
    rc, out, err = run(capsys, "render", clip, *common, "--aspect", "4:5", "-o", tmp_path / "45.mp4")
    assert rc == 0, err
    assert "framing: upper body (a 4:5 full-body crop shows" in err
    assert _width_share(tmp_path / "45.crop.csv", 720) < 0.55


@pytest.mark.slow
def test_small_crop_scaled_up_is_said_once_with_what_would_help(
    capsys: pytest.CaptureFixture, tmp_path: Path, fiyud_analysis: Path
) -> None:
    clip = shared_file("data/fiyud_dance3/dance.mp4")
    # Close-ups of 3 dancers: every crop is about 220 px tall, scaled up to 480: one notice in all.
    rc, out, err = run(capsys, "render", clip, "--all", "--framing", "face", "--analysis", fiyud_analysis,
                       "--end", "1", "-o", tmp_path / "faces")
    assert rc == 0, err
    notices = [line for line in err.splitlines() if "will look soft" in line]
    assert len(notices) == 1, err
    assert "3 performers" in notices[0] and "source pixels" in notices[0] and "--framing full" in notices[0]
    # At the crop's own size (--height) nothing is scaled up: no notice.
    rc, out, err = run(capsys, "render", clip, "--person", "1", "--framing", "face", "--height", "200",
                       "--analysis", fiyud_analysis, "--end", "1", "-o", tmp_path / "native.mp4")
    assert rc == 0, err
    assert "will look soft" not in err


@pytest.mark.slow
def test_landscape_wide_shot_shows_the_people_and_the_notice_reads_well(
    capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    """hamilton: a TV clip with four shots; each performer is off screen in some of them."""
    clip = shared_file("data/face_recognition_hamilton/short_hamilton_clip.mp4")
    analysis = analysis_of(clip, tmp_path / "analysis")
    capsys.readouterr()
    rc, out, err = run(capsys, "render", clip, "--all", "--analysis", analysis, "-o", tmp_path / "all")
    assert rc == 0, err
    # The notice names the span in words (it said "43% of 0 s to the end").
    assert "s to the end" not in err
    rarely = [line for line in err.splitlines() if "can be followed for only" in line]
    assert rarely and all("of the video" in line for line in rarely)
    tracks = load_tracks(analysis / "tracks.csv")
    crops = sorted((tmp_path / "all").glob("*.crop.csv"))
    assert crops
    with_people = []
    for crop_csv in crops:
        crop = load_crop(crop_csv)
        for k in np.flatnonzero(crop.mode == "wide"):
            rows = tracks.frame == crop.frame[k]
            if rows.any():
                heads = head_point(tracks.xyxy[rows])
                x1, y1, x2, y2 = crop.xyxy[k]
                inside = (heads[:, 0] >= x1) & (heads[:, 0] <= x2) & (heads[:, 1] >= y1) & (heads[:, 1] <= y2)
                with_people.append(bool(inside.any()))
    # Each performer is off screen in some shots, so there are wide frames; the still crop of a shot
    # shows somebody in 98 % of them (SSD and YOLOX-nano tracks: only a few frames at the end of the
    # close-up, where the singer walks out of it).
    assert len(with_people) > 100
    assert np.mean(with_people) >= 0.95
