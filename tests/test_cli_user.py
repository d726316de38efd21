"""What a new user meets on the command line (issue 12): where files go, output names and types, the
sound of a truncated file, member names, `fancam eval` without optional libraries, one cache per preset.

Every command runs in-process (``fancam.cli.main``) from a scratch working folder, on real clips: the
read-only ../shared itself, and a copied input folder (a clip, a ground truth and a gallery) whose
snapshot must not change. The user cache is a private ``$FANCAM_HOME`` per module.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

import fancam.pipeline.analyze
from badmedia import digest, snapshot, truncated_copy
from conftest import shared_file, trimmed_copy
from fancam.cli import main
from fancam.errors import EXIT_INPUT, EXIT_OK, EXIT_USAGE
from fancam.io.video import probe
from fancam.models import registry

CLIP_S = 4.0
"""Seconds of the gillhung clip in the copied input folder (keeps each analysis to a few seconds)."""
NAMES = {"P1": "Jisoo", "P2": "Lisa", "P3": "Rose"}
"""Gallery folder names of the copied gallery (the bench gallery's P1..P3, renamed like real members)."""


def run(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    rc = main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def files(folder: Path) -> set[str]:
    """Every file and folder under ``folder``, hidden ones included, by relative path."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private user cache for this module (downloaded models are shared with the usual one)."""
    models = registry.cache_dir()
    path = tmp_path_factory.mktemp("fancam-home")
    if models.is_dir():
        (path / "models").symlink_to(models, target_is_directory=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FANCAM_HOME", str(path))
        mp.delenv("FANCAM_CACHE_MAX_GB", raising=False)
        yield path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, gillhung_clip: Path, bench_gt: Path,
           bench_gallery: Path) -> Path:
    """A user's input folder: dance.mp4 (4 s), its ground truth and a gallery of three members."""
    folder = tmp_path_factory.mktemp("inputs")
    video = trimmed_copy(gillhung_clip, folder / "dance.mp4", CLIP_S)
    n_frames = probe(video).n_frames
    with open(bench_gt, newline="") as src, open(folder / "dance.gt.csv", "w", newline="") as dst:
        rows = list(csv.reader(src))
        writer = csv.writer(dst)
        writer.writerow(rows[0])
        writer.writerows(r for r in rows[1:] if int(r[0]) < n_frames)
    for source in sorted((bench_gallery / "gillhung_dance").iterdir()):
        shutil.copytree(source, folder / "photos" / "group" / NAMES[source.name])
    return folder


@pytest.fixture()
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """The user's working folder (the current directory)."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def analyses(home: Path) -> list[Path]:
    folder = home / "analyses"
    return sorted(folder.iterdir()) if folder.is_dir() else []


# --------------------------------------------------------------------------- item 3: where files go
def test_readme_quick_start_on_read_only_shared(capsys: pytest.CaptureFixture, scratch: Path, home: Path) -> None:
    """README's first command, on ../shared (read-only): the fancam lands in the current folder."""
    video = shared_file("data/fiyud_dance3/dance.mp4")
    shared_before = snapshot(video.parent)
    rc, out, err = run(capsys, "render", video, "--person", "1", "--end", "2")
    assert rc == EXIT_OK, err
    mp4, crop = scratch / "dance.person-1.mp4", scratch / "dance.person-1.crop.csv"
    assert files(scratch) == {mp4.name, crop.name}
    assert out.splitlines()[0].startswith(f"wrote {mp4} (") and out.splitlines()[1] == f"wrote {crop}"
    assert "sound" not in err, "a complete file keeps its sound"
    rc, out, err = run(capsys, "people", video)
    assert rc == EXIT_OK, err
    sheet = scratch / "dance.people.jpg"
    assert out == f"wrote {sheet}\n" and sheet.read_bytes()[:3] == b"\xff\xd8\xff"
    assert snapshot(video.parent) == shared_before
    [folder] = [f for f in analyses(home) if json.loads((f / "about.json").read_text())["sha256"] == digest(video)]
    assert folder.name.startswith(digest(video)[:16]) and "-fast-" in folder.name
    assert {"tracks.csv", "people.json", "about.json"} <= set(files(folder))


def test_copied_inputs_stay_untouched(capsys: pytest.CaptureFixture, scratch: Path, home: Path,
                                      inputs: Path) -> None:
    before = files(inputs), snapshot(inputs)
    video, gallery = inputs / "dance.mp4", inputs / "photos"
    rc, out, err = run(capsys, "analyze", video, "--gallery", gallery)
    assert rc == EXIT_OK, err
    folder = Path(out.splitlines()[0].removeprefix("analysis: "))
    assert folder.is_relative_to(home / "analyses") and (folder / "tracks.csv").is_file()
    rc, out, err = run(capsys, "render", video, "--all", "--gallery", gallery, "--end", "1")
    assert rc == EXIT_OK, err
    assert files(scratch) >= {f"dance.{name}.mp4" for name in NAMES.values()}
    assert (files(inputs), snapshot(inputs)) == before, "nothing beside the video or in the gallery"
    assert list((home / "galleries").glob("*.npz")), "gallery embeddings are in the user cache"


def test_analysis_folder_of_ones_own(capsys: pytest.CaptureFixture, scratch: Path, home: Path, inputs: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    video = inputs / "dance.mp4"
    rc, out, err = run(capsys, "analyze", video, "--out", "mine")
    assert rc == EXIT_OK, err
    assert out.splitlines()[0] == f"analysis: {scratch / 'mine'}"
    assert {"tracks.csv", "people.json"} <= files(scratch / "mine")
    cached = analyses(home)

    def no_scan(*args, **kwargs):
        raise AssertionError("the analysis in --analysis DIR must be reused")

    monkeypatch.setattr(fancam.pipeline.analyze, "scan", no_scan)
    for argv in (["render", video, "--person", "1", "--end", "1", "-o", "p1.mp4"], ["people", video],
                 ["eval", video, "--gt", inputs / "dance.gt.csv"]):
        rc, out, err = run(capsys, *argv, "--analysis", "mine")
        assert rc == EXIT_OK, err
    assert analyses(home) == cached, "--analysis DIR does not touch the user cache"
    rc, _, err = run(capsys, "render", video, "--person", "1", "--analysis", "missing")
    assert rc == EXIT_INPUT
    assert "analysis folder not found: 'missing'; write one with `fancam analyze VIDEO --out DIR`" in err
    # The two options cannot be confused: --out is only analyze's, -o only the outputs'.
    rc, _, err = run(capsys, "render", video, "--person", "1", "--out", "x.mp4")
    assert rc == EXIT_USAGE and "--out belongs to `fancam analyze`" in err and "-o FILE" in err
    assert main(["analyze", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--out DIR write the analysis folder (tracks.csv, people.json) into DIR" in text
    assert main(["render", "--help"]) == 0
    raw = capsys.readouterr().out
    text = " ".join(raw.split())
    assert "--analysis DIR use the analysis folder written by `fancam analyze VIDEO --out DIR`" in text
    assert "-o OUT.mp4, --output OUT.mp4 output video" in text
    assert "[--out" not in raw and not any(line.lstrip().startswith("--out ") for line in raw.splitlines())


def test_cache_list_clear_and_size_cap(capsys: pytest.CaptureFixture, scratch: Path, home: Path,
                                       inputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    video = inputs / "dance.mp4"
    assert run(capsys, "analyze", video)[0] == EXIT_OK
    rc, out, err = run(capsys, "cache", "list")
    assert rc == EXIT_OK, err
    assert f"user cache: {home}" in out and "cap 5.0 GB" in out
    listed = [line for line in out.splitlines() if " fast " in line and "dance.mp4" in line]
    assert listed and all("MB" in line or "kB" in line for line in listed)
    # Over the cap, least recently used analyses go, never the one just used.
    other = trimmed_copy(video, scratch / "other.mp4", 2.0)
    monkeypatch.setenv("FANCAM_CACHE_MAX_GB", "0")
    old = analyses(home)
    for folder in old:  # make them old enough to be evicted
        os.utime(folder / "about.json", (1e9, 1e9))
    rc, _, err = run(capsys, "analyze", other)
    assert rc == EXIT_OK, err
    [kept] = analyses(home)
    assert json.loads((kept / "about.json").read_text())["video"] == "other.mp4" and kept not in old
    monkeypatch.delenv("FANCAM_CACHE_MAX_GB")
    rc, out, _ = run(capsys, "cache", "clear", "--older-than", "7d")
    assert rc == EXIT_OK and out.startswith("removed 0 items") and analyses(home) == [kept]
    # A downloaded model (the shipped ones leave only digest stamps here, and not when this process
    # already hashed them for another test's home: so the test puts one in place itself).
    model = home / "models" / "yolox_s.onnx"
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(b"weights")
    rc, out, _ = run(capsys, "cache", "clear")
    assert rc == EXIT_OK and out.startswith("removed ") and analyses(home) == []
    assert model.read_bytes() == b"weights", "models are kept unless --all"
    rc, _, err = run(capsys, "cache", "clear", "--older-than", "soon")
    assert rc == EXIT_USAGE and "--older-than 'soon'" in err


# ----------------------------------------------------------------------------- item 10: presets
def test_each_preset_keeps_its_analysis(capsys: pytest.CaptureFixture, scratch: Path, home: Path,
                                        inputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANCAM_MODEL_MIRROR", str(shared_file("models")))
    monkeypatch.setenv("FANCAM_OFFLINE", "1")
    video = trimmed_copy(inputs / "dance.mp4", scratch / "short.mp4", 2.0)
    real_scan = fancam.pipeline.analyze.scan
    scans: list[str] = []

    def counting(*args, **kwargs):
        scans.append(type(args[2]).__name__)
        return real_scan(*args, **kwargs)

    monkeypatch.setattr(fancam.pipeline.analyze, "scan", counting)
    # balanced's YOLOX-tiny is downloaded on first use (not in ../shared/models): its shipped nano here.
    for quality in ("fast", "balanced", "fast", "balanced"):
        extra = ("--detector", "yolox-nano") if quality == "balanced" else ()
        rc, _, err = run(capsys, "analyze", video, "--quality", quality, *extra)
        assert rc == EXIT_OK, err
    assert len(scans) == 2, f"switching presets back and forth recomputed: {scans}"
    names = [p.name for p in analyses(home) if p.name.startswith(digest(video)[:16])]
    assert len(names) == 2 and {n.split("-")[1] for n in names} == {"fast", "balanced"}


# ---------------------------------------------------------------------- item 6: output names, types
def test_output_names_and_types(capsys: pytest.CaptureFixture, scratch: Path, inputs: Path) -> None:
    video = inputs / "dance.mp4"
    for argv, message in (
        (["render", video, "--person", "1", "-o", "x.avi"],
         "fancam writes H.264 MP4 video: give -o a name ending in .mp4 (or .mov), or a folder; 'x.avi'"),
        (["people", video, "-o", "sheet.gif"],
         "the contact sheet is an image: give -o a name ending in .jpg, .png or .webp"),
    ):
        rc, _, err = run(capsys, *argv)
        assert rc == EXIT_USAGE and message in err
    assert files(scratch) == set()
    # A missing folder is created, for one render as for --all; every written path is printed in full.
    rc, out, err = run(capsys, "render", video, "--person", "1", "--end", "1", "-o", "new/one.mov")
    assert rc == EXIT_OK, err
    mov = scratch / "new" / "one.mov"
    assert f"wrote {mov} (" in out and f"wrote {scratch / 'new' / 'one.crop.csv'}" in out
    assert mov.read_bytes()[4:12] == b"ftypqt  ", "a .mov is QuickTime"
    rc, out, err = run(capsys, "render", video, "--all", "--end", "1", "-o", "all/of/them")
    assert rc == EXIT_OK, err
    assert all(line.startswith(f"wrote {scratch / 'all/of/them'}/dance.") for line in out.splitlines())
    rc, out, err = run(capsys, "people", video, "-o", "sheets/who.png")
    assert rc == EXIT_OK, err
    png = scratch / "sheets" / "who.png"
    assert out == f"wrote {png}\n" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rc, out, err = run(capsys, "people", video, "-o", "sheets")
    assert rc == EXIT_OK and out == f"wrote {scratch / 'sheets' / 'dance.people.jpg'}\n"


# --------------------------------------------------------------------- item 7: a truncated input
def test_truncated_input_says_it_lost_its_sound(capsys: pytest.CaptureFixture, scratch: Path) -> None:
    cut = truncated_copy(shared_file("data/fiyud_dance3/dance.mp4"), scratch / "cut.mp4", 0.6)
    rc, _, err = run(capsys, "render", cut, "--person", "1", "-o", "out.mp4")
    assert rc == EXIT_OK, err
    assert "only 4.7 s of the 8.9 s the file announces could be decoded" in err
    assert f"{scratch / 'out.mp4'}: the sound of {cut} stops at 3.6 s of this 4.7 s video" in err
    with av.open(str(scratch / "out.mp4")) as c:
        video, audio = c.streams.video[0], c.streams.audio[0]
        assert float(audio.duration * audio.time_base) < float(video.duration * video.time_base) - 0.9


# ------------------------------------------------------------------------------ item 8: members
def test_member_names_ignore_case_and_suggest(capsys: pytest.CaptureFixture, scratch: Path,
                                              inputs: Path) -> None:
    video, gallery = inputs / "dance.mp4", inputs / "photos"
    for name in ("jisoo", "GROUP/LISA"):
        rc, out, err = run(capsys, "render", video, "--member", name, "--gallery", gallery, "--end", "1")
        assert rc == EXIT_OK, err
    assert {"dance.Jisoo.mp4", "dance.Lisa.mp4"} <= files(scratch)
    rc, _, err = run(capsys, "render", video, "--member", "Jiso", "--gallery", gallery)
    assert rc == EXIT_USAGE
    assert "no member 'Jiso' in the gallery (did you mean 'Jisoo'?); its members are: group/Jisoo" in err
    rc, _, err = run(capsys, "render", video, "--member", "Nobody", "--gallery", gallery)
    assert rc == EXIT_USAGE and "did you mean" not in err and "its members are: group/Jisoo" in err


# --------------------------------------------------------------------------------- item 9: eval
@pytest.mark.parametrize("libraries", ["none", "installed"])
def test_eval_works_with_or_without_optional_libraries(
    capsys: pytest.CaptureFixture, scratch: Path, inputs: Path, monkeypatch: pytest.MonkeyPatch, libraries: str
) -> None:
    if libraries == "none":  # as after a plain `pip install .`
        for module in [m for m in sys.modules if m.split(".")[0] in ("motmetrics", "trackeval")]:
            monkeypatch.delitem(sys.modules, module)
        monkeypatch.setitem(sys.modules, "motmetrics", None)
        monkeypatch.setitem(sys.modules, "trackeval", None)
    video, gt, gallery = inputs / "dance.mp4", inputs / "dance.gt.csv", inputs / "photos"
    shutil.copytree(gallery, scratch / "gt-names")  # the gallery, named as the GT persons
    for member, name in NAMES.items():
        (scratch / "gt-names" / "group" / name).rename(scratch / "gt-names" / "group" / member)
    rc, out, err = run(capsys, "eval", video, "--gt", gt, "--gallery", scratch / "gt-names",
                       "--json", "reports/scores.json")
    assert rc == EXIT_OK, err
    report = json.loads((scratch / "reports" / "scores.json").read_text())
    assert out.splitlines()[-1] == f"wrote {scratch / 'reports' / 'scores.json'}"
    assert report["identity"]["accuracy"] >= 0.9
    if libraries == "none":
        assert "IDF1 needs motmetrics: pip install 'fancam[eval]'" in out
        assert "HOTA needs trackeval: pip install --no-deps trackeval==1.3.0" in out
        assert report["tracking"]["idf1"] is None and report["tracking"]["hota"] is None
    else:
        assert report["tracking"]["idf1"] >= 0.9 and "needs" not in out
