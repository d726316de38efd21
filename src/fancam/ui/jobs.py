"""Jobs of the web app: one folder per job under the work folder, its state in ``job.json``, one worker.

A job outlives the browser tab and the server: its state is rewritten (atomically) on every change,
and a server that starts again re-queues what was waiting or running. Layout of the work folder::

    jobs/<job id>/job.json                        state (see :class:`Job`)
    jobs/<job id>/input/video.<ext>               the upload (its name is only ever displayed)
    jobs/<job id>/gallery/<group>/<member>/*.jpg  reference photos (see fancam.ui.uploads)
    jobs/<job id>/analysis/                       fancam.analyze(out=...)
    jobs/<job id>/people/<N>.jpg, sheet.jpg       contact sheet tiles and the contact sheet
    jobs/<job id>/renders/<render id>/*.mp4       fancams (+ .crop.csv)

Ids are random (:func:`new_id`) and checked against :data:`ID_PATTERN` before any path is built from
them. The work itself runs in one background thread (analyses and renders share 2 cores: one at a
time, the rest wait in a queue) and talks to the pipeline only through the public API.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import re
import secrets
import shutil
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import fancam
from fancam.io.cache import read_json, write_json_atomic
from fancam.ui.summary import describe_people, lost_stretches, person_thumbnail

log = logging.getLogger(__name__)

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,32}")
"""What a job or render id looks like (anything else in a URL is a 404 before touching the disk)."""

SAVE_INTERVAL_S = 1.0
"""Progress is kept in memory at every event but written to job.json at most this often."""

ANALYSES_IN_MEMORY = 4
"""Analyses kept loaded for frames and renders (each holds the video's track table, a few MB)."""

# Job states
NEW, QUEUED, ANALYZING, READY, FAILED = "new", "queued", "analyzing", "ready", "failed"
# Render states
RENDERING, DONE = "rendering", "done"


def new_id() -> str:
    """A random, URL-safe id (16 characters, 96 bits)."""
    return secrets.token_urlsafe(12)


def valid_id(text: str) -> bool:
    """Whether ``text`` can be a job or render id."""
    return bool(ID_PATTERN.fullmatch(text))


@dataclass
class Stage:
    """Progress of one stage of the work (from :class:`fancam.ProgressEvent`)."""

    name: str
    fraction: float | None = None
    eta_s: float | None = None
    elapsed_s: float = 0.0
    finished: bool = False


@dataclass
class Output:
    """One fancam a render wrote.

    Attributes:
        person: Performer number.
        label: Performer name (``person-N``, a member, ``unknown``).
        video: File name inside the render folder.
        crop_csv: Camera path file name inside the render folder.
        duration_s: Length of the fancam.
        frames: Frames written.
        lost: ``(start_s, end_s)`` stretches where the camera had lost the performer.
    """

    person: int
    label: str
    video: str
    crop_csv: str
    duration_s: float
    frames: int
    lost: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Render:
    """A render request and what came of it.

    Attributes:
        id: Render id (its folder under ``renders/``).
        person: Performer number, or None with ``all``.
        all: Every performer (the CLI's ``--all``).
        framing: ``RenderOptions.framing``.
        aspect: ``RenderOptions.aspect``.
        height: ``RenderOptions.height`` (None: the crop's own size).
        start_s: Start of the time range.
        end_s: End of the time range (None: the end).
        state: ``queued``, ``rendering``, ``done`` or ``failed``.
        message: The error, when failed.
        stage: Progress while rendering.
        outputs: What it wrote.
        warnings: What the pipeline warned about while rendering (as the CLI prints it).
        version: Bumped on every change (the event stream sends changed renders only).
    """

    id: str
    person: int | None
    all: bool
    framing: str
    aspect: str
    height: int | None
    start_s: float
    end_s: float | None
    state: str = QUEUED
    message: str = ""
    stage: Stage | None = None
    outputs: list[Output] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    version: int = 0


@dataclass
class Job:
    """One video, its analysis and its renders.

    Attributes:
        id: Job id (its folder under ``jobs/``).
        name: What the user called the video (upload name or path), for display and download names.
        video: The video: a path relative to the job folder (uploads) or an absolute path (a file
            on this machine), or the URL to download.
        created: Unix time.
        state: ``new`` (receiving files), ``queued``, ``analyzing``, ``ready`` or ``failed``.
        message: The error, when failed.
        gallery: Whether the job has reference photos (``gallery/``).
        quality: Model preset of its analysis (the default when the job was made, kept so that a
            newer default does not silently analyse old jobs again).
        stages: Analysis progress, one entry per stage in the order they ran.
        duration_s: Video duration (from probe, then from the analysis).
        size: Displayed (width, height).
        people: Performers (see :func:`fancam.ui.summary.describe_people`), once ready.
        renders: Render requests, oldest first.
        warnings: What the pipeline warned about during the analysis (as the CLI prints it).
        version: Bumped on every change (the page's event stream sends what changed).
    """

    id: str
    name: str
    video: str
    created: float = field(default_factory=time.time)
    state: str = NEW
    message: str = ""
    gallery: bool = False
    quality: str = field(default_factory=lambda: fancam.AnalysisSettings().quality)
    stages: list[Stage] = field(default_factory=list)
    duration_s: float | None = None
    size: tuple[int, int] | None = None
    people: list[dict[str, Any]] = field(default_factory=list)
    renders: list[Render] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    version: int = 0

    def render(self, render_id: str) -> Render | None:
        """The render with this id, or None."""
        return next((r for r in self.renders if r.id == render_id), None)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        """Inverse of ``dataclasses.asdict`` (job.json)."""
        renders = []
        for r in data.pop("renders", []):
            stage = Stage(**r.pop("stage")) if r.get("stage") else None
            outputs = [Output(**{**o, "lost": [tuple(s) for s in o.get("lost", [])]}) for o in r.pop("outputs", [])]
            r.pop("stage", None)
            renders.append(Render(**r, stage=stage, outputs=outputs))
        stages = [Stage(**s) for s in data.pop("stages", [])]
        size = tuple(data.pop("size")) if data.get("size") else None
        data.pop("size", None)
        return cls(**data, stages=stages, renders=renders, size=size)


class JobStore:
    """All jobs of a work folder: in memory, mirrored to ``job.json`` files; thread-safe.

    Args:
        workdir: The work folder (created if needed).
    """

    def __init__(self, workdir: Path) -> None:
        self.root = Path(workdir) / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._saved_at: dict[str, float] = {}
        for path in sorted(self.root.glob("*/job.json")):
            data = read_json(path)
            if not isinstance(data, dict) or not valid_id(path.parent.name):
                log.warning("ignoring unreadable job state %s", path)
                continue
            try:
                job = Job.from_json(data)
            except (TypeError, KeyError, ValueError) as e:
                log.warning("ignoring unreadable job state %s (%s)", path, e)
                continue
            if job.id == path.parent.name:
                self._jobs[job.id] = job

    def folder(self, job_id: str) -> Path:
        """The job's folder (the id is checked first)."""
        if not valid_id(job_id):
            raise KeyError(job_id)
        return self.root / job_id

    def create(self, name: str, video: str) -> Job:
        """A new job, in state ``new`` until its files are in."""
        job = Job(id=new_id(), name=name, video=video)
        self.folder(job.id).mkdir()
        with self._lock:
            self._jobs[job.id] = job
            self._save(job)
        return copy.deepcopy(job)

    def get(self, job_id: str) -> Job | None:
        """A copy of the job with this id (the worker changes the original), or None."""
        with self._lock:
            job = self._jobs.get(job_id)
            return copy.deepcopy(job) if job is not None else None

    def all(self) -> list[Job]:
        """Copies of every job, newest first."""
        with self._lock:
            return [copy.deepcopy(j) for j in sorted(self._jobs.values(), key=lambda j: -j.created)]

    def update(self, job_id: str, change: Any, *, save: bool = True) -> Job:
        """Apply ``change(job)`` under the lock, bump the version and save; return a copy.

        With ``save`` False (progress) the file is written at most every :data:`SAVE_INTERVAL_S`.
        """
        with self._lock:
            job = self._jobs[job_id]
            change(job)
            job.version += 1
            now = time.monotonic()
            if save or now - self._saved_at.get(job_id, 0.0) >= SAVE_INTERVAL_S:
                self._save(job)
            return copy.deepcopy(job)

    def delete(self, job_id: str) -> None:
        """Forget a job and remove its folder."""
        with self._lock:
            self._jobs.pop(job_id, None)
        shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def _save(self, job: Job) -> None:
        folder = self.folder(job.id)
        if folder.is_dir():
            write_json_atomic(folder / "job.json", asdict(job))
            self._saved_at[job.id] = time.monotonic()


def user_message(error: BaseException, replace: dict[str, str] | None = None) -> str:
    """The one-line message the page shows for ``error`` (the CLI's wording), without server paths.

    Args:
        error: What the work raised.
        replace: Server paths to show as something else (the job folder's upload as its upload name).
    """
    if isinstance(error, fancam.FancamError):
        text = str(error)
    elif isinstance(error, MemoryError):
        text = "out of memory; try a shorter clip (choose a time range)"
    elif isinstance(error, OSError):
        where = f": {error.filename!r}" if error.filename else ""
        text = f"{error.strerror or error}{where}; check the file, its folder and the free disk space"
    else:
        text = (f"internal error: {type(error).__name__}: {error} (please report it; the server's log "
                "has the details)")
    for real, shown in (replace or {}).items():
        text = text.replace(repr(real), repr(shown)).replace(real, shown)
    return text


class Worker:
    """Runs analyses and renders one at a time in a background thread, in the order asked.

    Args:
        store: The jobs.
    """

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._queue: deque[tuple[str, str | None]] = deque()
        self._busy: tuple[str, str | None] | None = None
        self._wake = threading.Condition()
        self._analyses: OrderedDict[str, fancam.Analysis] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="fancam-ui-worker", daemon=True)

    def start(self) -> None:
        """Start the thread, re-queueing what a previous server left waiting or running."""
        for job in sorted(self.store.all(), key=lambda j: j.created):
            if job.state in (QUEUED, ANALYZING):
                self.store.update(job.id, requeue)
                self.submit(job.id)
            for render in job.renders:
                if render.state in (QUEUED, RENDERING):
                    self.store.update(job.id, lambda j, rid=render.id: _requeue_render(j.render(rid)))
                    self.submit(job.id, render.id)
        self._thread.start()

    def submit(self, job_id: str, render_id: str | None = None) -> None:
        """Queue the job's analysis (``render_id`` None) or one of its renders.

        Renders go before waiting analyses of other jobs (never before their own job's tasks):
        someone is watching the page for a render, which takes seconds, while an analysis takes
        about as long as the video.
        """
        with self._wake:
            at = len(self._queue)
            if render_id is not None:
                own = [i for i, t in enumerate(self._queue) if t[0] == job_id]
                start = own[-1] + 1 if own else 0
                at = next((i for i in range(start, len(self._queue)) if self._queue[i][1] is None), at)
            self._queue.insert(at, (job_id, render_id))
            self._wake.notify()

    def waiting_before(self, job_id: str, render_id: str | None = None) -> int:
        """How many tasks run before this one (0 when it is running or next)."""
        with self._wake:
            tasks = ([self._busy] if self._busy else []) + list(self._queue)
            keys = [t for t in tasks if t is not None]
            return keys.index((job_id, render_id)) if (job_id, render_id) in keys else 0

    def is_busy_with(self, job_id: str) -> bool:
        """Whether the job has work running or waiting."""
        with self._wake:
            return any(t[0] == job_id for t in ([self._busy] if self._busy else []) + list(self._queue))

    def forget(self, job_id: str) -> None:
        """Drop the job's waiting tasks and its loaded analysis (before deleting it)."""
        with self._wake:
            self._queue = deque(t for t in self._queue if t[0] != job_id)
        with self._locks_lock:
            self._analyses.pop(job_id, None)

    def _lock(self, job_id: str) -> threading.Lock:
        """The lock that serialises loading or computing one job's analysis."""
        with self._locks_lock:
            return self._locks.setdefault(job_id, threading.Lock())

    def analysis(self, job_id: str) -> fancam.Analysis:
        """The job's analysis (loaded from its folder the first time: the cache makes it quick)."""
        with self._lock(job_id):
            with self._locks_lock:
                if job_id in self._analyses:
                    self._analyses.move_to_end(job_id)
                    return self._analyses[job_id]
            job = self.store.get(job_id)
            if job is None:
                raise KeyError(job_id)
            folder = self.store.folder(job_id)
            analysis = fancam.analyze(
                video_path(job, folder), out=folder / "analysis",
                gallery=folder / "gallery" if job.gallery else None, settings=settings_of(job), progress=False,
            )
            self._keep(job_id, analysis)
            return analysis

    def _keep(self, job_id: str, analysis: fancam.Analysis) -> None:
        with self._locks_lock:
            self._analyses[job_id] = analysis
            self._analyses.move_to_end(job_id)
            while len(self._analyses) > ANALYSES_IN_MEMORY:
                self._analyses.popitem(last=False)

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._queue:
                    self._wake.wait()
                task = self._busy = self._queue.popleft()
            try:
                if self.store.get(task[0]) is not None:
                    if task[1] is None:
                        self._analyze(task[0])
                    else:
                        self._render(task[0], task[1])
            except Exception:  # never let one job stop the worker; the job says what happened
                log.exception("fancam ui: task %s failed", task)
            finally:
                with self._wake:
                    self._busy = None

    def _analyze(self, job_id: str) -> None:
        store, folder = self.store, self.store.folder(job_id)
        job = store.update(job_id, lambda j: _set_state(j, ANALYZING))
        shown = shown_paths(job, folder)
        try:
            video = video_path(job, folder)
            with self._lock(job_id), pipeline_warnings(shown) as warned:
                analysis = fancam.analyze(
                    video, out=folder / "analysis", gallery=folder / "gallery" if job.gallery else None,
                    settings=settings_of(job), progress=self._reporter(job_id, None),
                )
                self._keep(job_id, analysis)
            people = describe_people(analysis)
            (folder / "people").mkdir(exist_ok=True)
            for person in analysis.cast.people:
                (folder / "people" / f"{person.id}.jpg").write_bytes(person_thumbnail(analysis, person))
            fancam.write_sheet(analysis, folder / "sheet.jpg", force=True)
        except BaseException as e:  # noqa: BLE001 - every failure becomes the page's message
            message = user_message(e, shown)
            store.update(job_id, lambda j: _fail(j, message))
            if not isinstance(e, Exception):
                raise
            if not isinstance(e, fancam.FancamError):
                log.exception("analysis of job %s failed", job_id)
            return

        def ready(j: Job) -> None:
            _finish_stages(j.stages)
            j.state, j.people, j.warnings = READY, people, warned
            j.duration_s = float(analysis.timeline.t[-1]) + 1.0 / max(analysis.info.fps, 1.0)
            j.size = (analysis.info.width, analysis.info.height)

        store.update(job_id, ready)

    def _reporter(self, job_id: str, render_id: str | None) -> fancam.Progress:
        """Progress callback recording events in the job (its analysis, or one render)."""

        def record(job: Job, event: fancam.ProgressEvent) -> None:
            if render_id is None:
                _progress(job.stages, event)
            else:
                _render_progress(job, render_id, event)

        def report(event: fancam.ProgressEvent) -> None:
            self.store.update(job_id, lambda job: record(job, event), save=False)

        return report

    def _render(self, job_id: str, render_id: str) -> None:
        store, folder = self.store, self.store.folder(job_id)
        job = store.update(job_id, lambda j: _set_render(j, render_id, state=RENDERING))
        render = job.render(render_id)
        if render is None:
            return
        out = folder / "renders" / render_id
        shutil.rmtree(out, ignore_errors=True)  # what a stopped server left half-written
        out.mkdir(parents=True)
        try:
            analysis = self.analysis(job_id)
            selection = fancam.Selection(all=True) if render.all else fancam.Selection(person=render.person)
            options = fancam.RenderOptions(
                framing=render.framing, aspect=render.aspect, height=render.height, start_s=render.start_s,
                end_s=render.end_s, output=out if render.all else out / "fancam.mp4", force=True,
            )
            with pipeline_warnings(shown_paths(job, folder)) as warned:
                results = fancam.make_fancams(
                    analysis, selection, options,
                    progress=self._reporter(job_id, render_id),
                )
            outputs = [_output(analysis, render, result) for result in results]
        except BaseException as e:  # noqa: BLE001 - every failure becomes the page's message
            message = user_message(e, shown_paths(job, folder))
            store.update(job_id, lambda j: _set_render(j, render_id, state=FAILED, message=message))
            if not isinstance(e, Exception):
                raise
            if not isinstance(e, fancam.FancamError):
                log.exception("render %s of job %s failed", render_id, job_id)
            return
        store.update(job_id, lambda j: _set_render(j, render_id, state=DONE, outputs=outputs, warnings=warned))


