"""Routes of the web app.

Every ``{job_id}``/``{render_id}`` is checked against the id pattern, and files are found from the
job's state, never from a path in the URL.

====================================  =========================================================
``GET /``                             upload page and the list of jobs
``POST /api/jobs``                    new job (optionally a video path or URL on this machine)
``PUT /api/jobs/{job}/video``         the video's bytes (name in ``X-File-Name``, display only)
``PUT /api/jobs/{job}/gallery``       a gallery zip
``PUT /api/jobs/{job}/photos``        one photo of ``?member=NAME``
``POST /api/jobs/{job}/start``        check the inputs, queue the analysis
``GET /jobs/{job}``                   the job's page (reattaches to running work)
``GET /jobs/{job}/events``            server-sent events: progress, render items, state
``GET /jobs/{job}/frame?t=S``         a frame with clickable performers (fragment)
``GET /jobs/{job}/choose?chosen=N``   the render form for a performer (fragment)
``POST /jobs/{job}/renders``          queue a render (its item arrives by the event stream)
``GET /jobs/{job}/renders/{render}/{n}.mp4|.crop.csv``   outputs (``?download=1`` to save)
``POST /jobs/{job}/delete|retry``     forget a job / analyse a failed one again
====================================  =========================================================
"""

from __future__ import annotations

import asyncio
import json
import math
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse

import fancam
from fancam.io.remote import is_url
from fancam.ui import jobs as J
from fancam.ui import summary
from fancam.ui.app import ASPECTS, HEIGHTS, UI, NotFound, default_form, framings, plain, ui_of
from fancam.ui.uploads import (
    MB,
    TooLarge,
    add_photo,
    check_gallery,
    display_name,
    extract_gallery_zip,
    save_stream,
    video_file_name,
)

router = APIRouter()
UIDep = Annotated[UI, Depends(ui_of)]

FRAME_MAX_SIDE = 960
"""Frames shown for clicking are scaled to fit this many pixels (the boxes scale with them)."""
EVENT_POLL_S = 0.3
"""How often an event stream looks for changes (progress events come at most 4 times a second)."""
HEARTBEAT_S = 15.0
MIN_SIDE = 64
"""Smallest video side in pixels (fancam.analyze refuses smaller; checked before queueing)."""

JOB_FILES = {
    "sheet.jpg": ("sheet.jpg", "image/jpeg"),
    "timeline.png": ("analysis/identity_timeline.png", "image/png"),
    "people.json": ("analysis/people.json", "application/json"),
    "tracks.csv": ("analysis/tracks.csv", "text/csv"),
}
"""Files of a job the page links to: URL name -> (path in the job folder, media type)."""

FORM_KEYS = ("person", "framing", "aspect", "height", "start", "end")


def error(message: str, status: int = 400) -> JSONResponse:
    """The JSON answer of a refused upload or start (the page shows ``error``)."""
    return JSONResponse({"error": message}, status_code=status)


# ----------------------------------------------------------------------------------------- upload


@router.get("/", response_class=HTMLResponse)
def home(ui: UIDep) -> HTMLResponse:
    """Upload form and the jobs so far."""
    return ui.page("home.html", jobs=ui.store.all(), limits=ui.settings.limits)


@router.post("/api/jobs")
async def new_job(request: Request, ui: UIDep) -> JSONResponse:
    """A new job; ``source`` names a video on this machine (path or URL), else ``name`` an upload."""
    form = await request.form(max_files=0, max_fields=4)
    source = str(form.get("source") or "").strip()
    if not source:
        return JSONResponse({"id": ui.store.create(display_name(str(form.get("name") or "")), "").id})
    if not is_url(source):
        if not ui.settings.local_paths:
            return error("this server does not read files by path (other computers can reach it); "
                         "upload the video instead")
        path = Path(source).expanduser()
        if not path.is_absolute():
            return error(f"give the full path of the video on this computer, not {source!r}")
        source = str(path)
    return JSONResponse({"id": ui.store.create(display_name(source), source).id})


def _new(ui: UI, job_id: str) -> J.Job:
    job = ui.job(job_id)
    if job.state != J.NEW:
        raise NotFound("this job has started; its files can no longer change")
    return job


