"""Link tracklets into performers: pairwise evidence, then constrained agglomerative clustering.

Evidence between two tracklets is a log-odds score "same person vs different people", summed over
independent cues, each calibrated on *this* video without any labels:

- **body** appearance (colour stripes): the map from similarity to log-odds is fitted on pairs whose
  answer is known — two samples of one tracklet (same person) and two boxes of one frame (different
  people) — and, for the tracklet prototypes it judges, on prototypes alike (the odd vs the even
  samples of one tracklet; two tracklets sharing a frame). A "same" between two tracklets counts
  only for what exceeds the cue's "same" between either of them and someone it is known not to be
  (look-alike outfits);
- **face** embeddings: calibrated the same way (faces of one tracklet vs faces of tracklets seen at
  the same time), falling back to the thresholds measured on still photos when the video offers too
  few pairs;
- **continuity**: a tracklet that ends where another starts, a moment later in the same shot, and
  not because of an overlap with someone else (then position proves nothing), is likely the same
  person.

Hard constraint: two tracklets seen in the same frame are different people. Clustering merges the
pair of clusters with the highest mean evidence while it is positive; then, if more clusters remain
than performers ever seen together, it keeps merging non-conflicting pairs unless the evidence
clearly says "different people" (or faces calibrated on the video alone do) - one best pair at a
time, or chosen together when that is clearly better (``LinkingConfig.joint_forced``); then a short
cluster (a fragment) joins the performer it resembles most among those it shares no frame with, and
a longer cluster whose appearance says nothing (no evidence, or "different" from everyone alike)
joins the only performer it does not share a frame with, if any.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from fancam.geometry import iou_matrix
from fancam.identity.appearance import Appearance
from fancam.identity.body import DEFAULT_CONFIG as BODY_CONFIG
from fancam.identity.body import (
    BodyCalibration,
    body_prototype,
    fit_calibration,
    paired_similarity,
    similarity_matrix,
)
from fancam.identity.crossing import CrossingConfig, Ends, TrackletMotion, crossing_evidence
from fancam.identity.faces import SAME_PERSON_SIMILARITY, UNKNOWN_SIMILARITY
from fancam.types import Timeline, TrackTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkingConfig:
    """Weights and limits of tracklet linking.

    Attributes:
        body_weight: Weight of body log-odds.
        face_weight: Weight of face log-odds.
        max_cue_log_odds: Each cue's log-odds are clipped to +-this. The per-video calibrations are
            fitted on pairs a few seconds apart at most, so they are overconfident for distant
            moments (a fade to black, a spin into the light): one cue must not veto alone. Measured
            on the bench clip: uncapped, the body cue gave -6 to P1's last 1.3 s (a fade to black)
            against her face and made her a fourth performer; capped at 4, 3 performers (identity
            0.976), and gillhung_dance2's close-up joins its man (5 performers, not 6).
        continuity_gap_s: Longest pause between the end of one tracklet and the start of the next
            for a continuity bonus.
        continuity_shift: Largest distance between end and start box centres, in box heights. Looser than
            the tracklet stage's final join (``TrackletConfig.link_max_shift`` = 0.5): here it only adds
            ``continuity_log_odds`` that face and body evidence can outweigh.
        continuity_log_odds: Log-odds of a continuation.
        min_calibration_pairs: Fewest same and different pairs needed to calibrate a cue on the video.
        merge_threshold: Mean evidence above which two clusters are merged.
        veto_log_odds: In the second phase (too many clusters), pairs with mean evidence below this
            are never merged (-2.5: below one capped cue's -4, so one strongly disagreeing cue can be
            outvoted by the other; measured with max_cue_log_odds on the same two clips).
            The forced merges between it and 0 are mostly right (miryala's P6, P7 and P8 join at -0.1
            to -0.4). Measured (bench_linking.py replay, no gallery), not kept: a bar of -1.5 to 0
            lost dance2 0.926 -> 0.891, hamilton 0.857 -> 0.714 / 0.762 and, at 0, ballet, miryala
            and the line dance; refusing a forced merge when one member pair is below -3 to -3.9
            (complete linkage's element) lost dance2, hamilton, miryala or the line dance, and
            nothing gained; ranking
            forced merges by a lower confidence bound or breaking near-ties by evidence weight moved
            the line dance by +-0.02 and ballet by -0.04, with no trend.
        join_only_partner: In the second phase, a cluster whose appearance says nothing (no evidence,
            or below ``veto_log_odds`` against everyone) joins the only cluster it shares no frame
            with (bench clip: P2's last 0.5 s after the three dancers' pile-up, f807-f822, one
            sample at -4 against all three, was a fourth "person" without it; identity 0.964 ->
            0.970, the other clips unchanged).
        fragment_share: While there are still more clusters than performers, a cluster whose
            frames add up to at most this share of the longest cluster's (a fragment: short, seen
            rarely, its appearance spoilt) joins the cluster it shares no frame with that has the best
            mean evidence, however low (0 disables). Measured: gillhung_dance2's 1 s piece of P3 (body
            -4 against everyone, a far-away view) joins P3, identity 0.891 -> 0.904 (0.917 once
            fragments join performers before each other: a duplicate box of P4, sharing frames with
            all five men, had taken that piece); the line dance's short piece of P4 joins P4,
            0.851 -> 0.866 (P4 crop hit 0.92 -> 1.0); the other five clips unchanged. Every share
            from 0.2 to 1 gave the same results; 0.25 keeps a long-lived extra person (a spectator
            standing by) apart. Tried before ``join_only_partner``: that rule
            alone would also pair a well-seen performer who differs from everyone with the fragment,
            the only cluster it shares no frame with (same results on the 7 clips).
        face_veto: While there are more clusters than performers, two clusters whose faces alone
            say "different" (mean face log-odds below this, with the face cue calibrated on this
            video) are never joined, however alike their outfits: the mean over the cues would let
            a neutral body outvote them. face_recognition_hamilton: Obama's face at -3 / -4 against
            Lin-Manuel Miranda's, body -0.7 / -0.9, mean -2.1 above ``veto_log_odds``: he became
            Miranda with the Lab body descriptor (``BodyConfig.colour_space``; identity 0.810 ->
            0.714), 0.810 with the veto; with the default descriptor the 7 clips are the same with
            or without it (from -2 to -3 the same; 0 disables).
            Still-photo thresholds (no calibration) never veto: miryala's small faces, vetoing
            with them, lost 0.756 -> 0.642. Fragments are not vetoed either (see
            ``fragment_share``): the bench clip's P2 after the pile-up has face -3.6 against herself.
        joint_forced: While there are more clusters than performers, the merges down to the count
            are chosen together, not only one best pair at a time (greedy average linkage): a
            search over the groupings of the clusters (each member's mean evidence against the rest
            of its group above ``veto_log_odds``, no two members apart) for the most merges, then the
            best sum of :meth:`_Clusters.forced_rank` between each piece and the performer it joins.
            The greedy choice stays unless the joint one makes more merges above the veto or scores
            ``joint_margin`` higher. Measured (bench_linking.py replay, no gallery), with the
            close-up face search (branch ``face``) whose 4 new correct faces flipped greedy's coin
            flips: gillhung_dance2 0.891 -> 0.926 (the pile-up pieces of P2 and P3, -2.1 to -2.35
            against both, join their own performers: joint scores 2.79 higher), hamilton 0.714 ->
            0.857 (a face veto left greedy 3 merges and Obama's fragment then joined Lin-Manuel
            Miranda at -1.90; joint finds 4 merges above the veto); without it, the 7 clips are
            unchanged (greedy kept on all of them).
        joint_margin: How much higher the joint choice must score to replace greedy's with as many
            merges. Measured: ballet 0.24 and hamilton 0.50 higher, where the evidence is near 0
            (coin flips: at 0 ballet lost 0.833 -> 0.796, P3's first piece joined P4 at -0.08);
            gillhung_dance2 with close-up faces 2.79.
        joint_max_nodes: Largest joint search (partial groupings visited); beyond, greedy. The line
            dance's 47 clusters with a partner above the veto exceed it (greedy: 0.892; 200,000
            nodes took 30 s and did not finish); the other clips take at most 77 (gillhung_dance2).
        crossing: The crossing resolver, the continuity cue of pairs cut at an overlap
            (:mod:`fancam.identity.crossing`).
    """

    body_weight: float = 1.0
    face_weight: float = 1.0
    max_cue_log_odds: float = 4.0
    continuity_gap_s: float = 0.7
    continuity_shift: float = 0.6
    continuity_log_odds: float = 3.0
    min_calibration_pairs: int = 6
    merge_threshold: float = 0.0
    veto_log_odds: float = -2.5
    join_only_partner: bool = True
    fragment_share: float = 0.25
    face_veto: float = -2.5
    joint_forced: bool = True
    joint_margin: float = 1.0
    joint_max_nodes: int = 5_000
    crossing: CrossingConfig = field(default_factory=CrossingConfig)


@dataclass(frozen=True)
class Tracklets:
    """Per-tracklet facts the linker needs.

    Attributes:
        ids: (T,) tracklet ids.
        first: (T,) first frame.
        last: (T,) last frame.
        shot: (T,) shot index.
        start_box: (T, 4) first box.
        end_box: (T, 4) last box.
        starts_clean: (T,) True when the tracklet does not start at an overlap cut.
        ends_clean: (T,) True when the tracklet does not end at an overlap cut.
        conflict: (T, T) True where two tracklets share a frame (different people).
        sample_of: (S,) index (into ``ids``) of the tracklet of each appearance sample.
        motion: How each tracklet moves at its ends (None: unknown, no crossing resolution).
        seen_apart: (T, T) the conflicts that are not a duplicate box riding on the other (see
            ``DUPLICATE_IOU``): pairs known to be two people (None: every conflict).
    """

    ids: NDArray[np.int64]
    first: NDArray[np.int64]
    last: NDArray[np.int64]
    shot: NDArray[np.int64]
    start_box: NDArray[np.float32]
    end_box: NDArray[np.float32]
    starts_clean: NDArray[np.bool_]
    ends_clean: NDArray[np.bool_]
    conflict: NDArray[np.bool_]
    sample_of: NDArray[np.int64]
    motion: TrackletMotion | None = None
    seen_apart: NDArray[np.bool_] | None = None

    def __len__(self) -> int:
        return len(self.ids)


def describe_tracklets(
    tracks: TrackTable,
    timeline: Timeline,
    appearance: Appearance,
    overlap_cuts: tuple[set[int], set[int]] = (set(), set()),
    motion: TrackletMotion | None = None,
) -> Tracklets:
    """Collect the per-tracklet facts.

    ``overlap_cuts``: ids starting / ending at an overlap cut; ``motion``: each tracklet's motion at its
    ends, in the order of ``tracks.track_ids()``.
    """
    ids = tracks.track_ids()
    index = {int(t): k for k, t in enumerate(ids)}
    n = len(ids)
    first, last = np.zeros(n, np.int64), np.zeros(n, np.int64)
    start_box, end_box = np.zeros((n, 4), np.float32), np.zeros((n, 4), np.float32)
    for k, t in enumerate(ids):
        rows = np.flatnonzero(tracks.track_id == t)
        rows = rows[np.argsort(tracks.frame[rows], kind="stable")]
        first[k], last[k] = tracks.frame[rows[0]], tracks.frame[rows[-1]]
        start_box[k], end_box[k] = tracks.xyxy[rows[0]], tracks.xyxy[rows[-1]]
    min_overlap = max(1, int(round(DUPLICATE_MIN_S / timeline.step_s)))
    conflict, seen_apart = _conflicts(tracks, index, n, min_overlap)
    starts_clean = np.array([int(t) not in overlap_cuts[0] for t in ids])
    ends_clean = np.array([int(t) not in overlap_cuts[1] for t in ids])
    sample_of = np.array([index[int(t)] for t in tracks.track_id[appearance.rows]], np.int64)
    return Tracklets(
        ids, first, last, timeline.shot_of(first), start_box, end_box, starts_clean, ends_clean,
        conflict, sample_of, motion, seen_apart,
    )


# A box that rides on someone else's (a second detection of one dancer, or of her and a neighbour)
# shares frames with that dancer's tracklet yet shows her: it is no look-alike of hers
# (:func:`discount_lookalikes`). Such a pair overlaps by IoU >= DUPLICATE_IOU in most of its shared
# frames, for DUPLICATE_MIN_S at least; two dancers crossing overlap only for a moment. Measured
# (bench_linking.py replay, no gallery): line dance, P7's tracklet and a box beside it overlap by a
# median IoU of 0.38 over 29 frames, gillhung_dance2's duplicate box of P4 by 0.35; performers seen
# together overlap by at most 0.28; ballet's P3 and P4 cross in one frame at 0.43. Counting overlapping
# pairs as look-alikes lost the line dance 0.886 -> 0.879 (P7's tracklet 109 joined spectators); the
# 7 clips gave the same results for IoU 0.2 to 0.35 and minimum overlaps of 2 to 20 frames (0.07 to
# 0.67 s; counting every overlap, ballet's crossing, lost ballet 0.833 -> 0.796).
DUPLICATE_IOU = 0.3
DUPLICATE_MIN_S = 0.25


def _conflicts(
    tracks: TrackTable, index: dict[int, int], n: int, min_overlap_frames: int
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(T, T) pairs sharing a frame, and (T, T) those of them seen apart.

    Seen apart: not overlapping by ``DUPLICATE_IOU`` in most shared frames and in
    ``min_overlap_frames`` at least.
    """
    conflict = np.zeros((n, n), bool)
    shared, overlapping = np.zeros((n, n), np.int64), np.zeros((n, n), np.int64)
    order = np.argsort(tracks.frame, kind="stable")
    bounds = np.flatnonzero(np.diff(tracks.frame[order])) + 1
    for rows in np.split(order, bounds):
        if len(rows) > 1:
            k = np.array([index[int(t)] for t in tracks.track_id[rows]])
            conflict[np.ix_(k, k)] = True
            shared[np.ix_(k, k)] += 1
            overlapping[np.ix_(k, k)] += iou_matrix(tracks.xyxy[rows], tracks.xyxy[rows]) >= DUPLICATE_IOU
    np.fill_diagonal(conflict, False)
    duplicate = (2 * overlapping > shared) & (overlapping >= min_overlap_frames)
    return conflict, conflict & ~duplicate


