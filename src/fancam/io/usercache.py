"""The user cache (``$FANCAM_HOME``): where analyses live, video digests, a size cap, list and clear.

Layout (everything fancam writes on its own; inputs and their folders are never written to)::

    <home>/analyses/<video sha256[:16]>-<preset>-<key[:8]>/   one analysis per video content and
                                                   model choice: each --quality keeps its own
    <home>/hashes/<sha256 of the path>.json       (size, mtime, inode) -> sha256 of a video, so a
                                                   second run does not read a big file again
    <home>/galleries/*.npz                        gallery embeddings (see fancam.identity.gallery)
    <home>/models/, <home>/downloads/             downloaded models and videos (see fancam.models)

An analysis folder's ``about.json`` names the video and the preset; its modification time is the
folder's last use. After every analysis the least recently used analyses are removed until they
take at most ``$FANCAM_CACHE_MAX_GB`` (default 5): never the folder just used, one used in the last
minute, or one another process has locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fancam.errors import UsageError
from fancam.io.cache import file_sha256, read_json, write_json_atomic
from fancam.models.registry import fancam_home

log = logging.getLogger(__name__)

ANALYSES = "analyses"
HASHES = "hashes"
GALLERIES = "galleries"
ABOUT = "about.json"
LOCK = ".lock"

ENV_MAX_GB = "FANCAM_CACHE_MAX_GB"
DEFAULT_MAX_GB = 5.0
RECENT_S = 60.0
"""An analysis used this recently is never evicted (another command may be reading it right now)."""


# ------------------------------------------------------------------------------------ video digest
def video_digest(video: Path, home: Path | None = None) -> str:
    """sha256 of a video's bytes, remembered by (path, size, mtime, inode) so it is computed once.

    A changed file (other size, modification time or inode) is hashed again; an unwritable cache
    only costs the hashing.
    """
    video = Path(video)
    st = video.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "device": st.st_dev}
    resolved = str(video.resolve())
    record = (home or fancam_home()) / HASHES / (hashlib.sha256(resolved.encode()).hexdigest()[:32] + ".json")
    known = read_json(record)
    if isinstance(known, dict) and known.get("path") == resolved and known.get("stamp") == stamp:
        return str(known["sha256"])
    digest = file_sha256(video)
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(record, {"path": resolved, "stamp": stamp, "sha256": digest})
    except OSError as e:
        log.info("cannot remember the digest of %s in %s: %s", video, record, e)
    return digest


# ----------------------------------------------------------------------------------- analysis folders
def analysis_dir(digest: str, preset: str, key: str, home: Path | None = None) -> Path:
    """The user-cache folder of the analysis of a video's content (``digest``) with one model choice.

    Keyed by content only, so a renamed or moved video finds its analysis again (``about.json`` names it).
    """
    return (home or fancam_home()) / ANALYSES / f"{digest[:16]}-{preset}-{key[:8]}"


def mark_used(folder: Path, about: dict) -> None:
    """Record what ``folder`` holds (``about.json``) and that it is being used now (its mtime)."""
    path = Path(folder) / ABOUT
    if read_json(path) != about:
        write_json_atomic(path, about)
    os.utime(path)


@dataclass(frozen=True)
class CacheEntry:
    """One analysis in the user cache.

    Attributes:
        folder: The analysis folder.
        size_bytes: Bytes of all its files.
        video: File name of the analysed video (``?`` when unknown).
        preset: The ``--quality`` preset it was made with.
        last_used: Unix time of its last use.
    """

    folder: Path
    size_bytes: int
    video: str
    preset: str
    last_used: float


def _folder_size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file():
                total += path.stat().st_size
    return total


def list_analyses(home: Path | None = None) -> list[CacheEntry]:
    """The analyses in the user cache, most recently used first."""
    root = (home or fancam_home()) / ANALYSES
    entries = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not folder.is_dir():
            continue
        about = read_json(folder / ABOUT)
        about = about if isinstance(about, dict) else {}
        try:
            used = (folder / ABOUT).stat().st_mtime
        except OSError:
            used = folder.stat().st_mtime
        entries.append(CacheEntry(folder, _folder_size(folder), str(about.get("video", "?")),
                                  str(about.get("preset", "?")), used))
    return sorted(entries, key=lambda e: -e.last_used)


def max_cache_bytes() -> int:
    """The size cap of the analyses (``$FANCAM_CACHE_MAX_GB``, default 5 GB).

    Raises:
        UsageError: the variable is not a non-negative number.
    """
    raw = os.environ.get(ENV_MAX_GB, "").strip()
    try:
        gb = float(raw) if raw else DEFAULT_MAX_GB
    except ValueError:
        gb = -1.0
    if not gb >= 0:
        raise UsageError(f"{ENV_MAX_GB}={raw!r} is not a size in GB; set it to a number such as 5")
    return int(gb * 1e9)


@contextlib.contextmanager
def _unused(folder: Path) -> Iterator[bool]:
    """Hold ``folder``'s lock if nobody else does; yields whether it could be taken."""
    try:
        handle = open(Path(folder) / LOCK, "a+")  # noqa: SIM115 - closed below
    except OSError:
        yield True
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove(entry: CacheEntry) -> bool:
    """Delete an analysis folder unless another process uses it; True when removed."""
    with _unused(entry.folder) as free:
        if not free:
            return False
        shutil.rmtree(entry.folder, ignore_errors=True)
    return not entry.folder.exists()


