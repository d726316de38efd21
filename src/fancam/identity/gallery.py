"""Reference photos of the performers: load, embed (cached), compare, vote for the performing group.

Layout (DESIGN.md): ``GALLERY/<group>/<member>/*.jpg|png``, any number of photos per member, any number
of groups. A folder whose sub-folders hold photos directly (``GALLERY/<member>/*.jpg``) is read as one
group named after the folder. Members are addressed as ``group/member``, or plain ``member`` when that
name is unique in the gallery.

Bad input is reported, not fatal: unreadable or non-image files, photos without a face, photos with
several faces of similar size, and members left without a usable photo each add a line to
:attr:`Gallery.warnings` naming the file or folder. Only a missing gallery or one without any usable
member raises :class:`~fancam.errors.GalleryError`.

Embeddings are cached in the user cache, ``<fancam home>/galleries/`` (``$FANCAM_HOME``, else
``platformdirs.user_cache_dir("fancam")``; see :func:`fancam.models.registry.fancam_home`), one file per
gallery folder whose entries are keyed by each photo's sha256 and the face models' id, so a changed
photo (or model) is re-embedded and everything else reused. Nothing is ever written into the gallery.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from fancam.errors import GalleryError
from fancam.identity.faces import EMBEDDING_DIM, UNKNOWN_SIMILARITY, FaceAnalyzer, FaceCandidate
from fancam.io.cache import atomic_path
from fancam.models.registry import fancam_home

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
CACHE_VERSION = 1
DOMINANCE = 1.6
"""The largest face of a photo with several faces is used only if its side is at least this many times
the second largest's; otherwise the photo is ambiguous."""

_STATUS_OK, _STATUS_NO_FACE, _STATUS_SEVERAL, _STATUS_UNREADABLE = "ok", "no face", "several", "unreadable"