@dataclass(frozen=True)
class Evidence:
    """Pairwise evidence between tracklets.

    Attributes:
        log_odds: (T, T) log-odds "same person": the weighted mean over the cues that apply (0 where none).
        weight: (T, T) how much evidence there is (0 = none), used to average over clusters.
        body_calibration: The video's body similarity -> log-odds map (None if it could not be fitted).
        face_calibration: The video's face similarity -> log-odds map (None: still-photo thresholds).
        face_log_odds: (T, T) the face cue's own log-odds (0 where none), for its veto.
        face_weight: (T, T) the face cue's weights; all 0 when the face cue is not calibrated on this
            video (then it cannot veto).
        looks: ((T, T), (T, T)) the appearance cues (body and face) alone, for forced merges: their
            weighted log-odds summed over the cues, and their summed weights (None: no appearance).
            One sum, not one pair per cue: forced merges need only the sum, and each (T, T) matrix
            is 48 MB at the 2,440 tracklets of a 10-minute line dance (benchmarks/bench_memory.py).
        continuity: (T, T) the continuity log-odds (0 where none).
    """

    log_odds: NDArray[np.float64]
    weight: NDArray[np.float64]
    body_calibration: BodyCalibration | None = None
    face_calibration: BodyCalibration | None = None
    face_log_odds: NDArray[np.float64] | None = None
    face_weight: NDArray[np.float64] | None = None
    looks: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
    continuity: NDArray[np.float64] | None = None


