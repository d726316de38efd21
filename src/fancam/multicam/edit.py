"""Make one fancam from several angles: align, analyse, choose, render; write the EDL and a timeline.

The output's clock is the clock of the video whose sound is used (``audio``: chosen, or the
cleanest of the longest), so that sound plays untouched and every picture is placed against it:
output frame ``k`` is that video's frame ``k`` in the time range, showing the chosen angle's frame
nearest to the same instant (through the angle's offset and clock drift), cropped by that angle's own
camera path (:func:`fancam.pipeline.produce.plan`) and scaled to the output size.

Files written (``OUT`` = the output's name without ``.mp4``):

- ``OUT.mp4``: the fancam, H.264 + the chosen video's sound (AAC), sample-aligned;
- ``OUT.edl.csv``: the edit decision list, one row per shot (:data:`EDL_COLUMNS`);
- ``OUT.crop.csv``: the crop of every output frame in its source's pixels (DESIGN.md's columns
  plus ``source``; ``frame`` and ``t`` are that source's decode index and time);
- ``OUT.timeline.png``: which angle was used when, over how well each angle showed the performer.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

from fancam.camera.plan import CameraConfig, CropPath, framing_preset, parse_aspect
from fancam.camera.render import colour_tags, crop_aspect, crop_yuv420, output_size, pixel_rect
from fancam.errors import InputError, ProcessingError, UsageError
from fancam.identity.people import UNKNOWN
from fancam.io.cache import atomic_path, dir_is_writable
from fancam.io.encode import AudioSource, EncodeConfig, VideoWriter
from fancam.io.progress import Progress, progress_bar
from fancam.io.video import DecodedFrame, check_readable_file, iter_frames
from fancam.multicam.align import AlignConfig, Alignment, AudioTrack, align_videos, audio_clarity, load_audio
from fancam.multicam.angles import Angle, analyse, find_performer
from fancam.multicam.beats import Beats, beats_of
from fancam.multicam.choose import AngleView, ChooseConfig, Scores, Shot, bridge_gaps, choose_shots, score_angles
from fancam.multicam.quality import QualityConfig, measure_angle
from fancam.pipeline.analyze import Analysis, AnalysisSettings, make_face_analyzer
from fancam.pipeline.produce import RenderOptions, Selection, framing_for, plan, target_boxes

log = logging.getLogger(__name__)

EDL_COLUMNS = ("start", "end", "source", "source_start", "source_end", "x1", "y1", "x2", "y2")
"""``OUT.edl.csv``: one row per shot. ``start``/``end``: seconds in the output file; ``source``: the
video; ``source_start``/``source_end``: seconds in that video (from its first frame); ``x1..y2``: the
crop at the shot's first frame, in the source's pixels (the per-frame crops are in ``OUT.crop.csv``)."""
CROP_COLUMNS = ("frame", "t", "x1", "y1", "x2", "y2", "mode", "source")
"""``OUT.crop.csv`` of a multi-angle render: DESIGN.md's crop columns plus the source video."""
COMPANIONS = (".edl.csv", ".crop.csv", ".timeline.png")
"""Files written beside ``OUT.mp4``."""
BRIDGE_GAP_S = CameraConfig().bridge_gap_s
"""Gaps in the performer's track up to this long count as seen (the camera bridges them too)."""
DURATION_SHARE = 0.9
"""The default sound is the cleanest among the videos at least this share as long as the longest."""


@dataclass(frozen=True)
class MulticamResult:
    """What a multi-angle render did.

    Attributes:
        output: The fancam.
        edl: The edit decision list.
        crop_csv: Per-frame crops.
        timeline_png: The timeline picture.
        angles: Every angle (alignment on the output clock, performer found).
        audio: Index of the video whose sound is used.
        shots: The edit.
        beats: Beats of the sound (on the output clock).
        frames: Frames written.
        duration_s: Output duration.
    """

    output: Path
    edl: Path
    crop_csv: Path
    timeline_png: Path
    angles: tuple[Angle, ...]
    audio: int
    shots: tuple[Shot, ...]
    beats: Beats
    frames: int
    duration_s: float


