"""Tests of fancam.identity.gallery: loading, reporting bad photos, caching, naming, voting."""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import REPO, shared_file
from fancam.errors import GalleryError
from fancam.identity.faces import DlibHogDetector, FaceAnalyzer, FaceConfig, FaceDetections
from fancam.identity.gallery import (
    Gallery,
    GalleryMember,
    cut_at_bottom,
    decode_image,
    is_person_crop,
    load_gallery,
    looks_mixed,
    people_in_photos,
    pick_face,
    upper_body_box,
)

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
    with pytest.raises(GalleryError, match="no usable photo .*x.jpg: not a readable image"):
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


@pytest.mark.parametrize(
    ("box", "size", "crop"),
    [
        ((3, 67, 90, 346), (92, 346), True),    # YOLOX-nano on a head-blurred GT crop: starts a head down
        ((0, 30, 90, 342), (92, 346), True),    # the SSD on the same crop
        ((40, 60, 90, 346), (200, 400), False),  # a person in a wider scene: the box is the body
        ((3, 67, 90, 346), (92, 120), False),   # not a tall photo (a landscape scene)
        ((3, 300, 90, 346), (92, 346), False),  # a small box at the bottom of a tall photo
    ],
)
def test_person_crop_is_described_on_the_photo(box, size, crop) -> None:
    assert is_person_crop(np.array(box, np.float32), *size) is crop


def test_a_person_cut_by_the_bottom_edge_is_described_from_the_top() -> None:
    assert cut_at_bottom(np.array([0, 5, 90, 105], np.float32), 105)
    assert not cut_at_bottom(np.array([0, 5, 90, 80], np.float32), 105)  # a squat person, seen whole
    # Filling the width: the photo is a crop of that person (its top and sides are the box's).
    np.testing.assert_allclose(upper_body_box(np.array([3, 20, 88, 105], np.float32), 90), [0, 0, 90, 234])
    # A person in a wider photo keeps the detector's box, lengthened below the photo.
    np.testing.assert_allclose(upper_body_box(np.array([40, 10, 80, 105], np.float32), 200), [40, 10, 80, 114])


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


def test_with_face_quality_keeps_members_and_bodies_and_drops_poor_face_photos(bench_gallery: Path) -> None:
    gallery = load_gallery(bench_gallery, FaceAnalyzer(FaceConfig()))
    # Just above P1's best face photo (HOG: P1 0.37-0.51, P2 0.24-0.64): P1 keeps no face photo.
    floor = float(gallery.members[0].quality.max()) + 1e-6
    sharp = gallery.with_face_quality(floor)
    assert sharp.names == gallery.names  # same members, same order: evidence columns stay aligned
    for before, after in zip(gallery.members, sharp.members, strict=True):
        kept = before.quality >= floor
        assert after.photos == tuple(p for p, k in zip(before.photos, kept, strict=True) if k)
        np.testing.assert_array_equal(after.embeddings, before.embeddings[kept])
        assert after.body_photos == before.body_photos
    assert not sharp.has_faces[0] and sharp.has_faces.any()
    assert np.isnan(sharp.similarity(gallery.members[0].embeddings)[:, 0]).all()
    faces = gallery.members[0].embeddings
    np.testing.assert_array_equal(gallery.with_face_quality(0.0).similarity(faces), gallery.similarity(faces))


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


# --------------------------------------------------------------------------------------------------
# Every cue, any photo (issue 10 item 3)
# --------------------------------------------------------------------------------------------------

GILLHUNG = "data/gillhung_dance/dance.mp4"
LINE_DANCE = "data/divyanshu_line_dance/dance.mp4"


@pytest.fixture(scope="module")
def people_detector():
    """The offline default person detector (finds the whole person in a photo)."""
    from fancam.tracking.detect import make_detector

    return make_detector("ssd")


def _frame(video: str, index: int) -> np.ndarray:
    from fancam.io.video import iter_frames

    for frame in iter_frames(shared_file(video)):
        if frame.index == index:
            return frame.rgb()
    raise AssertionError(f"{video} has no frame {index}")