def pairwise_evidence(
    tracklets: Tracklets, appearance: Appearance, timeline: Timeline, config: LinkingConfig
) -> Evidence:
    """The body, face and continuity evidence of every pair of tracklets, as a weighted mean per pair."""
    n = len(tracklets)
    total, weight = np.zeros((n, n)), np.zeros((n, n))
    body = _body_evidence(tracklets, appearance, timeline, config)
    face = _face_evidence(tracklets, appearance, timeline, config)
    # Each cue's weighted log-odds (0 where it has no opinion) times its weights.
    for cue, cue_weight in ((body, config.body_weight), (face, config.face_weight)):
        total += cue_weight * np.nan_to_num(cue.log_odds) * cue.weight
        weight += cue.weight
    looks = (total.copy(), weight.copy())  # the appearance alone, for forced merges
    cont = _continuity(tracklets, timeline, config)
    total += cont
    weight += (cont != 0).astype(float)
    # Averaging needs sum(weight * log_odds) / sum(weight): store the mean over the cues.
    mean = np.where(weight > 0, total / np.maximum(weight, 1e-9), 0.0)
    # Only faces calibrated on this video may veto a merge (still-photo thresholds misjudge small faces).
    face_weight = face.weight if face.calibration is not None else np.zeros_like(face.weight)
    return Evidence(mean, weight, body.calibration, face.calibration, np.nan_to_num(face.log_odds), face_weight,
                    looks, cont)


@dataclass(frozen=True)
class _Cue:
    """One cue's pairwise log-odds (NaN = no opinion), weights and calibration."""

    log_odds: NDArray[np.float64]
    weight: NDArray[np.float64]
    calibration: BodyCalibration | None


Pairs = tuple[NDArray[np.int64], NDArray[np.int64]]