def expand_videos(inputs: Sequence[Path | str]) -> list[Path]:
    """The videos to use: files as given, and a folder's video files (sorted by name).

    Raises:
        InputError: a folder without videos, or the same file twice.
    """
    videos: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                           and not p.name.startswith("."))
            if not found:
                raise InputError(f"folder {str(item)!r} holds no video ({', '.join(VIDEO_SUFFIXES)})")
            videos.extend(found)
        else:
            videos.append(check_readable_file(item))
    resolved = [v.resolve() for v in videos]
    for i, v in enumerate(resolved):
        if v in resolved[:i]:
            raise InputError(f"{str(videos[i])!r} is given twice; each angle once")
    return videos


VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".m4v", ".avi", ".ts")
"""File endings taken from a folder of angles."""


def is_angle_folder(path: Path | str) -> bool:
    """Whether ``path`` is a folder holding video files (by their endings) to use as angles."""
    path = Path(path)
    try:
        return path.is_dir() and any(p.suffix.lower() in VIDEO_SUFFIXES and p.is_file() for p in path.iterdir())
    except OSError:
        return False


def default_output(videos: Sequence[Path], label: str) -> Path:
    """``FIRST_STEM.LABEL.multicam.mp4`` beside the first video."""
    first = Path(videos[0])
    return first.with_name(f"{first.stem}.{label}.multicam.mp4")


def check_output(output: Path, videos: Sequence[Path], force: bool) -> None:
    """Refuse an output (or a companion file) that is an input, exists without ``force``, or has no folder.

    Raises:
        InputError: with what to do.
    """
    output = Path(output)
    files = [output] + [output.with_name(output.stem + suffix) for suffix in COMPANIONS]
    inputs = {Path(v).resolve() for v in videos}
    for file in files:
        if file.resolve() in inputs:
            raise InputError(f"refusing to overwrite the input video {str(file)!r}; choose another -o")
    if output.is_dir():
        raise InputError(f"{str(output)!r} is a folder; give -o a file name ending in .mp4")
    if not output.parent.is_dir():
        raise InputError(f"output folder does not exist: {str(output.parent)!r}; create it or choose another -o")
    if not dir_is_writable(output.parent):
        raise InputError(f"output folder {str(output.parent)!r} is not writable; choose another -o")
    for file in files:
        if file.exists() and not force:
            raise InputError(f"{str(file)!r} already exists; use --force to overwrite it")


def choose_audio(tracks: Sequence[AudioTrack], alignments: Sequence[Alignment], chosen: int | None) -> int:
    """Index of the video whose sound the fancam uses: ``chosen``, or the cleanest long one."""
    if chosen is not None:
        if not 0 <= chosen < len(tracks):
            raise UsageError(f"--audio must be between 1 and {len(tracks)} (the position of a VIDEO)")
        return chosen
    lengths = np.array([t.duration_s for t in tracks])
    clarity = audio_clarity(tracks, alignments)
    long_enough = lengths >= DURATION_SHARE * lengths.max()
    return int(np.argmax(np.where(long_enough, clarity, -1.0)))


