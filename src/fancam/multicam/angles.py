"""The angles of one performance: align them, analyse each, and find the chosen performer in each.

Each video is analysed on its own (the analysis cache applies per video). The performer is found in
every angle in one of two ways:

- ``--member NAME`` with a gallery: the gallery names the performers of every angle; an angle where
  she is not recognised is not used for her (a warning says so).
- ``--person N``: N is the number in the *first* video (``fancam people FIRST_VIDEO``); the same
  performer is looked up in the other angles. Every performer of the first video is matched one to
  one to a performer of the other angle (Hungarian assignment) on the sum of three kinds of
  evidence (log-odds): face similarity (dlib embeddings, as identity uses within a video), body
  colours (stripes; only relative to that pair of videos, as body similarities are not comparable
  across videos), and position (:class:`PositionConfig`: one stage mapping that carries several
  performers of one angle onto those of the other). A match is accepted at :data:`MIN_MATCH`;
  otherwise the angle is not used for that performer. Faces need a sharp, frontal view; positions
  need cameras that keep their framing; in identical costumes with neither, use a gallery.
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


def find_performer(
    analyses: Sequence[Analysis], selection: Selection, alignments: Sequence[Alignment] | None = None
) -> list[tuple[Person | None, float]]:
    """The chosen performer in every angle, with the evidence of the match (see the module docstring).

    ``alignments`` (on one clock) enable the position cue of ``--person`` matching.

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
    for k, analysis in enumerate(analyses[1:], 1):
        position = None
        if alignments is not None:
            position = position_evidence(analyses[0], analysis, alignments[0], alignments[k])
        person, evidence = _match(first, reference, analysis, position)
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


def _match(
    first: Person, reference: _Summary, analysis: Analysis, position: NDArray[np.float64] | None
) -> tuple[Person | None, float]:
    other = _summaries(analysis)
    if not other.people:
        return None, float("-inf")
    evidence = evidence_matrix(reference, other)
    if position is not None:
        evidence = evidence + position
    rows, cols = linear_sum_assignment(-evidence)
    i = [p.id for p in reference.people].index(first.id)
    for r, c in zip(rows, cols, strict=True):
        if r == i:
            value = float(evidence[r, c])
            return (other.people[c] if value >= MIN_MATCH else None), value
    return None, float(np.max(evidence[i])) if evidence.shape[1] else float("-inf")


# ----------------------------------------------------------------------------------------- position
@dataclass(frozen=True)
class PositionConfig:
    """The position cue of ``--person`` matching.

    Two cameras filming one stage see it through one mapping: for a zoom, a crop or a mirror it is
    exactly ``x' = a x + b, y' = c y + d``, and roughly so for another seat. Each pair of performers
    seen together in both angles proposes such a mapping (a straight-line fit of their foot points
    over time); the mapping that carries the most performers onto a performer of the other angle
    (one to one) wins, if it carries at least ``min_support`` of them. Dancing in unison moves
    everyone alike, but one mapping cannot carry two performers standing apart onto the wrong two.
    The cue assumes cameras that keep their framing; moving or cutting cameras rarely reach the
    support and then give no position evidence.

    Attributes:
        step_s: Sampling of the common time.
        min_samples: Fewest common samples for a pair.
        min_support: Fewest performers a mapping must carry.
        inlier: A performer is carried when the median distance of the mapped foot points is below
            this many of her box heights.
        log_odds: Evidence at distance 0 (falling linearly to 0 at ``inlier``, and to ``-log_odds``
            at twice ``inlier``).
    """

    step_s: float = 0.2
    min_samples: int = 10
    min_support: int = 2
    inlier: float = 0.25
    log_odds: float = 3.0


def _feet(analysis: Analysis, frames: NDArray[np.int64], border: float = 0.01) -> NDArray[np.float64]:
    """(P, S, 3) foot point x, y and box height of every performer at ``frames``.

    NaN where she is not seen, at frame -1, and where her box touches the frame's border (a box cut
    by the border has neither her feet nor her height).
    """
    from fancam.pipeline.produce import target_boxes

    w, h = analysis.info.width, analysis.info.height
    out = np.full((len(analysis.cast.people), len(frames), 3), np.nan)
    ok = frames >= 0
    for i, person in enumerate(analysis.cast.people):
        boxes = target_boxes(analysis, person)[frames[ok]]
        inside = ((boxes[:, 0] > border * w) & (boxes[:, 2] < (1 - border) * w) & (boxes[:, 1] > border * h)
                  & (boxes[:, 3] < (1 - border) * h))
        feet = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3], boxes[:, 3] - boxes[:, 1]], axis=1)
        out[i, ok] = np.where(inside[:, None], feet, np.nan)
    return out


Mapping = tuple[float, float, float, float]
"""``(ax, bx, ay, by)``: ``x' = ax x + bx``, ``y' = ay y + by``."""


