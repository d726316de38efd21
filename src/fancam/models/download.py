"""Verified, resumable downloads of model files into the cache, one process at a time per file.

:func:`install` brings one file into the cache from ``FANCAM_MODEL_MIRROR`` (a local folder or an
http(s) URL prefix) first, then from its canonical URL. A transfer goes to ``<file>.part`` (resumed with
an HTTP Range request when the server allows it, restarted otherwise), must match one of the known
sha256 digests, and is renamed into place atomically under a lock file, so concurrent processes never
see or produce a half-written file.

This module knows nothing of the model registry: :mod:`fancam.models.registry` describes the file to fetch
(:class:`WantedFile`) and lends its digest cache. Environment variables are read at call time, never at
import.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fancam.errors import ModelError
from fancam.io.cache import file_sha256

log = logging.getLogger(__name__)

ENV_HOME = "FANCAM_HOME"
"""Root of fancam's per-user cache (read by :func:`fancam.models.registry.fancam_home`; named in errors here)."""
ENV_MIRROR = "FANCAM_MODEL_MIRROR"
"""A folder or an http(s) URL prefix holding model files, tried before the canonical URL."""
ENV_OFFLINE = "FANCAM_OFFLINE"
"""When set (and not 0/false/no), canonical URLs are never contacted: cache and mirror only."""


@dataclass(frozen=True)
class DownloadConfig:
    """How downloads behave.

    Attributes:
        timeout_s: Socket timeout for connecting and for each read, in seconds.
        attempts: Transfers tried per source when a connection breaks mid-body (resuming when possible).
        backoff_s: Pause before retry ``k`` is ``k * backoff_s`` seconds.
        lock_timeout_s: How long to wait for another process downloading the same model.
        progress: Show a tqdm progress bar (only when stderr is a terminal).
    """

    timeout_s: float = 30.0
    attempts: int = 4
    backoff_s: float = 1.0
    lock_timeout_s: float = 900.0
    progress: bool = True


@dataclass(frozen=True)
class WantedFile:
    """A file to install into the cache, and the bytes it may hold.

    Attributes:
        label: Name used in messages, logs and the progress bar (a model's registry name).
        dest: Final path in the cache; ``<name>.part`` and ``<name>.lock`` are kept beside it.
        url: Canonical URL, tried after the mirror (never when offline).
        mirror_names: File names looked up in :data:`ENV_MIRROR`, in order.
        digests: Known-good versions as (lower-case hex sha256, size in bytes) pairs.
    """

    label: str
    dest: Path
    url: str
    mirror_names: tuple[str, ...]
    digests: tuple[tuple[str, int], ...]

    def accepts(self, sha256: str) -> bool:
        """Whether ``sha256`` is one of the known-good digests."""
        return any(known == sha256 for known, _ in self.digests)

    @property
    def max_size(self) -> int:
        """Largest known-good size in bytes: a transfer beyond it cannot produce a good file."""
        return max(size for _, size in self.digests)


def _offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() not in ("", "0", "false", "no")


class _SourceError(Exception):
    """One source failed; ``mismatch`` when it delivered wrong bytes (not a network problem)."""

    def __init__(self, reason: str, *, mismatch: bool = False) -> None:
        super().__init__(reason)
        self.mismatch = mismatch


class _Interrupted(Exception):
    """A transfer broke mid-way and may be resumed or retried."""


def _short(wanted: WantedFile) -> str:
    return ", ".join(sha256[:16] + "..." for sha256, _ in wanted.digests)


def install(
    wanted: WantedFile,
    config: DownloadConfig,
    *,
    force: bool,
    network: bool,
    cached_sha256: Callable[[Path], str],
    remember: Callable[[Path, str], None],
) -> Path:
    """Fetch ``wanted`` into the cache under a lock file; return the verified ``wanted.dest``.

    Args:
        wanted: The file and its known-good digests.
        config: Timeouts, retries and progress display.
        force: Fetch again even when a valid copy is in place (any partial file is discarded).
        network: Allow http(s) sources; False leaves a mirror folder as the only source.
        cached_sha256: Digest of a file, possibly from a cache (e.g. :func:`fancam.models.registry.stamped_sha256`).
        remember: Called with the installed file and its sha256, so the digest cache can record it.

    Raises:
        ModelError: The cache is not writable, no source delivered a known-good file (the message says
            what was tried and what to do), or another process held the lock too long.
    """
    folder = wanted.dest.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelError(f"cannot create the model cache {folder} ({e}); set {ENV_HOME} to a writable "
                         "folder") from e
    dest = wanted.dest
    part = dest.with_name(dest.name + ".part")
    with _file_lock(dest.with_name(dest.name + ".lock"), config.lock_timeout_s, wanted.label):
        if dest.is_file() and not force and wanted.accepts(cached_sha256(dest)):
            return dest  # another process finished it while we waited for the lock
        if force:
            part.unlink(missing_ok=True)
        failures: list[tuple[str, _SourceError]] = []
        for source in _sources(wanted, network=network, failures=failures):
            try:
                sha256 = _fetch_one(source, part, wanted, config)
                os.replace(part, dest)
            except _SourceError as e:
                log.info("%s: %s failed: %s", wanted.label, source, e)
                failures.append((source, e))
                continue
            except OSError as e:  # disk full, permissions: not the source's fault
                raise ModelError(f"cannot write {wanted.label} into the model cache {folder} ({e}); free "
                                 f"space or set {ENV_HOME} to another folder") from e
            remember(dest, sha256)
            log.info("%s: installed %s from %s", wanted.label, dest, source)
            return dest
        raise _failure(wanted, failures, network=network)