def evict(keep: Path, max_bytes: int | None = None, home: Path | None = None) -> list[CacheEntry]:
    """Remove least recently used analyses until they fit in ``max_bytes``; return those removed.

    ``keep`` (the analysis in use), folders used in the last :data:`RECENT_S` seconds and folders
    locked by another process are never removed.
    """
    limit = max_cache_bytes() if max_bytes is None else max_bytes
    entries = list_analyses(home)
    total = sum(e.size_bytes for e in entries)
    removed = []
    now = time.time()
    keep = Path(keep).resolve()
    for entry in reversed(entries):  # least recently used first
        if total <= limit:
            break
        if entry.folder.resolve() == keep or now - entry.last_used < RECENT_S:
            continue
        if _remove(entry):
            total -= entry.size_bytes
            removed.append(entry)
            log.info("removed the cached analysis %s (%s, cache over %s)", entry.folder,
                     format_size(entry.size_bytes), format_size(limit))
    return removed


@dataclass(frozen=True)
class ClearResult:
    """What ``fancam cache clear`` did.

    Attributes:
        removed: Paths removed.
        freed_bytes: Their total size.
        in_use: Analysis folders left because another process is using them.
    """

    removed: tuple[Path, ...]
    freed_bytes: int
    in_use: tuple[Path, ...]


def clear(*, older_than_s: float | None = None, everything: bool = False, home: Path | None = None) -> ClearResult:
    """Remove cached analyses, gallery embeddings and video digests (``everything``: the whole cache).

    With ``everything`` downloaded models and videos go too.

    Args:
        older_than_s: Only what was last used more than this many seconds ago.
        everything: Remove everything in the cache folder.
        home: The cache folder (default ``$FANCAM_HOME``).
    """
    home = home or fancam_home()
    now = time.time()
    removed: list[Path] = []
    in_use: list[Path] = []
    freed = 0
    for entry in list_analyses(home):
        if older_than_s is not None and now - entry.last_used <= older_than_s:
            continue
        if _remove(entry):
            removed.append(entry.folder)
            freed += entry.size_bytes
        else:
            in_use.append(entry.folder)
    kinds = [GALLERIES, HASHES]
    if everything:
        kinds = sorted(p.name for p in home.iterdir() if p.name != ANALYSES) if home.is_dir() else []
    for kind in kinds:
        for path in _files_and_folders(home / kind):
            if older_than_s is not None and now - _mtime(path) <= older_than_s:
                continue
            size = _folder_size(path) if path.is_dir() else path.stat().st_size
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            if not path.exists():
                removed.append(path)
                freed += size
    return ClearResult(tuple(removed), freed, tuple(in_use))


def _files_and_folders(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(path.iterdir())
    return [path] if path.exists() else []


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def cache_summary(home: Path | None = None) -> dict[str, tuple[int, int]]:
    """(count, bytes) of the other parts of the cache: gallery embeddings, models, downloads..."""
    home = home or fancam_home()
    summary = {}
    for part in sorted(home.iterdir()) if home.is_dir() else []:
        if part.name == ANALYSES:
            continue
        items = _files_and_folders(part)
        size = sum(_folder_size(p) if p.is_dir() else p.stat().st_size for p in items)
        summary[part.name] = (len(items), size)
    return summary


# ------------------------------------------------------------------------------------------ formats
def format_size(n: int) -> str:
    """Bytes as a short human size (``12.3 MB``)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def format_age(seconds: float) -> str:
    """A duration as ``just now``, ``5 min``, ``3 h`` or ``2 days``."""
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def parse_age(text: str) -> float:
    """``30`` (days), ``12h``, ``7d`` or ``2w`` as seconds.

    Raises:
        UsageError: anything else.
    """
    units = {"h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
    value = text.strip().lower()
    scale = units.get(value[-1:], None)
    number = value[:-1] if scale else value
    try:
        amount = float(number)
    except ValueError:
        amount = -1.0
    if not amount >= 0:
        raise UsageError(f"--older-than {text!r}: give a number of days, or hours/days/weeks as 12h, 7d, 2w")
    return amount * (scale or units["d"])