def _pairs_by_kind(
    tracklets: Tracklets, frames: NDArray[np.int64], owner: NDArray[np.int64], timeline: Timeline,
    min_gap_s: float,
) -> tuple[Pairs, Pairs]:
    """Sample index pairs (i, j), i < j, known to be the same person / different people.

    Same: two samples of one tracklet at least ``min_gap_s`` apart. Different: samples of two
    tracklets that share frames (a conflict), taken within 2 s of each other (similar conditions).
    Built per tracklet and per 2 s window, never over all pairs of samples: memory grows with the pairs
    kept, not with the square of the clip's length.
    """
    t = timeline.t[frames]
    same_i, same_j = [], []
    for k in np.unique(owner):
        members = np.flatnonzero(owner == k)
        a, b = np.triu_indices(len(members), k=1)
        keep = np.abs(t[members[a]] - t[members[b]]) >= min_gap_s
        same_i.append(members[a[keep]])
        same_j.append(members[b[keep]])
    order = np.argsort(t, kind="stable")
    ends = np.searchsorted(t[order], t[order] + 2.0, side="right")
    diff_i, diff_j = [], []
    for pos, end in enumerate(ends):
        i, j = order[pos], order[pos + 1 : end]
        j = j[tracklets.conflict[owner[i], owner[j]]]
        diff_i.append(np.minimum(i, j))
        diff_j.append(np.maximum(i, j))
    empty = np.zeros(0, np.int64)

    def joined(parts: list[NDArray[np.int64]]) -> NDArray[np.int64]:
        return np.concatenate(parts).astype(np.int64) if parts else empty

    return (joined(same_i), joined(same_j)), (joined(diff_i), joined(diff_j))


def _calibrate(
    similarity: Callable[[NDArray[np.int64], NDArray[np.int64]], NDArray[np.float64]],
    same: Pairs, different: Pairs, config: LinkingConfig,
) -> BodyCalibration | None:
    """The cue's calibration from the similarities of the known pairs (None: too few pairs)."""
    s, d = similarity(*same), similarity(*different)
    s, d = s[np.isfinite(s)], d[np.isfinite(d)]
    if len(s) < config.min_calibration_pairs or len(d) < config.min_calibration_pairs:
        return None
    cal = fit_calibration(s, d)
    return cal if cal.slope > 0 else None


def _body_evidence(
    tracklets: Tracklets, appearance: Appearance, timeline: Timeline, config: LinkingConfig
) -> _Cue:
    n = len(tracklets)
    none = _Cue(np.full((n, n), np.nan), np.zeros((n, n)), None)
    valid = np.flatnonzero(np.any(appearance.body != 0, axis=1))
    if len(valid) < 2:
        return none
    desc = appearance.body[valid]
    owner = tracklets.sample_of[valid]
    frames = appearance.frames[valid]
    same, different = _pairs_by_kind(tracklets, frames, owner, timeline, 0.5)
    cal = _calibrate(_similarity_of(desc), same, different, config)
    if cal is None:
        log.info("body cue not calibrated (too few pairs); not used")
        return none
    protos = [body_prototype(desc[owner == k]) for k in range(n)]
    counts = np.array([p.n for p in protos])
    centres = np.stack([p.centre for p in protos])
    proto_sims = similarity_matrix(centres, centres)
    # Pairs of tracklets are judged on prototypes, so their map is fitted on prototypes (the
    # sample-pair map stays the video's calibration: the gallery compares samples with it).
    proto_cal = _prototype_calibration(desc, owner, proto_sims, counts, tracklets.conflict, config) or cal
    out = proto_cal.log_odds(proto_sims)
    _partial_view_log_odds(out, _BodySamples(desc, owner, counts, tracklets.conflict, (same, different)), centres,
                           config)
    out = np.clip(out, -config.max_cue_log_odds, config.max_cue_log_odds)
    two = tracklets.conflict if tracklets.seen_apart is None else tracklets.seen_apart
    out = discount_lookalikes(out, two & (counts[:, None] > 0) & (counts[None, :] > 0))
    # Few samples make a prototype unreliable: weigh by sample count, saturating at 3.
    w = np.minimum(np.minimum.outer(counts, counts), 3) / 3.0
    return _Cue(out, np.where(np.isfinite(out), w, 0.0), cal)


@dataclass(frozen=True)
class _BodySamples:
    """The body samples of a video, as the maps are fitted on them.

    Attributes:
        desc: (S, D) descriptors of the valid samples.
        owner: (S,) tracklet of each sample.
        counts: (T,) valid samples per tracklet.
        conflict: (T, T) tracklets sharing a frame.
        known: (same, different) sample pairs (:func:`_pairs_by_kind`).
    """

    desc: NDArray[np.float32]
    owner: NDArray[np.int64]
    counts: NDArray[np.int64]
    conflict: NDArray[np.bool_]
    known: tuple[Pairs, Pairs]


