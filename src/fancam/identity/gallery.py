"""Reference photos of the performers: load, embed (cached), compare, vote for the performing group.

Layout (DESIGN.md): ``GALLERY/<group>/<member>/*.jpg|png``, any number of photos per member, any number
of groups. A folder whose sub-folders hold photos directly (``GALLERY/<member>/*.jpg``) is read as one
group named after the folder. Members are addressed as ``group/member``, or plain ``member`` when that
name is unique in the gallery.

Every cue a photo offers is used: its face (embedded like the faces of the video) and, when the photo
shows a whole person, that person's body (the colour-stripe descriptor of :mod:`fancam.identity.body`),
so a gallery of back views or full-body photos works too. The body of a photo is the person box the
person detector finds in it: the box holding the photo's face, else the one person of the photo (or
the clearly largest one); a tall photo in which the detector finds nobody, or whose person fills its
width (:data:`CROP_FILL`), is taken as a person crop itself. Only boxes that show the whole person
count (:data:`FULL_BODY_FACE_SHARE`, :data:`BODY_ASPECT`), and face-less upper-body views cut by the
photo's bottom edge, for the stripes they show (:data:`UPPER_BODY_ASPECT`). A photo with several faces
of similar size keeps only those on its main person's head (:func:`faces_of_main_person`): a crop of a
performer seen from behind often shows bystanders' faces, which are not the performer's.

Bad input is reported, not fatal: unreadable, too small or non-image files (and broken links), folders
inside a member folder, photos with no usable cue (no face, or several faces of similar size, and no
whole person; or only a face too small or blurred to name anyone by, ``min_face_quality``), members
left without a usable photo, and members whose face photos show several different people (a folder of
mixed photos, or a group folder read as a member: :data:`MIXED_MIN_PEOPLE`; left out, so they name
nobody) each add a line to :attr:`Gallery.warnings` naming the file or folder.
Only a missing gallery or one without any usable member raises :class:`~fancam.errors.GalleryError`.

Embeddings are cached in the user cache, ``<fancam home>/galleries/`` (``$FANCAM_HOME``, else
``platformdirs.user_cache_dir("fancam")``; see :func:`fancam.models.registry.fancam_home`), one file per
gallery folder whose entries are keyed by each photo's sha256 and the face and person models' id, so a
changed photo (or model) is re-embedded and everything else reused. Nothing is ever written into the gallery.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from fancam.errors import GalleryError
from fancam.identity.body import DEFAULT_CONFIG as BODY_CONFIG
from fancam.identity.body import describe_bodies, is_valid
from fancam.identity.faces import EMBEDDING_DIM, UNKNOWN_SIMILARITY, FaceAnalyzer, FaceCandidate
from fancam.io.cache import atomic_path
from fancam.models.registry import fancam_home
from fancam.types import Detections

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".avif")
"""Photo types read (by OpenCV; a GIF's first frame)."""

UNSUPPORTED_IMAGE_SUFFIXES = (".heic", ".heif", ".jxl", ".svg", ".psd", ".dng", ".raw", ".cr2", ".cr3", ".nef", ".arw")
"""Photo types OpenCV does not read: reported as such, with what to convert them to."""
CACHE_VERSION = 6  # 6: photos too small to use have their own status (were "unreadable")
DOMINANCE = 1.6
"""The largest face (or person) of a photo with several is used only if its side (height) is at least
this many times the second largest's; otherwise the photo is ambiguous."""

FULL_BODY_FACE_SHARE = 0.13
"""A person box shows the whole person when the photo's face (side, dlib convention) is at most this
share of the box height. Measured on 45 photos (make_gallery crops of gillhung, gillhung_dance2,
fiyud_dance3, tiktok_stage_ballet, and face_recognition_hamilton/identities): full-body crops
0.073-0.107, upper-body crops 0.153-0.26, portraits 0.143-0.52."""

MIN_OWN_FACE_SHARE = 0.05
"""A face smaller than this share of a person box's height is not that person's (a bystander behind
them): full-body crops measure 0.073-0.107 (see :data:`FULL_BODY_FACE_SHARE`); the bystanders' faces
on divyanshu_line_dance's make_gallery crops of P2 measure 0.035-0.056."""

BODY_ASPECT = 1.8
"""Without a face (a back view), a person box (or a photo taken as one) shows the whole person when it
is at least this many times taller than wide: full-body crops of the same 45 photos measure 2.1-3.6,
face-less upper-body crops of the ballet 1.39-1.53."""

BODY_PAD = 0.15
"""Share of each side added around a photo before person detection: detectors miss people cut exactly
at the photo's edges, which is how full-body crops are made."""

CROP_FILL = 0.8
"""A tall photo (:data:`BODY_ASPECT`) whose person box spans at least this share of its width and half
its height is a crop of that person, cut at the person's edges as the video's boxes are: the photo
itself is the body box. The detector's box on such a crop drops what it does not see as a person (a
blurred or cut head, the feet), and the body stripes are fractions of the box height, so a box short
of a head shifts every stripe against the video's. Measured on the faceless crops of
tests/identity/test_identify.py (gillhung_dance GT boxes, frames 30 and 60, head blurred): YOLOX-nano
boxes span 0.92-0.98 of the width but start 0.17-0.20 of the height down (the SSD's 0.09-0.15);
describing the photo instead raises the genuine body log-odds of the clip's eight tracklets with body samples
from -5.3..-0.9 to -2.1..+1.1 (SSD analysis and boxes: -3.3..0.0), so the body evidence names them
again (benchmarks/bench_gallery_body.py's votes, then with the old body_floor rule of naming.py)."""

UPPER_BODY_ASPECT = 2.6
"""A face-less photo of a person cut by the photo's bottom edge (an upper-body view from behind) is
described as a box this many times taller than wide from the person's top: its visible stripes count
and the ones below the photo are left out, as for the video's boxes cut by the frame. Full-body crops
measure 2.1-3.6 (:data:`BODY_ASPECT`); on divyanshu_line_dance's upper-body crops (one per performer,
from behind) 2.1, 2.6 and 3.2 all give each of the 7 performers' clusters (their body prototypes) its
own member as the best match of those photos; P1, whose only whole-body photo is half hidden, then
gets log-odds 3.1, 3.6, 2.8 against -1.4, -0.1, 0.1 for the bystander that took her name in the
alternative assignment, and is named (identity with the gallery 0.803 -> 0.879, = without it).
Weighted by the share they show (:func:`fancam.identity.naming.body_log_odds`)."""

MIXED_MIN_PEOPLE = 3
"""A member's face photos show several different people (a folder of mixed photos, or a group folder
given as a member) when they fall into at least this many people seen in two photos or more each, none
of them in half the photos or more (:func:`people_in_photos`). Measured on every real gallery
(benchmarks/make_gallery.py's galleries of the 7 accuracy clips, ../shared/bench/gallery,
face_recognition_hamilton/identities; photos of quality >= 0.1): at most 1 such person per member,
largest person 0.5-1.0 of the photos (dance2's P1 photos pair at 0.81-0.84, P4 0.91, P5 0.87: 2 people
of 3 and 2 photos, one of them a single photo); deepface_faces/images (61 usable photos of 13 people,
read as one member): 12 people, each in two photos or more, largest 0.15 of the photos."""

_STATUS_OK, _STATUS_NO_FACE, _STATUS_SEVERAL, _STATUS_UNREADABLE = "ok", "no face", "several", "unreadable"
_STATUS_TINY = "too small"
_BODY_OK, _BODY_NONE, _BODY_PARTIAL, _BODY_CROWD = "ok", "no person", "not the whole person", "several people"


@dataclass(frozen=True)
class GalleryMember:
    """One performer of the gallery.

    A member has at least one usable photo: a face, a whole body, or both.

    Attributes:
        group: Group folder name.
        name: Member folder name.
        embeddings: (K, 128) float32 L2-normalised face embeddings, one per photo with a usable face
            (K may be 0: a member known by body photos only).
        photos: The K photo paths, in the order of ``embeddings``.
        quality: (K,) float32 face quality of each photo.
        body: (B, D) float32 body descriptors (:func:`fancam.identity.body.describe_bodies`), one per
            photo showing the whole person (B may be 0).
        body_photos: The B photo paths, in the order of ``body``.
    """

    group: str
    name: str
    embeddings: NDArray[np.float32]
    photos: tuple[Path, ...]
    quality: NDArray[np.float32]
    body: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, BODY_CONFIG.layout.dim), np.float32))
    body_photos: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        emb = np.asarray(self.embeddings, np.float32).reshape(-1, EMBEDDING_DIM)
        object.__setattr__(self, "embeddings", emb)
        object.__setattr__(self, "quality", np.asarray(self.quality, np.float32).reshape(-1))
        body = np.asarray(self.body, np.float32)
        object.__setattr__(self, "body", body.reshape(len(body), -1) if body.ndim != 2 else body)
        if len(emb) != len(self.photos) or len(self.quality) != len(self.photos):
            raise ValueError(f"{self.key}: {len(emb)} face embeddings for {len(self.photos)} photos")
        if len(self.body) != len(self.body_photos):
            raise ValueError(f"{self.key}: {len(self.body)} body descriptors for {len(self.body_photos)} photos")

    @property
    def key(self) -> str:
        """Fully qualified name ``group/member``."""
        return f"{self.group}/{self.name}"

    @property
    def all_photos(self) -> tuple[Path, ...]:
        """Every photo in use (face or body), each once, sorted."""
        return tuple(sorted(set(self.photos) | set(self.body_photos)))


