"""Raw tracker output -> clean tracklets: pieces of one person's path that are safe to label as a whole.

A tracklet must never contain an identity switch, because identification later gives each tracklet a
single name. The tracker cannot promise that (dancers cross, merge and hide behind each other), so the
raw tracks are cut wherever a switch *could* hide, and only obvious continuations are joined again.
The rules, applied in this order (only the observed rows of the raw tracks are used):

1. **Shot cuts.** A track is split at every shot start (``timeline.shot_starts``): nothing continues
   across a cut.
2. **Long gaps.** A track is split where two successive observations are more than ``max_gap_s``
   apart; shorter gaps are filled by interpolation in rule 9.
3. **Small boxes.** Pieces whose median box height is below ``min_height`` of the frame height are
   dropped (audience, crowd, people far in the background).
4. **Overlap episodes.** Whenever the boxes of two pieces overlap heavily in the same frame (IoU above
   ``overlap_iou``, or the smaller box lying mostly - ``containment`` - inside a box not much larger
   than itself), both pieces are cut at the start and at the end of that episode (interpolated boxes
   count, so a dancer whose detection merged into her neighbour's box is caught too). Episodes of the
   same pair less than ``overlap_merge_s`` apart form one episode. The stretch inside an episode
   becomes a tracklet of its own (often brief, then dropped by rule 8). Except when the tracker kept
   them apart: both detected in every detection frame of the episode, each box overlapping its own
   previous box clearly more than the other's at every step (``overlap_keep_margin``). A swap needs a
   moment where the two boxes coincide or one is missing; without one the cut would only cost rows
   (the stretch inside) and a link that identity may get wrong.
5. **Hidden gaps.** A shorter gap (at least ``hidden_gap_s``) is cut too when the person was possibly
   behind someone else meanwhile: in some frame of the gap, ``hidden_cover`` of the interpolated box
   lies inside another piece's box. Whoever the tracker found again there may be the one who hid her.
6. **Merged boxes.** A box that covers two people: a piece whose box grows by ``merge_growth`` (width or
   height, against its size just before) over the last box of a neighbour whose piece has just ended
   (``merge_window_s``; ``merge_cover`` of that box inside the grown one) absorbed her; likewise a box
   that shrinks back when a new piece starts inside it let her out. The piece is cut where the
   absorption starts and where it ends (while the box stays grown over her last box). The growth must
   show on a side inside the picture: a width (height) is not compared while the box or its reference
   boxes touch the left or right (top or bottom) edge of the frame. Then **size
   jumps**: a box whose width, height or aspect changes by ``jump_ratio`` or more between two
   observations at most ``jump_window_s`` apart is cut there (a neighbour entering or leaving the
   box, or a different person).
7. **Links.** A piece that ends because its track ended is joined to a piece that starts because a
   new track started when the join is obvious: same shot, the second starts at most ``link_max_gap_s``
   later, near where the first ended (``link_max_shift`` box heights) with a similar height
   (``link_max_size_change``), the straight path between them overlaps nobody heavily, and neither
   piece has another candidate.
8. **Short pieces.** Pieces lasting less than ``min_duration_s`` or with fewer than
   ``min_observations`` observations are dropped (detector noise, brief passers-by). A piece that
   starts or ends at a cut of rules 4-6 is a stretch of someone the tracker followed longer, not
   noise: it only needs ``min_cut_piece_s``, unless it is the stretch inside an overlap or merge
   episode (where the switch may be).
9. **Filling.** Every frame between a tracklet's first and last observation gets a row, linearly
   interpolated (``observed=False``). Tracklets are renumbered 1, 2, ... by first frame.

Every cut made by rules 4-6 has the reason ``overlap`` ("someone else's box was involved here, so the
position proves nothing"): identity then links the pieces on appearance only.
:func:`build_tracklets_explained` also returns why every tracklet starts and ends, how it moves at both
ends (velocity, box against a side of the frame: what identity's crossing resolver extrapolates through
an overlap), every such cut (with the rule that made it), and what was dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from fancam.errors import UsageError
from fancam.geometry import box_area, intersection_matrix, iou_matrix
from fancam.types import Timeline, TrackTable

# Why a tracklet starts or ends (TrackletInfo.start_reason / end_reason).
TRACK_START = "track_start"  # the tracker started the track here
TRACK_END = "track_end"  # the tracker lost the track after this
SHOT_CUT = "shot_cut"
GAP = "gap"  # observations too far apart to interpolate
OVERLAP = "overlap"  # another person's box was involved here (overlap, merge, hiding, size jump)
# Why a piece was dropped (DroppedPiece.reason).
SMALL = "small"
SHORT = "short"
# Which rule made a cut with reason OVERLAP (TrackletCut.rule).
HIDDEN_GAP = "hidden_gap"
OVERLAP_EPISODE = "overlap_episode"
MERGE = "merge"
JUMP = "jump"


@dataclass(frozen=True)
class TrackletConfig:
    """Rules of :func:`build_tracklets`, in physical units.

    Attributes:
        max_gap_s: Longest gap (seconds) between two observations that is filled by interpolation;
            a track is split at longer gaps.
        overlap_iou: Two boxes with an IoU above this overlap heavily.
        containment: Two boxes also overlap heavily when this share of the smaller one lies inside
            the larger one ...
        containment_min_area_ratio: ... and the smaller box has at least this fraction of the larger
            one's area. The IoU of two boxes cannot exceed their area ratio, so below the tracker's
            IoU threshold (0.3) the tracker cannot have swapped them: a person far in the
            background inside a dancer's box is no reason to cut.
        overlap_merge_s: Overlap episodes of the same pair closer than this (seconds) are merged.
        overlap_keep_margin: An episode is not cut when both were detected at every detection frame
            through it and at each step ``IoU(p, p') + IoU(q, q') - IoU(p, q') - IoU(q, p')`` (own
            previous box against the other's) is at least this (2 disables the exemption). Measured on
            the labelled clips against GT: any value in 0.2-0.5 keeps the same episodes (divyanshu_line_dance
            GT rows covered by tracklets 0.789 -> 0.882, gillhung_dance2 0.891 -> 0.917,
            miryala_stage_dance 0.771 -> 0.801, no new switch in a tracklet but one row of miryala where
            one box covers two men); 0.8 keeps fewer (line dance 0.871), 1.2 almost none.
        min_duration_s: Shortest tracklet kept (first to last observation, seconds).
        min_cut_piece_s: Shortest tracklet kept when it starts or ends at a cut of rules 4-6 and is not
            the stretch inside an overlap or merge episode (seconds). Measured on the labelled clips
            (GT rows covered by tracklets, 0.5 s -> 0.2 s): gillhung 0.970 -> 0.976,
            miryala_stage_dance 0.801 -> 0.821, divyanshu_line_dance 0.882 -> 0.888, the others
            unchanged, no tracklet covering two people more.
        min_observations: Fewest observations (detections) a kept tracklet has.
        min_height: Smallest median box height kept, as a fraction of the frame height.
        link_max_gap_s: Longest pause (seconds) between a track's end and a new track's start that
            can be linked; at most ``max_gap_s``.
        link_max_shift: Largest distance between the end and start box centres, in box heights. Stricter
            than identity's soft continuity bonus (``LinkingConfig.continuity_shift`` = 0.6): this join
            is final and no face or body evidence can undo it.
        link_max_size_change: Largest relative change of box height between end and start.
        hidden_gap_s: Gaps (seconds between two observations) at least this long are checked for a
            person hidden behind someone else (rule 5).
        hidden_cover: Share of the interpolated box inside another box that makes a gap "hidden".
        merge_window_s: How long (seconds) after a piece ends (or before one starts) a box growing
            over (shrinking away from) its last (first) box is taken for a merge (rule 6).
        merge_growth: Growth of width or height, against the size just before, of a merged box.
            Measured: 1.5-1.7 at the merges of gillhung f729, tiktok_stage_ballet f18, gillhung_dance2
            f177. 1.25 cuts as many switches on the labelled clips but also the arms of front-row
            dancers spreading over a hidden back row (divyanshu_line_dance: 4 points less of the GT
            rows covered by tracklets, against 0.7 for 1.4).
        merge_cover: Share of the neighbour's box that lies inside the grown box.
        jump_ratio: Change of width, height or aspect (either way) between two close observations that
            cuts a track (rule 6). Measured on YOLOX-nano tracks: 99th percentile of the per-step change
            1.25 (fiyud_dance3) to 1.53 (gillhung_dance2); every step above 1.6 in gillhung,
            tiktok_stage_ballet and fiyud_dance3 is a merge, a split or a switch.
        jump_window_s: Only observations at most this far apart (seconds) are compared.
        motion_window_s: The velocity at each end of a tracklet (:class:`TrackletInfo`) is fitted on
            the observations within this many seconds of that end (identity extrapolates it through
            a crossing). 0.5 s: five detections at the default stride, about one dance step.
    """

    max_gap_s: float = 1.0
    overlap_iou: float = 0.4
    containment: float = 0.75
    containment_min_area_ratio: float = 0.3
    overlap_merge_s: float = 0.3
    overlap_keep_margin: float = 0.5
    min_duration_s: float = 0.5
    min_cut_piece_s: float = 0.2
    min_observations: int = 3
    min_height: float = 0.1
    link_max_gap_s: float = 0.7
    link_max_shift: float = 0.5
    link_max_size_change: float = 0.25
    hidden_gap_s: float = 0.3
    hidden_cover: float = 0.5
    merge_window_s: float = 0.5
    merge_growth: float = 1.4
    merge_cover: float = 0.6
    jump_ratio: float = 1.6
    jump_window_s: float = 0.25
    motion_window_s: float = 0.5

    def __post_init__(self) -> None:
        for name in ("max_gap_s", "overlap_merge_s", "min_duration_s", "min_cut_piece_s", "min_height",
                     "link_max_gap_s", "link_max_shift", "link_max_size_change", "hidden_gap_s", "merge_window_s",
                     "jump_window_s", "motion_window_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise UsageError(f"TrackletConfig.{name} must be >= 0, got {value!r}")
        if not 0 <= self.overlap_keep_margin <= 2:
            raise UsageError(f"TrackletConfig.overlap_keep_margin must be in [0, 2], got {self.overlap_keep_margin!r}")
        for name in ("overlap_iou", "containment", "containment_min_area_ratio", "hidden_cover", "merge_cover"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise UsageError(f"TrackletConfig.{name} must be in (0, 1], got {value!r}")
        for name in ("merge_growth", "jump_ratio"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 1):
                raise UsageError(f"TrackletConfig.{name} must be > 1, got {value!r}")
        if self.min_observations < 1:
            raise UsageError(f"TrackletConfig.min_observations must be >= 1, got {self.min_observations!r}")
        if self.link_max_gap_s > self.max_gap_s:
            raise UsageError(
                f"TrackletConfig.link_max_gap_s ({self.link_max_gap_s}) must not exceed "
                f"max_gap_s ({self.max_gap_s}): a linked gap must be fillable"
            )


@dataclass(frozen=True)
class TrackletInfo:
    """Where one output tracklet comes from (for debugging and reports).

    Attributes:
        tracklet_id: Id in the output table (1, 2, ...).
        source_ids: Raw track ids it was built from (several when pieces were linked).
        first_frame: First observed frame.
        last_frame: Last observed frame.
        n_observed: Number of observed rows.
        start_reason: Why it starts (``track_start``, ``shot_cut``, ``gap``, ``overlap``).
        end_reason: Why it ends (``track_end``, ``shot_cut``, ``gap``, ``overlap``).
        start_velocity: Velocity (vx, vy) of the box centre over its first ``motion_window_s``, in
            pixels per second (0, 0 when too few observations span that time).
        end_velocity: The same over its last ``motion_window_s``.
        start_at_edge: Its first box touches the left or right side of the frame (the person may be
            partly outside: the box's centre and size say little about where she is).
        end_at_edge: Its last box touches the left or right side of the frame.
    """

    tracklet_id: int
    source_ids: tuple[int, ...]
    first_frame: int
    last_frame: int
    n_observed: int
    start_reason: str
    end_reason: str
    start_velocity: tuple[float, float] = (0.0, 0.0)
    end_velocity: tuple[float, float] = (0.0, 0.0)
    start_at_edge: bool = False
    end_at_edge: bool = False


@dataclass(frozen=True)
class DroppedPiece:
    """A piece of a raw track that was left out.

    Attributes:
        source_id: Raw track id.
        first_frame: First observed frame of the piece.
        last_frame: Last observed frame of the piece.
        reason: ``small`` (boxes too small) or ``short`` (too brief or too few observations).
    """

    source_id: int
    first_frame: int
    last_frame: int
    reason: str


@dataclass(frozen=True)
class TrackletCut:
    """A cut made because another person's box was involved (rules 4-6).

    Attributes:
        source_id: Raw track id.
        frame: The piece after the cut starts at this frame (observed rows ``>= frame``).
        rule: ``hidden_gap``, ``overlap_episode``, ``merge`` or ``jump``.
    """

    source_id: int
    frame: int
    rule: str


@dataclass(frozen=True)
class TrackletReport:
    """Explanation of a :func:`build_tracklets` result.

    Attributes:
        tracklets: One entry per output tracklet, in id order.
        dropped: Pieces that were left out, in the order they were dropped.
        cuts: Cuts made by rules 4-6, in the order they were made (a cut at the very start or end of a
            piece changes nothing and is not listed).
    """

    tracklets: tuple[TrackletInfo, ...]
    dropped: tuple[DroppedPiece, ...]
    cuts: tuple[TrackletCut, ...] = ()


@dataclass(frozen=True)
class _Piece:
    """Observed rows of one candidate tracklet (frames strictly increasing)."""

    source_ids: tuple[int, ...]
    frame: NDArray[np.int64]
    xyxy: NDArray[np.float64]
    score: NDArray[np.float64]
    start_reason: str
    end_reason: str

    def cut(self, at: int) -> tuple[_Piece | None, _Piece | None]:
        """Split before frame ``at``: rows ``< at`` and rows ``>= at`` (None when empty)."""
        k = int(np.searchsorted(self.frame, at))
        if k == 0:
            return None, self
        if k == len(self.frame):
            return self, None
        before = replace(self, frame=self.frame[:k], xyxy=self.xyxy[:k], score=self.score[:k],
                         end_reason=OVERLAP)
        after = replace(self, frame=self.frame[k:], xyxy=self.xyxy[k:], score=self.score[k:],
                        start_reason=OVERLAP)
        return before, after

    def dense(self) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
        """Every frame from first to last observation with interpolated boxes (F,4) and scores (F,)."""
        frames = np.arange(self.frame[0], self.frame[-1] + 1)
        boxes = np.stack([np.interp(frames, self.frame, self.xyxy[:, j]) for j in range(4)], axis=1)
        return frames, boxes, np.interp(frames, self.frame, self.score)

    def dropped(self, reason: str) -> DroppedPiece:
        return DroppedPiece(self.source_ids[0], int(self.frame[0]), int(self.frame[-1]), reason)


def build_tracklets(
    raw: TrackTable, timeline: Timeline, frame_size: tuple[int, int], config: TrackletConfig
) -> TrackTable:
    """Clean raw tracker output into tracklets; see the module docstring for the rules.

    Args:
        raw: Tracker output (observed rows; rows with ``observed=False`` are ignored).
        timeline: Frame times and shot starts of the video.
        frame_size: ``(width, height)`` of the displayed frame in pixels.
        config: The rules' thresholds.

    Returns:
        One row per tracklet per frame from its first to its last observation, sorted by frame then
        tracklet; tracklet ids are 1, 2, ... in order of first frame.

    Raises:
        ValueError: ``raw`` has frames outside the timeline or repeats a (frame, track) pair.
    """
    return build_tracklets_explained(raw, timeline, frame_size, config)[0]


def build_tracklets_explained(
    raw: TrackTable, timeline: Timeline, frame_size: tuple[int, int], config: TrackletConfig
) -> tuple[TrackTable, TrackletReport]:
    """:func:`build_tracklets`, also returning where each tracklet starts and ends, and what was dropped."""
    observed = raw[raw.observed]
    _validate(observed, timeline)
    dropped: list[DroppedPiece] = []
    pieces = _split_raw(observed, timeline, config.max_gap_s)
    min_h = config.min_height * frame_size[1]
    pieces = _keep(pieces, lambda p: bool(np.median(p.xyxy[:, 3] - p.xyxy[:, 1]) >= min_h), SMALL, dropped)
    cuts: list[TrackletCut] = []
    inside: list[tuple[int, int, int]] = []  # (source id, first, last) of every overlap or merge episode cut
    pieces = _apply_cuts(pieces, _overlap_cuts(pieces, timeline, config, inside), OVERLAP_EPISODE, cuts)
    pieces = _apply_cuts(pieces, _hidden_gap_cuts(pieces, timeline, config), HIDDEN_GAP, cuts)
    pieces = _apply_cuts(pieces, _merge_cuts(pieces, timeline, frame_size, config, inside), MERGE, cuts)
    pieces = _apply_cuts(pieces, _jump_cuts(pieces, timeline, frame_size, config), JUMP, cuts)
    pieces = _link(pieces, timeline, config)

    def long_enough(p: _Piece) -> bool:
        duration = timeline.t[p.frame[-1]] - timeline.t[p.frame[0]]
        cut = OVERLAP in (p.start_reason, p.end_reason) and not _within(p, inside)
        shortest = min(config.min_duration_s, config.min_cut_piece_s) if cut else config.min_duration_s
        return len(p.frame) >= config.min_observations and bool(duration >= shortest - 1e-9)

    pieces = _keep(pieces, long_enough, SHORT, dropped)
    pieces.sort(key=lambda p: (int(p.frame[0]), p.source_ids))
    infos = _infos(pieces, timeline, frame_size, config.motion_window_s)
    return _fill(pieces), TrackletReport(infos, tuple(dropped), tuple(cuts))


def _within(piece: _Piece, episodes: list[tuple[int, int, int]]) -> bool:
    """Whether the piece lies inside one of the overlap or merge episodes (source id, first, last)."""
    src, first, last = piece.source_ids[0], int(piece.frame[0]), int(piece.frame[-1])
    return any(s == src and a <= first and last <= b for s, a, b in episodes)


def _validate(observed: TrackTable, timeline: Timeline) -> None:
    if not len(observed):
        return
    if observed.frame.min() < 0 or observed.frame.max() >= timeline.n_frames:
        raise ValueError(
            f"track frames span {observed.frame.min()}..{observed.frame.max()} but the timeline has "
            f"{timeline.n_frames} frames"
        )
    keys = observed.frame * (int(observed.track_id.max()) + 1) + observed.track_id
    if len(np.unique(keys)) != len(keys):
        raise ValueError("raw track table repeats a (frame, track_id) pair")


def _keep(
    pieces: list[_Piece], rule: Callable[[_Piece], bool], reason: str, dropped: list[DroppedPiece]
) -> list[_Piece]:
    kept = []
    for p in pieces:
        if rule(p):
            kept.append(p)
        else:
            dropped.append(p.dropped(reason))
    return kept


def _split_raw(observed: TrackTable, timeline: Timeline, max_gap_s: float) -> list[_Piece]:
    """Rules 1-2: one piece per raw track and shot, split at gaps longer than ``max_gap_s``."""
    pieces = []
    for tid in observed.track_ids():
        rows = observed.track(int(tid))
        frames = rows.frame
        shot = timeline.shot_of(frames)
        gap = np.diff(timeline.t[frames]) > max_gap_s + 1e-9
        new_shot = np.diff(shot) != 0
        breaks = np.flatnonzero(gap | new_shot) + 1
        starts = np.r_[0, breaks]
        ends = np.r_[breaks, len(frames)]
        for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
            start = TRACK_START if i == 0 else (SHOT_CUT if new_shot[a - 1] else GAP)
            end = TRACK_END if i == len(starts) - 1 else (SHOT_CUT if new_shot[b - 1] else GAP)
            pieces.append(_Piece(
                (int(tid),), frames[a:b].copy(), rows.xyxy[a:b].astype(np.float64),
                rows.score[a:b].astype(np.float64), start, end,
            ))
    return pieces


def heavy_overlap(a: NDArray, b: NDArray, config: TrackletConfig) -> NDArray[np.bool_]:
    """Whether boxes ``a`` (N, 4) and ``b`` (M, 4) overlap heavily (rule 4) -> (N, M) bool."""
    iou = iou_matrix(a, b)
    inter = intersection_matrix(a, b)
    area_a, area_b = box_area(a)[:, None], box_area(b)[None, :]
    smaller, larger = np.minimum(area_a, area_b), np.maximum(area_a, area_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = np.where(smaller > 0, inter / smaller, 0.0)
        ratio = np.where(larger > 0, smaller / larger, 0.0)
    contained = (inside >= config.containment) & (ratio >= config.containment_min_area_ratio)
    return (iou > config.overlap_iou) | contained


def _overlap_frames(pieces: list[_Piece], config: TrackletConfig) -> dict[tuple[int, int], list[int]]:
    """Frames where each pair of pieces (i < j) overlaps heavily, on interpolated boxes."""
    if len(pieces) < 2:
        return {}
    dense = [p.dense() for p in pieces]
    frame = np.concatenate([d[0] for d in dense])
    owner = np.concatenate([np.full(len(d[0]), i) for i, d in enumerate(dense)])
    boxes = np.concatenate([d[1] for d in dense])
    order = np.argsort(frame, kind="stable")
    frame, owner, boxes = frame[order], owner[order], boxes[order]
    starts = np.flatnonzero(np.r_[True, np.diff(frame) != 0])
    ends = np.r_[starts[1:], len(frame)]
    found: dict[tuple[int, int], list[int]] = {}
    for a, b in zip(starts, ends, strict=True):
        if b - a < 2:
            continue
        heavy = np.triu(heavy_overlap(boxes[a:b], boxes[a:b], config), k=1)
        for i, j in zip(*np.nonzero(heavy), strict=True):
            pi, pj = sorted((int(owner[a + i]), int(owner[a + j])))
            found.setdefault((pi, pj), []).append(int(frame[a]))
    return found


def _episodes(frames: list[int], timeline: Timeline, merge_s: float) -> list[tuple[int, int]]:
    """Group sorted overlap frames into (first, last) episodes, merging pauses up to ``merge_s``."""
    out: list[tuple[int, int]] = []
    for f in frames:
        if out and timeline.t[f] - timeline.t[out[-1][1]] <= merge_s + 1e-9:
            out[-1] = (out[-1][0], f)
        else:
            out.append((f, f))
    return out


def _overlap_cuts(
    pieces: list[_Piece], timeline: Timeline, config: TrackletConfig, inside: list[tuple[int, int, int]]
) -> dict[int, set[int]]:
    """Rule 4: cut both pieces of every ambiguous heavy-overlap episode at its start and after its end.

    Appends (source id, first, last) of every episode cut to ``inside``.
    """
    cuts: dict[int, set[int]] = {}
    detected = np.unique(np.concatenate([p.frame for p in pieces])) if pieces else np.zeros(0, np.int64)
    for (i, j), frames in _overlap_frames(pieces, config).items():
        for first, last in _episodes(frames, timeline, config.overlap_merge_s):
            if _kept_apart(pieces[i], pieces[j], first, last, detected, config):
                continue
            for k in (i, j):
                cuts.setdefault(k, set()).update((first, last + 1))
                inside.append((pieces[k].source_ids[0], first, last))
    return cuts


def _kept_apart(
    p: _Piece, q: _Piece, first: int, last: int, detected: NDArray[np.int64], config: TrackletConfig
) -> bool:
    """Whether the tracker could tell ``p`` and ``q`` apart all through their overlap ``first..last``.

    True when both were detected in every detection frame from the one before the episode to the one
    after it, and at every step each box overlapped its own previous box clearly more than the other's:
    ``IoU(p, p') + IoU(q, q') - IoU(p, q') - IoU(q, p') >= overlap_keep_margin`` (the primes are the
    previous detection frame). A swap needs a step where that sum is near zero (the two boxes nearly
    coincide) or one of them missing (hidden, merged).
    """
    lo, hi = max(p.frame[0], q.frame[0]), min(p.frame[-1], q.frame[-1])
    span = detected[(detected >= lo) & (detected <= hi)]
    a = max(int(np.searchsorted(span, first)) - 1, 0)
    b = min(int(np.searchsorted(span, last, side="right")), len(span) - 1)
    span = span[a:b + 1]
    if len(span) < 2 or not (np.isin(span, p.frame).all() and np.isin(span, q.frame).all()):
        return False
    bp = p.xyxy[np.searchsorted(p.frame, span)]
    bq = q.xyxy[np.searchsorted(q.frame, span)]
    for k in range(1, len(span)):
        iou = iou_matrix(np.stack([bp[k], bq[k]]), np.stack([bp[k - 1], bq[k - 1]]))
        if iou[0, 0] + iou[1, 1] - iou[0, 1] - iou[1, 0] < config.overlap_keep_margin:
            return False
    return True


def _apply_cuts(
    pieces: list[_Piece], cuts: dict[int, set[int]], rule: str, made: list[TrackletCut]
) -> list[_Piece]:
    """Split piece ``k`` before every frame in ``cuts[k]`` (reason OVERLAP); record the cuts made."""
    out = []
    for k, piece in enumerate(pieces):
        rest: _Piece | None = piece
        for at in sorted(cuts.get(k, ())):
            if rest is None:
                break
            before, rest = rest.cut(at)
            if before is not None:
                out.append(before)
                if rest is not None:
                    made.append(TrackletCut(piece.source_ids[0], int(rest.frame[0]), rule))
        if rest is not None:
            out.append(rest)
    return out


def _dense_index(pieces: list[_Piece]) -> dict[int, list[tuple[int, NDArray[np.float64]]]]:
    """Frame -> [(piece index, interpolated box)] of every piece present in that frame."""
    index: dict[int, list[tuple[int, NDArray[np.float64]]]] = {}
    for k, p in enumerate(pieces):
        frames, boxes, _ = p.dense()
        for f, box in zip(frames.tolist(), boxes, strict=True):
            index.setdefault(f, []).append((k, box))
    return index


def _cover(inner: NDArray, outer: NDArray) -> NDArray[np.float64]:
    """Share of each box of ``inner`` (N, 4) inside the box ``outer`` (4,) -> (N,)."""
    inter = intersection_matrix(np.reshape(inner, (-1, 4)), np.reshape(outer, (1, 4)))[:, 0]
    area = box_area(inner)
    return np.where(area > 0, inter / np.maximum(area, 1e-12), 0.0)


def _hidden_gap_cuts(pieces: list[_Piece], timeline: Timeline, config: TrackletConfig) -> dict[int, set[int]]:
    """Rule 5: cut at gaps during which the interpolated box was partly inside someone else's."""
    dense = _dense_index(pieces)
    cuts: dict[int, set[int]] = {}
    for k, p in enumerate(pieces):
        t = timeline.t[p.frame]
        for g in np.flatnonzero(np.diff(t) >= config.hidden_gap_s - 1e-9):
            f0, f1 = int(p.frame[g]), int(p.frame[g + 1])
            frames = np.arange(f0 + 1, f1)
            w = ((frames - f0) / (f1 - f0))[:, None]
            boxes = p.xyxy[g] * (1 - w) + p.xyxy[g + 1] * w
            for f, box in zip(frames.tolist(), boxes, strict=True):
                others = [b for j, b in dense.get(f, ()) if j != k]
                if others and max(float(_cover(box, b)[0]) for b in others) >= config.hidden_cover:
                    cuts.setdefault(k, set()).add(f1)
                    break
    return cuts


def _merge_cuts(
    pieces: list[_Piece], timeline: Timeline, frame_size: tuple[int, int], config: TrackletConfig,
    inside: list[tuple[int, int, int]],
) -> dict[int, set[int]]:
    """Rule 6a: cut a box that grew over a neighbour who just vanished (or shrank to let one out).

    Appends (source id, first, last) of every merged stretch cut out to ``inside``.
    """
    cuts: dict[int, set[int]] = {}
    t = timeline.t
    # Only a piece seen within merge_window_s of the edge can carry the merge (both the window and
    # the 'normal' stretch lie there): testing those alone keeps long clips linear, not quadratic.
    reach = config.merge_window_s + 1e-9
    starts = np.array([t[p.frame[0]] for p in pieces])
    ends = np.array([t[p.frame[-1]] for p in pieces])
    for b, vanished in enumerate(pieces):
        for end in (True, False):  # the neighbour's piece ends (absorbed) / starts (let out)
            reason = vanished.end_reason if end else vanished.start_reason
            if reason == SHOT_CUT:
                continue
            edge = int(vanished.frame[-1] if end else vanished.frame[0])
            box = vanished.xyxy[-1] if end else vanished.xyxy[0]
            shot = timeline.shot_of(edge)
            near = np.flatnonzero((starts <= t[edge] + reach) & (ends >= t[edge] - reach))
            for a in near.tolist():
                carrier = pieces[a]
                if a == b:
                    continue
                dt = (t[carrier.frame] - t[edge]) * (1 if end else -1)
                same_shot = timeline.shot_of(carrier.frame) == shot
                window = same_shot & (dt > 1e-9) & (dt <= config.merge_window_s + 1e-9)
                normal = same_shot & (dt <= 1e-9) & (dt >= -config.merge_window_s - 1e-9)
                if not window.any() or not normal.any():
                    continue
                size = carrier.xyxy[:, 2:] - carrier.xyxy[:, :2]
                ref = np.median(size[normal], axis=0)
                grown = size >= config.merge_growth * ref
                merged = grown.any(axis=1) & (_covers(carrier.xyxy, box) >= config.merge_cover)
                # The growth that starts a merge must be seen on a side that shows the body: a width
                # (height) is only compared where neither this box nor the reference boxes touch the
                # frame's left or right (top or bottom) edge. A dancer walking out of the picture
                # shrinks to a sliver that would make her whole box before look 'grown'
                # (tiktok_stage_ballet f264-f300: width 56-95 against a 28-38 px sliver after f303,
                # the new piece beside her taken for someone let out of a merged box; without that cut
                # identity 0.704 -> 0.796 with no gallery). On the other six labelled clips this drops
                # one merge cut (divyanshu_line_dance f410) and no metric changes.
                free = ~_clipped(carrier.xyxy, frame_size) & ~_clipped(carrier.xyxy[normal], frame_size).any(axis=0)
                hits = np.flatnonzero(window & merged & (grown & free).any(axis=1))
                if not len(hits):
                    continue
                # The episode runs on from the first merged frame while the box stays merged.
                step = 1 if end else -1
                k = hits[0] if end else hits[-1]
                last = k
                while 0 <= last + step < len(merged) and merged[last + step]:
                    last += step
                first, last = sorted((int(carrier.frame[k]), int(carrier.frame[last])))
                cuts.setdefault(a, set()).update((first, last + 1))
                inside.append((carrier.source_ids[0], first, last))
    return cuts


def _covers(outer: NDArray, inner: NDArray) -> NDArray[np.float64]:
    """Share of the box ``inner`` (4,) inside each box of ``outer`` (N, 4) -> (N,)."""
    inter = intersection_matrix(np.reshape(outer, (-1, 4)), np.reshape(inner, (1, 4)))[:, 0]
    area = float(box_area(np.reshape(inner, (1, 4)))[0])
    return inter / area if area > 0 else np.zeros(len(inter))


def _jump_cuts(
    pieces: list[_Piece], timeline: Timeline, frame_size: tuple[int, int], config: TrackletConfig
) -> dict[int, set[int]]:
    """Rule 6b: cut between two close observations whose width, height or aspect differ too much.

    The allowed change grows with the time between the observations (``jump_ratio`` per 0.1 s, at
    least ``jump_ratio``): a swap is instant, a dancer spreading her arms takes a few tenths of a
    second. A side touching the frame's edge says nothing about the body's size: widths are not
    compared while the box touches the left or right edge, heights while it touches the top or bottom.
    """
    cuts: dict[int, set[int]] = {}
    for k, p in enumerate(pieces):
        box = p.xyxy
        size = np.maximum(box[:, 2:] - box[:, :2], 1e-6)
        clipped = _clipped(box, frame_size)  # (n, 2)
        log_w, log_h = np.log(size[:, 0]), np.log(size[:, 1])
        free = ~(clipped[:-1] | clipped[1:])  # (n-1, 2): width / height comparable
        change = np.stack([
            np.where(free[:, 0], np.abs(np.diff(log_w)), 0.0),
            np.where(free[:, 1], np.abs(np.diff(log_h)), 0.0),
            np.where(free.all(axis=1), np.abs(np.diff(log_w - log_h)), 0.0),
        ], axis=1).max(axis=1)
        dt = np.diff(timeline.t[p.frame])
        limit = math.log(config.jump_ratio) * np.maximum(1.0, dt / _JUMP_STEP_S) - 1e-9
        jumps = np.flatnonzero((dt <= config.jump_window_s + 1e-9) & (change >= limit))
        if len(jumps):
            cuts[k] = {int(p.frame[j + 1]) for j in jumps}
    return cuts


def _clipped(boxes: NDArray, frame_size: tuple[int, int]) -> NDArray[np.bool_]:
    """Whether each box (N, 4) touches the frame's left or right edge, and the top or bottom -> (N, 2).

    Column 0 true: the box's width is only the visible part of the body; column 1: its height.
    """
    size = np.array(frame_size, np.float64)
    margin = _EDGE_MARGIN * size
    return (boxes[:, :2] <= margin) | (boxes[:, 2:] >= size - margin)


_EDGE_MARGIN = 0.005
"""A box side within this fraction of the frame size from the frame's edge touches the edge."""
_JUMP_STEP_S = 0.1
"""Time step (s) over which ``jump_ratio`` applies as it is (the default detection step)."""


def _link_candidates(
    pieces: list[_Piece], timeline: Timeline, config: TrackletConfig
) -> list[tuple[int, int]]:
    """Pairs (a, b): piece a's track ended, piece b's track started, and b plausibly continues a."""
    enders = [i for i, p in enumerate(pieces) if p.end_reason == TRACK_END]
    starters = [i for i, p in enumerate(pieces) if p.start_reason == TRACK_START]
    pairs = []
    for a in enders:
        pa = pieces[a]
        fa = int(pa.frame[-1])
        for b in starters:
            pb = pieces[b]
            fb = int(pb.frame[0])
            if fb <= fa or timeline.t[fb] - timeline.t[fa] > config.link_max_gap_s + 1e-9:
                continue
            if timeline.shot_of(fa) != timeline.shot_of(fb):
                continue
            if _close(pa.xyxy[-1], pb.xyxy[0], config):
                pairs.append((a, b))
    return pairs


def _close(end: NDArray, start: NDArray, config: TrackletConfig) -> bool:
    h_end, h_start = end[3] - end[1], start[3] - start[1]
    h = (h_end + h_start) / 2
    if h <= 0:
        return False
    shift = math.hypot(start[0] + start[2] - end[0] - end[2], start[1] + start[3] - end[1] - end[3]) / 2
    return shift <= config.link_max_shift * h and abs(h_start / h_end - 1) <= config.link_max_size_change


def _bridge_is_clear(pieces: list[_Piece], a: int, b: int, config: TrackletConfig) -> bool:
    """Whether the straight path from piece a's end to piece b's start overlaps nobody heavily."""
    pa, pb = pieces[a], pieces[b]
    f0, f1 = int(pa.frame[-1]), int(pb.frame[0])
    frames = np.arange(f0, f1 + 1)
    w = ((frames - f0) / (f1 - f0))[:, None]
    bridge = pa.xyxy[-1] * (1 - w) + pb.xyxy[0] * w
    for k, other in enumerate(pieces):
        if k in (a, b) or other.frame[-1] < f0 or other.frame[0] > f1:
            continue
        oframes, oboxes, _ = other.dense()
        common, i_bridge, i_other = np.intersect1d(frames, oframes, return_indices=True)
        if len(common) and np.any(np.diag(heavy_overlap(bridge[i_bridge], oboxes[i_other], config))):
            return False
    return True


def _link(pieces: list[_Piece], timeline: Timeline, config: TrackletConfig) -> list[_Piece]:
    """Rule 7: join obvious continuations (unique candidates on both sides, clear bridge)."""
    pairs = _link_candidates(pieces, timeline, config)
    n_out = np.bincount([a for a, _ in pairs], minlength=len(pieces))
    n_in = np.bincount([b for _, b in pairs], minlength=len(pieces))
    follow = {
        a: b for a, b in pairs if n_out[a] == 1 and n_in[b] == 1 and _bridge_is_clear(pieces, a, b, config)
    }
    followers = set(follow.values())
    heads = [i for i in range(len(pieces)) if i not in followers]
    out = []
    for head in heads:
        chain = [head]
        while chain[-1] in follow:
            chain.append(follow[chain[-1]])
        parts = [pieces[i] for i in chain]
        out.append(_Piece(
            tuple(s for p in parts for s in p.source_ids),
            np.concatenate([p.frame for p in parts]),
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.score for p in parts]),
            parts[0].start_reason,
            parts[-1].end_reason,
        ))
    return out


