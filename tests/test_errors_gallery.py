"""Galleries as people make them: stray files, faceless and group photos, empty member folders, the same
member name in two groups, unknown --member names; through the command line, on a one-dancer clip.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from badmedia import digest, one_dancer_clip, snapshot
from conftest import shared_file
from fancam.cli import main
from fancam.errors import EXIT_INPUT, EXIT_OK, EXIT_USAGE

MIDDLE_DANCER = (125, 235)
HAMILTON = "data/face_recognition_hamilton"


def run(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    rc = main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def photos(gallery: Path) -> dict:
    """Snapshot of the gallery, hidden files included (nothing is ever written there, DESIGN.md)."""
    return snapshot(gallery)


@pytest.fixture(autouse=True)
def user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANCAM_HOME", str(tmp_path / "fancam-home"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def solo(tmp_path_factory: pytest.TempPathFactory, gillhung_clip: Path) -> Path:
    """2 s of the middle gillhung dancer (P2 of the bench gallery) alone."""
    return one_dancer_clip(gillhung_clip, tmp_path_factory.mktemp("solo") / "solo.mp4", 2.0, MIDDLE_DANCER)


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory, bench_gallery: Path) -> Path:
    """The bench gallery plus the usual mistakes, and a second group with a member also called P2."""
    g = tmp_path_factory.mktemp("gallery") / "photos"
    shutil.copytree(bench_gallery, g)
    for path in [g, *g.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    group = g / "gillhung_dance"
    (group / "P1" / "notes.txt").write_text("P1 is the one on the left")
    ramp = np.tile(np.linspace(0, 255, 320, dtype=np.uint8)[None, :, None], (240, 1, 3))
    cv2.imwrite(str(group / "P2" / "landscape.jpg"), ramp)
    shutil.copyfile(shared_file(f"{HAMILTON}/group_photos/obama_and_biden.jpg"), group / "P3" / "group.jpg")
    (group / "P4").mkdir()
    (g / "hamilton" / "P2").mkdir(parents=True)
    shutil.copyfile(shared_file(f"{HAMILTON}/identities/obama/obama.jpg"), g / "hamilton" / "P2" / "a.jpg")
    return g


def test_messy_gallery_is_reported_and_the_good_photos_used(
    capsys: pytest.CaptureFixture, solo: Path, messy: Path
) -> None:
    before, video = photos(messy), digest(solo)
    rc, out, err = run(capsys, "analyze", solo, "--gallery", messy)
    assert rc == EXIT_OK, err
    assert "person 1: P2" in out
    for problem in (
        "gallery: gillhung_dance/P1/notes.txt: not an image file (.txt); ignored",
        "gallery: gillhung_dance/P2/landscape.jpg: no face found; ignored",
        "faces of similar size (use a photo of this member alone); ignored",
        "gallery: gillhung_dance/P4/: member has no usable photo; left out of the gallery",
    ):
        assert problem in err
    assert "gallery: gillhung_dance/P3/group.jpg: " in err
    assert "Traceback" not in err
    assert photos(messy) == before and digest(solo) == video


def test_member_names(capsys: pytest.CaptureFixture, solo: Path, messy: Path, tmp_path: Path) -> None:
    rc, _, err = run(capsys, "render", solo, "--member", "Nobody", "--gallery", messy)
    assert rc == EXIT_USAGE
    assert ("no member 'Nobody' in the gallery; its members are: gillhung_dance/P1, gillhung_dance/P2, "
            "gillhung_dance/P3, hamilton/P2 (recognised in this video: P2)") in err
    rc, _, err = run(capsys, "render", solo, "--member", "hamilton/P2", "--gallery", messy)
    assert rc == EXIT_USAGE
    assert "member 'hamilton/P2' is in the gallery but was not recognised in this video (recognised: P2)" \
        in err
    rc, _, err = run(capsys, "render", solo, "--member", "P1", "--gallery", messy)
    assert rc == EXIT_USAGE and "'P1' is in the gallery but was not recognised" in err
    assert [p.name for p in solo.parent.glob("*.mp4")] == ["solo.mp4"] and not list(tmp_path.glob("*.mp4"))
    # P2 is in two groups; the group performing in the video decides which one is meant.
    rc, out, err = run(capsys, "render", solo, "--member", "P2", "--gallery", messy, "--end", "0.5")
    assert rc == EXIT_OK, err
    assert (tmp_path / "solo.P2.mp4").is_file()
    rc, out, err = run(capsys, "render", solo, "--member", "gillhung_dance/P2", "--gallery", messy,
                       "-o", tmp_path / "p2.mp4", "--end", "0.5")
    assert rc == EXIT_OK, err


def test_unusable_galleries(capsys: pytest.CaptureFixture, solo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, _, err = run(capsys, "analyze", solo, "--gallery", empty)
    assert rc == EXIT_INPUT
    assert f"gallery '{empty}' has no member folders; expected GALLERY/<group>/<member>/*.jpg|png" in err
    useless = tmp_path / "useless"
    (useless / "group" / "member").mkdir(parents=True)
    (useless / "group" / "member" / "readme.txt").write_text("photos to come")
    (useless / "group" / "nobody").mkdir()
    rc, _, err = run(capsys, "analyze", solo, "--gallery", useless)
    assert rc == EXIT_INPUT
    assert f"no usable face photo in gallery '{useless}'" in err
    assert "group/member/readme.txt: not an image file" in err
    assert (useless / "group" / "member" / "readme.txt").read_text() == "photos to come"
