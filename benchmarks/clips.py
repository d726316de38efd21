"""The labelled clips every accuracy benchmark runs on: video, ground truth and how to get a gallery.

One table, so that a new GT file in ``benchmarks/gt/`` is scored by every benchmark at once
(``tests/benchmarks/test_clips.py`` fails when a GT file is missing here). Galleries are media, so
they are never in the repository: the bench clip has one in ``../shared/bench``; hamilton's are the
reference photos of ``../shared/data/face_recognition_hamilton/identities`` (taken elsewhere); for the
others :func:`make_gallery.make_gallery` cuts three crops per performer from the first 20% of the clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
GT_DIR = REPO / "benchmarks" / "gt"


@dataclass(frozen=True)
class LabelledClip:
    """A clip with hand-labelled ground truth.

    Attributes:
        name: Short name used in reports and work folders.
        video: The clip (under ../shared).
        gt: Its GT.csv.
        group: Group folder name of its gallery.
        gallery: A ready gallery (``GALLERY/<group>/<member>/``), if the clip has one.
        photos: A folder of reference photos per member (``PHOTOS/<member>/``), used as the gallery's
            ``<group>`` folder.
        what: One line on what makes it hard.
    """

    name: str
    video: Path
    gt: Path
    group: str
    gallery: Path | None = None
    photos: Path | None = None
    what: str = ""

    def gallery_dir(self, work: Path) -> Path:
        """A gallery folder for this clip (made under ``work`` when it has no ready one)."""
        if self.gallery is not None:
            return self.gallery
        root = work / f"gallery-{self.name}"
        if self.photos is not None:
            link = root / self.group
            if not link.exists():
                root.mkdir(parents=True, exist_ok=True)
                link.symlink_to(self.photos.resolve(), target_is_directory=True)
            return root
        if not (root / self.group).is_dir():
            # Imported here: bench_trackers.py's reference step imports this table in a venv without fancam.
            from make_gallery import make_gallery

            make_gallery(self.video, self.gt, root, self.group)
        return root


CLIPS: tuple[LabelledClip, ...] = (
    LabelledClip("bench", SHARED / "data/gillhung_dance/dance.mp4", SHARED / "bench/gillhung_dance.csv",
                 "gillhung_dance", gallery=SHARED / "bench/gallery",
                 what="3 women, 360x640, two in the same outfit (the tuning clip)"),
    LabelledClip("dance2", SHARED / "data/gillhung_dance/dance2.mp4", GT_DIR / "gillhung_dance2.csv", "dance2",
                 what="5 men at night, 1080x1920 HEVC, pile-ups, rolling on the ground"),
    LabelledClip("fiyud", SHARED / "data/fiyud_dance3/dance.mp4", GT_DIR / "fiyud_dance3.csv", "fiyud",
                 what="3 women in similar outfits, 720x1280"),
    LabelledClip("ballet", SHARED / "data/tiktok_stage_ballet/4197989243424123418.mp4",
                 GT_DIR / "tiktok_stage_ballet.csv", "ballet",
                 what="4 dancers in identical costumes, 360x632 phone, crossings"),
    LabelledClip("hamilton", SHARED / "data/face_recognition_hamilton/short_hamilton_clip.mp4",
                 GT_DIR / "hamilton_short.csv", "hamilton",
                 photos=SHARED / "data/face_recognition_hamilton/identities",
                 what="TV, 640x360, 4 shots, small faces, reference photos from elsewhere"),
    LabelledClip("miryala", SHARED / "data/miryala_stage_dance/video.mp4", GT_DIR / "miryala_stage_dance.csv",
                 "miryala", what="8 men in look-alike outfits, 640x360 stage, late entries, a cut, hidden back row"),
    LabelledClip("linedance", SHARED / "data/divyanshu_line_dance/dance.mp4", GT_DIR / "divyanshu_line_dance.csv",
                 "linedance", what="7 costumed dancers seen from behind, 640x360 25 fps, hidden back row, crowd"),
)


def shown(path: Path) -> str:
    """A path as the reports print it: relative to the repository root (``../shared/...`` for media)."""
    path = Path(path).resolve()
    if path.is_relative_to(REPO):
        return str(path.relative_to(REPO))
    return str(Path("..") / path.relative_to(REPO.parent))


def clip_named(name: str) -> LabelledClip:
    """The clip called ``name`` (ValueError listing the names otherwise)."""
    for clip in CLIPS:
        if clip.name == name:
            return clip
    raise ValueError(f"unknown clip {name!r}; choose from {', '.join(c.name for c in CLIPS)}")
