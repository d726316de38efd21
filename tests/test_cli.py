"""Command line: exit codes, one-line messages naming the file, --verbose, and bad paths refused early.

Every case asserts the exit code, the message, that the inputs are unchanged, and that nothing was
written (bad paths are refused before the analysis starts, so no analysis folder appears).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from badmedia import audio_only, blanked_copy, digest, snapshot, still_image, synth_video, truncated_copy
from fancam.cli import main
from fancam.errors import EXIT_INPUT, EXIT_PROCESSING, EXIT_USAGE


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small valid video (nobody in it): the CLI must refuse bad options before looking inside."""
    return synth_video(tmp_path_factory.mktemp("cli") / "clip.mp4", n=10)


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """Remove the write bits of a folder for the duration of the block."""
    os.chmod(folder, 0o555)
    try:
        yield folder
    finally:
        os.chmod(folder, 0o755)


def run(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    rc = main(["-q", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_help_documents_exit_codes_and_file_rules(capsys: pytest.CaptureFixture) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for line in ("2    usage error", "3    input error", "4    processing error", "5    model error",
                 "130  interrupted", "--verbose adds the traceback", "Inputs are never modified",
                 "replaced only with --force"):
        assert line in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["render", "{video}"], "one of the arguments --person --member --all is required"),
        (["render", "{video}", "--person", "1", "--member", "X"], "not allowed with argument"),
        (["render", "{video}", "--person", "one"], "invalid int value"),
        (["render", "{video}", "--person", "1", "--start", "3", "--end", "1"], "need 0 <= --start < --end"),
        (["render", "{video}", "--all", "-o", "{video_dir}/all.mp4"], "with --all, -o must be a folder"),
        (["eval", "{video}", "--gt", "{video}", "--crop", "{video}"], "--crop and --target go together"),
        (["analyze", "{video}", "--quality", "ultra"], "invalid choice: 'ultra'"),
    ],
    ids=["no-command", "no-person", "two-selections", "bad-number", "bad-range", "all-to-file", "crop-only",
         "bad-quality"],
)
def test_usage_errors(capsys: pytest.CaptureFixture, video: Path, argv: list[str], message: str) -> None:
    before = snapshot(video.parent)
    args = [a.format(video=video, video_dir=video.parent) for a in argv]
    rc, _, err = run(capsys, *args)
    assert rc == EXIT_USAGE
    assert message in err
    assert "Traceback" not in err
    assert snapshot(video.parent) == before


def make_missing(p: Path) -> None:
    pass


def make_folder(p: Path) -> None:
    p.mkdir()


def make_locked(p: Path) -> None:
    synth_video(p, n=5)
    os.chmod(p, 0)


def make_empty(p: Path) -> None:
    p.touch()


def make_text(p: Path) -> None:
    p.write_text("<!DOCTYPE html><html>Video unavailable</html>\n")


def make_image(p: Path) -> None:
    still_image(p)


def make_audio(p: Path) -> None:
    audio_only(p)


def make_truncated(p: Path) -> None:
    truncated_copy(synth_video(p.with_name("full.mp4"), n=60), p, 0.5)


def make_blank(p: Path) -> None:
    blanked_copy(synth_video(p.with_name("one.mp4"), n=1), p)


def make_tiny(p: Path) -> None:
    synth_video(p, n=10, size=(32, 32))


BAD_INPUTS = [
    (make_missing, "video not found: '{path}'; check the path"),
    (make_folder, "video is a folder, not a file: '{path}'"),
    (make_locked, "video is not readable (no read permission): '{path}'; fix its permissions"),
    (make_empty, "video is an empty file (0 bytes): '{path}'"),
    (make_text, "cannot open '{path}' as a video: it is a text file, not a video"),
    (make_image, "'{path}' is a still image (jpeg), not a video"),
    (make_audio, "'{path}' is an audio-only file; fancam needs a video"),
    (make_truncated, "cannot open '{path}' as a video: it is an MP4/MOV file without its index ('moov' box)"),
    (make_blank, "'{path}' has no decodable video frame"),
    (make_tiny, "'{path}' is 32x32 pixels, too small to find people in"),
]


@pytest.mark.parametrize("command", ["analyze", "render"])
@pytest.mark.parametrize(("make", "message"), BAD_INPUTS, ids=[m.__name__[5:] for m, _ in BAD_INPUTS])
def test_unusable_inputs_are_input_errors(
    capsys: pytest.CaptureFixture, tmp_path: Path, command: str, make, message: str
) -> None:
    path = tmp_path / "video.mp4"
    make(path)
    before = snapshot(tmp_path) if not path.is_file() or os.stat(path).st_mode & 0o444 else None
    extra = ["--person", "1"] if command == "render" else []
    try:
        rc, out, err = run(capsys, command, path, *extra)
    finally:
        if path.is_file():
            os.chmod(path, 0o644)
    assert rc == EXIT_INPUT
    assert err.startswith(f"fancam: error: {message.format(path=path)}")
    assert len(err.strip().splitlines()) == 1, "one line, no traceback"
    assert out == ""
    assert not (tmp_path / "video.fancam").exists(), "no analysis folder for an unusable input"
    if before is not None:
        assert snapshot(tmp_path) == before


