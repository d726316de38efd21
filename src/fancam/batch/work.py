"""One item from start to finish, in a worker: fetch, hash, analyse once, render, record.

Output layout under the batch's output folder ``OUT``::

    OUT/<stem>-<sha10>/                          one folder per input video (its content hash)
        analysis-<key10>/                        the analysis (tracks.csv, people.json, caches)
        <stem>.<label>.<framing>-<W>x<H>[-<px>p][.<a>-<b>s].<key8>.mp4   (+ .crop.csv)
        .done-<key12>.json                       completion record of one render call
    OUT/.batch/attempts/<item key>.log           one line per attempt at an item

Names are deterministic: ``sha10`` is the video's sha256, ``key`` hashes that digest with the fancam
version, the analysis settings, the gallery photos and the render settings. Every fancam is rendered
into a hidden temporary folder and renamed into place; the record is written (atomically) last, so a
render call is complete exactly when its record is valid and its files are there. A rerun skips the
complete calls, reuses the analysis, and redoes the rest.

Errors: a bad input (a :class:`~fancam.FancamError`) or a bug fails the item with a one-line error
and is never retried. A failed download raises :class:`TransientError`, which the engines retry.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import resource
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import fancam
from fancam.batch.items import Item, Render
from fancam.batch.manifest import URL_PREFIXES
from fancam.errors import FancamError, InputError
from fancam.io.cache import file_sha256

log = logging.getLogger(__name__)

FORMAT = 1
"""Bumped when the meaning of names or records changes (then everything is redone)."""

DONE = "done"
SKIPPED = "skipped"
FAILED = "failed"
INVALID = "invalid"
INTERRUPTED = "interrupted"
STATUSES = (DONE, SKIPPED, FAILED, INVALID, INTERRUPTED)
"""``done``: rendered now; ``skipped``: complete from an earlier run; ``failed``: an error; ``invalid``:
a bad manifest row (never run); ``interrupted``: the batch was stopped before the item finished."""

ATTEMPTS_DIR = Path(".batch") / "attempts"


class TransientError(Exception):
    """A failure that may not happen again elsewhere or later (an interrupted download): retried."""


@dataclass(frozen=True)
class Fancam:
    """One rendered fancam.

    Attributes:
        person: Person id (``--person N``).
        label: Gallery member name, ``person-N`` or ``unknown``.
        confidence: Identity confidence of the performer, in [0, 1].
        output: The video, relative to the batch's output folder.
        crop_csv: Its camera path, relative to the batch's output folder.
        frames: Frames written.
        duration_s: Duration (s).
    """

    person: int
    label: str
    confidence: float
    output: str
    crop_csv: str
    frames: int
    duration_s: float


@dataclass(frozen=True)
class ItemResult:
    """What became of one item.

    Attributes:
        index: The item's index in the batch.
        status: One of :data:`STATUSES`.
        error: One-line error (failed, invalid, interrupted), else empty.
        fancams: The item's fancams (rendered now, or found complete).
        seconds: Wall time per stage: ``fetch``, ``hash``, ``analyze``, ``render``, ``total``.
        analysis_seconds: Stage times of the item's analysis, each measured by the attempt (or earlier
            run) that computed that stage, so a retry still says what its analysis cost.
        analysis_reused: Stages of the analysis this attempt found complete in the item's folder and did
            not compute (a retry after a killed attempt, a rerun that redoes a render call).
        video_s: Duration of the input video (s).
        folder: The item's folder, relative to the batch's output folder.
        notes: Warnings worth reading (a performer not on screen, a damaged stretch of video...).
        worker: ``host:pid`` of the process that ran it.
        attempt: Attempt number in this batch run (1 = first try).
        version: fancam version of the worker.
        peak_rss_mb: Peak memory (resident set) of the worker process so far, in MB: the item's own
            peak when it was the process's first item (for sizing ``--task-memory``/``--workers``).
    """

    index: int
    status: str
    error: str = ""
    fancams: tuple[Fancam, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)
    analysis_seconds: dict[str, float] = field(default_factory=dict)
    analysis_reused: tuple[str, ...] = ()
    video_s: float = 0.0
    folder: str = ""
    notes: tuple[str, ...] = ()
    worker: str = ""
    attempt: int = 0
    version: str = fancam.__version__
    peak_rss_mb: float = 0.0


def run_item(item: Item, out: str, run_id: str) -> ItemResult:
    """Process one item; a bad input becomes a failed result (never an exception).

    Args:
        item: The item.
        out: The batch's output folder (shared by every worker).
        run_id: Id of this batch run (attempts are counted per run).

    Raises:
        TransientError: the video could not be downloaded (worth retrying).
        KeyboardInterrupt: the batch is being stopped (temporary files are removed first).
    """
    root = Path(out)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    attempt = _log_attempt(root, item, run_id, worker)
    timer = _Timer()
    notes = _WarningNotes()
    failed = ItemResult(item.index, FAILED, worker=worker, attempt=attempt)
    try:
        with notes:
            outcome = _process(item, root, timer)
    except FancamError as e:
        error = str(e)
    except MemoryError:
        error = "out of memory; give each task more memory or run fewer workers per machine (--workers)"
    except OSError as e:
        error = f"{e.strerror or e}" + (f": {e.filename!r}" if e.filename else "")
    except (TransientError, KeyboardInterrupt):
        raise
    except Exception as e:  # a bug: one line in the report, never a retry (it would fail the same way)
        log.debug("internal error on item %d", item.index, exc_info=True)
        error = f"internal error: {type(e).__name__}: {e}"
    else:
        return dataclasses.replace(outcome, seconds=timer.done(), notes=notes.lines() + outcome.notes,
                                   worker=worker, attempt=attempt, peak_rss_mb=_peak_rss_mb())
    return dataclasses.replace(failed, error=error, seconds=timer.done(), notes=notes.lines())


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (MB; Linux reports kB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _process(item: Item, root: Path, timer: _Timer) -> ItemResult:
    """Work through one item; returns its result (without the run's bookkeeping)."""
    with timer("fetch"):
        video = _local_video(item.video)
    with timer("hash"):
        digest = file_sha256(video)
        gallery = gallery_fingerprint(Path(item.gallery)) if item.gallery else None
    stem = _safe(_video_stem(item.video))
    folder = root / f"{stem}-{digest[:10]}"
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    settings = fancam.AnalysisSettings()
    analysis_key = _key(FORMAT, fancam.__version__, digest, repr(settings), gallery)
    calls = [_Call(render, analysis_key, stem, folder) for render in item.renders]
    records = {i: call.complete_record() for i, call in enumerate(calls)}
    relative = folder.relative_to(root)
    if all(records.values()):
        video_s = max(float(r.get("video_s", 0.0)) for r in records.values() if r)
        return ItemResult(item.index, SKIPPED, fancams=_fancams(records.values(), relative), folder=str(relative),
                          video_s=video_s)
    with timer("analyze"):
        try:
            analysis = fancam.analyze(
                video, out=folder / f"analysis-{analysis_key[:10]}",
                gallery=Path(item.gallery) if item.gallery else None, settings=settings, progress=False,
            )
        except FancamError:  # a bad video: leave no folder behind for it
            if created:
                shutil.rmtree(folder, ignore_errors=True)
            raise
    notes: list[str] = []
    for i, call in enumerate(calls):
        if records[i] is None:
            with timer("render"):
                record = call.run(analysis, item.video, digest)
            records[i] = record
            notes.extend(call.notes(record))
    return ItemResult(item.index, DONE, fancams=_fancams(records.values(), relative), folder=str(relative),
                      video_s=_duration_s(analysis), analysis_seconds=dict(analysis.recorded_seconds),
                      analysis_reused=analysis.reused, notes=tuple(notes))


def _duration_s(analysis: fancam.Analysis) -> float:
    """The video's duration: from its header, else from its decoded frame times."""
    t = analysis.timeline.t
    return float(analysis.info.duration_s or (t[-1] if len(t) else 0.0))


def _fancams(records: Any, folder: Path) -> tuple[Fancam, ...]:
    return tuple(
        Fancam(f["person"], f["label"], f["confidence"], str(folder / f["output"]), str(folder / f["crop_csv"]),
               f["frames"], f["duration_s"])
        for record in records for f in record["fancams"]
    )


class _Call:
    """One render call of an item: its deterministic names, its record, and running it."""

    def __init__(self, render: Render, analysis_key: str, stem: str, folder: Path) -> None:
        defaults = fancam.RenderOptions()
        self.render = render
        self.framing = render.framing or defaults.framing
        self.aspect = render.aspect or defaults.aspect
        self.options = fancam.RenderOptions(
            framing=self.framing, aspect=self.aspect, height=render.height, start_s=render.start_s,
            end_s=render.end_s,
        )
        self.key = _key(analysis_key, self.framing, self.aspect, render.height, render.start_s, render.end_s)
        self.record_key = _key(self.key, render.members)
        self.stem = stem
        self.folder = folder
        self.record = folder / f".done-{self.record_key[:12]}.json"

    def selection(self) -> fancam.Selection:
        if self.render.members is None:
            return fancam.Selection(all=True)
        return fancam.Selection(people=self.render.members)

    def file_name(self, label: str) -> str:
        """``<stem>.<label>.<framing>-<W>x<H>[-<px>p][.<a>-<b>s].<key8>.mp4``."""
        r = self.render
        look = f"{self.framing}-{self.aspect.replace(':', 'x')}" + (f"-{r.height}p" if r.height else "")
        end = "end" if r.end_s is None else f"{r.end_s:g}"
        span = "" if r.start_s == 0 and r.end_s is None else f".{r.start_s:g}-{end}s"
        return f"{self.stem}.{_safe(label)}.{look}{span}.{self.key[:8]}.mp4"

    def complete_record(self) -> dict | None:
        """The record when this call is complete (record valid, every file present), else None."""
        try:
            record = json.loads(self.record.read_text(encoding="utf-8"))
            if record.get("key") != self.record_key:
                return None
            for f in record["fancams"]:
                video, crop = self.folder / f["output"], self.folder / f["crop_csv"]
                if video.stat().st_size != f["size"] or not crop.is_file():
                    return None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return record

    def run(self, analysis: fancam.Analysis, video: str, digest: str) -> dict:
        """Render into a temporary folder, rename the fancams into place, then write the record."""
        for stale in self.folder.glob(f".part-{self.key[:10]}-*"):  # left by a killed attempt
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".part-{self.key[:10]}-{os.getpid()}-", dir=self.folder))
        try:
            options = dataclasses.replace(self.options, output=tmp)
            results = fancam.make_fancams(analysis, self.selection(), options, progress=False)
            people = {p.id: p for p in analysis.cast.people}
            fancams = []
            for result in results:
                if result.person is None or result.crop_csv is None:
                    continue
                person = people[result.person]
                label = f"unknown-{person.id}" if person.label == "unknown" else person.label
                final = self.folder / self.file_name(label)
                crop = final.with_suffix(".crop.csv")
                os.replace(result.crop_csv, crop)
                os.replace(result.output, final)
                fancams.append({
                    "person": person.id, "label": person.label, "confidence": round(float(person.confidence), 3),
                    "output": final.name, "crop_csv": crop.name, "frames": result.frames,
                    "duration_s": round(result.duration_s, 3), "size": final.stat().st_size,
                })
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        record = {
            "format": FORMAT, "key": self.record_key, "fancam": fancam.__version__, "video": video,
            "sha256": digest, "video_s": _duration_s(analysis), "lines": list(self.render.lines),
            "members": "all" if self.render.members is None else list(self.render.members),
            "framing": self.framing, "aspect": self.aspect, "height": self.render.height,
            "start_s": self.render.start_s, "end_s": self.render.end_s, "fancams": fancams,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        write_json_atomic(self.record, record)
        return record

    def notes(self, record: dict) -> list[str]:
        """A note when fewer performers were rendered than named."""
        asked = self.render.members
        if asked is None or len(record["fancams"]) >= len(asked):
            return []
        got = ", ".join(f["label"] for f in record["fancams"]) or "nobody"
        return [f"line {self.render.lines[0]}: asked for {len(asked)} performers, rendered {len(record['fancams'])} "
                f"({got}); the others are not on screen in the time range"]


# ------------------------------------------------------------------------------------------ helpers


def _local_video(video: str) -> Path:
    """The file to work on; a URL is downloaded (into the user cache) first."""
    if not video.lower().startswith(URL_PREFIXES):
        return Path(video)
    from fancam.io.remote import fetch_video  # the one owner of downloads (the `url` extra)

    try:
        return fetch_video(video)
    except InputError as e:  # offline, interrupted, server error: worth another try
        if type(e) is not InputError:
            raise
        raise TransientError(str(e)) from e


def _video_stem(video: str) -> str:
    name = video.rstrip("/").rsplit("/", 1)[-1] if video.lower().startswith(URL_PREFIXES) else Path(video).name
    return Path(name.split("?", 1)[0]).stem or "video"


def _safe(text: str) -> str:
    """A file-name part: letters, digits, ``-`` and ``_`` (anything else becomes ``_``)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:80] or "_"


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def gallery_fingerprint(folder: Path) -> str:
    """Digest of every file of a gallery (relative path and bytes): a changed photo changes the names."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(f"{path.relative_to(folder).as_posix()} {file_sha256(path)}\n".encode())
    return digest.hexdigest()


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file under a temporary name beside ``path``, then rename it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON atomically (see :func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def _log_attempt(root: Path, item: Item, run_id: str, worker: str) -> int:
    """Append this attempt to the item's log; return its number within this run."""
    folder = root / ATTEMPTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    log_file = folder / f"{item.key}.log"
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with open(log_file, "a", encoding="utf-8") as f:
        f.write(f"{run_id}\t{worker}\t{stamp}\n")
    return count_attempts(root, item, run_id)


def count_attempts(out: Path | str, item: Item, run_id: str) -> int:
    """How many times this batch run has started ``item`` (from its attempt log)."""
    try:
        with open(Path(out) / ATTEMPTS_DIR / f"{item.key}.log", encoding="utf-8") as f:
            return sum(line.startswith(f"{run_id}\t") for line in f)
    except OSError:
        return 0


class _Timer:
    """Wall seconds per stage (a stage may run several times: they add up)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

    def done(self) -> dict[str, float]:
        return {**{k: round(v, 3) for k, v in self.seconds.items()},
                "total": round(time.perf_counter() - self.start, 3)}


class _WarningNotes(logging.Handler):
    """Collects fancam's warnings during an item (so they go into the report, not over the progress bar)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._logger = logging.getLogger("fancam")

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().splitlines()[0] if record.getMessage() else ""
        if message and message not in self.messages:
            self.messages.append(message)

    def __enter__(self) -> _WarningNotes:
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)

    def lines(self) -> tuple[str, ...]:
        return tuple(self.messages)
