"""The benchmarks' table of labelled clips covers every GT file, and each entry points at real media."""

from __future__ import annotations

from clips import CLIPS, GT_DIR, clip_named
from fancam.io.tables import load_gt
from fancam.io.video import probe


def test_every_gt_file_is_a_benchmark_clip() -> None:
    listed = {clip.gt.resolve() for clip in CLIPS}
    for gt in sorted(GT_DIR.glob("*.csv")):
        assert gt.resolve() in listed, f"{gt.name} is not in benchmarks/clips.py: no benchmark would score it"


def test_each_clip_has_its_video_gt_and_gallery_source() -> None:
    for clip in CLIPS:
        assert clip.video.is_file() and clip.gt.is_file(), clip.name
        info = probe(clip.video)
        gt = load_gt(clip.gt, n_frames=info.n_frames)
        assert gt.frame.max() < info.n_frames
        if clip.gallery is not None:
            assert (clip.gallery / clip.group).is_dir(), clip.name
        if clip.photos is not None:
            assert any(p.is_dir() for p in clip.photos.iterdir()), clip.name
    assert clip_named("bench").name == "bench"


def test_a_gallery_is_made_from_the_gt_outside_the_repository(tmp_path) -> None:
    clip = clip_named("fiyud")
    root = clip.gallery_dir(tmp_path)
    members = sorted(p.name for p in (root / clip.group).iterdir())
    assert members == sorted(set(load_gt(clip.gt).person.tolist()))
    assert all(len(list((root / clip.group / m).glob("*.jpg"))) == 3 for m in members)
    hamilton = clip_named("hamilton").gallery_dir(tmp_path)
    assert (hamilton / "hamilton" / "obama").is_dir()
