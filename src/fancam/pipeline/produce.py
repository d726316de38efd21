"""Pass B of the pipeline: pick the performers, plan their camera paths, render them in one pass."""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fancam.camera.plan import (
    AUTO,
    CameraConfig,
    CropPath,
    FramingChoice,
    SceneBoxes,
    check_framing,
    choose_framing,
    framing_preset,
    parse_aspect,
    plan_camera,
    uncertain_spans,
)
from fancam.camera.render import (
    DebugJob,
    OverlayBoxes,
    RenderJob,
    RenderResult,
    native_height,
    output_size,
    render,
)
from fancam.errors import InputError, UsageError
from fancam.identity.people import UNCERTAIN_BELOW, UNKNOWN, Person
from fancam.io.cache import check_output_folder, ensure_writable_dir
from fancam.io.progress import Progress
from fancam.pipeline.analyze import Analysis

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """Which performers to render: exactly one of the fields is set.

    Attributes:
        person: ``--person N`` (the numbers of ``fancam people``).
        member: ``--member NAME`` (gallery name, or ``group/member``).
        all: ``--all`` (every named member with a gallery, every performer without).
        people: Several performers rendered in one decode pass: person numbers (int) and/or member
            names (str), in any mix (``fancam batch``). As with ``all``, one not on screen in the time
            range is skipped with a warning; an unknown number or name is an error.
    """

    person: int | None = None
    member: str | None = None
    all: bool = False
    people: tuple[int | str, ...] = ()


@dataclass(frozen=True)
class RenderOptions:
    """How to render.

    Attributes:
        framing: ``auto`` (full body where that crop is clearly narrower than the group on screen,
            otherwise upper body; chosen per performer), ``full``, ``upper`` or ``face``.
        aspect: ``W:H`` such as ``9:16``.
        height: Output height in pixels (None: the crop's native size, within sensible bounds).
        start_s: Start time in seconds.
        end_s: End time in seconds (None: the end).
        output: Output file (one performer; ``.mp4`` or ``.mov``) or folder (created if missing);
            None: the current folder.
        debug: Also write a debug overlay video.
        force: Overwrite existing outputs.
    """

    framing: str = AUTO
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
    if selection.people:
        one = [Selection(member=w) if isinstance(w, str) else Selection(person=w) for w in selection.people]
        chosen = [select_people(analysis, s)[0] for s in one]
        return list({p.id: p for p in chosen}.values())  # each performer once, in the order asked
    if selection.member is not None:
        return [_member(analysis, selection.member)]
    if selection.person is not None:
        for person in people:
            if person.id == selection.person:
                return [person]
        valid = ", ".join(str(p.id) for p in people)
        raise UsageError(f"no person {selection.person}; this video has --person {valid} "
                         "(see `fancam people VIDEO`)")
    chosen = [p for p in people if p.member] or [p for p in people if p.label != UNKNOWN]
    return chosen or list(people)


def unrecognised_members(analysis: Analysis) -> str | None:
    """What ``--all`` leaves out of a gallery's members: the line that says so, or None.

    The members of the performing group (the groups of the members named in the video) that no
    performer was named after get no fancam; when nobody is named, every performer gets one (under
    their number).
    """
    members = analysis.gallery_members
    if not members:
        return None
    named = {p.member for p in analysis.cast.people if p.member and p.label != UNKNOWN}
    if not named:
        return ("no gallery member was recognised in this video; every performer gets a fancam under their "
                "number (see `fancam people VIDEO --gallery DIR`)")
    groups = {m.split("/", 1)[0] for m in named}
    missing = [m for m in members if m.split("/", 1)[0] in groups and m not in named]
    if not missing:
        return None
    return (f"no fancam for gallery member(s) not recognised in this video: {', '.join(missing)} (see "
            "`fancam people VIDEO --gallery DIR`; render them with --person N)")