def _partial_view_log_odds(
    out: NDArray[np.float64], samples: _BodySamples, centres: NDArray[np.float32], config: LinkingConfig
) -> None:
    """Re-judge, in place, the pairs that share only some stripes (a close-up cut by the frame).

    A waist-up close-up and a full body are compared on the stripes both show (head, chest, waist:
    :func:`fancam.identity.body.full_body_box`). Those stripes tell people apart less well than the
    whole body (two dark tops, black hair), so the map fitted on whole prototypes would overrate
    them: for each set of shared stripes the prototype map is fitted again on the same known pairs
    (odd vs even samples of a tracklet; tracklets sharing a frame) compared on those stripes only,
    or, like the whole map, the sample-pair map (``known``: same, different sample pairs) when too
    few tracklets have two samples (face_recognition_hamilton: 5). Pairs sharing every stripe keep
    the video's map. Measured on music-show-like clips (``benchmarks/compose_closeups.py``), with
    close-ups sized by their width (before ``BodyConfig.face_to_body``): gillhung_dance2 2 s / 2 s,
    P5's close-up scored +0.78 against a wide piece of P3 with the whole-prototype map and joined it
    (identity 0.773; 0.816 with these maps).
    """
    layout = BODY_CONFIG.layout
    present = layout.present(centres) & (samples.counts > 0)[:, None]
    shared = present[:, None, :] & present[None, :, :]
    some = shared.any(axis=-1) & ~shared.all(axis=-1)
    if not some.any():
        return
    keys = np.packbits(shared, axis=-1, bitorder="little").astype(np.int64)
    keys = (keys * (256 ** np.arange(keys.shape[-1]))).sum(axis=-1)
    for key in np.unique(keys[some]):
        pairs = some & (keys == key)
        # Blocks left out are zeros: invalid, so every similarity is the mean over the shared stripes.
        kept = np.zeros(layout.dim, np.float32)
        for block in np.flatnonzero(shared[pairs][0]):
            kept[layout.starts[block] : layout.starts[block] + layout.sizes[block]] = 1.0
        desc, on = samples.desc * kept, centres * kept
        sims = similarity_matrix(on, on)
        cal = _prototype_calibration(desc, samples.owner, sims, samples.counts, samples.conflict, config) or (
            _calibrate(_similarity_of(desc), *samples.known, config))
        out[pairs] = cal.log_odds(sims[pairs]) if cal is not None else np.nan


def _similarity_of(desc: NDArray[np.float32]) -> Callable[[NDArray[np.int64], NDArray[np.int64]], NDArray[np.float64]]:
    """Body similarity of sample pairs (i, j) of ``desc``."""
    return lambda i, j: paired_similarity(desc[i], desc[j])


def _prototype_calibration(
    desc: NDArray[np.float32], owner: NDArray[np.int64], proto_sims: NDArray[np.float64],
    counts: NDArray[np.int64], conflict: NDArray[np.bool_], config: LinkingConfig,
) -> BodyCalibration | None:
    """The body map fitted on prototypes, like the pairs it judges (None: too few pairs).

    Same person: the prototypes of the odd and the even samples of one tracklet (2 samples or
    more). Different people: the prototypes of two tracklets that share a frame. A prototype (a
    median over samples) is steadier than one sample, so two people's prototypes are more alike than
    two of their single samples: the sample-pair map, applied to prototypes, called look-alike
    outfits "same". Measured (bench_linking.py replay, no gallery): the even-odds similarity rose
    from 0.851 to 0.876 on miryala, 0.886 to 0.928 on dance2; miryala identity 0.736 -> 0.761
    (P4's 0.3 s piece no longer joins P6 at +2.0), the other six clips unchanged. Splitting into
    first and second halves instead lost linedance 0.879 -> 0.829 (a dancer who turns round is two
    halves that differ: that is not the prototype's noise).
    """
    same = []
    for k in np.flatnonzero(counts >= 2):
        mine = np.flatnonzero(owner == k)
        halves = [body_prototype(desc[mine[start::2]]).centre for start in (0, 1)]
        same.append(float(similarity_matrix(halves[0][None], halves[1][None])[0, 0]))
    known = np.triu(conflict & (counts[:, None] > 0) & (counts[None, :] > 0), 1)
    s, d = np.asarray(same, np.float64), proto_sims[known]
    s, d = s[np.isfinite(s)], d[np.isfinite(d)]
    if len(s) < config.min_calibration_pairs or len(d) < config.min_calibration_pairs:
        return None
    fitted = fit_calibration(s, d)
    return fitted if fitted.slope > 0 else None


def discount_lookalikes(log_odds: NDArray[np.float64], known_different: NDArray[np.bool_]) -> NDArray[np.float64]:
    """A cue's "same person" log-odds, counting only what exceeds its lookalikes' (a ratio test).

    If the cue gives +3 to tracklet ``a`` and a tracklet ``c`` known to be someone else (seen apart
    in the same frames), its +3 between ``a`` and ``b`` cannot tell ``b`` from ``c``'s person:
    between ``a`` and ``b`` the cue counts only its log-odds above the highest it gives a
    known-different pair of either tracklet, and never below 0 (look-alikes make it say nothing, not
    "different"). Negative log-odds are kept. Measured with the prototype map (bench_linking.py
    replay, no gallery): ballet identity 0.796 -> 0.833 (one costume for all: P3's last tracklet no
    longer joins P1's first at +4, which scored +3 against P3's first, seen beside it), line dance
    0.879 -> 0.886 (with ``DUPLICATE_IOU``), the other five clips unchanged; the lower of the two
    tracklets' levels instead of the higher lost linedance 0.879 -> 0.860, half the level lost
    ballet's gain, and the second-highest known-different pair instead of the highest lost miryala
    0.761 -> 0.667.

    Args:
        log_odds: (T, T) the cue's log-odds (NaN: no opinion).
        known_different: (T, T) pairs known to be different people that the cue has an opinion on.
    """
    known = np.where(known_different & np.isfinite(log_odds), log_odds, -np.inf)
    level = np.clip(known.max(axis=1, initial=-np.inf), 0.0, None)
    level = np.maximum.outer(level, level)
    return np.where(log_odds > 0, np.maximum(log_odds - level, 0.0), log_odds)


def _face_evidence(
    tracklets: Tracklets, appearance: Appearance, timeline: Timeline, config: LinkingConfig
) -> _Cue:
    n = len(tracklets)
    out, weight = np.full((n, n), np.nan), np.zeros((n, n))
    has = np.flatnonzero(appearance.has_face)
    if len(has) < 2:
        return _Cue(out, weight, None)
    emb = appearance.face[has].astype(np.float64)
    owner = tracklets.sample_of[has]
    frames = appearance.frames[has]
    same, different = _pairs_by_kind(tracklets, frames, owner, timeline, 0.5)
    fitted = _calibrate(lambda i, j: np.einsum("ij,ij->i", emb[i], emb[j]), same, different, config)
    # Without enough pairs: still-photo thresholds, the midpoint of "same" and "unknown" is even odds.
    mid = 0.5 * (SAME_PERSON_SIMILARITY + UNKNOWN_SIMILARITY)
    cal = fitted or BodyCalibration(slope=200.0, intercept=-200.0 * mid)
    of = [emb[owner == k] for k in range(n)]
    for a in range(n):
        if not len(of[a]):
            continue
        for b in range(a + 1, n):
            if not len(of[b]):
                continue
            sim = float(np.median(of[a] @ of[b].T))
            lo = float(np.clip(cal.log_odds(sim), -config.max_cue_log_odds, config.max_cue_log_odds))
            out[a, b] = out[b, a] = lo
            weight[a, b] = weight[b, a] = min(len(of[a]), len(of[b]), 3) / 3.0
    return _Cue(out, weight, fitted)


