"""The angles of one performance: align them, analyse each, and find the chosen performer in each.

Each video is analysed on its own (the analysis cache applies per video). The performer is found in
every angle in one of two ways:

- ``--member NAME`` with a gallery: the gallery names the performers of every angle; an angle where
  she is not recognised is not used for her (a warning says so).
- ``--person N``: N is the number in the *first* video (``fancam people FIRST_VIDEO``); the same
  performer is looked up in the other angles by appearance. Every performer of the first video is
  matched one-to-one to a performer of the other angle (Hungarian assignment) on face similarity
  (dlib embeddings, the evidence identity uses within a video) plus body colours (stripes; only
  relative to that pair of videos, as body similarities are not comparable across videos). A match
  is accepted when its evidence is positive; otherwise the angle is not used for that performer.
  Faces carry the match; in identical costumes without visible faces, use a gallery.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from fancam.errors import InputError, UsageError
from fancam.identity.appearance import Appearance
from fancam.identity.body import body_prototype, prototype_similarity
from fancam.identity.faces import SAME_PERSON_SIMILARITY, UNKNOWN_SIMILARITY
from fancam.identity.people import Person
from fancam.io.progress import Progress
from fancam.multicam.align import Alignment
from fancam.pipeline.analyze import Analysis, AnalysisSettings, analyze
from fancam.pipeline.produce import Selection, select_people
from fancam.pipeline.store import APPEARANCE_FILE, load_appearance

log = logging.getLogger(__name__)

FACE_SLOPE = 200.0
"""Log-odds per unit of face similarity around the same/unknown midpoint (the no-calibration default
identity uses within a video, ``identity.linking``)."""
BODY_SLOPE = 10.0
"""Log-odds per unit of body similarity above the median similarity of the two videos' performers."""
MAX_LOG_ODDS = 6.0
"""Cap of each cue's evidence."""
MIN_MATCH = 1.0
"""Smallest evidence (log-odds) accepted for a match. On divyanshu_line_dance (backs to the camera, no
face found) the same dancer in a zoomed crop scored +2.4 to +2.5 on body colours alone; wrong matches
scored up to +1.7 with one sample, and +0.4 for a 1-sample tracklet."""


@dataclass(frozen=True)
class Angle:
    """One angle of the performance.

    Attributes:
        index: 0-based position among the videos given.
        video: The video.
        analysis: Its analysis (per video, cached).
        alignment: Where it sits on the output clock.
        person: The followed performer in this angle, or None when not found in it.
        match: Evidence that ``person`` is the chosen performer (log-odds; inf = named by the gallery
            or chosen by number).
    """

    index: int
    video: Path
    analysis: Analysis
    alignment: Alignment
    person: Person | None
    match: float = float("inf")

    @property
    def name(self) -> str:
        """Short name for messages and files: ``N:file``."""
        return f"{self.index + 1}:{self.video.name}"


def analysis_folders(videos: Sequence[Path], out: Path | None) -> list[Path | None]:
    """Analysis folder per video: None (the default place) or ``out/<stem>`` (numbered if stems repeat)."""
    if out is None:
        return [None] * len(videos)
    stems = [Path(v).stem for v in videos]
    return [Path(out) / (s if stems.count(s) == 1 else f"{i + 1}-{s}") for i, s in enumerate(stems)]


def analyse(
    videos: Sequence[Path],
    *,
    out: Path | None = None,
    gallery: Path | None = None,
    settings: AnalysisSettings | None = None,
    progress: Progress = True,
) -> list[Analysis]:
    """Analyse every video (or reuse its cached analysis)."""
    folders = analysis_folders(videos, out)
    results = []
    for video, folder in zip(videos, folders, strict=True):
        log.info("analysing %s", video)
        results.append(analyze(video, out=folder, gallery=gallery, settings=settings, progress=progress))
    return results