@router.put("/api/jobs/{job_id}/video")
async def upload_video(job_id: str, request: Request, ui: UIDep) -> JSONResponse:
    """The video's bytes, stored as ``input/video.<ext>``."""
    job = _new(ui, job_id)
    name = display_name(urllib.parse.unquote(request.headers.get("x-file-name", "")))
    folder = ui.store.folder(job.id)
    stored = folder / "input" / video_file_name(name)
    stored.parent.mkdir(exist_ok=True)
    limit = ui.settings.limits.video_bytes
    try:
        _check_length(request, limit, "video")
        await save_stream(request.stream(), stored, limit, "video")
    except fancam.FancamError as e:
        return error(str(e), 413 if isinstance(e, TooLarge) else 400)
    relative = str(stored.relative_to(folder))

    def record(j: J.Job) -> None:
        j.name, j.video = name, relative

    ui.store.update(job.id, record)
    return JSONResponse({"ok": True})


@router.put("/api/jobs/{job_id}/gallery")
async def upload_gallery(job_id: str, request: Request, ui: UIDep) -> JSONResponse:
    """A gallery zip, unpacked into ``gallery/<group>/<member>/``."""
    job = _new(ui, job_id)
    folder = ui.store.folder(job.id)
    archive, limits = folder / "gallery.zip", ui.settings.limits
    try:
        _check_length(request, limits.zip_bytes, "gallery zip")
        await save_stream(request.stream(), archive, limits.zip_bytes, "gallery zip")
        count = await asyncio.to_thread(extract_gallery_zip, archive, folder / "gallery", limits)
    except fancam.FancamError as e:
        return error(str(e), 413 if isinstance(e, TooLarge) else 400)
    finally:
        archive.unlink(missing_ok=True)
    ui.store.update(job.id, lambda j: setattr(j, "gallery", True))
    return JSONResponse({"photos": count})


@router.put("/api/jobs/{job_id}/photos")
async def upload_photo(job_id: str, request: Request, ui: UIDep, member: str = "") -> JSONResponse:
    """One photo of ``member``."""
    job = _new(ui, job_id)
    name = display_name(urllib.parse.unquote(request.headers.get("x-file-name", "")), "photo")
    limits = ui.settings.limits
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limits.photo_bytes:
            return error(f"{name!r} is larger than the limit of {limits.photo_bytes // MB} MB per photo", 413)
    try:
        await asyncio.to_thread(add_photo, ui.store.folder(job.id) / "gallery", member, bytes(data), name, limits)
    except fancam.FancamError as e:
        return error(str(e))
    ui.store.update(job.id, lambda j: setattr(j, "gallery", True))
    return JSONResponse({"ok": True})


@router.post("/api/jobs/{job_id}/start")
async def start(job_id: str, ui: UIDep) -> JSONResponse:
    """Check the video (and gallery) now, with the CLI's messages; queue the analysis."""
    job = _new(ui, job_id)
    folder = ui.store.folder(job.id)
    try:
        if not job.video:
            raise fancam.InputError("no video: drop a video file or give its path")
        if not is_url(job.video):
            info = await asyncio.to_thread(fancam.probe, J.video_path(job, folder))
            if min(info.width, info.height) < MIN_SIDE:
                raise fancam.VideoError(f"{job.name!r} is {info.width}x{info.height} pixels, too small to "
                                        f"find people in (fancam needs at least {MIN_SIDE} pixels on each side)")

            def record(j: J.Job) -> None:
                j.duration_s, j.size = info.duration_s, (info.width, info.height)

            ui.store.update(job.id, record)
        if job.gallery:
            check_gallery(folder / "gallery")
    except fancam.FancamError as e:
        message = J.user_message(e, J.shown_paths(job, folder))
        ui.store.delete(job.id)
        return error(message)
    ui.store.update(job.id, J.requeue)
    ui.worker.submit(job.id)
    return JSONResponse({"url": f"/jobs/{job.id}"})


def _check_length(request: Request, limit: int, what: str) -> None:
    """Refuse an upload whose announced size is over the limit before reading it."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise TooLarge(f"the {what} is larger than the limit of {limit // MB} MB")


# -------------------------------------------------------------------------------------------- job


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(job_id: str, ui: UIDep) -> HTMLResponse:
    """The job's page, as it is now (the event stream keeps it current)."""
    return ui.page("job.html", **ui.job_context(ui.job(job_id)))


@router.post("/jobs/{job_id}/delete")
def delete(job_id: str, ui: UIDep) -> Response:
    """Forget a job and its files (not while it works)."""
    job = ui.job(job_id)
    if job.state == J.ANALYZING or any(r.state == J.RENDERING for r in job.renders):
        return plain("this video is being worked on; delete it when that has finished", 409)
    ui.worker.forget(job.id)
    ui.store.delete(job.id)
    return RedirectResponse("/", status_code=303)