def _continuity(tracklets: Tracklets, timeline: Timeline, config: LinkingConfig) -> NDArray[np.float64]:
    """Log-odds of continuations.

    A bonus for clean ones (end of one, start of the next, same place, same shot), and the crossing
    resolver's motion evidence (:mod:`fancam.identity.crossing`) for pairs cut at an overlap.
    """
    n = len(tracklets)
    out = np.zeros((n, n))
    t_first, t_last = timeline.t[tracklets.first], timeline.t[tracklets.last]
    for a in range(n):
        if not tracklets.ends_clean[a]:
            continue
        for b in range(n):
            if a == b or not tracklets.starts_clean[b] or tracklets.shot[a] != tracklets.shot[b]:
                continue
            gap = t_first[b] - t_last[a]
            if not 0 < gap <= config.continuity_gap_s:
                continue
            ea, sb = tracklets.end_box[a], tracklets.start_box[b]
            height = max(float(ea[3] - ea[1]), 1.0)
            shift = np.hypot((ea[0] + ea[2] - sb[0] - sb[2]) / 2, (ea[1] + ea[3] - sb[1] - sb[3]) / 2)
            if shift <= config.continuity_shift * height:
                out[a, b] = out[b, a] = config.continuity_log_odds
    if tracklets.motion is None:
        return out
    ends = Ends(t_first, t_last, tracklets.shot, tracklets.start_box.astype(np.float64),
                tracklets.end_box.astype(np.float64), tracklets.motion)
    crossing = crossing_evidence(ends, config.crossing)
    # Clean pairs keep their bonus: only where one ended or the other started at an overlap cut did
    # position have no say so far.
    cut = (~tracklets.ends_clean[:, None] | ~tracklets.starts_clean[None, :]) & (t_last[:, None] < t_first[None, :])
    cut = cut | cut.T
    return np.where(cut & (out == 0), crossing, out)


Solution = tuple[int, float]
"""A set of forced merges judged: (number of merges, score); see :meth:`_Clusters.grouping_key`."""


class _TooLarge(Exception):
    """The joint search of forced merges would take too long."""