def find_performer(analyses: Sequence[Analysis], selection: Selection) -> list[tuple[Person | None, float]]:
    """The chosen performer in every angle, with the evidence of the match (see the module docstring).

    Raises:
        UsageError: ``--all``; an unknown ``--person`` number in the first video; a ``--member`` found
            in no angle (the first angle's message explains why).
    """
    if selection.all:
        raise UsageError("with several videos, choose one performer (--member NAME or --person N); "
                         "render --all on each video alone")
    if selection.member is not None:
        found: list[tuple[Person | None, float]] = []
        errors = []
        for analysis in analyses:
            try:
                found.append((select_people(analysis, selection)[0], float("inf")))
            except UsageError as e:
                found.append((None, float("-inf")))
                errors.append((analysis.info.path, e))
        if all(p is None for p, _ in found):
            raise errors[0][1]
        for path, error in errors:
            log.warning("%s: not used for %s: %s", path.name, selection.member, error)
        return found
    first = select_people(analyses[0], selection)[0]
    out: list[tuple[Person | None, float]] = [(first, float("inf"))]
    reference = _summaries(analyses[0])
    for analysis in analyses[1:]:
        person, evidence = _match(first, reference, analysis)
        if person is None:
            log.warning("%s: person %d of %s was not found in it (evidence %.1f); this angle is not used",
                        analysis.info.path.name, first.id, analyses[0].info.path.name, evidence)
        out.append((person, evidence))
    return out


@dataclass(frozen=True)
class _Summary:
    people: tuple[Person, ...]
    faces: tuple[NDArray[np.float32], ...]  # (K, 128) face embeddings per person
    bodies: tuple[NDArray[np.float32], ...]  # (K, D) body descriptors per person


def _summaries(analysis: Analysis) -> _Summary:
    appearance = load_appearance(analysis.folder / APPEARANCE_FILE, len(analysis.tracks))
    if appearance is None:
        raise InputError(f"the analysis in {str(analysis.folder)!r} has no appearance file; run "
                         "`fancam analyze` on the video again")
    owner = analysis.cast.person[appearance.rows]
    people = analysis.cast.people
    faces = tuple(_faces(appearance, owner == p.id) for p in people)
    bodies = tuple(appearance.body[(owner == p.id) & np.any(appearance.body != 0, axis=1)] for p in people)
    return _Summary(people, faces, bodies)


def _faces(appearance: Appearance, mask: NDArray[np.bool_]) -> NDArray[np.float32]:
    return appearance.face[mask & appearance.has_face]


def evidence_matrix(a: _Summary, b: _Summary) -> NDArray[np.float64]:
    """(Pa, Pb) log-odds that performer i of one angle is performer j of the other."""
    n, m = len(a.people), len(b.people)
    face = np.zeros((n, m))
    body = np.full((n, m), np.nan)
    mid = 0.5 * (SAME_PERSON_SIMILARITY + UNKNOWN_SIMILARITY)
    protos_a = [body_prototype(d) if len(d) else None for d in a.bodies]
    protos_b = [body_prototype(d) if len(d) else None for d in b.bodies]
    for i in range(n):
        for j in range(m):
            if len(a.faces[i]) and len(b.faces[j]):
                sim = float(np.median(a.faces[i].astype(np.float64) @ b.faces[j].astype(np.float64).T))
                face[i, j] = np.clip(FACE_SLOPE * (sim - mid), -MAX_LOG_ODDS, MAX_LOG_ODDS)
            pa, pb = protos_a[i], protos_b[j]
            if pa is not None and pb is not None and pa.n and pb.n:
                body[i, j] = prototype_similarity(pa, pb)
    if np.isfinite(body).any():
        body = np.clip(BODY_SLOPE * (body - np.nanmedian(body)), -MAX_LOG_ODDS, MAX_LOG_ODDS)
    return face + np.nan_to_num(body, nan=0.0)


def _match(first: Person, reference: _Summary, analysis: Analysis) -> tuple[Person | None, float]:
    other = _summaries(analysis)
    if not other.people:
        return None, float("-inf")
    evidence = evidence_matrix(reference, other)
    rows, cols = linear_sum_assignment(-evidence)
    i = [p.id for p in reference.people].index(first.id)
    for r, c in zip(rows, cols, strict=True):
        if r == i:
            value = float(evidence[r, c])
            return (other.people[c] if value >= MIN_MATCH else None), value
    return None, float(np.max(evidence[i])) if evidence.shape[1] else float("-inf")
