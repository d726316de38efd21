"""The web app object: who may connect (:class:`Guard`), what every route shares (:class:`UI`).

Routes are in :mod:`fancam.ui.routes`; pages and fragments are Jinja2 templates rendered on the
server and swapped in by htmx; the job page follows its job through server-sent events.
"""

from __future__ import annotations

import logging
import math
import threading
import urllib.parse
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import fancam
from fancam.ui import jobs as J
from fancam.ui.uploads import Limits

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
ASPECTS = ("9:16", "4:5", "1:1", "16:9")
FRAMINGS = ("full", "upper", "face")
HEIGHTS = (720, 1080, 1920)
FRAMES_IN_MEMORY = 64
"""Frame JPEGs kept between the fragment that shows a frame and the request for its image."""


@dataclass
class Settings:
    """How the app was started.

    Attributes:
        workdir: The work folder (jobs live in ``workdir/jobs``).
        limits: Upload size limits.
        local_paths: Whether the page may name a video by its path on this machine (only when the
            server is bound to a loopback address: a remote visitor must not read the server's files).
        allowed_hosts: ``Host`` headers accepted (empty: any, with ``--allow-remote``); refusing
            others defeats DNS rebinding.
    """

    workdir: Path
    limits: Limits = field(default_factory=Limits)
    local_paths: bool = True
    allowed_hosts: frozenset[str] = frozenset()


class NotFound(Exception):
    """A job, render or file that does not exist (a 404 with this message)."""


class UI:
    """What every route shares: settings, jobs, worker, templates and recently shown frames."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = J.JobStore(settings.workdir)
        self.worker = J.Worker(self.store)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.filters.update(seconds=seconds, eta=eta, percent=percent)
        self._frames: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._frames_lock = threading.Lock()
        self.stopping = threading.Event()
        """Set when the server stops: event streams end at once."""

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A full page."""
        html = self.templates.get_template(name).render(settings=self.settings, **context)
        return HTMLResponse(html, status_code=status)

    def fragment(self, name: str, **context: Any) -> str:
        """A part of a page (for htmx or the event stream)."""
        return self.templates.get_template(name).render(**context)

    def job(self, job_id: str) -> J.Job:
        """The job (a copy), or :class:`NotFound`."""
        job = self.store.get(job_id) if J.valid_id(job_id) else None
        if job is None:
            raise NotFound("no such job (it may have been deleted)")
        return job

    def ready_job(self, job_id: str) -> J.Job:
        """The job, when its analysis is ready; :class:`NotFound` otherwise."""
        job = self.job(job_id)
        if job.state != J.READY:
            raise NotFound("the analysis of this job is not ready")
        return job

    def job_context(self, job: J.Job, form: dict[str, str] | None = None) -> dict[str, Any]:
        """What the job page and its fragments need."""
        waiting = self.worker.waiting_before(job.id) if job.state == J.QUEUED else 0
        form = form or default_form(job)
        chosen = next((p for p in job.people if str(p["id"]) == form["person"]), None)
        return {"job": job, "waiting": waiting, "worker": self.worker, "framings": framings(),
                "aspects": ASPECTS, "heights": HEIGHTS, "form": form, "chosen": chosen, "labels": labels(job)}

    def remember_frame(self, job_id: str, frame: int, jpeg: bytes) -> None:
        """Keep a frame's JPEG for the image request that follows its fragment."""
        with self._frames_lock:
            self._frames[(job_id, frame)] = jpeg
            while len(self._frames) > FRAMES_IN_MEMORY:
                self._frames.popitem(last=False)

    def recent_frame(self, job_id: str, frame: int) -> bytes | None:
        """A frame's JPEG if it was shown lately."""
        with self._frames_lock:
            return self._frames.get((job_id, frame))


def ui_of(request: Request) -> UI:
    """The :class:`UI` of the app serving ``request`` (a FastAPI dependency)."""
    return request.app.state.ui


class Guard:
    """ASGI middleware: only our own ``Host``, same-origin writes, and safe response headers."""

    HEADERS = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; media-src 'self'; "
                                     b"style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"),
    ]

    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str]) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse foreign hosts and cross-site writes; add the headers to every response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self.problem(scope)
        if problem is not None:
            await plain(problem, 403)(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + self.HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def problem(self, scope: Scope) -> str | None:
        """Why a request is refused, or None."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if self.allowed_hosts and host not in self.allowed_hosts:
            return f"this server answers as {sorted(self.allowed_hosts)[0]}, not {host!r}"
        origin = headers.get("origin")
        if scope["method"] not in ("GET", "HEAD") and origin is not None:
            if urllib.parse.urlsplit(origin).netloc != host:
                return "requests from other web sites are refused"
        return None


def plain(text: str, status: int) -> Response:
    """A plain-text response."""
    return Response(text + "\n", status_code=status, media_type="text/plain; charset=utf-8")


def create_app(settings: Settings, *, start_worker: bool = True) -> FastAPI:
    """The web app over the jobs of ``settings.workdir``.

    Args:
        settings: Work folder, limits and who may connect.
        start_worker: Start the background worker (and re-queue unfinished work).
    """
    from fancam.ui.routes import router

    ui = UI(settings)
    app = FastAPI(title="fancam", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ui = ui
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(router)
    app.add_middleware(Guard, allowed_hosts=settings.allowed_hosts)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, error: NotFound) -> Response:
        return plain(str(error), 404)

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception) -> Response:
        log.exception("fancam ui: %s %s failed", request.method, request.url.path)
        return plain(J.user_message(error, {str(settings.workdir): "the work folder"}), 500)

    if start_worker:
        ui.worker.start()
    return app


def default_form(job: J.Job) -> dict[str, str]:
    """The render form before the user changes it: the first performer, the library's defaults."""
    first = str(job.people[0]["id"]) if job.people else ""
    options = fancam.RenderOptions()
    return {"person": first, "framing": options.framing, "aspect": options.aspect, "height": "", "start": "",
            "end": ""}


def labels(job: J.Job) -> dict[int, str]:
    """Performer number -> name."""
    return {p["id"]: p["label"] for p in job.people}


def framings() -> tuple[str, ...]:
    """Framing presets offered: the library's default first, then the others."""
    default = fancam.RenderOptions().framing
    return (default,) + tuple(f for f in FRAMINGS if f != default)


def seconds(value: float | None) -> str:
    """``12.3 s`` or ``2 min 05 s``."""
    if value is None:
        return "?"
    value = float(value)
    return f"{value:.1f} s" if value < 60 else f"{int(value // 60)} min {int(value % 60):02d} s"


def eta(value: float | None) -> str:
    """Time left, in words."""
    if value is None:
        return "estimating time left"
    if value < 1:
        return "almost done"
    return f"about {seconds(math.ceil(value))} left"


def percent(value: float | None) -> str:
    """``42%`` (empty when unknown)."""
    return "" if value is None else f"{100 * value:.0f}%"