# ----------------------------------------------------------------------------------------- main
def make_multicam(  # noqa: PLR0913 - the render's independent inputs
    videos: Sequence[Path | str],
    selection: Selection,
    options: RenderOptions,
    *,
    gallery: Path | None = None,
    settings: AnalysisSettings | None = None,
    analysis_out: Path | None = None,
    audio: int | None = None,
    align: AlignConfig | None = None,
    choose: ChooseConfig | None = None,
    progress: Progress = True,
) -> MulticamResult:
    """Render one fancam of the selected performer from several angles of one performance.

    Args:
        videos: The angles (files or folders of files), at least two.
        selection: ``member`` or ``person`` (the number in the first video).
        options: Framing, aspect, height, time range (seconds of the sound's video), output, force.
        gallery: Reference photos (needed for ``member``).
        settings: Analysis settings (the same for every angle).
        analysis_out: Folder for the analyses (one subfolder per video); None = each video's default.
        audio: 0-based index of the video whose sound to use; None = choose.
        align: Alignment parameters.
        choose: Angle scoring and cutting parameters.
        progress: Progress bars.

    Raises:
        UsageError: fewer than two videos, ``--all``, a bad performer or time range.
        InputError: an unreadable video, one without sound or with another sound (named), a bad output.
    """
    paths = expand_videos(videos)
    if len(paths) < 2:
        raise UsageError("a multi-angle render needs at least two videos (or a folder holding them)")
    if selection.all:
        raise UsageError("with several videos, choose one performer (--member NAME or --person N); "
                         "render --all on each video alone")
    if options.output is not None:
        check_output(options.output, paths, options.force)
    tracks = [load_audio(p) for p in paths]
    alignments = align_videos(paths, align, tracks=tracks)
    audio_index = choose_audio(tracks, alignments, audio)
    on_output = [a.rebase(alignments[audio_index]) for a in alignments]
    for a in on_output:
        log.info("angle %s", a.describe())
    analyses = analyse(paths, out=analysis_out, gallery=gallery, settings=settings, progress=progress)
    found = find_performer(analyses, selection, on_output)
    angles = tuple(Angle(i, p, an, al, person, match) for i, (p, an, al, (person, match)) in
                   enumerate(zip(paths, analyses, on_output, found, strict=True)))
    label = _label(angles, selection)
    output = Path(options.output) if options.output is not None else default_output(paths, label)
    check_output(output, paths, options.force)
    reference = angles[audio_index]
    t_out = _output_times(reference.analysis, options)
    options = _resolve_framing(angles, audio_index, options)
    views, crop_paths = _views(angles, options, settings or AnalysisSettings(), progress)
    config = choose or ChooseConfig(aspect=parse_aspect(options.aspect))
    scores = score_angles(t_out, views, framing_preset(options.framing), config)
    sound = tracks[audio_index]
    beats = beats_of(sound)
    cut_on = beats.t if beats.clear() else None
    if cut_on is None:
        log.info("the sound has no clear beat (strength %.2f); cuts on a %.1f s grid", beats.strength,
                 config.grid_s)
    shots = choose_shots(scores, cut_on, config)
    if len(shots) == 1:
        log.info("one angle is best throughout: %s", angles[shots[0].angle].name)
    result = render_edit(output, angles, crop_paths, scores, shots, sound, options.height, progress=progress)
    frames, duration = result
    edl = write_edl(output.with_name(output.stem + ".edl.csv"), angles, crop_paths, scores, shots)
    crop_csv = write_crop_csv(output.with_name(output.stem + ".crop.csv"), angles, crop_paths, scores, shots)
    png = output.with_name(output.stem + ".timeline.png")
    plot_edit_timeline(png, angles, scores, shots, beats, audio_index)
    return MulticamResult(output, edl, crop_csv, png, angles, audio_index, tuple(shots), beats, frames, duration)


def _label(angles: Sequence[Angle], selection: Selection) -> str:
    person = next(a.person for a in angles if a.person is not None)
    if selection.member is not None or person.label != UNKNOWN:
        text = person.label
    else:
        text = f"{UNKNOWN}-{person.id}"
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def _output_times(analysis: Analysis, options: RenderOptions) -> NDArray[np.float64]:
    t = analysis.timeline.t
    end = np.inf if options.end_s is None else options.end_s
    if options.end_s is not None and options.end_s <= options.start_s:
        raise UsageError(f"--end ({options.end_s}) must be after --start ({options.start_s})")
    keep = (t >= options.start_s - 1e-6) & (t < end - 1e-6)
    if not keep.any():
        raise UsageError(f"no frame of {analysis.info.path.name} between {options.start_s:g} s and "
                         f"{'the end' if options.end_s is None else f'{end:g} s'}: the sound's video is "
                         f"{float(t[-1]) if len(t) else 0:.1f} s long")
    return np.asarray(t[keep], np.float64)


