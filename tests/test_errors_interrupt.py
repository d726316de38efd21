"""Interruptions: Ctrl-C, kill and kill -9 during analysis and render leave nothing half-written under a
final name and no corrupt cache, the next run starts cleanly; two runs at once do not collide.

The runs are real ``fancam`` processes. To interrupt them at a known point, a small launcher pauses the
process right after a chosen call (e.g. the 10th encoded frame) and drops a marker file; the test then
sends the signal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from badmedia import digest, one_dancer_clip
from fancam.cli import main
from fancam.errors import EXIT_INTERRUPTED, EXIT_OK
from fancam.io.video import probe
from fancam.pipeline.analyze import analyze

MIDDLE_DANCER = (125, 235)

LAUNCHER = """
import importlib, pathlib, signal, sys, time
# A shell starting the tests in the background makes children ignore SIGINT; a user's Ctrl-C is
# what this simulates, so restore Python's default handler.
signal.signal(signal.SIGINT, signal.default_int_handler)
target, after, marker = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
module, _, qualname = target.partition(":")
owner_name, _, attr = qualname.rpartition(".")
owner = importlib.import_module(module)
owner = getattr(owner, owner_name) if owner_name else owner
real, calls = getattr(owner, attr), [0]

def paused(*args, **kwargs):
    result = real(*args, **kwargs)
    calls[0] += 1
    if calls[0] == after:
        marker.touch()
        time.sleep(600)
    return result

setattr(owner, attr, paused)
from fancam.cli import main
sys.exit(main(sys.argv[4:]))
"""


def interrupted_run(tmp_path: Path, target: str, after: int, sig: signal.Signals, *argv: object):
    """Run ``fancam argv`` until ``target`` has been called ``after`` times, then send ``sig``.

    Returns:
        (exit code, stderr) of the process.
    """
    marker = tmp_path / f"paused-{time.monotonic_ns()}"
    cmd = [sys.executable, "-c", LAUNCHER, target, str(after), str(marker), "-q", *map(str, argv)]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    with subprocess.Popen(cmd, cwd=tmp_path, **pipes) as proc:
        deadline = time.monotonic() + 300
        while not marker.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                _, err = proc.communicate()
                pytest.fail(f"the run ended before the pause point ({proc.returncode}): {err}")
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def run(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    rc = main([*map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


@pytest.fixture(autouse=True)
def user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A private user cache per test (the runs below share the content, so they would share a cache)."""
    monkeypatch.setenv("FANCAM_HOME", str(tmp_path / "fancam-home"))


def cache_folder() -> Path:
    """The one analysis folder in this test's user cache."""
    [folder] = (Path(os.environ["FANCAM_HOME"]) / "analyses").iterdir()
    return folder


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, gillhung_clip: Path) -> Path:
    """1.2 s of one dancer (not analysed)."""
    return one_dancer_clip(gillhung_clip, tmp_path_factory.mktemp("clip") / "solo.mp4", 1.2, MIDDLE_DANCER)


@pytest.fixture
def fresh(clip: Path, tmp_path: Path) -> Path:
    video = tmp_path / "solo.mp4"
    video.write_bytes(clip.read_bytes())
    return video


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory, clip: Path) -> tuple[Path, Path]:
    """The clip and the user cache holding its analysis."""
    video = tmp_path_factory.mktemp("analysed") / "solo.mp4"
    video.write_bytes(clip.read_bytes())
    home = tmp_path_factory.mktemp("analysed-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FANCAM_HOME", str(home))
        analyze(video, progress=False)
    return video, home


def stages(folder: Path) -> set[str]:
    return set(json.loads((folder / "manifest.json").read_text())["stages"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_interrupted_analysis_keeps_a_valid_cache(
    capsys: pytest.CaptureFixture, fresh: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    before = digest(fresh)
    rc, err = interrupted_run(tmp_path, "fancam.identity.appearance:Appearance.save", 1, sig, "analyze", fresh)
    folder = cache_folder()
    visible = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
    assert visible == {"about.json", "manifest.json", "scan.npz"}, "the appearance file was never published"
    assert stages(folder) == {"scan"}
    if sig == signal.SIGINT:
        assert rc == EXIT_INTERRUPTED
        assert err.strip() == "fancam: interrupted; no partial output was kept"
        assert leftovers(folder) == []
    else:
        assert rc == -signal.SIGKILL
        assert [n.startswith(".appearance.") for n in leftovers(folder)] == [True], "caught mid-write"
    rc, out, err = run(capsys, "-v", "-q", "analyze", fresh)
    assert rc == EXIT_OK, err
    assert "reusing the detection and tracking" in err
    assert "person 1" in out
    assert leftovers(folder) == [], "the next run cleans what a killed run left"
    assert stages(folder) == {"scan", "appearance", "identity"}
    assert digest(fresh) == before


def test_ctrl_c_while_decoding_and_detecting(
    capsys: pytest.CaptureFixture, fresh: Path, tmp_path: Path
) -> None:
    """The decoder runs in a thread during the first pass: Ctrl-C there must stop it and exit cleanly."""
    rc, err = interrupted_run(tmp_path, "fancam.tracking.scan:_detect_and_track", 3, signal.SIGINT, "analyze", fresh)
    assert rc == EXIT_INTERRUPTED
    assert err.strip() == "fancam: interrupted; no partial output was kept"
    folder = cache_folder()
    assert {p.name for p in folder.iterdir() if not p.name.startswith(".")} <= {"about.json", "manifest.json"}
    assert leftovers(folder) == []
    rc, out, err = run(capsys, "-q", "analyze", fresh)
    assert rc == EXIT_OK and "person 1" in out, err


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "kill", "kill-9"]
)
def test_interrupted_render_leaves_no_output(
    capsys: pytest.CaptureFixture, analysed: tuple[Path, Path], tmp_path: Path, sig: signal.Signals,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    analysed, home = analysed
    monkeypatch.setenv("FANCAM_HOME", str(home))
    out = tmp_path / "fancam.mp4"
    before = digest(analysed)
    rc, err = interrupted_run(tmp_path, "fancam.io.encode:VideoWriter.write", 10, sig,
                              "render", analysed, "--person", "1", "-o", out)
    assert not out.exists() and not (tmp_path / "fancam.crop.csv").exists()
    if sig == signal.SIGKILL:
        assert rc == -signal.SIGKILL
        assert len(leftovers(tmp_path)) == 1, "caught while the encoder was writing"
    else:
        assert rc == EXIT_INTERRUPTED
        assert "interrupted; no partial output was kept" in err
        assert leftovers(tmp_path) == []
    rc, _, err = run(capsys, "-q", "render", analysed, "--person", "1", "-o", out)
    assert rc == EXIT_OK, err
    assert probe(out).n_frames == 36
    assert leftovers(tmp_path) == []
    assert digest(analysed) == before


def test_two_runs_at_once_share_the_cache(fresh: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "fancam.cli", "-q", "analyze", str(fresh)]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    assert [rc for rc, _, _ in results] == [EXIT_OK, EXIT_OK], results
    assert results[0][1] == results[1][1], "both report the same performers"
    waited = [err for _, _, err in results if "another fancam process is using" in err]
    assert len(waited) == 1, "one run waited for the other, then reused its results"
    folder = cache_folder()
    assert stages(folder) == {"scan", "appearance", "identity"}
    assert leftovers(folder) == []
    assert len(json.loads((folder / "people.json").read_text())["people"]) == 1
