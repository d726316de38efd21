"""Content-keyed caching of analysis stages, atomic file writes and an inter-process lock.

A stage result is reused only when its *key* matches: the sha256 of the video's bytes, the stage's
settings and the ids (with digests) of the models it used, chained with the key of the stage it builds
on. So a changed video, setting, gallery or model recomputes exactly the stages that depend on it, and
nothing is ever keyed by a file name.

Every file is written under a hidden temporary name carrying the writer's process id and renamed when
complete; a stage's manifest entry is dropped before its files are replaced. A run killed at any point
(even with SIGKILL) therefore leaves no half-written file under a final name and no manifest entry
vouching for replaced files, and the temporary files it left are removed by the next write beside them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fancam.errors import InputError
from fancam.version import __version__

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
"""Bumped whenever the meaning of a cached file changes; older caches are then recomputed (2: tracks.csv
carries each performer across short gaps between her tracklets)."""


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def stage_key(parent: str, settings: Any) -> str:
    """Key of a stage: sha256 over its parent's key and its settings (dataclasses, dicts, scalars)."""
    blob = json.dumps(
        [FORMAT_VERSION, __version__, parent, _jsonable(settings)], sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def temp_path_beside(final: Path) -> Path:
    """Create an empty hidden temporary file beside ``final`` (same folder, same suffix).

    The name carries this process's id, ``.STEM.PID-RANDOM.partSUFFIX``, so that temporary files left
    by a killed run (SIGKILL, power loss) are recognised and removed by the next write of the same
    output (see :func:`sweep_stale_temps`); those of a run still in progress are left alone.
    """
    final = Path(final)
    sweep_stale_temps(final)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{final.stem}.{os.getpid()}-", suffix=f".part{final.suffix}", dir=final.parent
    )
    os.close(fd)
    return Path(tmp)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


def sweep_stale_temps(final: Path) -> list[Path]:
    """Delete temporary files of ``final`` left by processes that no longer run; return them."""
    final = Path(final)
    pattern = re.compile(rf"\.{re.escape(final.stem)}\.(\d+)-[a-z0-9_]+\.part{re.escape(final.suffix)}")
    removed: list[Path] = []
    try:
        entries = list(final.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            try:
                entry.unlink()
            except OSError:
                continue
            log.info("removed %s, left by an interrupted run", entry)
            removed.append(entry)
    return removed


def publish(tmp: Path, final: Path) -> None:
    """Give a finished temporary file the usual permissions (mkstemp makes it 0600) and rename it."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, final)


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it to ``final`` only if the block succeeds.

    The temporary name keeps the suffix (so writers that pick a format from it still work) and starts
    with a dot, so an interrupted run never leaves a half-written file under the final name.
    """
    tmp_path = temp_path_beside(final)
    try:
        yield tmp_path
        publish(tmp_path, Path(final))
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON atomically, pretty-printed."""
    write_text_atomic(path, json.dumps(_jsonable(data), indent=2) + "\n")


def read_json(path: Path) -> Any | None:
    """Read a JSON file; None when missing or unreadable (a corrupt cache is treated as absent)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def dir_is_writable(path: Path) -> bool:
    """True if ``path`` is a folder we may write to.

    Write permission bits are required even for root (who could write anyway): a folder made
    read-only on purpose is left untouched.
    """
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return False
    has_write_bit = bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return stat.S_ISDIR(mode) and has_write_bit and os.access(path, os.W_OK | os.X_OK)


def ensure_writable_dir(path: Path, what: str = "output folder", option: str = "--out") -> Path:
    """Create ``path`` (and parents) if needed and check it is a writable directory.

    Args:
        path: The folder.
        what: What it is, for messages ("analysis folder", "output folder").
        option: The command-line option that chooses another one, for messages.

    Raises:
        InputError: It exists as a file, cannot be created, or is read-only (see :func:`dir_is_writable`).
    """
    path = Path(path)
    hint = f"choose another with {option}"
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and existing != path and existing.is_dir() and not dir_is_writable(existing):
        raise InputError(f"cannot create {what} {str(path)!r}: {str(existing)!r} is read-only; {hint}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as e:
        raise InputError(f"{what} {str(path)!r} exists and is not a folder; {hint}") from e
    except OSError as e:
        raise InputError(f"cannot create {what} {str(path)!r}: {e.strerror}; {hint}") from e
    if not dir_is_writable(path):
        raise InputError(f"{what} {str(path)!r} is not writable; {hint}")
    return path


def check_output_folder(path: Path, option: str = "-o") -> None:
    """Check, without creating anything, that outputs can be written into folder ``path``.

    It may be missing (it is created when the output is written, see :func:`ensure_writable_dir`) as
    long as the nearest existing folder above it is writable; an output that fails before then leaves
    no empty folder behind.

    Raises:
        InputError: a file is in the way, or the folder (or the one it would be created in) is read-only.
    """
    path = Path(path)
    hint = f"choose another {option}"
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    if not existing.is_dir():
        raise InputError(f"cannot create the output folder {str(path)!r}: {str(existing)!r} is a file; {hint}")
    if not dir_is_writable(existing):
        if existing == path:
            raise InputError(f"output folder {str(path)!r} is not writable; {hint}")
        raise InputError(f"cannot create the output folder {str(path)!r}: {str(existing)!r} is read-only; {hint}")


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive inter-process lock on ``folder`` (blocks while another process holds it)."""
    lock_path = Path(folder) / ".lock"
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("another fancam process is using %s; waiting for it to finish", folder)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Manifest:
    """The analysis folder's record of which stage results are valid for which key."""

    NAME = "manifest.json"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        data = read_json(self.folder / self.NAME)
        self._stages: dict[str, dict[str, Any]] = {}
        if isinstance(data, dict) and data.get("format") == FORMAT_VERSION:
            self._stages = dict(data.get("stages", {}))

    def valid(self, stage: str, key: str) -> bool:
        """True when ``stage`` was completed with ``key`` and all its files still exist."""
        entry = self._stages.get(stage)
        if not entry or entry.get("key") != key:
            return False
        return all((self.folder / name).is_file() for name in entry.get("files", []))

    def record(self, stage: str, key: str, files: list[str], info: dict[str, Any] | None = None) -> None:
        """Mark ``stage`` complete with ``key`` and its output files, and save the manifest."""
        self._stages[stage] = {"key": key, "files": list(files), **(info or {})}
        write_json_atomic(self.folder / self.NAME, {"format": FORMAT_VERSION, "stages": self._stages})

    def forget(self, stage: str) -> None:
        """Mark ``stage`` as not computed (before its files are overwritten), and save the manifest.

        A run killed while it rewrites a stage's files then leaves no entry claiming them for the
        previous key: nothing half-replaced or stale can be reused.
        """
        if self._stages.pop(stage, None) is not None:
            write_json_atomic(self.folder / self.NAME, {"format": FORMAT_VERSION, "stages": self._stages})

    def info(self, stage: str) -> dict[str, Any]:
        """What was recorded for ``stage`` (empty when nothing)."""
        return dict(self._stages.get(stage, {}))