def _resolve_framing(angles: Sequence[Angle], reference: int, options: RenderOptions) -> RenderOptions:
    """One framing preset for the whole edit, so that every shot is framed alike.

    ``auto`` is decided on the reference angle (the one whose sound plays), or else on the first angle
    where the performer was found.
    """
    order = [angles[reference], *(a for a in angles if a.index != reference)]
    angle = next((a for a in order if a.person is not None), None)
    if angle is None or angle.person is None:
        return options
    choice = framing_for(angle.analysis, angle.person, options)
    if choice is None:
        return options
    log.info("framing: %s", choice.reason)
    return replace(options, framing=choice.framing.name)


def _views(
    angles: Sequence[Angle], options: RenderOptions, settings: AnalysisSettings, progress: Progress
) -> tuple[list[AngleView], list[CropPath | None]]:
    """Per angle: what scoring needs (measuring its pixels), and its camera path (None: not used)."""
    analyzer = make_face_analyzer(settings.model_names())
    views: list[AngleView] = []
    paths: list[CropPath | None] = []
    for angle in angles:
        analysis = angle.analysis
        n = analysis.timeline.n_frames
        if angle.person is None:
            boxes = np.full((n, 4), np.nan)
            others = analysis.tracks
            quality = None
            paths.append(None)
        else:
            boxes = bridge_gaps(target_boxes(analysis, angle.person), analysis.timeline.t, BRIDGE_GAP_S)
            others = analysis.tracks[analysis.cast.person != angle.person.id]
            quality = measure_angle(angle.video, analysis.timeline, boxes, analysis.tracks, analyzer,
                                    QualityConfig(), progress=progress)
            paths.append(plan(analysis, angle.person, options))
        size = (analysis.info.width, analysis.info.height)
        views.append(AngleView(analysis.timeline, size, boxes, others, quality, angle.alignment.offset_s,
                               1.0 + angle.alignment.drift))
    return views, paths


# ----------------------------------------------------------------------------------------- render
class _Reader:
    """Frames of one source by increasing index (decoded once, in order)."""

    def __init__(self, video: Path) -> None:
        self._frames: Iterator[DecodedFrame] = iter_frames(video)
        self._current: DecodedFrame | None = None
        self.video = video

    def get(self, index: int) -> DecodedFrame:
        while self._current is None or self._current.index < index:
            nxt = next(self._frames, None)
            if nxt is None:
                if self._current is None:
                    raise ProcessingError(f"{str(self.video)!r} has no decodable frame")
                return self._current  # the file ends early: hold the last frame
            self._current = nxt
        return self._current

    def close(self) -> None:
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()


def shot_of_frames(shots: Sequence[Shot], n: int) -> NDArray[np.int64]:
    """(n,) angle of every output frame."""
    angle = np.full(n, -1, np.int64)
    for shot in shots:
        angle[shot.start: shot.end] = shot.angle
    return angle


def _edit_path(crop_paths: Sequence[CropPath | None], scores: Scores, shots: Sequence[Shot]) -> CropPath:
    """The crops of the output frames (for the output size)."""
    n = len(scores.t)
    chosen = shot_of_frames(shots, n)
    xyxy = np.zeros((n, 4), np.float32)
    mode = np.full(n, "wide", "<U6")
    for k in range(n):
        path = crop_paths[chosen[k]]
        f = scores.frame[chosen[k], k]
        if path is not None and f >= 0:
            row = min(int(f), len(path) - 1)
            xyxy[k], mode[k] = path.xyxy[row], path.mode[row]
    return CropPath(xyxy, mode)


