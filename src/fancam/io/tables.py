"""The three CSV tables of DESIGN.md — ground truth, ``tracks.csv`` and crop files — their one owner.

``GT.csv`` holds hand-labelled keyframes, ``tracks.csv`` an analysis and ``OUT.crop.csv`` a rendered
camera path. This module defines their columns and reserved values, writes the two that fancam produces
(atomically) and loads all three: each loader returns a frozen table of numpy columns and raises
:class:`~fancam.errors.InputError` naming the file and line of the first problem. The scores computed
from these tables live in :mod:`fancam.eval.metrics`.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fancam.errors import InputError
from fancam.io.cache import atomic_path

logger = logging.getLogger(__name__)

UNKNOWN = "unknown"
"""The ``person`` value of a box the analysis could not identify."""
CROP_MODES = ("follow", "search", "wide")
"""Crop modes: on the target / target lost (bridging or easing) / widest crop (DESIGN.md)."""

GT_COLUMNS = ("frame", "t", "person", "x1", "y1", "x2", "y2", "occluded", "manual", "uncertain")
TRACKS_COLUMNS = ("frame", "t", "tracklet", "person", "x1", "y1", "x2", "y2", "score")
CROP_COLUMNS = ("frame", "t", "x1", "y1", "x2", "y2", "mode")


# ----------------------------------------------------------------------------------------- tables
@dataclass(frozen=True)
class GroundTruth:
    """Hand-labelled keyframes (one row per visible performer per keyframe).

    Attributes:
        source: File the rows came from (for messages).
        frame: (N,) int64 decode indices.
        t: (N,) float64 seconds from the first frame.
        person: (N,) str performer names.
        xyxy: (N, 4) float64 boxes in displayed-frame pixels.
        occluded: (N,) bool, more than half of the performer hidden.
        manual: (N,) bool, box drawn by hand rather than corrected from a detector.
        uncertain: (N,) bool, row left out of every score.
    """

    source: str
    frame: NDArray[np.int64]
    t: NDArray[np.float64]
    person: NDArray[np.str_]
    xyxy: NDArray[np.float64]
    occluded: NDArray[np.bool_]
    manual: NDArray[np.bool_]
    uncertain: NDArray[np.bool_]

    @property
    def keyframes(self) -> NDArray[np.int64]:
        """Sorted labelled frames."""
        return np.unique(self.frame)

    def names(self) -> list[str]:
        """Sorted performer names of the rows that are scored (not uncertain)."""
        return sorted(set(self.person[~self.uncertain].tolist()))


@dataclass(frozen=True)
class PredictedTracks:
    """Rows of a ``tracks.csv`` (one per tracked person per frame).

    Attributes:
        source: File the rows came from (for messages).
        frame: (M,) int64 decode indices.
        t: (M,) float64 seconds.
        tracklet: (M,) int64 tracklet ids.
        person: (M,) str final identities (member name, ``person-N`` or ``unknown``).
        xyxy: (M, 4) float64 boxes in pixels.
        score: (M,) float64 detector confidences.
    """

    source: str
    frame: NDArray[np.int64]
    t: NDArray[np.float64]
    tracklet: NDArray[np.int64]
    person: NDArray[np.str_]
    xyxy: NDArray[np.float64]
    score: NDArray[np.float64]


@dataclass(frozen=True)
class CropTable:
    """Rows of an ``OUT.crop.csv``: the crop rectangle of every output frame.

    The file as read back for scoring; :class:`fancam.camera.plan.CropPath` is the planner's in-memory path.

    Attributes:
        source: File the rows came from (for messages).
        frame: (K,) int64 source decode indices, strictly increasing.
        t: (K,) float64 seconds.
        xyxy: (K, 4) float64 crop rectangles in source pixels.
        mode: (K,) str, one of :data:`CROP_MODES`.
    """

    source: str
    frame: NDArray[np.int64]
    t: NDArray[np.float64]
    xyxy: NDArray[np.float64]
    mode: NDArray[np.str_]


# ----------------------------------------------------------------------------------------- loading
def _read_columns(path: Path, columns: Sequence[str], what: str) -> tuple[dict[str, list[str]], list[int]]:
    """Read a CSV with a header into raw string columns; also return each row's line number."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read {what} {path}: {exc}") from exc
    lines = [i + 1 for i, r in enumerate(rows) if len(r) > 1 or (r and r[0].strip())]
    if not lines:
        raise InputError(f"{what} {path} is empty; expected the header {','.join(columns)}")
    header = [c.strip() for c in rows[lines[0] - 1]]
    missing = [c for c in columns if c not in header]
    if missing:
        raise InputError(
            f"{what} {path} lacks column(s) {', '.join(missing)}; header is {','.join(header)!r}, "
            f"expected {','.join(columns)}"
        )
    lines = lines[1:]
    body = [rows[i - 1] for i in lines]
    for line, row in zip(lines, body, strict=True):
        if len(row) != len(header):
            raise InputError(f"{path}:{line}: {len(row)} fields, the header has {len(header)}")
    cells = list(zip(*body, strict=True)) if body else [()] * len(header)
    out = {c: [v.strip() for v in cells[header.index(c)]] for c in columns}
    return out, lines


