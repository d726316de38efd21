"""Performers: the result of identity, as a per-row person id plus one :class:`Person` per performer.

Numbering: ``--person N`` refers to :attr:`Person.id`; people are numbered 1..N by prominence (time on
screen weighted by how large they appear), so the dancers come first and a far-away audience last.

Confidence: every stretch of a performer (one tracklet, see :class:`Stretch`) carries the probability
that its rows show that performer under that name: the naming's confidence (1 for numbered
performers) times the tracklet's membership (how strongly its own faces, body and the links to the
performer's other tracklets support putting it there; 0.5 when it was joined on no evidence at all).
A performer's confidence is the mean over their stretches weighted by duration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fancam.geometry import iou_matrix
from fancam.io.tables import UNKNOWN
from fancam.types import Timeline, TrackTable

__all__ = ["UNCERTAIN_BELOW", "UNKNOWN", "Cast", "Person", "Stretch"]

UNCERTAIN_BELOW = 0.5
"""Stretches whose confidence is below this (less likely right than wrong) are called uncertain."""


@dataclass(frozen=True)
class Person:
    """One performer.

    Attributes:
        id: Number used by ``--person N`` (1-based, by prominence).
        label: What tracks.csv calls them: a gallery member name, ``person-N``, or ``unknown``.
        member: ``group/member`` of the gallery member, or None.
        confidence: How sure the identity is, in [0, 1].
        first_seen_s: First time seen (s).
        last_seen_s: Last time seen (s).
        seen_s: Total time on screen (s).
        prominence: Time on screen weighted by box height / frame height (s).
        tracklets: Tracklet ids that make up this performer.
        best_frame: Frame of the clearest view (for contact sheets).
        best_box: (4,) xyxy box at ``best_frame``.
    """

    id: int
    label: str
    member: str | None
    confidence: float
    first_seen_s: float
    last_seen_s: float
    seen_s: float
    prominence: float
    tracklets: tuple[int, ...]
    best_frame: int
    best_box: tuple[float, float, float, float]

    def to_json(self) -> dict:
        """JSON-ready dict (people.json entry)."""
        return {
            "id": self.id, "name": self.label, "member": self.member,
            "confidence": round(self.confidence, 3),
            "first_seen_s": round(self.first_seen_s, 3), "last_seen_s": round(self.last_seen_s, 3),
            "seen_s": round(self.seen_s, 3), "prominence": round(self.prominence, 3),
            "tracklets": list(self.tracklets), "best_frame": self.best_frame,
            "best_box": [round(v, 1) for v in self.best_box],
        }

    @classmethod
    def from_json(cls, entry: dict) -> Person:
        """The inverse of :meth:`to_json` (values as rounded there)."""
        return cls(
            id=entry["id"], label=entry["name"], member=entry["member"], confidence=entry["confidence"],
            first_seen_s=entry["first_seen_s"], last_seen_s=entry["last_seen_s"], seen_s=entry["seen_s"],
            prominence=entry["prominence"], tracklets=tuple(entry["tracklets"]),
            best_frame=entry["best_frame"], best_box=tuple(entry["best_box"]),
        )


@dataclass(frozen=True)
class Stretch:
    """A stretch of time in which one tracklet is one performer, with how sure that is.

    Attributes:
        person: Performer id.
        tracklet: Tracklet id.
        start_s: First time (s).
        end_s: Last time (s).
        confidence: Probability in [0, 1] that these rows show this performer under this name.
    """

    person: int
    tracklet: int
    start_s: float
    end_s: float
    confidence: float

    def to_json(self) -> dict:
        """JSON-ready dict."""
        return {"person": self.person, "tracklet": self.tracklet, "start_s": round(self.start_s, 3),
                "end_s": round(self.end_s, 3), "confidence": round(self.confidence, 3)}

    @classmethod
    def from_json(cls, entry: dict) -> Stretch:
        """The inverse of :meth:`to_json`."""
        return cls(int(entry["person"]), int(entry["tracklet"]), float(entry["start_s"]),
                   float(entry["end_s"]), float(entry["confidence"]))


@dataclass(frozen=True)
class Cast:
    """Identity of every row of a tracklet table.

    Attributes:
        person: (M,) int64 person id per row of the tracklet table (0 = nobody: the row is dropped).
        people: Performers, ordered by id.
        stretches: Each performer's stretches (one per tracklet), by person then start time.
    """

    person: NDArray[np.int64]
    people: tuple[Person, ...]
    stretches: tuple[Stretch, ...] = ()

    def stretches_of(self, person_id: int) -> tuple[Stretch, ...]:
        """The stretches of one performer, by start time."""
        return tuple(sorted((s for s in self.stretches if s.person == person_id), key=lambda s: s.start_s))

    def uncertain_spans(
        self, person_id: int, threshold: float = UNCERTAIN_BELOW, join_s: float = 0.5
    ) -> list[tuple[float, float]]:
        """(start_s, end_s) spans where ``person_id`` is followed with confidence below ``threshold``.

        Uncertain stretches closer than ``join_s`` are reported as one span; overlapping ones merge.
        """
        spans: list[list[float]] = []
        for s in self.stretches_of(person_id):
            if s.confidence >= threshold:
                continue
            if spans and s.start_s <= spans[-1][1] + join_s:
                spans[-1][1] = max(spans[-1][1], s.end_s)
            else:
                spans.append([s.start_s, s.end_s])
        return [(a, b) for a, b in spans]

    def label_of_rows(self) -> NDArray[np.object_]:
        """(M,) label per row (``unknown`` for rows without a person)."""
        return self.labels_of(self.person)

    def labels_of(self, person: NDArray[np.int64]) -> NDArray[np.object_]:
        """The label of each person id (``unknown`` for 0 = nobody, or an id no performer has)."""
        labels = {p.id: p.label for p in self.people}
        return np.array([labels.get(int(i), UNKNOWN) for i in person], dtype=object)

    def by_id(self, person_id: int) -> Person:
        """The performer with ``--person`` number ``person_id`` (KeyError if none)."""
        for p in self.people:
            if p.id == person_id:
                return p
        raise KeyError(person_id)


def crowding(tracks: TrackTable) -> NDArray[np.float64]:
    """(M,) largest IoU of each row's box with any other box of the same frame (0 when alone)."""
    out = np.zeros(len(tracks))
    order = np.argsort(tracks.frame, kind="stable")
    bounds = np.flatnonzero(np.diff(tracks.frame[order])) + 1
    for rows in np.split(order, bounds):
        if len(rows) > 1:
            iou = iou_matrix(tracks.xyxy[rows], tracks.xyxy[rows])
            np.fill_diagonal(iou, 0.0)
            out[rows] = iou.max(axis=1)
    return out