def test_one_frame_video_is_refused_after_decoding(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    path = synth_video(tmp_path / "still.mp4", n=1)
    before = digest(path)
    rc, _, err = run(capsys, "analyze", path)
    assert rc == EXIT_INPUT
    assert f"fancam: error: '{path}' has 1 decodable video frame: it is a still picture or damaged" in err
    assert digest(path) == before
    assert not list((tmp_path / "still.fancam").glob("*.csv")), "no tracks.csv"


def test_missing_gallery_is_refused_before_the_analysis(
    capsys: pytest.CaptureFixture, video: Path, tmp_path: Path
) -> None:
    rc, _, err = run(capsys, "analyze", video, "--gallery", tmp_path / "photos", "--out", tmp_path / "a")
    assert rc == EXIT_INPUT
    assert f"gallery folder not found: '{tmp_path / 'photos'}'" in err
    assert not (tmp_path / "a").exists()
    (tmp_path / "file.jpg").write_bytes(b"x")
    rc, _, err = run(capsys, "render", video, "--all", "--gallery", tmp_path / "file.jpg", "-o", tmp_path)
    assert rc == EXIT_INPUT
    assert "gallery folder is a file, not a folder" in err


# ------------------------------------------------------------------------------------ output paths
def test_output_equal_to_input_is_refused_even_with_force(
    capsys: pytest.CaptureFixture, video: Path
) -> None:
    before = snapshot(video.parent)
    for argv in (
        ["render", video, "--person", "1", "-o", video],
        ["render", video, "--person", "1", "-o", video, "--force"],
        ["render", video, "--person", "1", "-o", video.parent / ".." / video.parent.name / video.name],
        ["people", video, "-o", video, "--force"],
    ):
        rc, _, err = run(capsys, *argv)
        assert rc == EXIT_INPUT, argv
        assert f"refusing to overwrite the input video '{video}'" in err
    link = video.parent / "link.mp4"
    os.link(video, link)
    try:
        rc, _, err = run(capsys, "render", video, "--person", "1", "-o", link, "--force")
        assert rc == EXIT_INPUT and "refusing to overwrite the input video" in err
    finally:
        link.unlink()
    rc, _, err = run(capsys, "eval", video, "--gt", video, "--json", video)
    assert rc == EXIT_INPUT and "refusing to overwrite the input" in err
    assert snapshot(video.parent) == before
    assert not (video.parent / "clip.fancam").exists()


def test_existing_outputs_are_kept_without_force(
    capsys: pytest.CaptureFixture, video: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fancam.mp4"
    out.write_bytes(b"an earlier render")
    rc, _, err = run(capsys, "render", video, "--person", "1", "-o", out)
    assert rc == EXIT_INPUT
    assert f"'{out}' already exists; use --force to overwrite it" in err
    out.unlink()
    crop = tmp_path / "fancam.crop.csv"
    crop.write_text("frame,t\n")
    rc, _, err = run(capsys, "render", video, "--person", "1", "-o", out)
    assert rc == EXIT_INPUT
    assert f"'{crop}' already exists; use --force" in err
    debug = tmp_path / "x.debug.mp4"
    debug.write_bytes(b"an earlier debug video")
    rc, _, err = run(capsys, "render", video, "--person", "1", "-o", tmp_path / "x.mp4", "--debug")
    assert rc == EXIT_INPUT and f"'{debug}' already exists; use --force" in err
    sheet = tmp_path / "sheet.jpg"
    sheet.write_bytes(b"old sheet")
    rc, _, err = run(capsys, "people", video, "-o", sheet)
    assert rc == EXIT_INPUT and f"'{sheet}' already exists; use --force" in err
    assert sheet.read_bytes() == b"old sheet" and crop.read_text() == "frame,t\n"
    assert debug.read_bytes() == b"an earlier debug video"


@pytest.mark.parametrize("command", ["render", "people"])
def test_missing_or_read_only_output_folder(
    capsys: pytest.CaptureFixture, video: Path, tmp_path: Path, command: str
) -> None:
    extra = ["--person", "1"] if command == "render" else []
    name = "out.mp4" if command == "render" else "out.jpg"
    # A missing folder is created when the output is written; a run that fails first leaves none.
    rc, _, err = run(capsys, command, video, *extra, "-o", tmp_path / "missing" / name)
    assert rc == EXIT_PROCESSING and "no people found" in err
    assert not (tmp_path / "missing").exists()
    (tmp_path / "file").write_text("mine")
    rc, _, err = run(capsys, command, video, *extra, "-o", tmp_path / "file" / name)
    assert rc == EXIT_INPUT
    assert f"cannot create the output folder '{tmp_path / 'file'}': '{tmp_path / 'file'}' is a file" in err
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only(locked):
        rc, _, err = run(capsys, command, video, *extra, "-o", locked / name)
        assert rc == EXIT_INPUT
        assert f"output folder '{locked}' is not writable; choose another -o" in err
        rc, _, err = run(capsys, command, video, *extra, "-o", locked / "sub" / name)
        assert rc == EXIT_INPUT
        assert f"cannot create the output folder '{locked / 'sub'}': '{locked}' is read-only" in err
    assert list(locked.iterdir()) == []


def test_read_only_video_folder(
    capsys: pytest.CaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only media folder (e.g. ../shared) works: nothing is ever written there; outputs go to
    the current folder, which must be writable."""
    monkeypatch.setenv("FANCAM_HOME", str(tmp_path / "home"))
    folder = tmp_path / "downloads"
    folder.mkdir()
    path = synth_video(folder / "clip.mp4", n=10)
    before = snapshot(folder)
    with read_only(folder):
        monkeypatch.chdir(folder)
        rc, _, err = run(capsys, "render", path, "--person", "1")
        assert rc == EXIT_INPUT
        assert f"output folder '{folder}' is not writable; choose another -o" in err
        monkeypatch.chdir(tmp_path)
        rc, _, err = run(capsys, "analyze", path)
        # the synthetic clip has nobody in it: the analysis ran, in the user cache
        assert rc == EXIT_PROCESSING and "no people found" in err
    assert snapshot(folder) == before
    assert len(list((tmp_path / "home" / "analyses").iterdir())) == 1


def test_analysis_folder_that_is_a_file(capsys: pytest.CaptureFixture, video: Path, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("mine")
    rc, _, err = run(capsys, "analyze", video, "--out", taken)
    assert rc == EXIT_INPUT
    assert f"analysis folder '{taken}' exists and is not a folder; choose another with --out" in err
    assert taken.read_text() == "mine"


def test_eval_inputs_are_checked_first(capsys: pytest.CaptureFixture, video: Path, tmp_path: Path) -> None:
    rc, _, err = run(capsys, "eval", video, "--gt", tmp_path / "gt.csv")
    assert rc == EXIT_INPUT and f"ground truth not found: '{tmp_path / 'gt.csv'}'" in err
    rc, _, err = run(capsys, "eval", video, "--gt", video, "--crop", tmp_path / "c.csv", "--target", "P1")
    assert rc == EXIT_INPUT and f"camera path not found: '{tmp_path / 'c.csv'}'" in err
    assert not (video.parent / "clip.fancam").exists()


# ------------------------------------------------------------------------------- errors and --verbose
def test_verbose_shows_the_traceback(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    missing = tmp_path / "missing.mp4"
    rc, _, err = run(capsys, "analyze", missing)
    assert rc == EXIT_INPUT and "Traceback" not in err
    rc = main(["-v", "-q", "analyze", str(missing)])
    err = capsys.readouterr().err
    assert rc == EXIT_INPUT
    assert "Traceback (most recent call last)" in err and "InputError" in err
    assert err.strip().endswith(f"fancam: error: video not found: '{missing}'; check the path")


def test_bugs_and_os_errors_are_one_line_without_verbose(
    capsys: pytest.CaptureFixture, video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fancam.pipeline.analyze

    def broken(*args, **kwargs):
        raise RuntimeError("something unexpected")

    monkeypatch.setattr(fancam.pipeline.analyze, "analyze", broken)
    rc, _, err = run(capsys, "analyze", video)
    assert rc == EXIT_PROCESSING
    assert err.strip() == ("fancam: internal error: RuntimeError: something unexpected (rerun with --verbose "
                           "for details and please report it)")
    rc = main(["-v", "-q", "analyze", str(video)])
    err = capsys.readouterr().err
    assert rc == EXIT_PROCESSING and "Traceback" in err and "in broken" in err

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(video.with_suffix(".fancam")))

    monkeypatch.setattr(fancam.pipeline.analyze, "analyze", disk_full)
    rc, _, err = run(capsys, "analyze", video)
    assert rc == EXIT_INPUT
    assert "fancam: error: No space left on device: " in err and "free disk space" in err
    assert "Traceback" not in err


def test_cli_framing_and_aspect_choices_are_the_camera_planners():
    # One owner (fancam.camera.plan); the parser spells them out only to start without SciPy.
    from fancam.camera.plan import ASPECTS, AUTO, FRAMINGS
    from fancam.cli import build_parser

    render = build_parser()._subparsers._group_actions[0].choices["render"]  # type: ignore[union-attr]
    actions = {a.dest: a for a in render._actions}
    assert list(actions["framing"].choices) == [AUTO, *FRAMINGS]
    assert list(actions["aspect"].choices) == list(ASPECTS)
