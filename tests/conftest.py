"""Shared fixtures: where the real test media lives (../shared beside the repository).

The real clips are always present in this project; a missing file is a failure, never a skip.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The seed prototype's replay (benchmarks/seed.py, baseline.py) is benchmark code, not package code;
# its tests (tests/benchmarks/) import it the way the benchmark scripts do.
sys.path.insert(0, str(REPO / "benchmarks"))
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
BENCH = SHARED / "bench"
MODELS = SHARED / "models"


@pytest.fixture(scope="session", autouse=True)
def private_user_cache(tmp_path_factory):
    """Every test session gets an empty ``$FANCAM_HOME``: results never come from a user cache that an
    older fancam filled (stage keys cover settings and the release, not every code change in between)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FANCAM_HOME", str(tmp_path_factory.mktemp("fancam-home")))
        yield


def shared_file(relative: str) -> Path:
    """Path of a file under ../shared; fails the test (not skips) when it is missing."""
    path = SHARED / relative
    if not path.exists():
        pytest.fail(f"test media missing: ../shared/{relative}")
    return path


@pytest.fixture(scope="session")
def gillhung_clip() -> Path:
    """3 dancers, 360x640 portrait, 27.5 s, labelled in ../shared/bench."""
    return shared_file("data/gillhung_dance/dance.mp4")


@pytest.fixture(scope="session")
def bench_gt() -> Path:
    """Hand-labelled ground truth of the gillhung clip."""
    return shared_file("bench/gillhung_dance.csv")


@pytest.fixture(scope="session")
def bench_gallery() -> Path:
    """Gallery of the gillhung clip (gillhung_dance/P1..P3)."""
    return shared_file("bench/gallery")


@pytest.fixture(scope="session")
def gillhung_analysis(tmp_path_factory, gillhung_clip, bench_gallery):
    """The full analysis of the gillhung clip with the bench gallery, computed once per test session.

    The clip is copied into a temporary folder so the analysis folder and outputs land there.
    """
    import shutil

    from fancam.pipeline.analyze import analyze

    folder = tmp_path_factory.mktemp("gillhung")
    video = folder / "dance.mp4"
    shutil.copyfile(gillhung_clip, video)
    return analyze(video, gallery=bench_gallery, progress=False)


def trimmed_copy(source: Path, dest: Path, seconds: float) -> Path:
    """Copy the first ``seconds`` of a video (stream copy, no re-encode; cut at a packet boundary)."""
    import av

    with av.open(str(source)) as src, av.open(str(dest), "w") as out:
        kept = [s for s in src.streams if s.type in ("video", "audio")]
        streams = {s.index: out.add_stream_from_template(s) for s in kept}
        for packet in src.demux(*kept):
            if packet.dts is None:
                continue
            if packet.pts is not None and float(packet.pts * packet.time_base) > seconds:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return dest