def render_edit(  # noqa: PLR0913 - the edit's parts
    output: Path,
    angles: Sequence[Angle],
    crop_paths: Sequence[CropPath | None],
    scores: Scores,
    shots: Sequence[Shot],
    sound: AudioTrack,
    height: int | None,
    *,
    encode: EncodeConfig | None = None,
    progress: Progress = True,
) -> tuple[int, float]:
    """Write the edited fancam (frames from the chosen angles, the sound of ``sound``'s video).

    Returns:
        (frames written, duration in seconds).
    """
    n = len(scores.t)
    chosen = shot_of_frames(shots, n)
    size = output_size(_edit_path(crop_paths, scores, shots), height)
    aspects = [crop_aspect(p) if p is not None else None for p in crop_paths]
    readers: dict[int, _Reader] = {}
    scaler = av.video.reformatter.VideoReformatter()
    t0 = float(scores.t[0])
    writer: VideoWriter | None = None
    fps = 1.0 / float(np.median(np.diff(scores.t))) if n > 1 else 30.0
    try:
        with progress_bar(n, "render angles", enabled=progress) as bar:
            for k in range(n):
                a = int(chosen[k])
                path = crop_paths[a]
                f = int(scores.frame[a, k])
                if path is None or f < 0:
                    raise ProcessingError(f"the edit uses {angles[a].name} where it has no frame (a bug)")
                reader = readers.get(a) or readers.setdefault(a, _Reader(angles[a].video))
                frame = reader.get(f)
                rect = pixel_rect(path.xyxy[min(frame.index, len(path) - 1)], frame.size, aspects[a])
                picture = crop_yuv420(frame, rect)
                if (picture.width, picture.height) != size:
                    mode = "AREA" if picture.height > size[1] else "BICUBIC"
                    picture = scaler.reformat(picture, width=size[0], height=size[1], interpolation=mode)
                if writer is None:
                    audio = AudioSource(sound.path, sound.clock_s + t0)
                    writer = VideoWriter(output, size, rate=fps, audio=audio, config=encode or EncodeConfig(),
                                         colour=colour_tags(frame))
                    writer.__enter__()
                writer.write(picture, float(scores.t[k]) - t0)
                bar.update(1)
    except BaseException as e:
        if writer is not None:
            writer.__exit__(type(e), e, None)
        raise
    finally:
        for reader in readers.values():
            reader.close()
    assert writer is not None
    duration = writer.duration_s
    frames = writer.frames_written
    writer.__exit__(None, None, None)
    return frames, duration


# ----------------------------------------------------------------------------------------- files
def _rows(
    angles: Sequence[Angle], crop_paths: Sequence[CropPath | None], scores: Scores, shots: Sequence[Shot]
) -> Iterator[tuple[Shot, Angle, CropPath, NDArray[np.int64]]]:
    for shot in shots:
        path = crop_paths[shot.angle]
        assert path is not None
        frames = scores.frame[shot.angle, shot.start: shot.end]
        yield shot, angles[shot.angle], path, np.clip(frames, 0, len(path) - 1)