class _Warnings(logging.Handler):
    """Warnings fancam logs from one thread (the worker's), kept for the page."""

    def __init__(self, replace: dict[str, str]) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.replace = replace
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the message (server paths replaced), once."""
        if record.thread != self.thread:
            return
        text = record.getMessage()
        for real, shown in self.replace.items():
            text = text.replace(repr(real), repr(shown)).replace(real, shown)
        if text not in self.messages:
            self.messages.append(text)


@contextlib.contextmanager
def pipeline_warnings(replace: dict[str, str]) -> Iterator[list[str]]:
    """Collect what the pipeline warns about in this thread (what the CLI would print)."""
    handler = _Warnings(replace)
    logger = logging.getLogger("fancam")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def settings_of(job: Job) -> fancam.AnalysisSettings:
    """The analysis settings of a job."""
    return fancam.AnalysisSettings(quality=job.quality)


def video_path(job: Job, folder: Path) -> Path:
    """The job's video file (downloading a URL first, as the CLI does)."""
    from fancam.io.remote import fetch_video, is_url

    if is_url(job.video):
        return fetch_video(job.video)
    path = Path(job.video)
    return path if path.is_absolute() else folder / path


def shown_paths(job: Job, folder: Path) -> dict[str, str]:
    """Server paths in messages and what the page shows instead."""
    shown = {}
    if not Path(job.video).is_absolute():
        shown[str(folder / job.video)] = job.name
    shown[str(folder / "gallery")] = "the gallery"
    shown[str(folder)] = "the job folder"
    return shown