def _member(analysis: Analysis, name: str) -> Person:
    """The performer named ``name`` (``member`` or ``group/member``, any case).

    An unknown name is a UsageError listing the valid names and suggesting the closest one.
    """
    named = [p for p in analysis.cast.people if p.member and p.label != UNKNOWN]
    key = name.strip().casefold()
    hits = [p for p in named if key in (p.label.casefold(), (p.member or "").casefold())]
    hits = hits or [p for p in named if (p.member or "").split("/", 1)[-1].casefold() == key]
    if len({p.member for p in hits}) > 1:
        raise UsageError(f"member name {name!r} is ambiguous; use one of: "
                         + ", ".join(sorted({str(p.member) for p in hits})))
    if hits:
        return hits[0]
    members = analysis.gallery_members
    if not members:
        raise UsageError("--member needs --gallery (reference photos naming the performers)")
    recognised = ", ".join(sorted({p.label for p in named})) or "nobody"
    if any(key in (m.casefold(), m.split("/", 1)[-1].casefold()) for m in members):
        raise UsageError(f"member {name!r} is in the gallery but was not recognised in this video "
                         f"(recognised: {recognised}); see `fancam people VIDEO --gallery DIR` and use "
                         "--person N")
    raise UsageError(f"no member {name!r} in the gallery{_suggestion(key, members)}; its members are: "
                     f"{', '.join(members)} (recognised in this video: {recognised})")


def _suggestion(key: str, members: tuple[str, ...]) -> str:
    """`` (did you mean 'X'?)`` for the gallery name closest to ``key`` (difflib), or nothing."""
    spelled: dict[str, str] = {}
    for member in members:
        for form in (member, member.split("/", 1)[-1]):
            spelled.setdefault(form.casefold(), form)
    close = difflib.get_close_matches(key, list(spelled), n=1, cutoff=0.6)
    return f" (did you mean {spelled[close[0]]!r}?)" if close else ""


def target_boxes(analysis: Analysis, person: Person) -> NDArray[np.float64]:
    """(F, 4) box of ``person`` in every frame, NaN where they are not seen."""
    boxes = np.full((analysis.timeline.n_frames, 4), np.nan)
    rows = np.flatnonzero(analysis.cast.person == person.id)
    frames = analysis.tracks.frame[rows]
    # Identity never puts one performer twice in a frame; keep the first row if it ever happened.
    _, first = np.unique(frames, return_index=True)
    boxes[frames[first]] = analysis.tracks.xyxy[rows[first]]
    return boxes


VIDEO_SUFFIXES = (".mp4", ".mov")
"""Output file types: H.264 + AAC in an MP4 or QuickTime container (chosen by the suffix)."""


def names_folder(output: Path) -> bool:
    """Whether ``-o`` names a folder: an existing folder, or a name without a file extension."""
    return Path(output).is_dir() or not Path(output).suffix


def output_paths(analysis: Analysis, people: list[Person], options: RenderOptions) -> list[Path]:
    """Where each performer's fancam goes (checked; missing folders are created).

    One performer with ``-o FILE.mp4``: that file; otherwise ``STEM.<name>.mp4`` in the ``-o`` folder, or
    in the current folder without ``-o``.
    """
    video = analysis.info.path
    out = options.output
    if out is not None and len(people) == 1 and not names_folder(out):
        paths = [Path(out)]
    else:
        if out is not None and not names_folder(out):
            raise UsageError("with several performers, -o must be a folder (no file extension)")
        folder = Path(out) if out is not None else Path.cwd()
        paths = [folder / f"{video.stem}.{_file_label(p)}.mp4" for p in people]
    for path in paths:
        _check_output(path, video, options.force, debug=options.debug)
    for folder in sorted({p.parent for p in paths}):
        ensure_writable_dir(folder, "output folder", "-o")
    return paths