def clearest_view(
    tracks: TrackTable, mask: NDArray[np.bool_], overlap: NDArray[np.float64], frame_height: int
) -> int:
    """Row index of a person's clearest view: a large, observed, unoverlapped, confident box."""
    rows = np.flatnonzero(mask & tracks.observed)
    if not len(rows):
        rows = np.flatnonzero(mask)
    height = (tracks.xyxy[rows, 3] - tracks.xyxy[rows, 1]) / frame_height
    score = height * tracks.score[rows] - 2.0 * overlap[rows]
    return int(rows[np.argmax(score)])


@dataclass(frozen=True)
class Naming:
    """How identity names one cluster of rows.

    Attributes:
        label: Gallery member label (unique among members), or None (numbered ``person-N``), or
            ``unknown``.
        member: ``group/member`` or None.
        confidence: In [0, 1].
    """

    label: str | None = None
    member: str | None = None
    confidence: float = 0.0


def make_people(
    tracks: TrackTable,
    cluster: NDArray[np.int64],
    naming: dict[int, Naming],
    timeline: Timeline,
    frame_height: int,
    membership: dict[int, float] | None = None,
) -> Cast:
    """Number performers by prominence and build the :class:`Cast`.

    Args:
        tracks: Tracklet table (``track_id`` = tracklet id).
        cluster: (M,) performer cluster of each row (any ints; negative = nobody). Identity may give
            different clusters to different segments of one tracklet.
        naming: Name of each cluster (missing clusters are numbered ``person-N`` with confidence 1).
        timeline: Frame times.
        frame_height: Displayed frame height in pixels.
        membership: Probability that each tracklet (by id) belongs to its cluster (default 1).
    """
    dt = timeline.step_s
    stats = []
    for c in np.unique(cluster[cluster >= 0]):
        mask = cluster == c
        heights = (tracks.xyxy[mask, 3] - tracks.xyxy[mask, 1]) / frame_height
        stats.append((float(heights.sum() * dt), int(c), mask))
    stats.sort(key=lambda s: (-s[0], s[1]))
    overlap = crowding(tracks)
    people, person, stretches = [], np.zeros(len(tracks), np.int64), []
    membership = membership or {}
    for number, (prominence, c, mask) in enumerate(stats, 1):
        rows = tracks[mask]
        name = naming.get(c, Naming(confidence=1.0))
        best = clearest_view(tracks, mask, overlap, frame_height)
        mine = []
        for tracklet in np.unique(rows.track_id):
            frames = rows.frame[rows.track_id == tracklet]
            p = float(np.clip(name.confidence * membership.get(int(tracklet), 1.0), 0.0, 1.0))
            mine.append(Stretch(number, int(tracklet), float(timeline.t[frames.min()]),
                                float(timeline.t[frames.max()]), p))
        stretches += mine
        weights = np.array([len(np.unique(rows.frame[rows.track_id == s.tracklet])) for s in mine], float)
        confidence = float(np.average([s.confidence for s in mine], weights=weights))
        people.append(Person(
            id=number, label=name.label or f"person-{number}", member=name.member,
            confidence=confidence, first_seen_s=float(timeline.t[rows.frame.min()]),
            last_seen_s=float(timeline.t[rows.frame.max()]), seen_s=len(np.unique(rows.frame)) * dt,
            prominence=prominence, tracklets=tuple(int(t) for t in np.unique(rows.track_id)),
            best_frame=int(tracks.frame[best]), best_box=_box4(tracks.xyxy[best]),
        ))
        person[mask] = number
    stretches.sort(key=lambda s: (s.person, s.start_s, s.tracklet))
    return Cast(person=person, people=tuple(people), stretches=tuple(stretches))