def _save(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def _gt_crops(frame_index: int) -> dict[str, np.ndarray]:
    """Whole-body crops of the three gillhung dancers at a GT keyframe (boxes of the bench GT)."""
    from fancam.io.tables import load_gt

    gt = load_gt(shared_file("bench/gillhung_dance.csv"))
    image = _frame(GILLHUNG, frame_index)
    crops = {}
    for k in np.flatnonzero(gt.frame == frame_index):
        x1, y1, x2, y2 = (int(round(v)) for v in gt.xyxy[k])
        crops[str(gt.person[k])] = image[max(y1, 0):y2, max(x1, 0):x2]
    return crops


def test_back_views_and_full_body_photos_make_a_gallery(
    tmp_path: Path, counting: Counting, people_detector
) -> None:
    # Regression: a gallery without usable faces was refused ("no usable face photo"). Full-body
    # crops of the dancers, turned into back-like views by blurring the face away, still name by body.
    g = tmp_path / "g"
    for person, crop in _gt_crops(150).items():
        faceless = crop.copy()
        top = max(faceless.shape[0] // 6, 1)
        faceless[:top] = cv2.GaussianBlur(faceless[:top], (0, 0), 12)
        _save(g / "grp" / person / "back.jpg", faceless)
        _save(g / "grp" / person / "full.jpg", crop)
    gallery = load_gallery(g, counting[0], people=people_detector)
    assert gallery.names == ("P1", "P2", "P3")
    for member in gallery.members:
        assert len(member.body_photos) >= 1 and member.body.shape == (len(member.body_photos), member.body.shape[1])
        assert np.isfinite(member.body).all() and (np.linalg.norm(member.body, axis=1) > 0).all()
    # A member known by body photos only has no face similarity (NaN), and is never a face's best match.
    sim = gallery.similarity(np.eye(128, dtype=np.float32)[:2])
    assert sim.shape == (2, 3)
    for j, member in enumerate(gallery.members):
        assert np.isnan(sim[:, j]).all() == (len(member.embeddings) == 0)


def test_line_dance_back_views_load(tmp_path: Path, counting: Counting, people_detector) -> None:
    # The performers of the line dance are filmed from behind: no face, only bodies.
    image = _frame(LINE_DANCE, 90)
    found = people_detector(image)
    order = np.argsort(-(found.xyxy[:, 3] - found.xyxy[:, 1]))[:3]
    g = tmp_path / "line"
    for k, i in enumerate(order):
        x1, y1, x2, y2 = (int(round(v)) for v in found.xyxy[i])
        _save(g / "line" / f"dancer{k}" / "back.png", image[max(y1, 0):y2, max(x1, 0):x2])
    gallery = load_gallery(g, counting[0], people=people_detector)
    assert len(gallery) >= 2
    assert all(len(m.body_photos) == 1 for m in gallery.members)


def test_photo_without_any_cue_is_skipped_with_a_warning(
    tmp_path: Path, counting: Counting, people_detector
) -> None:
    g = tmp_path / "g"
    _copy(f"{HAMILTON}/identities/obama/obama.jpg", g / "grp/obama/face.jpg")
    _save(g / "grp/obama/wall.jpg", np.full((300, 200, 3), 128, np.uint8))  # nothing on it
    gallery = load_gallery(g, counting[0], people=people_detector)
    assert gallery.names == ("obama",)
    assert gallery.warnings == ("grp/obama/wall.jpg: no face found, and no whole person found; ignored",)


def _odd_photos(folder: Path) -> list[Path]:
    """One real face photo in every shape, size and colour layout a user may have."""
    from PIL import Image

    source = Image.open(shared_file(f"{HAMILTON}/identities/obama/obama.jpg")).convert("RGB")
    rgb = np.asarray(source)
    folder.mkdir(parents=True, exist_ok=True)
    out = []

    def keep(name: str, image: Image.Image, **kwargs) -> None:
        image.save(folder / name, **kwargs)
        out.append(folder / name)

    keep("tiny.jpg", source.resize((12, 16)))
    keep("below_minimum.png", source.resize((6, 6)))
    keep("huge.jpg", source.resize((6000, 7500)))
    keep("wide_strip.jpg", source.resize((2000, 60)))
    keep("tall_strip.jpg", source.resize((40, 1500)))
    keep("grey.jpg", source.convert("L"))
    keep("cmyk.jpg", source.convert("CMYK"))
    keep("alpha.png", source.convert("RGBA"))
    transparent = source.convert("RGBA")
    transparent.putalpha(0)
    keep("transparent.png", transparent)
    keep("palette.png", source.convert("P"))
    keep("photo.webp", source)
    keep("photo.bmp", source)
    cv2.imwrite(str(folder / "sixteen_bit.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    out.append(folder / "sixteen_bit.png")
    data = shared_file(f"{HAMILTON}/identities/obama/obama.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    out.append(folder / "truncated.jpg")
    (folder / "empty.jpg").write_bytes(b"")
    out.append(folder / "empty.jpg")
    return out


def _member(photo: Path) -> str:
    return photo.name.replace(".", "_")


def test_photos_of_any_shape_size_and_colour_layout(tmp_path: Path, counting: Counting, people_detector) -> None:
    # Each odd photo alone as a member: it is either used or skipped with a warning naming it; never
    # an exception other than "no usable photo" for the whole gallery.
    g = tmp_path / "odd"
    photos = _odd_photos(tmp_path / "photos")
    for photo in photos:
        dest = g / "grp" / _member(photo) / photo.name
        dest.parent.mkdir(parents=True)
        shutil.copyfile(photo, dest)
    gallery = load_gallery(g, counting[0], people=people_detector)
    used = {m.name for m in gallery.members}
    text = "\n".join(gallery.warnings)
    for photo in photos:
        name = _member(photo)
        assert (name in used) != (f"grp/{name}/{photo.name}: " in text), photo.name
    # The face is found whatever the colour layout, and in the huge photo.
    faces = {"grey_jpg", "cmyk_jpg", "alpha_png", "transparent_png", "palette_png", "photo_webp", "photo_bmp",
             "sixteen_bit_png", "huge_jpg"}
    assert faces <= used
    assert {"below_minimum_png", "empty_jpg"}.isdisjoint(used)
    obama = gallery.members[gallery.index("photo_bmp")].embeddings
    for name in faces:
        assert float(gallery.members[gallery.index(name)].embeddings[0] @ obama[0]) > 0.93, name


def test_gallery_one_level_too_high_says_so(tmp_path: Path, counting: Counting) -> None:
    g = tmp_path / "photos"
    _copy(f"{HAMILTON}/identities/obama/obama.jpg", g / "shows/hamilton/obama/a.jpg")
    with pytest.raises(GalleryError, match="shows/hamilton/: holds folders, not photos.*one level deeper"):
        load_gallery(g, counting[0])


def test_bystanders_faces_around_a_performer_seen_from_behind_are_ignored(tmp_path: Path) -> None:
    # Regression (issue 10): make_gallery's crops of the line dance's P2 (back to the camera, a crowd
    # behind her) hold 2-5 bystanders' faces of similar size; the photos were refused ("faces of
    # similar size"), P2 left the gallery and her 83 GT rows could never be named. The faces are not on
    # her head (too small for her box, or on other people's boxes): her body is used, no face.
    from fancam.io.tables import load_gt
    from fancam.pipeline.analyze import AnalysisSettings, _person_detector, make_face_analyzer

    names = AnalysisSettings().model_names()
    analyzer = make_face_analyzer(names)
    gt = load_gt(REPO / "benchmarks/gt/divyanshu_line_dance.csv")
    g = tmp_path / "line"
    for index in (100, 200):
        image = _frame(LINE_DANCE, index)
        k = int(np.flatnonzero((gt.frame == index) & (gt.person == "P2"))[0])
        x1, y1, x2, y2 = (int(round(v)) for v in gt.xyxy[k])
        _save(g / "line" / "P2" / f"full_{index}.jpg", image[max(y1, 0):y2, max(x1, 0):x2])
    photos = sorted((g / "line" / "P2").iterdir())
    assert all(len(analyzer.faces_in_image(decode_image(p.read_bytes()))) >= 2 for p in photos)  # bystanders
    gallery = load_gallery(g, analyzer, people=_person_detector(names))
    (member,) = gallery.members
    assert len(member.embeddings) == 0 and len(member.body_photos) >= 1


def test_upper_body_photos_from_behind_give_the_stripes_they_show(tmp_path: Path) -> None:
    # Regression (issue 10): the line dance's upper-body crops (dancers seen from behind, no face)
    # were ignored ("not seen whole"); P1, whose whole-body crops are half hidden by another dancer,
    # kept one weak body photo and was left unnamed. The visible upper stripes are now her evidence.
    from fancam.identity.body import DEFAULT_CONFIG, describe_bodies, similarity_matrix
    from fancam.io.tables import load_gt
    from fancam.pipeline.analyze import AnalysisSettings, _person_detector, make_face_analyzer

    names = AnalysisSettings().model_names()
    gt = load_gt(REPO / "benchmarks/gt/divyanshu_line_dance.csv")
    g = tmp_path / "line"
    image = _frame(LINE_DANCE, 0)
    for person in ("P1", "P2"):
        k = int(np.flatnonzero((gt.frame == 0) & (gt.person == person))[0])
        x1, y1, x2, y2 = (int(round(v)) for v in gt.xyxy[k])
        _save(g / "line" / person / "upper.jpg", image[max(y1, 0):y1 + (y2 - y1) // 2, max(x1, 0):x2])
    gallery = load_gallery(g, make_face_analyzer(names), people=_person_detector(names))
    layout = DEFAULT_CONFIG.layout
    for member in gallery.members:
        (present,) = layout.present(member.body)
        assert present[0] and not present[-1]  # the shoulders are described, the legs below the photo not
    # P2 at another moment, whole: her own upper-body photo matches her better than P1's.
    rows = np.flatnonzero(gt.frame == 200)  # every box of the frame: each masks the others' pixels
    whole = describe_bodies(_frame(LINE_DANCE, 200), gt.xyxy[rows])[gt.person[rows] == "P2"]
    sims = similarity_matrix(whole, np.concatenate([m.body for m in gallery.members]))[0]
    assert gallery.names == ("P1", "P2") and sims[1] > sims[0] + 0.05


def test_cache_of_another_body_descriptor_size_is_replaced(
    tmp_path: Path, user_cache: Path, counting: Counting, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cache written with a body descriptor of another size (Lab colour bins) is not mixed into the
    # new file: writing rows of two sizes used to fail.
    import functools

    from fancam.identity import gallery as gallery_module
    from fancam.identity.body import BodyConfig, describe_bodies

    analyzer, _ = counting
    g = tmp_path / "g"
    _copy(f"{HAMILTON}/identities/obama/obama.jpg", g / "grp/obama/x.jpg")
    old = BodyConfig(colour_space="lab" if gallery_module.BODY_CONFIG.colour_space == "hsv" else "hsv")
    assert old.layout.dim != gallery_module.BODY_CONFIG.layout.dim
    with monkeypatch.context() as patch:
        patch.setattr(gallery_module, "BODY_CONFIG", old)
        patch.setattr(gallery_module, "describe_bodies", functools.partial(describe_bodies, config=old))
        first = load_gallery(g, analyzer)
    assert first.members[0].body.shape[1] == old.layout.dim
    again = load_gallery(g, analyzer)
    assert again.cache_path is not None
    assert again.members[0].body.shape[1] == gallery_module.BODY_CONFIG.layout.dim
    with np.load(again.cache_path) as z:
        assert z["body"].shape[1] == gallery_module.BODY_CONFIG.layout.dim


def test_photo_too_small_is_reported_as_too_small(tmp_path: Path, counting: Counting) -> None:
    # Regression (issue 10): a 6x14 photo was reported as "not a readable image", which it is not.
    g = tmp_path / "g" / "grp"
    _copy(f"{HAMILTON}/identities/obama/obama.jpg", g / "obama/a.jpg")
    photo = cv2.imread(str(g / "obama/a.jpg"))
    assert cv2.imwrite(str(g / "obama/tiny.jpg"), cv2.resize(photo, (6, 14)))
    gallery = load_gallery(tmp_path / "g", counting[0])
    assert gallery.warnings == ("grp/obama/tiny.jpg: too small to recognise anyone in (under 8 pixels on a side); "
                                "ignored",)


def test_faces_below_the_naming_quality_are_reported(tmp_path: Path, counting: Counting) -> None:
    # Regression (issue 10): face photos below NamingConfig.min_photo_quality name nobody; a member whose
    # only photos are such faces was kept silently and never named, and a gallery of only such members
    # named nobody without a word.
    g = tmp_path / "g"
    _copy(f"{HAMILTON}/identities/obama/obama.jpg", g / "grp/obama/a.jpg")
    _copy(f"{HAMILTON}/identities/biden/biden.jpg", g / "grp/biden/b.jpg")
    quality = {m.name: float(m.quality[0]) for m in load_gallery(g, counting[0]).members}
    assert abs(quality["obama"] - quality["biden"]) > 0.01
    low, high = sorted(quality, key=quality.__getitem__)
    threshold = (quality[low] + quality[high]) / 2
    gallery = load_gallery(g, counting[0], min_face_quality=threshold)
    photo = "b.jpg" if low == "biden" else "a.jpg"
    assert gallery.warnings == (
        f"grp/{low}/{photo}: face too small or blurred to name anyone by (quality {quality[low]:.2f}, "
        f"needs {threshold:.2f}); ignored",
        f"grp/{low}/: member has no usable photo (every face is too small or blurred); it will not be named",
    )
    # The photos stay in the gallery (the naming leaves them out: NamingConfig.min_photo_quality).
    assert [m.name for m in gallery.members] == ["biden", "obama"]
    with pytest.raises(GalleryError, match=r"no usable photo .*every face is too small or blurred"):
        load_gallery(g, counting[0], min_face_quality=1.01)


def test_nested_folders_and_broken_links_in_a_member_folder_are_reported(tmp_path: Path, counting: Counting) -> None:
    # Regression (issue 10): photos in a sub-folder of a member folder and broken links were skipped silently.
    g = tmp_path / "g"
    _copy(f"{HAMILTON}/identities/obama/obama.jpg", g / "grp/obama/a.jpg")
    _copy(f"{HAMILTON}/identities/obama/obama2.jpg", g / "grp/obama/2019/b.jpg")
    os.symlink(tmp_path / "gone.jpg", g / "grp/obama/link.jpg")
    gallery = load_gallery(g, counting[0])
    assert [len(m.photos) for m in gallery.members] == [1]
    assert gallery.warnings == (
        "grp/obama/2019/: folder inside a member folder ignored (photos go directly in GALLERY/<group>/<member>/)",
        "grp/obama/link.jpg: cannot be read (No such file or directory); ignored",
    )


def test_tiff_gif_and_avif_photos_are_read_and_heic_is_reported(tmp_path: Path, counting: Counting) -> None:
    # Regression (issue 10): photos OpenCV reads (.tif, .gif, .avif) were refused as "not an image file",
    # and so were the iPhone's .heic photos, which it cannot read: say so, and what to save them as.
    g = tmp_path / "g" / "grp"
    photo = cv2.imread(str(shared_file(f"{HAMILTON}/identities/obama/obama.jpg")))
    for suffix in (".tif", ".gif", ".avif"):
        ok, data = cv2.imencode(suffix, photo)
        assert ok
        (g / f"obama{suffix[1:]}").mkdir(parents=True)
        (g / f"obama{suffix[1:]}" / f"a{suffix}").write_bytes(data.tobytes())
    (g / "obamaheic").mkdir()
    (g / "obamaheic/a.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    gallery = load_gallery(tmp_path / "g", counting[0])
    assert gallery.names == ("obamaavif", "obamagif", "obamatif")
    assert gallery.warnings == (
        "grp/obamaheic/a.HEIC: .HEIC photos are not supported (save it as .jpg or .png); ignored",
        "grp/obamaheic/: member has no usable photo; left out of the gallery",
    )


def test_gallery_pointed_at_a_member_folder_says_so(tmp_path: Path, counting: Counting) -> None:
    # Regression (issue 10): `--gallery photos/kate` (one member's photos) only said "no member folders".
    kate = tmp_path / "kate"
    _copy(f"{HAMILTON}/identities/obama/obama.jpg", kate / "a.jpg")
    _copy(f"{HAMILTON}/identities/obama/obama2.jpg", kate / "b.jpg")
    with pytest.raises(GalleryError, match=r"no member folders; .* \(it holds 2 photos itself: if they are one "
                                           r"member's, put them in a folder named after the member"):
        load_gallery(kate, counting[0])


DEEPFACE = "data/deepface_faces/images"


def test_folder_of_many_peoples_photos_is_left_out_with_one_clear_line(tmp_path: Path, counting: Counting) -> None:
    # deepface_faces/images: 64 photos of 13 people, given as one member beside a real one.
    g = tmp_path / "gallery"
    shutil.copytree(shared_file(DEEPFACE), g / "fans/images")
    shutil.copytree(shared_file(f"{HAMILTON}/identities/obama"), g / "fans/obama")
    gallery = load_gallery(g, counting[0], min_face_quality=0.1)
    assert gallery.names == ("obama",)
    lines = [w for w in gallery.warnings if "different people" in w]
    assert len(lines) == 1
    assert lines[0].startswith("fans/images/: its ") and "left out of the gallery" in lines[0]
    n_photos, n_people = (int(w) for w in re.findall(r"its (\d+) face photos show about (\d+) different", lines[0])[0])
    assert n_photos >= 50 and 8 <= n_people <= 16
    # Alone, it leaves no member to name anyone by: the error says why.
    only = tmp_path / "only"
    shutil.copytree(shared_file(DEEPFACE), only / "images")
    with pytest.raises(GalleryError, match="no member with photos of one person.*images/: its .* different people"):
        load_gallery(only, counting[0], min_face_quality=0.1)


def test_one_persons_photos_are_one_person(tmp_path: Path, counting: Counting) -> None:
    # A real member folder (8 photos of obama, some small or partial) and a make_gallery-style member whose
    # video crops pair below the still-photo threshold are both kept.
    gallery = load_gallery(shared_file(f"{HAMILTON}/identities"), counting[0], tmp_path, min_face_quality=0.1)
    assert not [w for w in gallery.warnings if "different people" in w]
    obama = gallery.members[gallery.index("obama")]
    emb = obama.embeddings[obama.quality >= 0.1]
    assert len(emb) >= 5 and people_in_photos(emb) == [len(emb)]
    assert "alex_lacamoire" in gallery.names


@pytest.mark.parametrize(("people", "mixed"), [
    ([9, 9, 8, 7, 6, 5, 5, 4, 3, 2, 2, 1], True),  # many people, none dominant
    ([2, 2, 2], True),
    ([2, 1], False),  # dance2's P1: blurry video crops pairing at 0.81-0.84
    ([1, 1], False),  # one photo each: no sign of a second person seen twice
    ([1, 1, 1, 1], False),
    ([6, 2, 2], False),  # the member in half the photos or more: a friend in a few photos is not a mix
    ([2, 2], False),
    ([], False),
])
def test_looks_mixed(people: list[int], mixed: bool) -> None:
    assert looks_mixed(people) is mixed


def test_people_in_photos_groups_chains_of_similar_faces() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 128))
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    near = [a + 0.1 * rng.normal(size=128) / np.sqrt(128) for _ in range(3)]
    emb = np.array([v / np.linalg.norm(v) for v in [*near, b]], np.float32)
    assert people_in_photos(emb) == [3, 1]
    assert people_in_photos(np.zeros((0, 128), np.float32)) == []