def _sources(wanted: WantedFile, *, network: bool, failures: list[tuple[str, _SourceError]]) -> list[str]:
    """Locations to try, in order: mirror (folder files or URLs), then the canonical URL."""
    mirror = os.environ.get(ENV_MIRROR, "").strip()
    out: list[str] = []
    if mirror.startswith(("http://", "https://")):
        if network:
            out += [mirror.rstrip("/") + "/" + urllib.parse.quote(n) for n in wanted.mirror_names]
    elif mirror:
        folder = Path(urllib.parse.urlparse(mirror).path if mirror.startswith("file:") else mirror)
        found = [folder.expanduser() / n for n in wanted.mirror_names if (folder.expanduser() / n).is_file()]
        out += [str(p) for p in found]
        if not found:
            failures.append((str(folder), _SourceError(f"{ENV_MIRROR} folder has none of "
                                                       f"{', '.join(wanted.mirror_names)}")))
    if network and not _offline():
        out.append(wanted.url)
    return out


def _fetch_one(source: str, part: Path, wanted: WantedFile, config: DownloadConfig) -> str:
    """Bring ``source`` to ``part`` and verify it; return its sha256 (``part`` is deleted on mismatch)."""
    if _complete_part(part, wanted):
        return file_sha256(part)  # an earlier run finished the transfer but not the rename
    if source.startswith(("http://", "https://")):
        spliced = _download(source, part, wanted.max_size, config, wanted.label)
        sha256 = file_sha256(part)
        if spliced and not wanted.accepts(sha256):
            # A resumed file joins two transfers; the old part (maybe of another file version) is the
            # likely culprit, so one clean transfer decides.
            log.warning("%s: resumed download fails its checksum; downloading again from scratch",
                        wanted.label)
            part.unlink()
            _download(source, part, wanted.max_size, config, wanted.label)
            sha256 = file_sha256(part)
    else:
        part.unlink(missing_ok=True)
        try:
            shutil.copyfile(source, part)
        except OSError as e:
            part.unlink(missing_ok=True)
            raise _SourceError(f"cannot copy: {e}") from e
        sha256 = file_sha256(part)
    if not wanted.accepts(sha256):
        part.unlink(missing_ok=True)
        raise _SourceError(f"sha256 {sha256} is not a known-good digest ({_short(wanted)})", mismatch=True)
    return sha256


def _complete_part(part: Path, wanted: WantedFile) -> bool:
    sizes = {size for _, size in wanted.digests}
    return part.is_file() and part.stat().st_size in sizes and wanted.accepts(file_sha256(part))


def _download(url: str, part: Path, limit: int, config: DownloadConfig, label: str) -> bool:
    """Transfer ``url`` into ``part``, resuming/retrying broken transfers.

    Returns:
        True when the finished ``part`` starts with bytes from an earlier transfer (a resumed file).
    """
    for attempt in range(1, config.attempts + 1):
        try:
            return _transfer(url, part, limit, config, label)
        except _Interrupted as e:
            if attempt == config.attempts:
                raise _SourceError(f"transfer interrupted {attempt} times ({e}); {part.name} kept for "
                                   "resuming") from e
            log.warning("%s: %s; retrying (%d/%d)", label, e, attempt, config.attempts - 1)
            time.sleep(config.backoff_s * attempt)
    raise _SourceError("no transfer attempted (DownloadConfig.attempts < 1)")