def _box4(row: NDArray) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in row)
    return x1, y1, x2, y2


def bridge_gaps(
    tracks: TrackTable, person: NDArray[np.int64], timeline: Timeline, max_gap_s: float
) -> tuple[TrackTable, NDArray[np.int64]]:
    """Rows that carry each performer across the short gaps between her tracklets.

    The tracker ends a track where a box is lost or cut (a dancer hidden for a few frames behind
    another, a cut at an overlap or at a jump); identity then joins the pieces into one performer. A
    gap of at most ``max_gap_s`` between two of her rows in one shot is filled with her straight-line
    box, as a gap of the same length inside one tracklet already is (:class:`TrackletConfig.max_gap_s
    <fancam.tracking.tracklets.TrackletConfig>`), and as the camera bridges it. The filled rows are not
    observed and carry score 0 (no detection); their tracklet is the one before the gap, or the one
    after it when the first goes on meanwhile as someone else. A gap across a camera cut is never filled.

    Args:
        tracks: Tracklet table.
        person: (M,) person id of each row (0 = nobody: never bridged).
        timeline: Frame times and shots.
        max_gap_s: Longest gap (seconds between the two rows) that is filled.

    Returns:
        The new rows (in person then frame order) and their (N,) person ids.
    """
    frame_ids: list[NDArray[np.int64]] = []
    track_ids: list[NDArray[np.int64]] = []
    boxes: list[NDArray[np.float64]] = []
    owners: list[NDArray[np.int64]] = []
    taken = {(int(f), int(k)) for f, k in zip(tracks.frame, tracks.track_id, strict=True)}
    t = np.asarray(timeline.t, np.float64)
    for pid in np.unique(person[person > 0]):
        rows = np.flatnonzero(person == pid)
        frames, first = np.unique(tracks.frame[rows], return_index=True)
        rows = rows[first]
        shot = timeline.shot_of(frames)
        gaps = np.flatnonzero((np.diff(frames) > 1) & (np.diff(t[frames]) <= max_gap_s + 1e-9)
                              & (np.diff(shot) == 0))
        for k in gaps:
            a, b = rows[k], rows[k + 1]
            fill = np.arange(frames[k] + 1, frames[k + 1])
            owner = next((int(tracks.track_id[r]) for r in (a, b)
                          if not any((int(f), int(tracks.track_id[r])) in taken for f in fill)), None)
            if owner is None:
                continue
            taken.update((int(f), owner) for f in fill)  # another performer's gap must not reuse them
            w = ((t[fill] - t[frames[k]]) / (t[frames[k + 1]] - t[frames[k]]))[:, None]
            frame_ids.append(fill)
            track_ids.append(np.full(len(fill), owner, np.int64))
            boxes.append((1.0 - w) * tracks.xyxy[a] + w * tracks.xyxy[b])
            owners.append(np.full(len(fill), pid, np.int64))
    if not frame_ids:
        return TrackTable.empty(), np.zeros(0, np.int64)
    n = sum(len(f) for f in frame_ids)
    table = TrackTable(np.concatenate(frame_ids), np.concatenate(track_ids), np.concatenate(boxes),
                       np.zeros(n, np.float32), np.zeros(n, bool))
    return table, np.concatenate(owners)
