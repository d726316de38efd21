"""Tests of fancam.identity.gallery: loading, reporting bad photos, caching, naming, voting."""

from __future__ import annotations

import io
import os
import shutil
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import shared_file
from fancam.errors import GalleryError
from fancam.identity.faces import DlibHogDetector, FaceAnalyzer, FaceConfig, FaceDetections
from fancam.identity.gallery import Gallery, GalleryMember, decode_image, load_gallery, pick_face

HAMILTON = "data/face_recognition_hamilton"


class CountingDetector:
    """Wraps the dlib HOG detector and counts calls (to see what the cache saves)."""

    def __init__(self) -> None:
        self.inner = DlibHogDetector()
        self.calls = 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def __call__(self, image_rgb: np.ndarray) -> FaceDetections:
        self.calls += 1
        return self.inner(image_rgb)


Counting = tuple[FaceAnalyzer, CountingDetector]


@pytest.fixture(scope="module")
def counting() -> Counting:
    detector = CountingDetector()
    return FaceAnalyzer(FaceConfig(), detector=detector), detector


@pytest.fixture(autouse=True)
def user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Send the user-level cache to a temporary folder."""
    home = tmp_path / "fancam-home"
    monkeypatch.setenv("FANCAM_HOME", str(home))
    return home


def _copy(relative: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shared_file(relative), dest)
    return dest


@pytest.fixture
def messy_gallery(tmp_path: Path) -> Path:
    """Two groups from face_recognition_hamilton photos, with the usual mistakes in them."""
    g = tmp_path / "gallery"
    _copy(f"{HAMILTON}/identities/obama/obama.jpg", g / "hamilton/obama/a.jpg")
    _copy(f"{HAMILTON}/identities/obama/obama2.jpg", g / "hamilton/obama/b.jpg")
    _copy(f"{HAMILTON}/identities/biden/biden.jpg", g / "hamilton/biden/biden.jpg")
    _copy(f"{HAMILTON}/identities/biden/biden2.jpg", g / "hamilton/biden/biden2.jpg")
    _copy(f"{HAMILTON}/identities/kit_harington/john1.jpeg", g / "hamilton/kit/john1.jpeg")
    # A second group with a member of the same name.
    _copy(f"{HAMILTON}/identities/alex_lacamoire/img1.jpg", g / "band/obama/alex.jpg")
    # Mistakes: a text file named .jpg, a noise image, a group photo, a note, an empty member, and a
    # file in a group folder.
    (g / "hamilton/obama/notes.jpg").write_text("not a photo")
    noise = np.random.default_rng(0).integers(0, 256, (300, 240, 3), dtype=np.uint8)
    cv2.imwrite(str(g / "hamilton/biden/noise.png"), noise)
    _copy(f"{HAMILTON}/group_photos/obama_and_biden.jpg", g / "hamilton/kit/group.jpg")
    (g / "hamilton/kit/readme.txt").write_text("who is who")
    (g / "hamilton/empty_member").mkdir()
    (g / "hamilton/stray.jpg").write_text("a photo outside any member folder")
    return g


def test_messy_gallery_reports_problems_and_caches(messy_gallery: Path, user_cache: Path, counting: Counting) -> None:
    analyzer, detector = counting
    gallery = load_gallery(messy_gallery, analyzer)
    keys = ["band/obama", "hamilton/biden", "hamilton/kit", "hamilton/obama"]
    assert [m.key for m in gallery.members] == keys
    assert gallery.names == ("band/obama", "biden", "kit", "hamilton/obama")
    assert [len(m.photos) for m in gallery.members] == [1, 2, 1, 2]
    text = "\n".join(gallery.warnings)
    for name in ("notes.jpg", "noise.png", "group.jpg", "readme.txt", "empty_member", "stray.jpg"):
        assert name in text, f"{name} not reported: {text}"
    assert "no face" in text and "faces of similar size" in text and "no usable photo" in text
    assert len(gallery.warnings) == 6
    # The cache is in the user cache, never in the gallery; a second load embeds nothing.
    assert gallery.cache_path is not None and gallery.cache_path.is_relative_to(user_cache)
    assert gallery.cache_path.is_file() and not list(messy_gallery.glob(".*"))
    calls = detector.calls
    again = load_gallery(messy_gallery, analyzer)
    assert detector.calls == calls
    for a, b in zip(gallery.members, again.members, strict=True):
        np.testing.assert_array_equal(a.embeddings, b.embeddings)
    # Each member's photos are most similar to that member.
    for j, member in enumerate(gallery.members):
        assert (gallery.similarity(member.embeddings).argmax(axis=1) == j).all()


def test_changed_photo_is_re_embedded(tmp_path: Path, user_cache: Path, counting: Counting) -> None:
    analyzer, detector = counting
    g = tmp_path / "g"
    _copy(f"{HAMILTON}/identities/obama/obama.jpg", g / "grp/obama/x.jpg")
    photo = _copy(f"{HAMILTON}/identities/biden/biden.jpg", g / "grp/biden/x.jpg")
    before = load_gallery(g, analyzer)
    # Replace Biden's photo by another of him: only that photo is analysed again.
    shutil.copyfile(shared_file(f"{HAMILTON}/identities/biden/biden2.jpg"), photo)
    calls = detector.calls
    after = load_gallery(g, analyzer)
    assert detector.calls == calls + 1
    biden = after.index("biden")
    assert not np.array_equal(before.members[biden].embeddings, after.members[biden].embeddings)
    np.testing.assert_array_equal(before.members[after.index("obama")].embeddings,
                                  after.members[after.index("obama")].embeddings)


def test_read_only_gallery_caches_in_user_folder(
    tmp_path: Path, user_cache: Path, counting: Counting
) -> None:
    analyzer, detector = counting
    g = tmp_path / "ro"
    _copy(f"{HAMILTON}/identities/obama/obama2.jpg", g / "grp/obama/x.jpg")
    _copy(f"{HAMILTON}/identities/biden/biden2.jpg", g / "grp/biden/x.jpg")
    folders = [g, g / "grp", g / "grp/obama", g / "grp/biden"]
    for folder in folders:
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    try:
        gallery = load_gallery(g, analyzer)
        calls = detector.calls
        again = load_gallery(g, analyzer)
    finally:
        for folder in folders:
            folder.chmod(0o755)
    assert len(gallery) == 2 and not gallery.warnings
    assert not list(g.glob(".*"))
    assert gallery.cache_path is not None and gallery.cache_path.is_relative_to(user_cache)
    assert gallery.cache_path.is_file() and detector.calls == calls
    assert again.cache_path == gallery.cache_path


def test_bench_gallery_loads_without_writing_into_it(bench_gallery: Path, user_cache: Path) -> None:
    before = sorted(p.name for p in bench_gallery.rglob("*"))
    gallery = load_gallery(bench_gallery, FaceAnalyzer(FaceConfig()))
    assert gallery.names == ("P1", "P2", "P3") and gallery.groups == ("gillhung_dance",)
    assert not gallery.warnings
    assert all(len(m.photos) == 3 and m.embeddings.shape == (3, 128) for m in gallery.members)
    assert gallery.cache_path is not None and gallery.cache_path.is_relative_to(user_cache)
    assert sorted(p.name for p in bench_gallery.rglob("*")) == before
    sim = gallery.similarity(np.concatenate([m.embeddings for m in gallery.members]))
    assert sim.shape == (9, 3) and sim.dtype == np.float32
    assert (sim.argmax(axis=1) == np.repeat([0, 1, 2], 3)).all()


def test_member_names_and_group_vote(messy_gallery: Path, counting: Counting) -> None:
    gallery = load_gallery(messy_gallery, counting[0])
    with pytest.raises(GalleryError, match="ambiguous.*band/obama, hamilton/obama"):
        gallery.index("obama")
    with pytest.raises(GalleryError, match="no member 'nobody'"):
        gallery.index("nobody")
    assert gallery.members[gallery.index("hamilton/obama")].group == "hamilton"
    assert gallery.members[gallery.index("biden")].name == "biden"
    # Faces of Biden and Kit vote for their group; band has only Alex.
    faces = np.concatenate([gallery.members[gallery.index(n)].embeddings for n in ("biden", "kit")])
    votes = gallery.vote_groups(faces)
    assert [v.group for v in votes] == ["hamilton", "band"]
    assert votes[0].score > 0.9 and votes[0].n_faces == 3
    assert sum(v.score for v in votes) == pytest.approx(1.0)
    sub = gallery.subset("hamilton")
    assert sub.names == ("biden", "kit", "obama")
    # Random vectors match nobody: no votes.
    noise = np.random.default_rng(0).normal(size=(4, 128)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    assert all(v.score == 0 and v.n_faces == 0 for v in gallery.vote_groups(noise))


def test_flat_layout_is_one_group(tmp_path: Path, counting: Counting) -> None:
    g = tmp_path / "mygroup"
    _copy(f"{HAMILTON}/identities/obama/obama2.jpg", g / "obama/1.jpg")
    _copy(f"{HAMILTON}/identities/biden/biden2.jpg", g / "biden/1.jpg")
    gallery = load_gallery(g, counting[0])
    assert gallery.groups == ("mygroup",) and gallery.names == ("biden", "obama")


def test_unusable_galleries_raise(tmp_path: Path, counting: Counting) -> None:
    analyzer = counting[0]
    with pytest.raises(GalleryError, match="not found"):
        load_gallery(tmp_path / "missing", analyzer)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GalleryError, match="no member folders"):
        load_gallery(tmp_path / "empty", analyzer)
    bad = tmp_path / "bad" / "grp" / "someone"
    bad.mkdir(parents=True)
    (bad / "x.jpg").write_bytes(b"\x00" * 100)
    with pytest.raises(GalleryError, match="no usable face photo.*x.jpg"):
        load_gallery(tmp_path / "bad", analyzer)
    with pytest.raises(GalleryError, match="is not a folder"):
        load_gallery(bad / "x.jpg", analyzer)


def _fake_candidates(sizes: list[float]) -> list:
    class Q:
        def __init__(self, size: float) -> None:
            self.size_px = size

    class C:
        def __init__(self, size: float) -> None:
            self.quality = Q(size)

    return [C(s) for s in sizes]


@pytest.mark.parametrize(
    ("sizes", "picked"),
    [
        ([], None),              # no face
        ([50.0], 0),             # exactly one face
        ([100.0, 40.0], 0),      # the largest clearly dominates (2.5x)
        ([100.0, 80.0], None),   # two similar faces: ambiguous
    ],
)
def test_pick_face(sizes: list[float], picked: int | None) -> None:
    faces = _fake_candidates(sizes)
    result = pick_face(faces)
    assert result is (None if picked is None else faces[picked])


def test_gallery_similarity_uses_best_photo() -> None:
    e = np.eye(128, dtype=np.float32)
    members = (
        GalleryMember("g", "a", e[[0, 1]], (Path("a1"), Path("a2")), np.ones(2, np.float32)),
        GalleryMember("g", "b", e[[2]], (Path("b1"),), np.ones(1, np.float32)),
    )
    gallery = Gallery(Path("."), members)
    np.testing.assert_allclose(gallery.similarity(e[[1, 2]]), [[1, 0], [0, 1]])
    assert gallery.similarity(np.zeros((0, 128))).shape == (0, 2)
    assert os.fspath(gallery.root) == "."


def test_decode_image_applies_exif_rotation_and_rejects_junk() -> None:
    from PIL import Image

    image = Image.new("RGB", (200, 100), (255, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": a phone photo taken upright
    buf = io.BytesIO()
    image.save(buf, "JPEG", exif=exif.tobytes())
    decoded = decode_image(buf.getvalue())
    assert decoded is not None and decoded.shape == (200, 100, 3)
    assert decoded[..., 0].mean() > 200 and decoded[..., 2].mean() < 50  # RGB order
    assert decode_image(b"") is None and decode_image(b"GIF89a not really") is None