@dataclass(frozen=True)
class GalleryMember:
    """One performer of the gallery.

    Attributes:
        group: Group folder name.
        name: Member folder name.
        embeddings: (K, 128) float32 L2-normalised face embeddings, one per usable photo (K >= 1).
        photos: The K photo paths, in the order of ``embeddings``.
        quality: (K,) float32 face quality of each photo.
    """

    group: str
    name: str
    embeddings: NDArray[np.float32]
    photos: tuple[Path, ...]
    quality: NDArray[np.float32]

    @property
    def key(self) -> str:
        """Fully qualified name ``group/member``."""
        return f"{self.group}/{self.name}"


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

    def similarity(self, embeddings: NDArray) -> NDArray[np.float32]:
        """Cosine similarity of each face to each member (best over the member's photos).

        Args:
            embeddings: (N, 128) L2-normalised face embeddings.

        Returns:
            (N, n_members) float32 similarities in [-1, 1].
        """
        emb = np.asarray(embeddings, np.float32).reshape(-1, EMBEDDING_DIM)
        out = np.empty((len(emb), len(self.members)), np.float32)
        for j, member in enumerate(self.members):
            out[:, j] = (emb @ member.embeddings.T).max(axis=1) if len(emb) else 0.0
        return out

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
        sim = self.similarity(embeddings)
        groups = self.groups
        totals = dict.fromkeys(groups, 0.0)
        counts = dict.fromkeys(groups, 0)
        w = np.ones(len(sim)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
        if sim.shape[1]:
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


@dataclass(frozen=True)
class _PhotoResult:
    """What the analysis of one photo gave (what the cache stores)."""

    status: str
    embedding: NDArray[np.float32]
    quality: float
    n_faces: int


def load_gallery(path: Path, analyzer: FaceAnalyzer, cache_dir: Path | None = None) -> Gallery:
    """Load a gallery folder, embedding each photo's face (reusing cached embeddings).

    Args:
        path: ``GALLERY`` folder (``GALLERY/<group>/<member>/*.jpg|png``).
        analyzer: Face analyzer that detects and embeds the faces.
        cache_dir: Where to keep the embedding cache (default: ``<fancam home>/galleries``, see the
            module docstring).

    Returns:
        The gallery; problems are listed in ``Gallery.warnings``.

    Raises:
        GalleryError: the folder is missing, or no member has a usable photo.
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
        raise GalleryError(
            f"gallery {str(root)!r} has no member folders; expected GALLERY/<group>/<member>/*.jpg|png"
        )
    cache_file = _cache_file(root, cache_dir)
    stored = _read_cache(cache_file)
    cached = {digest: r for (model, digest), r in stored.items() if model == analyzer.model_id}
    loader = _MemberLoader(root, analyzer, cached)
    members = [
        m for (group, name), files in sorted(layout.items()) if (m := loader.member(group, name, files))
    ]
    warnings += loader.warnings
    # Entries of other models are kept for the photos still present, so switching detectors does not
    # thrash; the file is rewritten only when its content changes.
    keep = {(m, d): r for (m, d), r in stored.items() if m != analyzer.model_id and d in loader.seen}
    keep.update({(analyzer.model_id, d): r for d, r in loader.seen.items()})
    written: Path | None = cache_file
    if keep.keys() != stored.keys():
        written = _write_cache(cache_file, keep, warnings)
    if not members:
        raise GalleryError(
            f"no usable face photo in gallery {str(root)!r}: " + "; ".join(warnings[:5])
        )
    for line in warnings:
        log.warning("gallery: %s", line)
    return Gallery(root, tuple(members), tuple(warnings), analyzer.model_id, written)


def _visible(entries: Iterable[Path]) -> list[Path]:
    return sorted(p for p in entries if not p.name.startswith("."))


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _files(folder: Path) -> list[Path]:
    return [p for p in _visible(folder.iterdir()) if p.is_file()]


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
    return layout


class _MemberLoader:
    """Embeds members' photos, reusing cached results and recording every result it used."""

    def __init__(self, root: Path, analyzer: FaceAnalyzer, cached: dict[str, _PhotoResult]) -> None:
        self.root = root
        self.analyzer = analyzer
        self.cached = cached
        self.seen: dict[str, _PhotoResult] = {}
        self.warnings: list[str] = []

    def photo(self, file: Path) -> _PhotoResult | None:
        """Result for one file (None, with a warning, when it is not an image or cannot be read)."""
        rel = _rel(file, self.root)
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
            result = _analyse_photo(data, self.analyzer)
        self.seen[digest] = result
        if result.status != _STATUS_OK:
            self.warnings.append(f"{rel}: {_explain(result)}; ignored")
        return result

    def member(self, group: str, name: str, files: list[Path]) -> GalleryMember | None:
        """Embed one member's photos; None (with a warning) when none is usable."""
        used = [(f, r) for f in files if (r := self.photo(f)) is not None and r.status == _STATUS_OK]
        if not used:
            self.warnings.append(f"{group}/{name}/: member has no usable photo; left out of the gallery")
            return None
        return GalleryMember(
            group, name,
            np.asarray([r.embedding for _, r in used], np.float32),
            tuple(f for f, _ in used),
            np.asarray([r.quality for _, r in used], np.float32),
        )


def _explain(result: _PhotoResult) -> str:
    return {
        _STATUS_UNREADABLE: "not a readable image",
        _STATUS_NO_FACE: "no face found",
        _STATUS_SEVERAL: f"{result.n_faces} faces of similar size (use a photo of this member alone)",
    }.get(result.status, result.status)


def decode_image(data: bytes) -> NDArray[np.uint8] | None:
    """Decode image bytes to (H, W, 3) uint8 RGB (EXIF orientation applied); None if not an image."""
    buf = np.frombuffer(data, np.uint8)
    if buf.size == 0:
        return None
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None or bgr.ndim != 3 or min(bgr.shape[:2]) < 8:
        return None
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


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


def _analyse_photo(data: bytes, analyzer: FaceAnalyzer) -> _PhotoResult:
    zero = np.zeros(EMBEDDING_DIM, np.float32)
    image = decode_image(data)
    if image is None:
        return _PhotoResult(_STATUS_UNREADABLE, zero, 0.0, 0)
    faces = analyzer.faces_in_image(image)
    face = pick_face(faces)
    if face is None:
        status = _STATUS_SEVERAL if faces else _STATUS_NO_FACE
        return _PhotoResult(status, zero, 0.0, len(faces))
    sample = analyzer.embed([face])[0]
    return _PhotoResult(_STATUS_OK, sample.embedding, sample.quality.score, len(faces))


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
                (str(m), str(k)): _PhotoResult(str(s), e.astype(np.float32), float(q), int(n))
                for m, k, s, e, q, n in zip(
                    z["model"], z["keys"], z["status"], z["embeddings"], z["quality"], z["n_faces"],
                    strict=True,
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
            )
    except OSError as e:
        warnings.append(f"cannot write the embedding cache {str(path)!r} ({e.strerror}); not cached")
        return None
    return path