def check_output_location(video: Path, selection: Selection, options: RenderOptions) -> None:
    """Check where the outputs will go before the (long) analysis: fail fast on a bad ``-o``.

    Output rules: an input is never overwritten (not even with ``--force``); an existing output (or
    its ``.crop.csv``/``.debug.mp4``) is replaced only with ``--force``; a file must end in ``.mp4`` or
    ``.mov``; a missing folder (of ``-o FILE.mp4``, or ``-o DIR``) is created when the render starts;
    without ``-o`` the fancams go to the current folder.

    Raises:
        InputError: the output is the input, exists, or its folder cannot be created or written.
        UsageError: a file name given with ``--all``, or a file type other than MP4/MOV.
    """
    video = Path(video)
    out = options.output
    if out is not None and not names_folder(out):
        if selection.all:
            raise UsageError("with --all, -o must be a folder (no file extension)")
        _check_output(out, video, options.force, debug=options.debug)
        return
    if out is not None and _same_file(out, video):
        raise InputError(f"refusing to overwrite the input video {str(video)!r}; choose another -o")
    check_output_folder(Path(out) if out is not None else Path.cwd(), "-o")


def _file_label(person: Person) -> str:
    """File-name part for a performer: their name, or ``unknown-N`` (several may be unknown)."""
    return f"{UNKNOWN}-{person.id}" if person.label == UNKNOWN else _safe(person.label)


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in label)


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (symbolic and hard links included)."""
    try:
        return Path(a).resolve() == Path(b).resolve() or (Path(a).exists() and Path(a).samefile(b))
    except OSError:
        return False


def _check_output(path: Path, video: Path, force: bool, *, debug: bool = False) -> None:
    """Refuse an output that is the input, is not an MP4/MOV, cannot be written, or exists (no --force)."""
    path = Path(path)
    companions = [path, path.with_suffix(".crop.csv")]
    if debug:
        companions.append(path.with_name(path.stem + ".debug.mp4"))
    for file in companions:
        if _same_file(file, video):
            raise InputError(f"refusing to overwrite the input video {str(video)!r}; choose another -o")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise UsageError(f"fancam writes H.264 MP4 video: give -o a name ending in .mp4 (or .mov), or a "
                         f"folder; {str(path)!r} has the extension {path.suffix!r}")
    check_output_folder(path.parent, "-o")
    if path.is_dir():
        raise InputError(f"{str(path)!r} is a folder; give -o a file name ending in .mp4")
    for file in companions:
        if file.exists() and not force:
            raise InputError(f"{str(file)!r} already exists; use --force to overwrite it")


VISIBLE_WARNING = 0.5
"""A warning is logged when the camera is on the performer for less than this share of the render."""


def _on_screen(
    analysis: Analysis, people: list[Person], options: RenderOptions, *, several: bool
) -> list[Person]:
    """The performers seen in the render's time range.

    Raises:
        UsageError: nobody selected is on screen in the range (a single performer, or all of them).
    """
    in_range = _in_range(analysis, options)
    span = _span_text(options.start_s, options.end_s)
    kept = []
    for person in people:
        if not np.isfinite(target_boxes(analysis, person)[in_range, 0]).any():
            where = f"{person.label} (person {person.id}, on screen {_seen_at(person)})"
            if not several:
                raise UsageError(f"{where} is not on screen in {span}; choose another --start/--end")
            log.warning("skipping %s: not on screen in %s", where, span)
            continue
        kept.append(person)
    if not kept:
        raise UsageError(f"nobody selected is on screen in {span}")
    return kept


def followed_confidence(analysis: Analysis, person: Person) -> NDArray[np.float64]:
    """(F,) identity confidence of the box of ``person`` in every frame (its stretch's), NaN where none.

    The box is the one :func:`target_boxes` gives the camera.
    """
    confidence = np.full(analysis.timeline.n_frames, np.nan)
    of_tracklet = {s.tracklet: s.confidence for s in analysis.cast.stretches_of(person.id)}
    rows = np.flatnonzero(analysis.cast.person == person.id)
    frames = analysis.tracks.frame[rows]
    _, first = np.unique(frames, return_index=True)
    tracklets = analysis.tracks.track_id[rows[first]]
    confidence[frames[first]] = [of_tracklet.get(int(k), np.nan) for k in tracklets]
    return confidence


def uncertain_warnings(
    analysis: Analysis, people: list[Person], paths: list[CropPath], options: RenderOptions
) -> list[str]:
    """One line per performer whom the camera follows with low confidence during part of the render.

    Says when (time ranges, and the share of the render): the frames in which the camera is on a box of
    an identity stretch below :data:`~fancam.identity.people.UNCERTAIN_BELOW` (see
    :func:`~fancam.camera.plan.uncertain_spans`).
    """
    in_range = _in_range(analysis, options)
    step = analysis.timeline.step_s
    lines = []
    for person, path in zip(people, paths, strict=True):
        spans = uncertain_spans(path, analysis.timeline, followed_confidence(analysis, person),
                                UNCERTAIN_BELOW, frames=in_range)
        if not spans:
            continue
        total = float(np.ptp(analysis.timeline.t[in_range])) + step
        share = sum(b - a + step for a, b in spans) / total
        where = ", ".join(f"{a:.1f}-{b + step:.1f} s" for a, b in spans)
        lines.append(f"{person.label} (person {person.id}) is uncertain at {where} ({100 * share:.0f}% of the "
                     "render): the camera may follow someone else there (see `fancam people` and the "
                     "identity timeline)")
    return lines


def _in_range(analysis: Analysis, options: RenderOptions) -> NDArray[np.bool_]:
    """(F,) frames inside the render's time range; UsageError when there are none."""
    t = analysis.timeline.t
    end = np.inf if options.end_s is None else options.end_s
    in_range = (t >= options.start_s - 1e-6) & (t < end - 1e-6)
    if not in_range.any():
        length = float(t[-1]) if len(t) else 0.0
        span = _span_text(options.start_s, options.end_s)
        raise UsageError(f"no video frame in {span}: the video is {length:.1f} s long")
    return in_range


def _seen_at(person: Person) -> str:
    return f"{person.first_seen_s:.1f}-{person.last_seen_s:.1f} s"


def _warn_if_rarely_followed(
    analysis: Analysis, person: Person, path: CropPath, options: RenderOptions
) -> None:
    """Warn when the camera is on the performer (mode ``follow``) for less than half of the render."""
    share = float(np.mean(path.mode[_in_range(analysis, options)] == "follow"))
    if share < VISIBLE_WARNING:
        whole = options.start_s <= 0 and options.end_s is None
        log.warning("%s (person %d, on screen %s) can be followed for only %.0f%% of %s; the rest of the "
                    "time the camera holds where they were last seen or shows the people on screen",
                    person.label, person.id, _seen_at(person), 100 * share,
                    "the video" if whole else _span_text(options.start_s, options.end_s))


def scene_boxes(analysis: Analysis, person: Person) -> SceneBoxes:
    """Everybody else's boxes: every identified row (performers and unknowns) not of ``person``."""
    rows = (analysis.cast.person != person.id) & (analysis.cast.person != 0)
    return SceneBoxes(analysis.tracks.frame[rows], analysis.tracks.xyxy[rows])


def framing_for(analysis: Analysis, person: Person, options: RenderOptions) -> FramingChoice | None:
    """The preset ``auto`` picks for ``person`` (None when ``options.framing`` names a preset)."""
    if check_framing(options.framing) != AUTO:
        return None
    size = (analysis.info.width, analysis.info.height)
    return choose_framing(target_boxes(analysis, person), size, parse_aspect(options.aspect),
                          scene_boxes(analysis, person))


def _span_text(start_s: float, end_s: float | None) -> str:
    """``"2 s to the end"``, ``"0-12.5 s"``: the render's time range in words."""
    if end_s is None:
        return f"{start_s:g} s to the end"
    return f"{start_s:g}-{end_s:g} s"


def plan(analysis: Analysis, person: Person, options: RenderOptions) -> CropPath:
    """The camera path following ``person``."""
    choice = framing_for(analysis, person, options)
    framing = choice.framing if choice is not None else framing_preset(options.framing)
    config = CameraConfig(framing=framing, aspect=parse_aspect(options.aspect))
    size = (analysis.info.width, analysis.info.height)
    return plan_camera(target_boxes(analysis, person), size, analysis.timeline, config,
                       scene_boxes(analysis, person))


UPSCALE_NOTICE = 1.25
"""A notice says that the output is soft when it is this many times taller than the crop in the source."""


def _notice_upscaling(jobs: list[tuple[Person, RenderJob]], options: RenderOptions) -> None:
    """Say once (not only with ``-v``) that small crops are scaled up, and what would help."""
    small = []
    for person, job in jobs:
        native = native_height(job.crop_path)
        if job.size[1] > UPSCALE_NOTICE * native:
            small.append((native, person, job))
    if not small:
        return
    native, person, job = min(small, key=lambda item: item[0])
    width = native * job.size[0] / job.size[1]
    who = f"person {person.id}" if len(small) == 1 else f"{len(small)} performers (smallest: person {person.id})"
    helps = ["a sharper, higher-resolution source"]
    if options.framing in ("upper", "face"):
        helps.insert(0, "--framing full (a larger crop)")
    log.warning("the crop of %s is only about %dx%d source pixels; it is scaled up to %dx%d and will look "
                "soft. What would help: %s", who, round(width), round(native), job.size[0], job.size[1],
                " or ".join(helps))


def make_fancams(
    analysis: Analysis, selection: Selection, options: RenderOptions, *, progress: Progress = True
) -> list[RenderResult]:
    """Render the selected performers' fancams (and a debug video) from one decode pass.

    Returns:
        One result per fancam (its ``person`` is the performer's id), then the debug video's, if any.
    """
    if options.end_s is not None and options.end_s <= options.start_s:
        raise UsageError(f"--end ({options.end_s}) must be after --start ({options.start_s})")
    check_framing(options.framing)
    several = selection.all or len(selection.people) > 1
    people = _on_screen(analysis, select_people(analysis, selection), options, several=several)
    if selection.all and (missing := unrecognised_members(analysis)):
        log.warning("%s", missing)
    outputs = output_paths(analysis, people, options)
    choices = [framing_for(analysis, person, options) for person in people]
    paths = [plan(analysis, person, options) for person in people]
    for line in uncertain_warnings(analysis, people, paths, options):
        log.warning("%s", line)
    for person, path in zip(people, paths, strict=True):
        _warn_if_rarely_followed(analysis, person, path, options)
    crops = [
        RenderJob(out, path, output_size(path, options.height), options.start_s, options.end_s)
        for out, path in zip(outputs, paths, strict=True)
    ]
    if options.height is None:
        _notice_upscaling(list(zip(people, crops, strict=True)), options)
    jobs: list[RenderJob | DebugJob] = list(crops)
    if options.debug:
        debug_out = outputs[0].with_name(outputs[0].stem + ".debug.mp4")
        overlay = OverlayBoxes(
            analysis.tracks.frame, analysis.tracks.xyxy.astype(np.float64),
            np.array([f"{lab} #{t}" for lab, t in zip(
                analysis.cast.label_of_rows(), analysis.tracks.track_id, strict=True)]),
        )
        named = tuple((p.label, path) for p, path in zip(people, paths, strict=True))
        jobs.append(DebugJob(debug_out, overlay, named, options.start_s, options.end_s))
    results = render(analysis.info.path, jobs, progress=progress)
    for k, choice in enumerate(choices):  # the fancams come first, in the order of ``people``
        if choice is not None:
            results[k] = replace(results[k], note=f"framing: {choice.reason}")
    fancams = [replace(r, person=p.id) for r, p in zip(results, people, strict=False)]
    return fancams + results[len(people):]
