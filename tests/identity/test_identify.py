"""Identity on the labelled clip: named with the gallery, numbered without, unknown when left out."""

from __future__ import annotations

import shutil

import pytest

from fancam.eval.metrics import evaluate
from fancam.pipeline.analyze import analyze


def _score(analysis, gt, *, named: bool):
    return evaluate(analysis.folder / "tracks.csv", gt, named=named)


def test_gallery_mode_names_every_dancer(gillhung_analysis, bench_gt):
    report = _score(gillhung_analysis, bench_gt, named=True)
    # Issue 5's bar: identity accuracy >= 0.95 and IDF1 >= 0.90 on ../shared/bench with the gallery.
    assert report.identity.accuracy >= 0.95
    assert report.tracking.idf1 >= 0.90
    assert _main_labels(gillhung_analysis) == ["P1", "P2", "P3"]


def _main_labels(analysis) -> list[str]:
    """Labels of the people seen for 1 s or more; the others must be brief and unnamed.

    With YOLOX-nano (the default since issue 10) the tracklet rules cut P2 and P3 where they overlap
    near the end (f795-f804); the last pieces (f807-f822, 0.5 s) are too short to link or name.
    """
    brief = [p for p in analysis.cast.people if p.seen_s < 1.0]
    assert len(brief) <= 2 and all(p.member is None and p.last_seen_s >= 26.0 for p in brief), brief
    return sorted(p.label for p in analysis.cast.people if p.seen_s >= 1.0)


def test_no_member_in_two_places_at_once(gillhung_analysis):
    tracks, cast = gillhung_analysis.tracks, gillhung_analysis.cast
    for person in cast.people:
        frames = tracks.frame[cast.person == person.id]
        assert len(frames) == len(set(frames.tolist())), person.label


@pytest.fixture(scope="module")
def reanalyse(gillhung_analysis, tmp_path_factory):
    """Re-run only identity with another gallery, in a copy of the analysis folder.

    The caches are keyed by content, so the copy reuses scan and appearance; the shared session
    analysis itself is left as it was (other tests check that it is reused untouched).
    """
    copy = tmp_path_factory.mktemp("reanalyse") / "dance.fancam"
    shutil.copytree(gillhung_analysis.folder, copy)

    def run(gallery):
        return analyze(gillhung_analysis.info.path, out=copy, gallery=gallery, progress=False)

    return run


def test_without_gallery_performers_are_numbered(reanalyse, bench_gt):
    analysis = reanalyse(None)
    assert _main_labels(analysis) == ["person-1", "person-2", "person-3"]
    # Issue 5's bar for no-gallery mode (names mapped one-to-one to GT persons).
    assert _score(analysis, bench_gt, named=False).identity.accuracy >= 0.90


@pytest.mark.parametrize("left_out", ["P1", "P3"])
def test_member_left_out_of_gallery_becomes_unknown(reanalyse, bench_gallery, bench_gt, tmp_path, left_out):
    # P1 and P3 wear the same outfit: the one left out must not be named as the other.
    gallery = tmp_path / "gallery" / "gillhung_dance"
    for member in ("P1", "P2", "P3"):
        if member != left_out:
            shutil.copytree(bench_gallery / "gillhung_dance" / member, gallery / member)
    analysis = reanalyse(tmp_path / "gallery")
    assert _main_labels(analysis) == sorted(["unknown"] + [m for m in ("P1", "P2", "P3") if m != left_out])
    report = _score(analysis, bench_gt, named=True)
    correct = {person: ok for person, ok, _ in report.identity.per_person}
    assert correct[left_out] == 0  # never given someone else's name
    # ... and nobody else wears the missing member's rows: each remaining member keeps their own.
    assert all(correct[m] >= 50 for m in ("P1", "P2", "P3") if m != left_out)
