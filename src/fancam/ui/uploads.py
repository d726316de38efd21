"""Files people send to the web app, written only inside a job's folder, under names we choose.

An upload's own name is text to display, never a path: a video is stored as ``input/video<.ext>``
(the extension only when it is a known video one), photos as ``gallery/<group>/<member>/photo-N.<ext>``
where group and member are names the user typed or the zip's folders, cleaned by :func:`safe_name`.
Sizes are capped while the bytes arrive (:class:`Limits`); every refusal is an
:class:`fancam.InputError` whose message the page shows as is.
"""

from __future__ import annotations

import unicodedata
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from fancam.errors import GalleryError, InputError
from fancam.identity.gallery import IMAGE_SUFFIXES

MB = 1024 * 1024

VIDEO_SUFFIXES = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".flv", ".3gp", ".wmv",
    ".mpg", ".mpeg", ".h264", ".h265", ".hevc",
)
"""Extensions kept on a stored upload (FFmpeg reads the content; some raw formats need the hint)."""

_SAME_TYPE = {".jpeg": ".jpg", ".tiff": ".tif"}
PHOTO_TYPES = {suffix: _SAME_TYPE.get(suffix, suffix) for suffix in IMAGE_SUFFIXES}
"""Photo extensions the gallery reads (its own list: the web app and the CLI accept the same photos),
and the one a stored photo gets."""

DEFAULT_GROUP = "gallery"
"""Group folder for photos sent per member (the page names members, not groups)."""


class TooLarge(InputError):
    """An upload larger than its limit (HTTP 413)."""


@dataclass(frozen=True)
class Limits:
    """Size limits of uploads (refused while they arrive, before they fill the disk).

    Attributes:
        video_bytes: Largest video (the ``--max-upload-mb`` option of ``fancam ui``).
        photo_bytes: Largest single photo.
        zip_bytes: Largest gallery zip.
        zip_unpacked_bytes: Largest total size of the photos in a zip once unpacked.
        photos: Most photos in one gallery.
    """

    video_bytes: int = 4096 * MB
    photo_bytes: int = 25 * MB
    zip_bytes: int = 500 * MB
    zip_unpacked_bytes: int = 1024 * MB
    photos: int = 2000


def display_name(name: str | None, fallback: str = "video") -> str:
    """An upload's name as the page may show it: the last path part, printable, at most 120 chars."""
    text = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C").strip()
    return text[:120] or fallback


def video_file_name(name: str) -> str:
    """Stored name of an uploaded video: ``video`` plus its extension when it is a video one."""
    suffix = PurePosixPath(display_name(name)).suffix.lower()
    return "video" + (suffix if suffix in VIDEO_SUFFIXES else "")


def safe_name(text: str, what: str = "member name") -> str:
    """A group or member name usable as one folder name: letters (any script), digits, space, ``-_.``.

    Raises:
        GalleryError: nothing usable is left (the message names what to change).
    """
    cleaned = "".join(c for c in unicodedata.normalize("NFC", text) if c.isalnum() or c in " -_.").strip(" .")
    if not cleaned:
        raise GalleryError(f"{what} {text!r} has no letters or digits; use a name like 'Jisoo'")
    return cleaned[:64]


async def save_stream(chunks: AsyncIterator[bytes], dest: Path, limit: int, what: str) -> int:
    """Write an upload's bytes to ``dest`` (via ``dest.part``); refuse it past ``limit`` bytes.

    Raises:
        InputError: too large, or empty.
    """
    part = dest.with_name(dest.name + ".part")
    size = 0
    try:
        with open(part, "wb") as f:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"the {what} is larger than the limit of {limit // MB} MB")
                f.write(chunk)
        if size == 0:
            raise InputError(f"the {what} is an empty file (0 bytes); was the download complete?")
        part.replace(dest)
    finally:
        part.unlink(missing_ok=True)
    return size


def photo_suffix(data: bytes, name: str) -> str:
    """Stored extension of a photo whose bytes decode as an image.

    Raises:
        GalleryError: the bytes are not a picture OpenCV can read.
    """
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise GalleryError(f"{display_name(name, 'photo')!r} is not a photo (JPEG, PNG, WebP, BMP, TIFF, GIF or AVIF)")
    suffix = PurePosixPath(display_name(name)).suffix.lower()
    return PHOTO_TYPES.get(suffix, ".png" if data[:4] == b"\x89PNG" else ".jpg")