def _first_bad(values: list[str], ok: NDArray[np.bool_], lines: list[int]) -> tuple[int, str]:
    i = int(np.flatnonzero(~ok)[0])
    return lines[i], values[i]


def _floats(values: list[str], lines: list[int], column: str, path: Path) -> NDArray[np.float64]:
    """Parse a column of finite numbers."""
    ok = np.ones(len(values), bool)
    try:
        out = np.array(values, dtype=np.float64)
    except ValueError:
        out = np.full(len(values), np.nan)
        for i, v in enumerate(values):
            try:
                out[i] = float(v)
            except ValueError:
                ok[i] = False
    ok &= np.isfinite(out)
    if not ok.all():
        line, value = _first_bad(values, ok, lines)
        raise InputError(f"{path}:{line}: column {column!r}: {value!r} is not a finite number")
    return out


def _ints(values: list[str], lines: list[int], column: str, path: Path) -> NDArray[np.int64]:
    """Parse a column of non-negative integers (``15`` or ``15.0``)."""
    numbers = _floats(values, lines, column, path)
    ok = (numbers >= 0) & (numbers == np.round(numbers))
    if not ok.all():
        line, value = _first_bad(values, ok, lines)
        raise InputError(f"{path}:{line}: column {column!r}: {value!r} is not a non-negative integer")
    return numbers.astype(np.int64)


def _flags(values: list[str], lines: list[int], column: str, path: Path) -> NDArray[np.bool_]:
    """Parse a column of 0/1 flags."""
    ok = np.isin(values, ["0", "1"]) if values else np.ones(0, bool)
    if not ok.all():
        line, value = _first_bad(values, ok, lines)
        raise InputError(f"{path}:{line}: column {column!r}: {value!r} must be 0 or 1")
    return np.array([v == "1" for v in values], dtype=bool)


def _names(values: list[str], lines: list[int], column: str, path: Path) -> NDArray[np.str_]:
    """Parse a column of non-empty names."""
    ok = np.array([bool(v) for v in values], dtype=bool)
    if not ok.all():
        line, _ = _first_bad(values, ok, lines)
        raise InputError(f"{path}:{line}: column {column!r} is empty")
    return np.array(values, dtype=str) if values else np.zeros(0, dtype="<U1")


def _boxes(raw: dict[str, list[str]], lines: list[int], path: Path) -> NDArray[np.float64]:
    """Parse x1,y1,x2,y2 into (N, 4) and check ``x2 > x1`` and ``y2 > y1``."""
    xyxy = np.stack([_floats(raw[c], lines, c, path) for c in ("x1", "y1", "x2", "y2")], axis=1)
    xyxy = xyxy.reshape(-1, 4)
    ok = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        box = ",".join(f"{v:g}" for v in xyxy[i])
        raise InputError(f"{path}:{lines[i]}: box {box} needs x2 > x1 and y2 > y1 (x1,y1,x2,y2 in pixels)")
    return xyxy


def _check_unique(keys: list[tuple], lines: list[int], path: Path, what: str) -> None:
    """Raise on the first repeated key (e.g. (frame, person))."""
    seen: dict[tuple, int] = {}
    for key, line in zip(keys, lines, strict=True):
        if key in seen:
            raise InputError(f"{path}:{line}: {what} {key} repeats line {seen[key]}")
        seen[key] = line


def _check_time_per_frame(frame: NDArray, t: NDArray, lines: list[int], path: Path) -> None:
    """Raise when one frame is given two different times."""
    first: dict[int, float] = {}
    for f, ti, line in zip(frame.tolist(), t.tolist(), lines, strict=True):
        if abs(first.setdefault(f, ti) - ti) > 1e-3:
            raise InputError(f"{path}:{line}: frame {f} has t={ti:g} but t={first[f]:g} on an earlier row")