@router.post("/jobs/{job_id}/retry")
def retry(job_id: str, ui: UIDep) -> Response:
    """Analyse a failed job again."""
    job = ui.job(job_id)
    if job.state == J.FAILED:
        ui.store.update(job.id, J.requeue)
        ui.worker.submit(job.id)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@router.get("/jobs/{job_id}/events")
async def events(job_id: str, request: Request, ui: UIDep) -> StreamingResponse:
    """Server-sent events: ``status`` (HTML), ``render`` (JSON id + HTML), ``state`` (a word)."""
    ui.job(job_id)
    return StreamingResponse(_event_stream(ui, job_id, request), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _event_stream(ui: UI, job_id: str, request: Request) -> AsyncIterator[str]:
    """What changed in the job, every :data:`EVENT_POLL_S`, until the page goes away."""
    sent_status: str | None = None
    sent_state: str | None = None
    sent_renders: dict[str, tuple[int, int]] = {}
    quiet = 0.0
    while not ui.stopping.is_set() and not await request.is_disconnected():
        job = ui.store.get(job_id)
        if job is None:
            yield _sse("state", "deleted")
            return
        out = []
        status = ui.fragment("_status.html", **ui.job_context(job))
        if status != sent_status:
            out.append(_sse("status", status))
            sent_status = status
        for render in job.renders:
            key = (render.version, ui.worker.waiting_before(job.id, render.id))
            if sent_renders.get(render.id) != key:
                html = ui.fragment("_render.html", **ui.job_context(job), render=render)
                out.append(_sse("render", json.dumps({"id": render.id, "html": html})))
                sent_renders[render.id] = key
        if job.state != sent_state:
            out.append(_sse("state", job.state))
            sent_state = job.state
        quiet = 0.0 if out else quiet + EVENT_POLL_S
        if quiet >= HEARTBEAT_S:
            out.append(": keep-alive\n\n")
            quiet = 0.0
        for text in out:
            yield text
        await asyncio.sleep(EVENT_POLL_S)


def _sse(event: str, data: str) -> str:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


@router.get("/jobs/{job_id}/frame", response_class=HTMLResponse)
def frame(job_id: str, ui: UIDep, t: float = 0.0) -> HTMLResponse:
    """The frame at ``t`` seconds with a button on every performer."""
    job = ui.ready_job(job_id)
    shot = fancam.snapshot(ui.worker.analysis(job.id), t if math.isfinite(t) else 0.0)
    ui.remember_frame(job.id, shot.frame, summary.jpeg(shot.image, max_side=FRAME_MAX_SIDE))
    h, w = shot.image.shape[:2]
    boxes = [{"person": p, "left": 100 * b[0] / w, "top": 100 * b[1] / h,
              "width": 100 * (b[2] - b[0]) / w, "height": 100 * (b[3] - b[1]) / h} for p, b in shot.people]
    return HTMLResponse(ui.fragment("_frame.html", job=job, shot=shot, boxes=boxes))


@router.get("/jobs/{job_id}/frames/{number:int}.jpg")
def frame_image(job_id: str, number: int, ui: UIDep) -> Response:
    """A frame's picture (usually the one the fragment just made)."""
    job = ui.ready_job(job_id)
    data = ui.recent_frame(job.id, number)
    if data is None:
        analysis = ui.worker.analysis(job.id)
        if not 0 <= number < analysis.timeline.n_frames:
            raise NotFound("no such frame")
        shot = fancam.snapshot(analysis, float(analysis.timeline.t[number]))
        data = summary.jpeg(shot.image, max_side=FRAME_MAX_SIDE)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/jobs/{job_id}/people/{number:int}.jpg")
def person_image(job_id: str, number: int, ui: UIDep) -> FileResponse:
    """A performer's picture on the contact sheet."""
    job = ui.ready_job(job_id)
    if number not in {p["id"] for p in job.people}:
        raise NotFound("no such performer")
    return FileResponse(ui.store.folder(job.id) / "people" / f"{number}.jpg", media_type="image/jpeg")


@router.get("/jobs/{job_id}/files/{name}")
def job_file(job_id: str, name: str, ui: UIDep, download: bool = False) -> FileResponse:
    """One of :data:`JOB_FILES`."""
    job = ui.ready_job(job_id)
    if name not in JOB_FILES:
        raise NotFound("no such file")
    relative, media = JOB_FILES[name]
    path = ui.store.folder(job.id) / relative
    if not path.is_file():
        raise NotFound("no such file")
    stem = Path(job.name).stem or "video"
    return FileResponse(path, media_type=media, filename=f"{stem}.{name}" if download else None,
                        content_disposition_type="attachment" if download else "inline")


@router.get("/jobs/{job_id}/choose", response_class=HTMLResponse)
def choose(job_id: str, request: Request, ui: UIDep) -> HTMLResponse:
    """The render form following performer ``chosen`` (other fields as the user left them)."""
    job = ui.ready_job(job_id)
    form = {**default_form(job), **{k: v for k, v in request.query_params.items() if k in FORM_KEYS}}
    form["person"] = request.query_params.get("chosen", form["person"])
    return HTMLResponse(ui.fragment("_render_form.html", **ui.job_context(job, form)))


@router.post("/jobs/{job_id}/renders", response_class=HTMLResponse)
async def new_render(job_id: str, request: Request, ui: UIDep) -> HTMLResponse:
    """Queue a render; answers into the message area (empty, or why the form is refused)."""
    job = ui.ready_job(job_id)
    form = await request.form(max_files=0, max_fields=20)
    retarget = {"HX-Retarget": "#render-message", "HX-Reswap": "innerHTML"}
    try:
        render = render_request(job, {k: str(v) for k, v in form.items()})
    except fancam.FancamError as e:
        return HTMLResponse(ui.fragment("_message.html", message=str(e)), headers=retarget)
    ui.store.update(job.id, lambda j: j.renders.append(render))
    ui.worker.submit(job.id, render.id)
    return HTMLResponse("", headers=retarget)  # the item arrives by the event stream, in every tab


@router.get("/jobs/{job_id}/renders/{render_id}/{number:int}.{kind}")
def render_file(job_id: str, render_id: str, number: int, kind: str, ui: UIDep, download: bool = False) -> FileResponse:
    """A fancam (``mp4``) or its camera path (``crop.csv``); ``download`` names it for saving."""
    job = ui.job(job_id)
    render = job.render(render_id) if J.valid_id(render_id) else None
    if render is None or render.state != J.DONE or not 0 <= number < len(render.outputs):
        raise NotFound("no such fancam")
    output = render.outputs[number]
    files = {"mp4": (output.video, "video/mp4"), "crop.csv": (output.crop_csv, "text/csv")}
    if kind not in files or not files[kind][0]:
        raise NotFound("no such file")
    name, media = files[kind]
    stem = Path(job.name).stem or "video"
    label = "".join(c if c.isalnum() or c in "-_" else "_" for c in output.label)
    filename = f"{stem}.{label}.{render.aspect.replace(':', 'x')}.{kind}"
    return FileResponse(ui.store.folder(job.id) / "renders" / render.id / name, media_type=media,
                        filename=filename if download else None,
                        content_disposition_type="attachment" if download else "inline")


def render_request(job: J.Job, form: dict[str, str]) -> J.Render:
    """A render from the page's form (checked here, so a typo is a message, not a queued failure).

    Raises:
        UsageError: no or an unknown performer, an unknown option, a bad time range.
    """
    everyone = form.get("all") == "1"
    person = None
    if not everyone:
        try:
            person = int(form.get("person", ""))
        except ValueError:
            raise fancam.UsageError("choose a performer first: click one on the contact sheet or a frame") from None
        if person not in {p["id"] for p in job.people}:
            raise fancam.UsageError(f"no person {person} in this video")
    framing, aspect = form.get("framing", ""), form.get("aspect", "")
    if framing not in framings() or aspect not in ASPECTS:
        raise fancam.UsageError(f"unknown framing {framing!r} or aspect {aspect!r}")
    height = _number(form.get("height", ""), "height")
    if height is not None and int(height) not in HEIGHTS:
        raise fancam.UsageError(f"the height must be one of {', '.join(map(str, HEIGHTS))} pixels")
    start_s = _number(form.get("start", ""), "the start") or 0.0
    end_s = _number(form.get("end", ""), "the end")
    if start_s < 0:
        raise fancam.UsageError("the start must be 0 s or later")
    if end_s is not None and end_s <= start_s:
        raise fancam.UsageError(f"the end ({end_s:g} s) must be after the start ({start_s:g} s)")
    return J.Render(id=J.new_id(), person=person, all=everyone, framing=framing, aspect=aspect,
                    height=int(height) if height is not None else None, start_s=start_s, end_s=end_s)


def _number(text: str, what: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise fancam.UsageError(f"{what} must be a number of seconds, not {text!r}")
    return value