def _output(analysis: fancam.Analysis, render: Render, result: fancam.RenderResult) -> Output:
    if render.person is not None:
        person_id, label = render.person, analysis.cast.by_id(render.person).label
    else:
        person_id, label = _person_of_file(analysis, result.output.name)
    csv_name = result.crop_csv.name if result.crop_csv else ""
    lost = lost_stretches(result.crop_csv) if result.crop_csv else []
    return Output(person=person_id, label=label, video=result.output.name, crop_csv=csv_name,
                  duration_s=result.duration_s, frames=result.frames, lost=lost)


def _person_of_file(analysis: fancam.Analysis, name: str) -> tuple[int, str]:
    """Which performer an ``--all`` output file is.

    The file is ``STEM.<label>.mp4`` (``unknown-N`` for unknowns), the label with characters other
    than letters, digits, ``-`` and ``_`` replaced by ``_``. Returns 0 and the file's label part
    when no performer matches (the page then shows that part).
    """
    part = name.removesuffix(".mp4").rsplit(".", 1)[-1]
    for person in analysis.cast.people:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in person.label)
        if part in (safe, f"unknown-{person.id}"):
            return person.id, person.label
    return 0, part


def requeue(job: Job) -> None:
    """Put a job back in the queue (its progress starts again)."""
    job.state, job.stages = QUEUED, []


