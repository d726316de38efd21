"""Pass B of the pipeline: pick the performers, plan their camera paths, render them in one pass."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fancam.analysis import Analysis
from fancam.cache import ensure_writable_dir
from fancam.camera import CameraConfig, CropPath, framing_preset, parse_aspect, plan_camera
from fancam.errors import InputError, UsageError
from fancam.people import UNKNOWN, Person
from fancam.render import DebugJob, OverlayBoxes, RenderJob, RenderResult, output_size, render

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """Which performers to render: exactly one of the fields is set.

    Attributes:
        person: ``--person N`` (the numbers of ``fancam people``).
        member: ``--member NAME`` (gallery name, or ``group/member``).
        all: ``--all`` (every named member with a gallery, every performer without).
    """

    person: int | None = None
    member: str | None = None
    all: bool = False


@dataclass(frozen=True)
class RenderOptions:
    """How to render.

    Attributes:
        framing: ``full``, ``upper`` or ``face``.
        aspect: ``W:H`` such as ``9:16``.
        height: Output height in pixels (None: the crop's native size, within sensible bounds).
        start_s: Start time in seconds.
        end_s: End time in seconds (None: the end).
        output: Output file (one performer) or folder (``--all``); None: beside the video.
        debug: Also write a debug overlay video.
        force: Overwrite existing outputs.
    """

    framing: str = "full"
    aspect: str = "9:16"
    height: int | None = None
    start_s: float = 0.0
    end_s: float | None = None
    output: Path | None = None
    debug: bool = False
    force: bool = False


def select_people(analysis: Analysis, selection: Selection) -> list[Person]:
    """The performers a selection refers to.

    Raises:
        UsageError: an unknown ``--person`` number or ``--member`` name (the message lists valid ones).
    """
    people = analysis.cast.people
    if selection.person is not None:
        for person in people:
            if person.id == selection.person:
                return [person]
        valid = ", ".join(str(p.id) for p in people)
        raise UsageError(f"no person {selection.person}; this video has --person {valid} "
                         "(see `fancam people VIDEO`)")
    if selection.member is not None:
        hits = [p for p in people if selection.member in (p.label, p.member) and p.label != UNKNOWN]
        if hits:
            return hits[:1]
        named = sorted({p.label for p in people if p.member})
        if not named:
            raise UsageError("--member needs --gallery (reference photos naming the performers)")
        raise UsageError(f"member {selection.member!r} was not recognised in this video; "
                         f"recognised: {', '.join(named)}")
    chosen = [p for p in people if p.member] or [p for p in people if p.label != UNKNOWN]
    return chosen or list(people)


def target_boxes(analysis: Analysis, person: Person) -> NDArray[np.float64]:
    """(F, 4) box of ``person`` in every frame, NaN where they are not seen."""
    boxes = np.full((analysis.timeline.n_frames, 4), np.nan)
    rows = np.flatnonzero(analysis.cast.person == person.id)
    frames = analysis.tracks.frame[rows]
    # Identity never puts one performer twice in a frame; keep the first row if it ever happened.
    _, first = np.unique(frames, return_index=True)
    boxes[frames[first]] = analysis.tracks.xyxy[rows[first]]
    return boxes


def output_paths(analysis: Analysis, people: list[Person], options: RenderOptions) -> list[Path]:
    """Where each performer's fancam goes (checked: writable, not the input, not existing)."""
    video = analysis.info.path
    stem = video.stem
    if options.output is not None and len(people) == 1 and options.output.suffix:
        paths = [options.output]
    else:
        folder = options.output if options.output is not None else video.parent
        if options.output is not None and options.output.suffix:
            raise UsageError("with several performers, -o must be a folder (no file extension)")
        ensure_writable_dir(folder, "output folder")
        paths = [folder / f"{stem}.{_safe(p.label)}.mp4" for p in people]
    for path in paths:
        _check_output(path, video, options.force)
    return paths


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in label)


def _check_output(path: Path, video: Path, force: bool) -> None:
    if path.resolve() == video.resolve():
        raise InputError(f"refusing to overwrite the input video {str(video)!r}; choose another -o")
    if not path.parent.is_dir():
        raise InputError(f"output folder does not exist: {str(path.parent)!r}")
    ensure_writable_dir(path.parent, "output folder")
    if path.exists() and not force:
        raise InputError(f"{str(path)!r} already exists; use --force to overwrite it")


def plan(analysis: Analysis, person: Person, options: RenderOptions) -> CropPath:
    """The camera path following ``person``."""
    config = CameraConfig(framing=framing_preset(options.framing), aspect=parse_aspect(options.aspect))
    size = (analysis.info.width, analysis.info.height)
    return plan_camera(target_boxes(analysis, person), size, analysis.timeline, config)


def make_fancams(
    analysis: Analysis, selection: Selection, options: RenderOptions, *, progress: bool = True
) -> list[RenderResult]:
    """Render the selected performers' fancams (and a debug video) from one decode pass."""
    if options.end_s is not None and options.end_s <= options.start_s:
        raise UsageError(f"--end ({options.end_s}) must be after --start ({options.start_s})")
    people = select_people(analysis, selection)
    outputs = output_paths(analysis, people, options)
    paths = [plan(analysis, person, options) for person in people]
    jobs: list[RenderJob | DebugJob] = [
        RenderJob(out, path, output_size(path, options.height), options.start_s, options.end_s)
        for out, path in zip(outputs, paths, strict=True)
    ]
    if options.debug:
        debug_out = outputs[0].with_name(outputs[0].stem + ".debug.mp4")
        _check_output(debug_out, analysis.info.path, options.force)
        overlay = OverlayBoxes(
            analysis.tracks.frame, analysis.tracks.xyxy,
            np.array([f"{lab} #{t}" for lab, t in zip(
                analysis.cast.label_of_rows(), analysis.tracks.track_id, strict=True)]),
        )
        named = tuple((p.label, path) for p, path in zip(people, paths, strict=True))
        jobs.append(DebugJob(debug_out, overlay, named, options.start_s, options.end_s))
    return render(analysis.info.path, jobs, progress=progress)