def _transfer(url: str, part: Path, limit: int, config: DownloadConfig, label: str) -> bool:
    """One HTTP request into ``part``; return True when it appended to bytes already there."""
    have = part.stat().st_size if part.is_file() else 0
    if have >= limit:
        part.unlink()
        have = 0
    request = urllib.request.Request(url, headers={"User-Agent": "fancam-model-downloader"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    response = _open(request, config.timeout_s, part if have else None)
    with response:
        if response.status == 206 and _range_start(response.headers.get("Content-Range")) != have:
            part.unlink(missing_ok=True)
            raise _Interrupted("server answered with another byte range; restarting")
        if response.status != 206:  # the server ignored the range (or none was asked): from byte 0
            have = 0
        length = response.headers.get("Content-Length")
        end = have + int(length) if length and length.isdigit() else None
        if end is not None and end > limit:
            part.unlink(missing_ok=True)
            raise _SourceError(f"server announces {end} bytes, more than any known-good file "
                               f"({limit} bytes)", mismatch=True)
        got = _stream(response, part, have, limit, _progress(config, label, end, have))
    if end is not None and got < end:
        raise _Interrupted(f"connection closed after {got} of {end} bytes")
    return have > 0


def _open(request: urllib.request.Request, timeout_s: float, part: Path | None) -> Any:
    """Call urlopen, with errors sorted into final (_SourceError) and retryable (_Interrupted)."""
    try:
        return urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and part is not None:
            part.unlink(missing_ok=True)
            raise _Interrupted("server rejected the resume range; restarting") from e
        if e.code >= 500 or e.code == 429:
            raise _Interrupted(f"HTTP {e.code} {e.reason}") from e
        raise _SourceError(f"HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        reason = e.reason
        text = reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
        raise _SourceError(text) from e
    except (TimeoutError, ConnectionRefusedError) as e:
        raise _SourceError(str(e) or type(e).__name__) from e
    except (ConnectionError, http.client.HTTPException) as e:
        raise _Interrupted(f"{type(e).__name__}: {e}") from e


def _range_start(content_range: str | None) -> int:
    """First byte of a ``Content-Range: bytes a-b/n`` header (-1 when absent or malformed)."""
    try:
        return int((content_range or "").split()[1].split("-")[0])
    except (IndexError, ValueError):
        return -1


def _progress(config: DownloadConfig, label: str, total: int | None, initial: int) -> Any:
    from tqdm import tqdm  # lazy: only needed while downloading

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                disable=None if config.progress else True, leave=False)


def _stream(response: Any, part: Path, have: int, limit: int, bar: Any) -> int:
    """Copy the body into ``part`` (appending after ``have`` bytes); return the bytes now in ``part``."""
    got = have
    with bar, open(part, "r+b" if have else "wb") as f:
        f.seek(have)
        f.truncate()
        while True:
            try:
                chunk = response.read(1 << 16)
            except (OSError, http.client.HTTPException) as e:
                raise _Interrupted(f"{type(e).__name__} after {got} bytes: {e}") from e
            if not chunk:
                return got
            got += len(chunk)
            if got > limit:
                f.close()
                part.unlink(missing_ok=True)
                raise _SourceError(f"server sent more than {limit} bytes, more than any known-good file",
                                   mismatch=True)
            f.write(chunk)
            bar.update(len(chunk))


def _failure(wanted: WantedFile, failures: list[tuple[str, _SourceError]], *, network: bool) -> ModelError:
    """The one-line, actionable error after every source failed."""
    name, dest = wanted.label, wanted.dest
    tried = "; ".join(f"{src}: {err}" for src, err in failures)
    mismatch = [(src, err) for src, err in failures if err.mismatch]
    if mismatch:
        src, err = mismatch[0]
        return ModelError(f"checksum mismatch for {name} from {src}: {err}; nothing was installed "
                          f"(tried: {tried})")
    if not network or _offline():
        why = "downloads are disabled" if not network else f"{ENV_OFFLINE} is set"
        return ModelError(f"model {name} is not in the cache ({dest}) and {why}; run `fancam models "
                          f"download {name}` or set {ENV_MIRROR}=<folder>"
                          + (f" (tried: {tried})" if tried else ""))
    url, reason = failures[-1][0], failures[-1][1]
    others = f" (also tried: {'; '.join(f'{s}: {e}' for s, e in failures[:-1])})" if failures[:-1] else ""
    return ModelError(f"cannot download {name} from {url} ({reason}); you are offline? set "
                      f"{ENV_MIRROR}=<folder> or run `fancam models download {name}` on a machine with "
                      f"internet and copy {dest.name} to {dest.parent}{others}")


@contextlib.contextmanager
def _file_lock(path: Path, timeout_s: float, label: str) -> Iterator[None]:
    """Exclusive inter-process lock on ``path`` (flock on POSIX, msvcrt on Windows)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline, waiting = time.monotonic() + timeout_s, False
        while not _try_lock(fd):
            if time.monotonic() > deadline:
                raise ModelError(f"another process has been downloading {label} for over {timeout_s:.0f} s "
                                 f"(lock {path}); retry later or delete the lock file if nothing runs")
            if not waiting:
                log.info("waiting for another process downloading %s", label)
                waiting = True
            time.sleep(0.1)
        yield
    finally:
        _unlock(fd)
        os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _unlock(fd: int) -> None:
    with contextlib.suppress(OSError):
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_UN)