class _Clusters:
    """Mutable state of agglomerative clustering: members, conflicts and evidence sums per cluster."""

    def __init__(self, conflict: NDArray[np.bool_], evidence: Evidence, face_veto: float | None = None) -> None:
        n = len(conflict)
        self.face_veto = face_veto
        self.members = [[k] for k in range(n)]
        self.alive = np.ones(n, bool)
        self.conflict = conflict.copy()
        self.num = evidence.log_odds * evidence.weight
        self.den = evidence.weight.copy()
        zero = np.zeros_like(self.den)
        face_w = evidence.face_weight if evidence.face_weight is not None else zero
        face_lo = evidence.face_log_odds if evidence.face_log_odds is not None else zero
        self.face_num = face_lo * face_w
        self.face_den = face_w.copy()
        self.look_num = evidence.looks[0].copy() if evidence.looks is not None else zero.copy()
        self.look_den = evidence.looks[1].copy() if evidence.looks is not None else zero.copy()
        self.cont = evidence.continuity.copy() if evidence.continuity is not None else zero.copy()

    def forced_rank(self) -> NDArray[np.float64]:
        """(T, T) how likely two clusters are one person, for choosing between forced merges.

        The mean appearance (body and face) log-odds over their tracklet pairs plus the sum of their
        continuity log-odds: a continuation is evidence about where two clusters meet, which the
        mean over all their pairs dilutes by their sizes. gillhung_dance2's pile-up pieces: body -4
        (capped) against every candidate, faces -0.3 to -1 against both P2 and P3 (look-alikes), so
        their means ranked by weights alone (-2.32 vs -2.34), while the crossing resolver said
        +0.41 for P2's piece and P2, -1.51 for it and P3, -0.93 for P3's piece and P2.
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.cont + np.where(self.look_den > 0, self.look_num / self.look_den, 0.0)

    def apart(self, vetoed: bool) -> NDArray[np.bool_]:
        """(T, T) True for pairs of clusters that cannot be one person.

        They share a frame, or (with ``vetoed``) their faces alone clearly say "different" (mean
        face log-odds below ``face_veto``).
        """
        if not vetoed or self.face_veto is None:
            return self.conflict
        with np.errstate(divide="ignore", invalid="ignore"):
            face = np.where(self.face_den > 0, self.face_num / self.face_den, 0.0)
        return self.conflict | (face < self.face_veto)

    def best_pair(self, vetoed: bool = False) -> tuple[int, int, float]:
        """The mergeable pair with the highest mean evidence, and that mean (-inf if none)."""
        score = np.where(self.den > 0, self.num / np.maximum(self.den, 1e-9), -np.inf)
        score[self.apart(vetoed) | ~self.alive[:, None] | ~self.alive[None, :]] = -np.inf
        np.fill_diagonal(score, -np.inf)
        a, b = np.unravel_index(int(np.argmax(score)), score.shape)
        return int(a), int(b), float(score[a, b])

    def only_partner(self, veto: float) -> tuple[int, int] | None:
        """A cluster that can only be one performer, and that performer.

        Used while there are more clusters than performers: a cluster that shares frames with every
        other cluster but one, and whose appearance says nothing - no evidence at all, or evidence
        below ``veto`` against everyone, even against the people it is known to differ from (a crop
        spoilt by a neighbour's body) - can only be that one. Returns (partner, cluster) for the
        smallest such cluster, or None.
        """
        alive = np.flatnonzero(self.alive)
        apart = self.apart(vetoed=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where(self.den > 0, self.num / self.den, -np.inf)
        for k in sorted(alive.tolist(), key=lambda c: len(self.members[c])):
            others = alive[alive != k]
            if (score[k, others] > veto).any():
                continue  # appearance resembles someone: best_pair judged it
            free = [int(c) for c in others if not apart[k, c]]
            if len(free) == 1:
                return free[0], int(k)
        return None

    def fragment_partner(self, length: NDArray[np.float64], max_share: float) -> tuple[int, int] | None:
        """The shortest fragment that can join someone, and the performer it resembles most.

        A fragment is a cluster whose frames add up to at most ``max_share`` of the longest
        cluster's. Its partner is the cluster, sharing no frame with it, with the highest mean
        evidence (any cluster without evidence comes after those with some). Fragments that can
        join a longer cluster go first, shortest first; only then may fragments join each other.
        Returns (partner, fragment) or None when no fragment can join anyone.
        """
        alive = np.flatnonzero(self.alive)
        # Shared frames only: a fragment's face is as unreliable as its body (the bench clip's P2
        # after the pile-up: face -3.6 against herself).
        apart = self.apart(vetoed=False)
        frames = np.array([length[self.members[k]].sum() for k in alive])
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where(self.den > 0, self.num / self.den, -np.inf)
        fragment = dict(zip(alive.tolist(), (frames <= max_share * frames.max()).tolist(), strict=True))
        order = [int(alive[pos]) for pos in np.argsort(frames, kind="stable") if fragment[int(alive[pos])]]
        # A fragment that can join a performer does so before fragments join each other (two spoilt
        # pieces together are still a fragment, and they may then conflict with both performers).
        for performers_only in (True, False):
            for k in order:
                free = [int(c) for c in alive
                        if c != k and not apart[k, c] and not (performers_only and fragment[int(c)])]
                if free:
                    return max(free, key=lambda c: (score[k, c], -c)), k
        return None

    def mean(self, a: int, b: int) -> float:
        """Mean evidence between clusters ``a`` and ``b`` (NaN without any)."""
        return float(self.num[a, b] / self.den[a, b]) if self.den[a, b] > 0 else float("nan")

    def merge(self, a: int, b: int) -> None:
        """Merge cluster ``b`` into ``a``."""
        self.members[a] += self.members[b]
        self.members[b] = []
        self.alive[b] = False
        for m in (self.num, self.den, self.face_num, self.face_den, self.look_num, self.look_den, self.cont):
            m[a, :] += m[b, :]
            m[:, a] += m[:, b]
            m[a, a] = 0.0
        self.conflict[a, :] |= self.conflict[b, :]
        self.conflict[:, a] |= self.conflict[:, b]
        self.conflict[a, a] = False

    def joint_groups(self, veto: float, merges: int, length: NDArray[np.float64],
                     max_nodes: int) -> tuple[Solution, list[list[int]]] | None:
        """The forced merges decided together: groups of alive clusters, each to become one performer.

        Among the partitions of the alive clusters into groups whose members are not apart
        (``apart(vetoed=True)``) and where each member's mean evidence against the rest of its group
        is above ``veto`` (:meth:`grouping_valid`), the best by :meth:`grouping_key`. Returns its key
        and its groups of two clusters or more, or None when the search would visit more than
        ``max_nodes`` partial partitions.
        """
        alive = np.flatnonzero(self.alive)
        apart = self.apart(vetoed=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(self.den > 0, self.num / np.maximum(self.den, 1e-9), -np.inf)
        legal = ~apart & (mean > veto)
        frames = {int(k): float(length[self.members[k]].sum()) for k in alive}
        # Longest first: the first member of a group is its head.
        cand = sorted((int(k) for k in alive if legal[k, alive].any()), key=lambda k: (-frames[k], k))
        rank = self.forced_rank()
        # The most each candidate can add to the score: its best rank against a longer candidate.
        gain = [max([0.0] + [float(rank[k, h]) for h in cand[:i] if not apart[k, h]]) for i, k in enumerate(cand)]
        tail = np.concatenate([np.cumsum(gain[::-1])[::-1], [0.0]])
        best: list[tuple[Solution, list[list[int]]]] = [((0, -np.inf), [])]
        nodes = 0

        def search(i: int, groups: list[list[int]], done: int, score: float) -> None:
            nonlocal nodes
            nodes += 1
            if nodes > max_nodes:
                raise _TooLarge
            reach = min(done + len(cand) - i, merges)
            if (reach, score + tail[i]) <= best[0][0]:
                return  # cannot beat the best found
            if i == len(cand):
                if self.grouping_valid(groups, veto):
                    best[0] = ((done, score), [list(g) for g in groups if len(g) > 1])
                return
            k = cand[i]
            if done < merges:
                # A piece joins a group through a member it could be merged with alone.
                for g in groups:
                    if legal[k, g].any() and not apart[k, g].any():
                        g.append(k)
                        search(i + 1, groups, done + 1, score + float(rank[k, g[0]]))
                        g.pop()
            groups.append([k])
            search(i + 1, groups, done, score)
            groups.pop()

        try:
            search(0, [], 0, 0.0)
        except _TooLarge:
            return None
        log.debug("joint forced merges: %d clusters, %d searched, %d partial groupings", len(alive), len(cand), nodes)
        return best[0]

    def grouping_valid(self, groups: list[list[int]], veto: float) -> bool:
        """Whether each member of each group has mean evidence above ``veto`` against the rest of it."""
        for g in groups:
            for k in g:
                rest = [c for c in g if c != k]
                if rest and not self.den[k, rest].sum() > 0:
                    return False
                if rest and self.num[k, rest].sum() / self.den[k, rest].sum() <= veto:
                    return False
        return True

    def grouping_key(self, groups: list[list[int]], length: NDArray[np.float64]) -> Solution:
        """How good a set of forced merges is: (merges, score), compared in that order.

        Score: the sum, over the members of each group but its head (the longest), of
        :meth:`forced_rank` between member and head: the performer each piece joins.
        """
        rank = self.forced_rank()
        merges, score = 0, 0.0
        for g in groups:
            head = self.head(g, length)
            merges += len(g) - 1
            score += sum(float(rank[k, head]) for k in g if k != head)
        return merges, score

    def head(self, group: list[int], length: NDArray[np.float64]) -> int:
        """The cluster of ``group`` the others join: the longest (frames summed), the first on a tie."""
        return max(group, key=lambda k: (float(length[self.members[k]].sum()), -k))

    def greedy_merges(self, veto: float, expected: int) -> list[tuple[int, int]]:
        """The merges greedy average linkage makes while there are too many clusters (on a copy).

        The best pair that is not apart, while its mean evidence is above ``veto``.
        """
        state = copy.deepcopy(self)
        out = []
        while state.alive.sum() > expected:
            a, b, best = state.best_pair(vetoed=True)
            if not (np.isfinite(best) and best > veto):
                break
            out.append((a, b))
            state.merge(a, b)
        return out

    def labels(self) -> NDArray[np.int64]:
        """(T,) cluster label 0..C-1 of each tracklet."""
        out = np.full(len(self.alive), -1, np.int64)
        for c, k in enumerate(np.flatnonzero(self.alive)):
            out[self.members[k]] = c
        return out


MergeTrace = Callable[[str, list[int], list[int], float], None]
"""Called at every merge of :func:`cluster_tracklets` with the step (``evidence``: the mean evidence
is above ``merge_threshold``, even while there are too many clusters; ``too-many``: forced at or
below it because there are more clusters than performers; ``fragment``, ``only-partner``), the
tracklet indices of the two clusters and the mean evidence."""


def _forced_merges(
    state: _Clusters, config: LinkingConfig, expected: int, length: NDArray[np.float64]
) -> list[tuple[int, int]]:
    """The merges to make while there are more clusters than performers, decided together.

    Greedy average linkage (:meth:`_Clusters.greedy_merges`) unless the joint search
    (:meth:`_Clusters.joint_groups`) finds more merges above the veto, or the same number with a
    score higher by ``config.joint_margin``. Returns (a, b) pairs, in order: merge b into a.
    """
    greedy = state.greedy_merges(config.veto_log_odds, expected)
    if not config.joint_forced:
        return greedy
    joint = state.joint_groups(config.veto_log_odds, int(state.alive.sum()) - expected, length,
                               config.joint_max_nodes)
    if joint is None:
        log.debug("joint forced merges: search too large, greedy")
        return greedy
    owner = {int(k): int(k) for k in np.flatnonzero(state.alive)}
    for a, b in greedy:
        for k, o in owner.items():
            if o == b:
                owner[k] = a
    greedy_groups = [[k for k, o in owner.items() if o == h] for h in set(owner.values())]
    greedy_key = state.grouping_key([g for g in greedy_groups if len(g) > 1], length)
    joint_key = state.grouping_key(joint[1], length)
    log.debug("forced merges: greedy %s, joint %s", greedy_key, joint_key)
    if joint_key[0] < greedy_key[0] or (joint_key[0] == greedy_key[0]
                                        and joint_key[1] <= greedy_key[1] + config.joint_margin):
        return greedy
    out = []
    for group in joint[1]:
        head = state.head(group, length)
        out += [(head, k) for k in group if k != head]
    return out


def cluster_tracklets(
    tracklets: Tracklets, evidence: Evidence, config: LinkingConfig, expected: int | None = None,
    trace: MergeTrace | None = None,
) -> NDArray[np.int64]:
    """Constrained average-linkage clustering; returns (T,) cluster labels 0..C-1.

    Args:
        tracklets: Tracklet facts (conflicts are hard constraints).
        evidence: Pairwise log-odds and weights.
        config: Thresholds.
        expected: Number of performers; while more clusters remain, clusters keep merging unless the
            evidence says "different" (below ``config.veto_log_odds``), then fragments join their
            likeliest performer (``LinkingConfig.fragment_share``), then a cluster that can only be
            one performer joins it (``LinkingConfig.join_only_partner``). None = only phase one.
        trace: Told of every merge (diagnosis: ``benchmarks/bench_linking.py``).
    """
    state = _Clusters(tracklets.conflict, evidence, config.face_veto if config.face_veto < 0 else None)
    length = np.asarray(tracklets.last - tracklets.first + 1, np.float64)
    while state.alive.sum() > 1:
        too_many = expected is not None and state.alive.sum() > expected
        a, b, best = state.best_pair(vetoed=too_many)
        threshold = config.veto_log_odds if too_many else config.merge_threshold
        # Traced as forced ("too-many") only where the evidence alone would not have merged them.
        step = "too-many" if too_many and not best > config.merge_threshold else "evidence"
        forced = None
        if expected is not None and too_many and np.isfinite(best) and threshold < best <= config.merge_threshold:
            for a, b in _forced_merges(state, config, expected, length):
                mean = state.mean(a, b)
                if trace is not None:
                    step = "too-many" if not mean > config.merge_threshold else "evidence"
                    trace(step, list(state.members[a]), list(state.members[b]), mean)
                state.merge(a, b)
            continue
        if not (np.isfinite(best) and best > threshold):
            if too_many and config.fragment_share > 0:
                forced, step = state.fragment_partner(length, config.fragment_share), "fragment"
            if forced is None and too_many and config.join_only_partner:
                forced, step = state.only_partner(config.veto_log_odds), "only-partner"
            if forced is None:
                break
            a, b = forced
            best = state.mean(a, b)
        if trace is not None:
            trace(step, list(state.members[a]), list(state.members[b]), best)
        state.merge(a, b)
    return state.labels()