def _fill(pieces: list[_Piece]) -> TrackTable:
    """Rule 9: dense rows for every tracklet, ids 1..N in list order, sorted by frame then id."""
    tables = []
    for tid, piece in enumerate(pieces, start=1):
        frames, boxes, scores = piece.dense()
        observed = np.isin(frames, piece.frame)
        tables.append(TrackTable(frames, np.full(len(frames), tid), boxes.astype(np.float32),
                                 scores.astype(np.float32), observed))
    return TrackTable.concat(tables).sorted()


def _infos(
    pieces: list[_Piece], timeline: Timeline, frame_size: tuple[int, int], window_s: float
) -> tuple[TrackletInfo, ...]:
    def at_edge(box: NDArray) -> bool:  # touches the left or right side
        return bool(_clipped(np.reshape(box, (1, 4)), frame_size)[0, 0])

    out = []
    for tid, p in enumerate(pieces, start=1):
        t = timeline.t[p.frame]
        centre = (p.xyxy[:, :2] + p.xyxy[:, 2:]) / 2
        start = t <= t[0] + window_s + 1e-9
        end = t >= t[-1] - window_s - 1e-9
        out.append(TrackletInfo(
            tid, p.source_ids, int(p.frame[0]), int(p.frame[-1]), len(p.frame), p.start_reason, p.end_reason,
            _velocity(t[start], centre[start]), _velocity(t[end], centre[end]),
            at_edge(p.xyxy[0]), at_edge(p.xyxy[-1]),
        ))
    return tuple(out)


def _velocity(t: NDArray[np.float64], centre: NDArray[np.float64]) -> tuple[float, float]:
    """Least-squares velocity (px/s) of centres (n, 2) at times (n,); (0, 0) over less than 0.1 s."""
    if len(t) < 2 or t[-1] - t[0] < _MIN_MOTION_SPAN_S:
        return (0.0, 0.0)
    dt = t - t.mean()
    slope = dt @ (centre - centre.mean(axis=0)) / float(dt @ dt)
    return (float(slope[0]), float(slope[1]))


_MIN_MOTION_SPAN_S = 0.1
"""A velocity is only fitted on observations spanning at least this long (two detection steps)."""