def position_evidence(
    a: Analysis, b: Analysis, align_a: Alignment, align_b: Alignment, config: PositionConfig | None = None
) -> NDArray[np.float64]:
    """(Pa, Pb) log-odds from the position cue (zeros when no mapping is supported)."""
    from fancam.multicam.choose import nearest_frames

    config = config or PositionConfig()
    n_a, n_b = len(a.cast.people), len(b.cast.people)
    zero = np.zeros((n_a, n_b))
    if not n_a or not n_b:
        return zero
    start = max(float(align_a.to_reference(a.timeline.t[0])), float(align_b.to_reference(b.timeline.t[0])))
    end = min(float(align_a.to_reference(a.timeline.t[-1])), float(align_b.to_reference(b.timeline.t[-1])))
    t = np.arange(start, end, config.step_s)
    if len(t) < config.min_samples:
        return zero
    fa = _feet(a, nearest_frames(align_a.from_reference(t), a.timeline.t, 0.05))
    fb = _feet(b, nearest_frames(align_b.from_reference(t), b.timeline.t, 0.05))
    best: tuple[int, float, NDArray[np.float64]] | None = None
    for i in range(n_a):
        for j in range(n_b):
            both = np.isfinite(fa[i, :, 0]) & np.isfinite(fb[j, :, 0])
            if both.sum() < config.min_samples:
                continue
            for mapping in _mappings(fa[i, both], fb[j, both]):
                candidate = _support(fa, fb, mapping, config)
                if candidate[0] >= 2:  # refine once on every performer it carries
                    refined = _refit(fa, fb, _carried(candidate[2], config))
                    if refined is not None:
                        candidate = max(candidate, _support(fa, fb, refined, config), key=lambda c: c[:2])
                if best is None or candidate[:2] > best[:2]:
                    best = candidate
    if best is None or best[0] < config.min_support:
        return zero
    evidence = config.log_odds * (1.0 - best[2] / config.inlier)
    return np.where(np.isfinite(evidence), np.clip(evidence, -config.log_odds, config.log_odds), 0.0)


def _mappings(pa: NDArray, pb: NDArray) -> list[Mapping]:
    """Mappings one performer's foot points propose, for both x senses.

    The scale comes from her box heights (robust to her standing still); a camera on the other side
    or a mirrored video flips x, so both signs are proposed.
    """
    ay = float(np.median(pb[:, 2] / pa[:, 2]))
    if not 0.2 <= ay <= 5.0:
        return []
    by = float(np.median(pb[:, 1] - ay * pa[:, 1]))
    return [(ax, float(np.median(pb[:, 0] - ax * pa[:, 0])), ay, by) for ax in (ay, -ay)]


def _refit(fa: NDArray, fb: NDArray, pairs: list[tuple[int, int]]) -> Mapping | None:
    """One mapping through the foot points of every matched pair (x by least squares, y from heights)."""
    if not pairs:
        return None
    pa = np.concatenate([fa[i] for i, _ in pairs])
    pb = np.concatenate([fb[j] for _, j in pairs])
    both = np.isfinite(pa[:, 0]) & np.isfinite(pb[:, 0])
    if both.sum() < 2 or np.ptp(pa[both, 0]) < 1e-3:
        return None
    pa, pb = pa[both], pb[both]
    ay = float(np.median(pb[:, 2] / pa[:, 2]))
    ax = float(np.polyfit(pa[:, 0], pb[:, 0], 1)[0])
    if not 0.5 * ay <= abs(ax) <= 2.0 * ay:
        return None
    return ax, float(np.median(pb[:, 0] - ax * pa[:, 0])), ay, float(np.median(pb[:, 1] - ay * pa[:, 1]))


def _support(fa: NDArray, fb: NDArray, mapping: Mapping, config: PositionConfig) -> tuple[
    int, float, NDArray[np.float64]
]:
    """(performers carried, minus their summed distance, the distance matrix) of a mapping."""
    distance = _distances(fa, fb, mapping, config.min_samples)
    pairs = _carried(distance, config)
    return len(pairs), -float(sum(distance[i, j] for i, j in pairs)), distance


def _carried(distance: NDArray[np.float64], config: PositionConfig) -> list[tuple[int, int]]:
    """One-to-one pairs (Hungarian) closer than ``config.inlier``."""
    rows, cols = linear_sum_assignment(np.where(np.isfinite(distance), distance, 1e6))
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if distance[r, c] < config.inlier]


def _distances(fa: NDArray, fb: NDArray, mapping: Mapping, min_samples: int) -> NDArray[np.float64]:
    """(Pa, Pb) median distance of mapped foot points, in box heights of the second angle (NaN: too few)."""
    ax, bx, ay, by = mapping
    mx, my = ax * fa[:, :, 0] + bx, ay * fa[:, :, 1] + by  # (Pa, S)
    dx = mx[:, None, :] - fb[None, :, :, 0]
    dy = my[:, None, :] - fb[None, :, :, 1]
    d = np.hypot(dx, dy) / fb[None, :, :, 2]
    out = np.full(d.shape[:2], np.nan)
    for i, j in np.ndindex(*out.shape):
        values = d[i, j][np.isfinite(d[i, j])]
        if len(values) >= min_samples:
            out[i, j] = float(np.median(values))
    return out