def _requeue_render(render: Render | None) -> None:
    if render is None:
        return
    render.state, render.stage, render.outputs, render.warnings = QUEUED, None, [], []
    render.version += 1


def _set_state(job: Job, state: str) -> None:
    job.state, job.message = state, ""
    if state == ANALYZING:
        job.stages, job.warnings = [], []


def _fail(job: Job, message: str) -> None:
    job.state, job.message = FAILED, message


def _progress(stages: list[Stage], event: fancam.ProgressEvent) -> None:
    """Record an event: the stage it names is updated; a new stage ends the ones before it."""
    current = stages[-1] if stages and stages[-1].name == event.stage and not stages[-1].finished else None
    if current is None:
        _finish_stages(stages)
        current = Stage(event.stage)
        stages.append(current)
    current.fraction, current.elapsed_s, current.finished = event.fraction, event.elapsed_s, event.finished
    current.eta_s = _eta(event)


ETA_AFTER_S = 2.0
"""Time left is shown once a stage has run this long (its first frames include loading the models)."""


def _eta(event: fancam.ProgressEvent) -> float | None:
    return event.eta_s if event.elapsed_s >= ETA_AFTER_S or event.finished else None


def _finish_stages(stages: list[Stage]) -> None:
    for stage in stages:
        if not stage.finished:
            stage.finished, stage.eta_s = True, 0.0
            stage.fraction = 1.0 if stage.fraction is not None else None


def _set_render(job: Job, render_id: str, **values: Any) -> None:
    render = job.render(render_id)
    if render is not None:
        for name, value in values.items():
            setattr(render, name, value)
        if values.get("state") in (DONE, FAILED):
            render.stage = None
        render.version += 1


def _render_progress(job: Job, render_id: str, event: fancam.ProgressEvent) -> None:
    render = job.render(render_id)
    if render is not None:
        render.stage = Stage(event.stage, event.fraction, _eta(event), event.elapsed_s, event.finished)
        render.version += 1