def add_photo(gallery: Path, member: str, data: bytes, name: str, limits: Limits) -> Path:
    """Store one photo of ``member`` (group :data:`DEFAULT_GROUP`) as ``photo-N.<ext>``.

    Raises:
        GalleryError: a bad member name, not a photo, too large, or too many photos.
    """
    if len(data) > limits.photo_bytes:
        raise GalleryError(f"{display_name(name, 'photo')!r} is larger than the limit of "
                           f"{limits.photo_bytes // MB} MB per photo")
    if count_photos(gallery) >= limits.photos:
        raise GalleryError(f"a gallery holds at most {limits.photos} photos")
    folder = gallery / DEFAULT_GROUP / safe_name(member)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = photo_suffix(data, name)
    path = folder / f"photo-{len(list(folder.iterdir())) + 1}{suffix}"
    path.write_bytes(data)
    return path


def count_photos(gallery: Path) -> int:
    """Photos stored in a gallery folder so far."""
    return sum(1 for p in gallery.glob("*/*/*") if p.is_file()) if gallery.is_dir() else 0


def extract_gallery_zip(archive: Path, gallery: Path, limits: Limits) -> int:
    """Unpack the photos of a gallery zip into ``gallery/<group>/<member>/photo-N.<ext>``.

    The member is a photo's folder in the zip and the group the folder above it (``gallery`` when
    there is none), so ``GROUP/MEMBER/x.jpg``, ``MEMBER/x.jpg`` and a zipped ``photos/GROUP/MEMBER/``
    folder all work. Names inside the zip are never used as paths: only cleaned names of two folder
    levels are. Files that are not photos are skipped.

    Returns:
        Number of photos stored.

    Raises:
        GalleryError: not a zip, too large unpacked, too many photos, photos not in member folders.
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise GalleryError("the gallery is not a zip file; zip a folder GALLERY/<group>/<member>/*.jpg") from e
    stored = 0
    with zf:
        entries = [i for i in zf.infolist() if _is_photo_entry(i)]
        if not entries:
            raise GalleryError("the gallery zip holds no photos (JPEG, PNG, WebP or BMP); expected "
                               "GALLERY/<group>/<member>/*.jpg")
        if len(entries) > limits.photos:
            raise GalleryError(f"the gallery zip holds {len(entries)} photos; the limit is {limits.photos}")
        if sum(i.file_size for i in entries) > limits.zip_unpacked_bytes:
            raise GalleryError(f"the gallery zip unpacks to more than {limits.zip_unpacked_bytes // MB} MB")
        for info in entries:
            parts = PurePosixPath(info.filename.replace("\\", "/")).parts[:-1]
            if not parts:
                raise GalleryError(f"photo {display_name(info.filename)!r} is not in a member folder; "
                                   "expected GALLERY/<group>/<member>/*.jpg")
            member = safe_name(parts[-1], "member folder")
            group = safe_name(parts[-2], "group folder") if len(parts) > 1 else DEFAULT_GROUP
            data = _read_capped(zf, info, limits.photo_bytes)
            folder = gallery / group / member
            folder.mkdir(parents=True, exist_ok=True)
            suffix = PHOTO_TYPES[PurePosixPath(info.filename).suffix.lower()]
            (folder / f"photo-{len(list(folder.iterdir())) + 1}{suffix}").write_bytes(data)
            stored += 1
    return stored


def _is_photo_entry(info: zipfile.ZipInfo) -> bool:
    path = PurePosixPath(info.filename.replace("\\", "/"))
    hidden = any(p.startswith((".", "__MACOSX")) for p in path.parts)
    return not info.is_dir() and not hidden and path.suffix.lower() in PHOTO_TYPES


def _read_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A zip entry's bytes, refusing it past ``limit`` whatever its header claims (zip bombs)."""
    with zf.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise GalleryError(f"photo {display_name(info.filename)!r} in the zip is larger than "
                           f"{limit // MB} MB")
    return data


def check_gallery(gallery: Path) -> None:
    """Refuse a gallery whose members have no photo (before the long analysis).

    Raises:
        GalleryError: a member folder without photos.
    """
    for member in sorted(p for p in gallery.glob("*/*") if p.is_dir()):
        if not any(member.iterdir()):
            raise GalleryError(f"member {member.name!r} has no photos; add at least one")
    if not count_photos(gallery):
        raise InputError("the gallery has no photos")
