"""Shared fixtures: where the real test media lives (../shared beside the repository).

The real clips are always present in this project; a missing file is a failure, never a skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
BENCH = SHARED / "bench"
MODELS = SHARED / "models"


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