def write_edl(
    path: Path, angles: Sequence[Angle], crop_paths: Sequence[CropPath | None], scores: Scores,
    shots: Sequence[Shot],
) -> Path:
    """Write ``OUT.edl.csv`` (:data:`EDL_COLUMNS`) atomically."""
    t0 = float(scores.t[0])
    step = float(np.median(np.diff(scores.t))) if len(scores.t) > 1 else 1 / 30
    with atomic_path(Path(path)) as tmp, open(tmp, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(EDL_COLUMNS)
        for shot, angle, crop, frames in _rows(angles, crop_paths, scores, shots):
            t = angle.analysis.timeline.t
            end = scores.t[shot.end] if shot.end < len(scores.t) else scores.t[-1] + step
            src_step = float(np.median(np.diff(t))) if len(t) > 1 else step
            out.writerow([f"{scores.t[shot.start] - t0:.3f}", f"{end - t0:.3f}", str(angle.video),
                          f"{t[frames[0]]:.3f}", f"{t[frames[-1]] + src_step:.3f}",
                          *(f"{v:.1f}" for v in crop.xyxy[frames[0]])])
    return Path(path)


def write_crop_csv(
    path: Path, angles: Sequence[Angle], crop_paths: Sequence[CropPath | None], scores: Scores,
    shots: Sequence[Shot],
) -> Path:
    """Write the per-frame crops (:data:`CROP_COLUMNS`) atomically."""
    with atomic_path(Path(path)) as tmp, open(tmp, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(CROP_COLUMNS)
        for _, angle, crop, frames in _rows(angles, crop_paths, scores, shots):
            t = angle.analysis.timeline.t
            for fr in frames:
                out.writerow([int(fr), f"{t[fr]:.4f}", *(f"{v:.1f}" for v in crop.xyxy[fr]), crop.mode[fr],
                              str(angle.video)])
    return Path(path)


def read_edl(path: Path) -> list[dict[str, str]]:
    """The rows of an ``OUT.edl.csv`` (for tests and tools).

    Raises:
        InputError: the file lacks a column of :data:`EDL_COLUMNS`.
    """
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and set(EDL_COLUMNS) - set(rows[0]):
        raise InputError(f"{str(path)!r} is not an edit decision list (columns {', '.join(EDL_COLUMNS)})")
    return rows


def plot_edit_timeline(  # noqa: PLR0913 - one picture of the whole edit
    path: Path, angles: Sequence[Angle], scores: Scores, shots: Sequence[Shot], beats: Beats, audio: int
) -> Path:
    """Which angle was used when (thick bars), over each angle's score (line) and where she is seen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = scores.t - scores.t[0]
    n = len(angles)
    fig, ax = plt.subplots(figsize=(11, 1.0 + 0.8 * n), dpi=100)
    colours = plt.get_cmap("tab10")
    for a in range(n):
        y = n - 1 - a
        covered = scores.frame[a] >= 0
        _bars(ax, t, covered, y, 0.7, "0.92")
        _bars(ax, t, scores.seen[a], y, 0.7, "0.8")
        total = np.clip(np.nan_to_num(scores.total[a], nan=0.0), 0, 1)
        total = np.where(covered, total, np.nan)
        ax.plot(t, y - 0.35 + 0.7 * total, color=colours(a % 10), linewidth=0.8)
    for shot in shots:
        y = n - 1 - shot.angle
        end = t[shot.end - 1] + (t[1] - t[0] if len(t) > 1 else 0.03)
        ax.barh(y, end - t[shot.start], left=t[shot.start], height=0.35, color=colours(shot.angle % 10),
                alpha=0.9, edgecolor="black", linewidth=0.6)
        if shot.start > 0:
            ax.axvline(t[shot.start], color="black", linewidth=0.6, linestyle="--")
    for b in (beats.t if beats.clear() else np.zeros(0)) - scores.t[0]:
        if 0 <= b <= t[-1]:
            ax.plot([b, b], [n - 0.45, n - 0.3], color="0.4", linewidth=0.6)
    labels = []
    for a, angle in enumerate(angles):
        who = f"person {angle.person.id}" if angle.person is not None else "not found"
        sound = " [sound]" if a == audio else ""
        labels.append(f"{angle.name}{sound}\n{angle.alignment.offset_s:+.3f} s, {who}")
    ax.set_yticks(range(n))
    ax.set_yticklabels(labels[::-1], fontsize=7)
    ax.set_ylim(-0.6, n - 0.2)
    ax.set_xlim(0, max(float(t[-1]), 0.1))
    ax.set_xlabel("output time (s); thick bars = angle used, line = score, grey = performer seen, "
                  "ticks = beats, dashed = cuts")
    rhythm = f"cuts on beats, {beats.bpm:.0f} BPM" if beats.clear() else "no clear beat: cuts on a grid"
    ax.set_title(f"multi-angle edit: {len(shots)} shots, {rhythm}", fontsize=9)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def _bars(ax: object, t: NDArray, mask: NDArray, y: float, height: float, colour: str) -> None:
    """Light background bars where ``mask`` holds."""
    if not mask.any():
        return
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    step = t[1] - t[0] if len(t) > 1 else 0.03
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        ax.barh(y, t[end - 1] - t[start] + step, left=t[start], height=height, color=colour)  # type: ignore[attr-defined]


def describe(result: MulticamResult) -> Iterator[str]:
    """Lines for the user: alignment per angle, the edit."""
    for i, angle in enumerate(result.angles):
        who = (f"person {angle.person.id} ({angle.person.label})" if angle.person is not None
               else "performer not found")
        sound = ", sound" if i == result.audio else ""
        yield f"  angle {angle.alignment.describe()}; {who}{sound}"
    used = sorted({s.angle for s in result.shots})
    on = f"on beats ({result.beats.bpm:.0f} BPM)" if result.beats.clear() else "on a grid (no clear beat)"
    yield f"  {len(result.shots)} shots from {len(used)} angle(s), cuts {on}"