def load_gt(path: Path | str, n_frames: int | None = None) -> GroundTruth:
    """Load and validate a ``GT.csv`` (see DESIGN.md, "Ground truth format").

    Args:
        path: The ground-truth file.
        n_frames: Exact number of decoded frames of the video (e.g. ``video.count_frames``); when given,
            a GT frame at or beyond it is an error (the GT belongs to another video or cut).

    Returns:
        The validated rows.

    Raises:
        InputError: Unreadable or empty file, missing column, bad number or flag, ``x2 <= x1``,
            a repeated (frame, person), the reserved name ``unknown``, or a frame beyond the video.
    """
    path = Path(path)
    raw, lines = _read_columns(path, GT_COLUMNS, "ground truth")
    if not lines:
        raise InputError(f"ground truth {path} has a header but no labelled rows")
    frame = _ints(raw["frame"], lines, "frame", path)
    t = _floats(raw["t"], lines, "t", path)
    person = _names(raw["person"], lines, "person", path)
    if UNKNOWN in person:
        line = lines[int(np.flatnonzero(person == UNKNOWN)[0])]
        raise InputError(f"{path}:{line}: person {UNKNOWN!r} is reserved for unidentified people")
    gt = GroundTruth(
        str(path), frame, t, person, _boxes(raw, lines, path),
        *(_flags(raw[c], lines, c, path) for c in ("occluded", "manual", "uncertain")),
    )
    _check_unique(list(zip(frame.tolist(), person.tolist(), strict=True)), lines, path, "(frame, person)")
    _check_time_per_frame(frame, t, lines, path)
    if n_frames is not None and frame.max() >= n_frames:
        line = lines[int(np.argmax(frame))]
        raise InputError(
            f"{path}:{line}: frame {frame.max()} is beyond the video's {n_frames} frames "
            "(frames are 0-based decode indices); is this the ground truth of another video?"
        )
    if gt.uncertain.all():
        raise InputError(f"ground truth {path}: every row is uncertain=1, nothing can be scored")
    return gt


def load_tracks(path: Path | str) -> PredictedTracks:
    """Load and validate a ``tracks.csv`` (see DESIGN.md, "Files the program writes").

    Raises:
        InputError: Unreadable or empty file, missing column, bad number, ``x2 <= x1`` or a repeated
            (frame, tracklet).
    """
    path = Path(path)
    raw, lines = _read_columns(path, TRACKS_COLUMNS, "tracks file")
    if not lines:
        logger.warning("tracks file %s has no rows: nobody was tracked", path)
    frame = _ints(raw["frame"], lines, "frame", path)
    tracklet = _ints(raw["tracklet"], lines, "tracklet", path)
    tracks = PredictedTracks(
        str(path), frame, _floats(raw["t"], lines, "t", path), tracklet,
        _names(raw["person"], lines, "person", path), _boxes(raw, lines, path),
        _floats(raw["score"], lines, "score", path),
    )
    _check_unique(list(zip(frame.tolist(), tracklet.tolist(), strict=True)), lines, path, "(frame, tracklet)")
    return tracks


def load_crop(path: Path | str) -> CropTable:
    """Load and validate an ``OUT.crop.csv`` (one row per output frame).

    Raises:
        InputError: Unreadable or empty file, missing column, bad number, ``x2 <= x1``, an unknown
            mode or a repeated frame.
    """
    path = Path(path)
    raw, lines = _read_columns(path, CROP_COLUMNS, "crop file")
    if not lines:
        raise InputError(f"crop file {path} has a header but no rows")
    frame = _ints(raw["frame"], lines, "frame", path)
    mode = _names(raw["mode"], lines, "mode", path)
    bad = ~np.isin(mode, CROP_MODES)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{path}:{lines[i]}: mode {mode[i]!r} is not one of {', '.join(CROP_MODES)}")
    _check_unique([(f,) for f in frame.tolist()], lines, path, "frame")
    order = np.argsort(frame, kind="stable")
    xyxy = _boxes(raw, lines, path)
    t = _floats(raw["t"], lines, "t", path)
    return CropTable(str(path), frame[order], t[order], xyxy[order], mode[order])


# ----------------------------------------------------------------------------------------- writing
def write_tracks_csv(path: Path, rows: PredictedTracks) -> Path:
    """Write ``tracks.csv`` atomically, rows in the order given (DESIGN.md columns).

    Returns:
        ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(TRACKS_COLUMNS)
        for i in range(len(rows.frame)):
            x1, y1, x2, y2 = rows.xyxy[i]
            out.writerow([
                int(rows.frame[i]), f"{rows.t[i]:.4f}", int(rows.tracklet[i]), rows.person[i],
                f"{x1:.1f}", f"{y1:.1f}", f"{x2:.1f}", f"{y2:.1f}", f"{rows.score[i]:.3f}",
            ])
    return path


def write_crop(path: Path, rows: CropTable) -> Path:
    """Write an ``OUT.crop.csv`` atomically (temp file + rename), one row per output frame.

    Returns:
        ``path``.
    """
    path = Path(path)
    bad = ~np.isin(rows.mode, CROP_MODES)
    if bad.any():
        raise ValueError(f"crop mode {rows.mode[int(np.flatnonzero(bad)[0])]!r} is not one of {CROP_MODES}")
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(CROP_COLUMNS)
        for i in range(len(rows.frame)):
            x1, y1, x2, y2 = (f"{v:.2f}" for v in rows.xyxy[i].tolist())
            out.writerow([int(rows.frame[i]), f"{rows.t[i]:.6f}", x1, y1, x2, y2, rows.mode[i]])
    return path