@dataclass(frozen=True)
class GroupVote:
    """How strongly the faces of a video point to one group.

    Attributes:
        group: Group name.
        score: Share of the votes, in [0, 1] (scores of all groups sum to 1 when any face voted).
        n_faces: Faces whose best match was a member of this group.
    """

    group: str
    score: float
    n_faces: int


@dataclass(frozen=True)
class Gallery:
    """Loaded gallery (see :func:`load_gallery`).

    Attributes:
        root: The gallery folder.
        members: Members with at least one usable photo, sorted by group then name.
        warnings: One line per problem found while loading (file names included).
        model_id: Id of the face models the embeddings come from.
        cache_path: Where the embedding cache was written (None if it could not be written).
    """

    root: Path
    members: tuple[GalleryMember, ...]
    warnings: tuple[str, ...] = ()
    model_id: str = ""
    cache_path: Path | None = None
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        counts: dict[str, int] = {}
        for m in self.members:
            counts[m.name] = counts.get(m.name, 0) + 1
        names = tuple(m.name if counts[m.name] == 1 else m.key for m in self.members)
        object.__setattr__(self, "_names", names)

    @property
    def names(self) -> tuple[str, ...]:
        """Display name of each member: plain ``member`` when unique, else ``group/member``."""
        return self._names

    @property
    def groups(self) -> tuple[str, ...]:
        """Sorted group names."""
        return tuple(sorted({m.group for m in self.members}))

    def __len__(self) -> int:
        return len(self.members)

    def index(self, name: str) -> int:
        """Index of a member given as ``member`` (if unique) or ``group/member``.

        Raises:
            GalleryError: unknown or ambiguous name (the message lists the valid names).
        """
        hits = [i for i, m in enumerate(self.members) if name in (m.key, m.name)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            options = ", ".join(self.members[i].key for i in hits)
            raise GalleryError(f"member name {name!r} is ambiguous; use one of: {options}")
        raise GalleryError(f"no member {name!r} in the gallery; members: {', '.join(self.names)}")

    def subset(self, group: str) -> Gallery:
        """The members of one group (display names are recomputed within that group)."""
        if group not in self.groups:
            raise GalleryError(f"no group {group!r} in the gallery; groups: {', '.join(self.groups)}")
        members = tuple(m for m in self.members if m.group == group)
        return Gallery(self.root, members, self.warnings, self.model_id, self.cache_path)

    def with_face_quality(self, min_quality: float) -> Gallery:
        """The same members (same order) keeping only face photos of at least ``min_quality``.

        A member left without a face photo keeps its body photos (or none: it is then no candidate
        for any cue).
        """
        members = []
        for m in self.members:
            keep = m.quality >= min_quality
            members.append(GalleryMember(
                m.group, m.name, m.embeddings[keep], tuple(p for p, k in zip(m.photos, keep, strict=True) if k),
                m.quality[keep], m.body, m.body_photos,
            ))
        return Gallery(self.root, tuple(members), self.warnings, self.model_id, self.cache_path)

    def similarity(self, embeddings: NDArray) -> NDArray[np.float32]:
        """Cosine similarity of each face to each member (best over the member's photos).

        Args:
            embeddings: (N, 128) L2-normalised face embeddings.

        Returns:
            (N, n_members) float32 similarities in [-1, 1]; NaN for members without a face photo.
        """
        emb = np.asarray(embeddings, np.float32).reshape(-1, EMBEDDING_DIM)
        out = np.full((len(emb), len(self.members)), np.nan, np.float32)
        for j, member in enumerate(self.members):
            if len(emb) and len(member.embeddings):
                out[:, j] = (emb @ member.embeddings.T).max(axis=1)
        return out

    @property
    def has_faces(self) -> NDArray[np.bool_]:
        """(n_members,) True for members with at least one face photo."""
        return np.array([len(m.embeddings) > 0 for m in self.members], bool)

    def vote_groups(
        self, embeddings: NDArray, min_similarity: float = UNKNOWN_SIMILARITY,
        weights: NDArray | None = None,
    ) -> list[GroupVote]:
        """Rank the groups by how many video faces look like their members.

        Each face votes for the group of its most similar member when that similarity reaches
        ``min_similarity`` (faces of nobody in the gallery abstain), with weight
        ``weight * (similarity - min_similarity)`` so that clear matches count more.

        Args:
            embeddings: (N, 128) face embeddings from the video.
            min_similarity: Similarity below which a face does not vote.
            weights: (N,) optional per-face weights (e.g. face quality); default 1.

        Returns:
            All groups, best first.
        """
        sim = np.nan_to_num(self.similarity(embeddings), nan=-1.0)
        groups = self.groups
        totals = dict.fromkeys(groups, 0.0)
        counts = dict.fromkeys(groups, 0)
        w = np.ones(len(sim)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
        if sim.shape[1] and self.has_faces.any():
            best = sim.argmax(axis=1)
            for i, j in enumerate(best):
                s = float(sim[i, j])
                if s >= min_similarity:
                    group = self.members[j].group
                    totals[group] += w[i] * (s - min_similarity + 1e-6)
                    counts[group] += 1
        total = sum(totals.values())
        votes = [GroupVote(g, totals[g] / total if total > 0 else 0.0, counts[g]) for g in groups]
        return sorted(votes, key=lambda v: (-v.score, v.group))


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


class PersonDetector(Protocol):
    """Finds people in a photo: ``detector(image_rgb) -> Detections`` (as the tracking detectors do)."""

    name: str

    def __call__(self, image: NDArray[np.uint8]) -> Detections:
        """Detect people in an (H, W, 3) uint8 RGB image; boxes in pixels of that image."""
        ...


@dataclass(frozen=True)
class _PhotoResult:
    """What the analysis of one photo gave (what the cache stores).

    ``status``/``embedding``/``quality``/``n_faces`` describe its face, ``body_status``/``body`` its
    body (``body`` all zeros unless ``body_status`` is ok).
    """

    status: str
    embedding: NDArray[np.float32]
    quality: float
    n_faces: int
    body_status: str = _BODY_NONE
    body: NDArray[np.float32] = field(default_factory=lambda: np.zeros(BODY_CONFIG.layout.dim, np.float32))

    @property
    def has_face(self) -> bool:
        """Whether the photo gives a face embedding."""
        return self.status == _STATUS_OK

    @property
    def has_body(self) -> bool:
        """Whether the photo gives a body descriptor."""
        return self.body_status == _BODY_OK

    @property
    def usable(self) -> bool:
        """Whether the photo gives any cue."""
        return self.has_face or self.has_body


def load_gallery(
    path: Path, analyzer: FaceAnalyzer, cache_dir: Path | None = None, *, people: PersonDetector | None = None,
    min_face_quality: float = 0.0,
) -> Gallery:
    """Load a gallery folder, embedding each photo's face and describing its body (reusing the cache).

    Args:
        path: ``GALLERY`` folder (``GALLERY/<group>/<member>/*.jpg|png``).
        analyzer: Face analyzer that detects and embeds the faces.
        cache_dir: Where to keep the embedding cache (default: ``<fancam home>/galleries``, see the
            module docstring).
        people: Person detector that finds the body in a photo; None: only tall photos in which a
            face (if any) is small are taken as whole-body crops.
        min_face_quality: Face photos below this quality name nobody
            (:attr:`fancam.identity.naming.NamingConfig.min_photo_quality`): each such photo without
            a body to use, and each member left with nothing else, is reported in the warnings; the
            photos stay in the gallery (the naming leaves them out).

    Returns:
        The gallery; problems are listed in ``Gallery.warnings``.

    Raises:
        GalleryError: the folder is missing, or no member has a usable photo (one of quality
            ``min_face_quality`` or more, or a whole body).
    """
    root = Path(path)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "not found"
        raise GalleryError(f"gallery folder {what}: {str(root)!r} (expected GALLERY/<group>/<member>/*.jpg)")
    warnings: list[str] = []
    try:
        layout = _scan(root, warnings)
    except OSError as e:
        raise GalleryError(f"cannot read gallery {str(root)!r}: {e.strerror} ({e.filename})") from e
    if not layout:
        photos = [f for f in _files(root) if _is_image_name(f)]
        hint = (f" (it holds {len(photos)} photo{'s' if len(photos) > 1 else ''} itself: if they are one member's, "
                "put them in a folder named after the member, and give the folder above it)") if photos else ""
        raise GalleryError(
            f"gallery {str(root)!r} has no member folders; expected GALLERY/<group>/<member>/*.jpg|png{hint}"
        )
    model_id = gallery_model_id(analyzer, people)
    cache_file = _cache_file(root, cache_dir)
    stored = _read_cache(cache_file)
    cached = {digest: r for (model, digest), r in stored.items() if model == model_id}
    loader = _MemberLoader(root, _PhotoAnalyzer(analyzer, people), cached, min_face_quality)
    members = [
        m for (group, name), files in sorted(layout.items()) if (m := loader.member(group, name, files))
    ]
    warnings += loader.warnings
    # Entries of other models are kept for the photos still present, so switching detectors does not
    # thrash; the file is rewritten only when its content changes.
    # (Not those of another body descriptor size: one cache file holds one size.)
    keep = {(m, d): r for (m, d), r in stored.items()
            if m != model_id and d in loader.seen and np.size(r.body) == BODY_CONFIG.layout.dim}
    keep.update({(model_id, d): r for d, r in loader.seen.items()})
    written: Path | None = cache_file
    if keep.keys() != stored.keys():
        written = _write_cache(cache_file, keep, warnings)
    if not any(m.body_photos or (m.quality >= min_face_quality).any() for m in members):
        if loader.mixed:
            raise GalleryError(f"no member with photos of one person in gallery {str(root)!r}: "
                               + "; ".join(loader.mixed[:5]))
        raise GalleryError(
            f"no usable photo (a face, or a whole person) in gallery {str(root)!r}: " + "; ".join(warnings[:5])
        )
    for line in warnings:
        log.warning("gallery: %s", line)
    return Gallery(root, tuple(members), tuple(warnings), model_id, written)


def gallery_model_id(analyzer: FaceAnalyzer, people: PersonDetector | None) -> str:
    """Id of everything that turns a photo into cues (face models, person detector, body descriptor)."""
    # "crop": person crops are described on the photo itself (CROP_FILL); the tag re-describes old caches.
    body = f"body{BODY_CONFIG.layout.dim}:{people.name if people is not None else 'photo'}:crop"
    return f"{analyzer.model_id}|{body}"


def _visible(entries: Iterable[Path]) -> list[Path]:
    return sorted(p for p in entries if not p.name.startswith("."))


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _files(folder: Path) -> list[Path]:
    # Not "is_file()": a broken link is listed too, so that it is reported rather than silently skipped.
    return [p for p in _visible(folder.iterdir()) if not p.is_dir()]


def _dirs(folder: Path) -> list[Path]:
    return [p for p in _visible(folder.iterdir()) if p.is_dir()]


def _scan(root: Path, warnings: list[str]) -> dict[tuple[str, str], list[Path]]:
    """Find ``(group, member) -> files``; a one-level layout is read as a single group."""
    folders = _dirs(root)
    for stray in _files(root):
        warnings.append(f"{_rel(stray, root)}: file at the gallery's top level ignored "
                        "(photos go in GALLERY/<group>/<member>/)")
    nested = any(_dirs(d) for d in folders)
    if not nested and any(_is_image_name(f) for d in folders for f in _files(d)):
        # GALLERY/<member>/*.jpg: the gallery folder itself is the (only) group.
        return {(root.name, d.name): _files(d) for d in folders}
    layout: dict[tuple[str, str], list[Path]] = {}
    for group in folders:
        for stray in _files(group):
            warnings.append(f"{_rel(stray, root)}: file in a group folder, not in a member folder; ignored")
        member_dirs = _dirs(group)
        if not member_dirs:
            warnings.append(f"{_rel(group, root)}/: group without member folders ignored")
        for member in member_dirs:
            layout[(group.name, member.name)] = _files(member)
            inner = _dirs(member)
            if not layout[(group.name, member.name)] and inner:
                warnings.append(f"{_rel(member, root)}/: holds folders, not photos; expected "
                                "GALLERY/<group>/<member>/*.jpg (is the gallery folder one level deeper?)")
            else:
                warnings += [f"{_rel(d, root)}/: folder inside a member folder ignored (photos go directly "
                             "in GALLERY/<group>/<member>/)" for d in inner]
    return layout


class _MemberLoader:
    """Analyses members' photos, reusing cached results and recording every result it used."""

    def __init__(
        self, root: Path, analyzer: _PhotoAnalyzer, cached: dict[str, _PhotoResult], min_face_quality: float = 0.0
    ) -> None:
        self.root = root
        self.analyzer = analyzer
        self.cached = cached
        self.min_face_quality = min_face_quality
        self.seen: dict[str, _PhotoResult] = {}
        self.warnings: list[str] = []
        self.mixed: list[str] = []

    def photo(self, file: Path) -> _PhotoResult | None:
        """Result for one file (None, with a warning, when it is not an image or cannot be read)."""
        rel = _rel(file, self.root)
        if file.suffix.lower() in UNSUPPORTED_IMAGE_SUFFIXES:
            self.warnings.append(f"{rel}: {file.suffix} photos are not supported (save it as .jpg or .png); ignored")
            return None
        if not _is_image_name(file):
            self.warnings.append(f"{rel}: not an image file ({file.suffix or 'no suffix'}); ignored")
            return None
        try:
            data = file.read_bytes()
        except OSError as e:
            self.warnings.append(f"{rel}: cannot be read ({e.strerror}); ignored")
            return None
        digest = hashlib.sha256(data).hexdigest()
        result = self.seen.get(digest) or self.cached.get(digest)
        if result is None:
            result = self.analyzer(data)
        self.seen[digest] = result
        if not result.usable:
            self.warnings.append(f"{rel}: {_explain(result)}; ignored")
        elif not result.has_face:
            log.info("gallery: %s: %s; its body is used", rel, _explain(result))
        elif result.quality < self.min_face_quality:
            blurred = (f"face too small or blurred to name anyone by (quality {result.quality:.2f}, "
                       f"needs {self.min_face_quality:.2f})")
            if result.has_body:
                log.info("gallery: %s: %s; its body is used", rel, blurred)
            else:
                self.warnings.append(f"{rel}: {blurred}; ignored")
        return result

    def member(self, group: str, name: str, files: list[Path]) -> GalleryMember | None:
        """Embed one member's photos; None (with a warning) when none is usable."""
        used = [(f, r) for f in files if (r := self.photo(f)) is not None and r.usable]
        if not used:
            self.warnings.append(f"{group}/{name}/: member has no usable photo; left out of the gallery")
            return None
        faces = [(f, r) for f, r in used if r.has_face]
        bodies = [(f, r) for f, r in used if r.has_body]
        usable = [r.embedding for _, r in faces if r.quality >= self.min_face_quality]
        people = people_in_photos(np.asarray(usable, np.float32))
        if looks_mixed(people):
            self.mixed.append(
                f"{group}/{name}/: its {len(usable)} face photos show about {len(people)} different people, "
                "not one member (give one folder per member); left out of the gallery")
            self.warnings.append(self.mixed[-1])
            return None
        if not bodies and not usable:
            self.warnings.append(f"{group}/{name}/: member has no usable photo (every face is too small or "
                                 "blurred); it will not be named")
        return GalleryMember(
            group, name,
            np.asarray([r.embedding for _, r in faces], np.float32).reshape(-1, EMBEDDING_DIM),
            tuple(f for f, _ in faces),
            np.asarray([r.quality for _, r in faces], np.float32),
            np.asarray([r.body for _, r in bodies], np.float32).reshape(len(bodies), BODY_CONFIG.layout.dim),
            tuple(f for f, _ in bodies),
        )


def people_in_photos(embeddings: NDArray, min_similarity: float = UNKNOWN_SIMILARITY) -> list[int]:
    """Sizes (largest first) of the groups of photos that may show one person.

    Two photos may show the same person when their faces' similarity reaches ``min_similarity`` (below
    it a face is nobody in the gallery, :data:`fancam.identity.faces.UNKNOWN_SIMILARITY`); a group
    is a chain of such pairs, so people are rather merged than split.

    Args:
        embeddings: (N, 128) L2-normalised face embeddings, one per photo.
        min_similarity: Similarity from which two photos may show the same person.
    """
    emb = np.asarray(embeddings, np.float32).reshape(-1, EMBEDDING_DIM)
    if not len(emb):
        return []
    count, label = connected_components(csr_matrix(emb @ emb.T >= min_similarity), directed=False)
    return sorted((int(c) for c in np.bincount(label, minlength=count)), reverse=True)


def looks_mixed(people: list[int], min_people: int = MIXED_MIN_PEOPLE) -> bool:
    """Whether photo groups (:func:`people_in_photos`) show several people rather than one member.

    At least ``min_people`` people are seen in two photos or more each, and none in half the photos
    or more (see :data:`MIXED_MIN_PEOPLE`).
    """
    total = sum(people)
    return sum(c >= 2 for c in people) >= min_people and 2 * people[0] < total


def _explain(result: _PhotoResult) -> str:
    if result.status == _STATUS_UNREADABLE:
        return "not a readable image"
    if result.status == _STATUS_TINY:
        return f"too small to recognise anyone in (under {MIN_PHOTO_SIDE} pixels on a side)"
    face = {
        _STATUS_NO_FACE: "no face found",
        _STATUS_SEVERAL: f"{result.n_faces} faces of similar size (use a photo of this member alone)",
    }.get(result.status, result.status)
    body = {
        _BODY_NONE: "no whole person found",
        _BODY_PARTIAL: "the person is not seen whole",
        _BODY_CROWD: "several people of similar size",
    }.get(result.body_status, result.body_status)
    if result.usable or result.status == _STATUS_SEVERAL:  # several faces: several people too
        return face
    return f"{face}, and {body}"


MIN_PHOTO_SIDE = 8
"""Photos with a side below this many pixels hold nothing to recognise."""


def decode_image(data: bytes) -> NDArray[np.uint8] | None:
    """Decode image bytes to (H, W, 3) uint8 RGB (EXIF orientation applied); None if not an image.

    Any colour layout OpenCV reads becomes 8-bit RGB: grey, CMYK, palette, 16-bit, and alpha (dropped,
    so a transparent background shows as whatever colour the pixels hold).
    """
    buf = np.frombuffer(data, np.uint8)
    if buf.size == 0:
        return None
    try:
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error:
        return None
    if bgr is None or bgr.ndim != 3 or min(bgr.shape[:2]) < MIN_PHOTO_SIDE:
        return None
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _is_tiny_image(data: bytes) -> bool:
    """Whether ``data`` is an image OpenCV reads but with a side under :data:`MIN_PHOTO_SIDE`."""
    buf = np.frombuffer(data, np.uint8)
    try:
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    except cv2.error:
        return False
    return image is not None and min(image.shape[:2]) < MIN_PHOTO_SIDE


def pick_face(faces: list[FaceCandidate], dominance: float = DOMINANCE) -> FaceCandidate | None:
    """The face a reference photo shows: the only one, or the largest if it clearly dominates.

    Args:
        faces: Faces of the photo, largest first.
        dominance: Needed ratio of the largest face side to the second largest.
    """
    if not faces:
        return None
    if len(faces) == 1:
        return faces[0]
    first, second = faces[0].quality.size_px, faces[1].quality.size_px
    return faces[0] if first >= dominance * second else None


class _PhotoAnalyzer:
    """Turns a photo's bytes into its cues (face embedding, body descriptor)."""

    def __init__(self, faces: FaceAnalyzer, people: PersonDetector | None) -> None:
        self.faces = faces
        self.people = people

    def __call__(self, data: bytes) -> _PhotoResult:
        zero = np.zeros(EMBEDDING_DIM, np.float32)
        image = decode_image(data)
        if image is None:
            return _PhotoResult(_STATUS_TINY if _is_tiny_image(data) else _STATUS_UNREADABLE, zero, 0.0, 0)
        faces = self.faces.faces_in_image(image)
        boxes = self._people(image)
        face = pick_face(faces)
        if face is None and len(faces) > 1:
            # Several faces: a crop of one performer often shows bystanders' faces around them; only
            # the faces on the photo's own person (its dominant person box) are theirs.
            own = faces_of_main_person(faces, boxes, image.shape[1], image.shape[0])
            if own is not None:
                faces, face = own, pick_face(own)
        body_status, body = self.body(image, boxes, face, len(faces))
        if face is None:
            status = _STATUS_SEVERAL if faces else _STATUS_NO_FACE
            return _PhotoResult(status, zero, 0.0, len(faces), body_status, body)
        sample = self.faces.embed([face])[0]
        return _PhotoResult(_STATUS_OK, sample.embedding, sample.quality.score, len(faces), body_status, body)

    def body(
        self, image: NDArray[np.uint8], boxes: NDArray[np.float32], face: FaceCandidate | None, n_faces: int
    ) -> tuple[str, NDArray[np.float32]]:
        """(status, (D,) descriptor) of the whole person the photo shows (see the module docstring)."""
        zero = np.zeros(BODY_CONFIG.layout.dim, np.float32)
        h, w = image.shape[:2]
        if face is not None:
            box = person_of_face(boxes, face.xyxy)
        elif n_faces > 1:
            return _BODY_CROWD, zero
        else:
            box, crowd = dominant_person(boxes)
            if crowd:
                return _BODY_CROWD, zero
        if box is None:
            # Nobody detected (or no detector): a tall photo is taken as a person crop itself.
            box = np.array([0.0, 0.0, w, h], np.float32)
            if self.people is not None and h < BODY_ASPECT * w:
                return _BODY_NONE, zero
        elif is_person_crop(box, w, h):
            box = np.array([0.0, 0.0, w, h], np.float32)
        if not shows_whole_person(box, face.xyxy if face is not None else None):
            # An upper-body view from behind: only a person the detector found (not a guessed photo box).
            if face is not None or n_faces or not len(boxes) or not cut_at_bottom(box, h):
                return _BODY_PARTIAL, zero
            box = upper_body_box(box, w)
        desc = describe_bodies(image, np.concatenate([box[None], boxes[~_same_box(boxes, box)]]),
                               indices=[0])[0]
        return (_BODY_OK, desc) if bool(is_valid(desc)) else (_BODY_NONE, zero)

    def _people(self, image: NDArray[np.uint8]) -> NDArray[np.float32]:
        """(N, 4) person boxes in the photo's pixels (clipped to it), largest first."""
        if self.people is None:
            return np.zeros((0, 4), np.float32)
        h, w = image.shape[:2]
        px, py = int(round(BODY_PAD * w)), int(round(BODY_PAD * h))
        padded = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_CONSTANT, value=(114, 114, 114))
        found = self.people(np.ascontiguousarray(padded))
        boxes = np.asarray(found.xyxy, np.float32).reshape(-1, 4) - np.array([px, py, px, py], np.float32)
        boxes = np.clip(boxes, 0, [w, h, w, h]).astype(np.float32)
        boxes = boxes[(boxes[:, 2] - boxes[:, 0] >= 2) & (boxes[:, 3] - boxes[:, 1] >= 2)]
        return boxes[np.argsort(-(boxes[:, 3] - boxes[:, 1]), kind="stable")]


def _same_box(boxes: NDArray, box: NDArray) -> NDArray[np.bool_]:
    return np.all(np.abs(np.asarray(boxes) - np.asarray(box)[None]) < 1e-3, axis=1)


def person_of_face(boxes: NDArray, face_xyxy: NDArray) -> NDArray[np.float32] | None:
    """The tallest person box (N, 4) whose top quarter holds the face centre, or None."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    f = np.asarray(face_xyxy, np.float64)
    cx, cy = (f[0] + f[2]) / 2, (f[1] + f[3]) / 2
    inside = (b[:, 0] <= cx) & (cx <= b[:, 2]) & (b[:, 1] - 0.5 * (f[3] - f[1]) <= cy)
    inside &= cy <= b[:, 1] + 0.25 * (b[:, 3] - b[:, 1])
    if not inside.any():
        return None
    k = np.flatnonzero(inside)
    return b[k[np.argmax(b[k, 3] - b[k, 1])]]


def faces_of_main_person(
    faces: list[FaceCandidate], boxes: NDArray, width: int, height: int
) -> list[FaceCandidate] | None:
    """The faces (largest first) that sit on the head of the photo's main person.

    The main person is the only or clearly tallest person box (:func:`dominant_person`), or, when
    the detector finds nobody, a tall photo itself (a person crop). Their head is in the top quarter
    of the box and near its horizontal centre (within a quarter of the box width): faces elsewhere
    belong to bystanders. None when the photo has no main person (several people of similar size,
    or nobody detected in a photo that is not tall).
    """
    box, crowd = dominant_person(boxes)
    if crowd:
        return None
    if box is None:
        if height < BODY_ASPECT * width:
            return None
        box = np.array([0.0, 0.0, width, height], np.float32)
    x1, y1, x2, y2 = (float(v) for v in box)
    others = np.asarray(boxes, np.float32).reshape(-1, 4)
    others = others[~_same_box(others, box)]
    own = []
    for face in faces:
        side = float(face.xyxy[3] - face.xyxy[1])
        cx = 0.5 * float(face.xyxy[0] + face.xyxy[2])
        cy = 0.5 * float(face.xyxy[1] + face.xyxy[3])
        on_head = abs(cx - 0.5 * (x1 + x2)) <= 0.25 * (x2 - x1) and y1 - 0.5 * side <= cy <= y1 + 0.25 * (y2 - y1)
        if on_head and side >= MIN_OWN_FACE_SHARE * (y2 - y1) and person_of_face(others, face.xyxy) is None:
            own.append(face)
    return own


def dominant_person(boxes: NDArray, dominance: float = DOMINANCE) -> tuple[NDArray[np.float32] | None, bool]:
    """(box, ambiguous): the only or clearly tallest person of boxes (N, 4) sorted tallest first."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not len(b):
        return None, False
    heights = b[:, 3] - b[:, 1]
    if len(b) > 1 and heights[0] < dominance * heights[1]:
        return None, True
    return b[0], False


def is_person_crop(box: NDArray, width: int, height: int) -> bool:
    """Whether a tall photo (width x height) is a crop of the person in ``box`` (see :data:`CROP_FILL`)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return (height >= BODY_ASPECT * width and x2 - x1 >= CROP_FILL * width
            and y2 - y1 >= 0.5 * height)


def cut_at_bottom(box: NDArray, height: int) -> bool:
    """Whether a person box reaches the bottom edge of a photo ``height`` pixels tall (the person goes on below)."""
    return float(box[3]) >= height - max(1.0, 0.01 * height)


def upper_body_box(box: NDArray, width: int) -> NDArray[np.float32]:
    """The whole-person box of a person cut at the photo's bottom (:data:`UPPER_BODY_ASPECT`).

    It is that many times as tall as wide from the person's top; a person spanning the photo's width
    (:data:`CROP_FILL`) is a crop of that person: the photo's sides and top are the box's, as for a
    tall crop (:func:`is_person_crop`).
    """
    x1, y1, x2, _ = (float(v) for v in box)
    if x2 - x1 >= CROP_FILL * width:
        x1, y1, x2 = 0.0, 0.0, float(width)
    return np.array([x1, y1, x2, y1 + UPPER_BODY_ASPECT * (x2 - x1)], np.float32)


def shows_whole_person(box: NDArray, face_xyxy: NDArray | None) -> bool:
    """Whether a person box shows the whole person (see :data:`FULL_BODY_FACE_SHARE`, :data:`BODY_ASPECT`)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    height, width = y2 - y1, max(x2 - x1, 1e-6)
    if height < BODY_CONFIG.min_box_height:
        return False
    if face_xyxy is not None:
        return float(face_xyxy[3] - face_xyxy[1]) <= FULL_BODY_FACE_SHARE * height
    return height >= BODY_ASPECT * width


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------------


def _cache_file(root: Path, cache_dir: Path | None) -> Path:
    folder = Path(cache_dir) if cache_dir is not None else fancam_home() / "galleries"
    tag = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return folder / f"{root.name}-{tag}.npz"


def _read_cache(path: Path) -> dict[tuple[str, str], _PhotoResult]:
    """Cached results by (model id, photo sha256); empty when missing, of another version, or corrupt."""
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != CACHE_VERSION:
                return {}
            return {
                (str(m), str(k)): _PhotoResult(str(s), e.astype(np.float32), float(q), int(n), str(bs),
                                               b.astype(np.float32))
                for m, k, s, e, q, n, bs, b in zip(
                    z["model"], z["keys"], z["status"], z["embeddings"], z["quality"], z["n_faces"],
                    z["body_status"], z["body"], strict=True,
                )
            }
    except (OSError, ValueError, KeyError) as e:
        log.warning("ignoring unreadable gallery cache %s (%s)", path, e)
        return {}


def _write_cache(
    path: Path, results: dict[tuple[str, str], _PhotoResult], warnings: list[str]
) -> Path | None:
    """Save ``results`` atomically; return the cache path, or None (with a warning) if it failed."""
    keys = sorted(results)
    rows = [results[k] for k in keys]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            np.savez(
                tmp, version=np.int64(CACHE_VERSION),
                model=np.array([m for m, _ in keys], dtype=str),
                keys=np.array([d for _, d in keys], dtype=str),
                status=np.array([r.status for r in rows], dtype=str),
                embeddings=np.array([r.embedding for r in rows], np.float32).reshape(-1, EMBEDDING_DIM),
                quality=np.array([r.quality for r in rows], np.float32),
                n_faces=np.array([r.n_faces for r in rows], np.int64),
                body_status=np.array([r.body_status for r in rows], dtype=str),
                body=np.array([r.body for r in rows], np.float32).reshape(len(rows), BODY_CONFIG.layout.dim),
            )
    except OSError as e:
        warnings.append(f"cannot write the embedding cache {str(path)!r} ({e.strerror}); not cached")
        return None
    return path
