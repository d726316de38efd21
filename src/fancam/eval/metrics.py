"""Scores of an analysis and a camera path against hand-labelled ground truth (DESIGN.md, "Metrics").

Inputs are the three CSV files of DESIGN.md: ``GT.csv`` (labelled keyframes), ``tracks.csv`` (the
analysis) and ``OUT.crop.csv`` (a rendered camera path), loaded and validated by :mod:`fancam.io.tables`.

Decisions the definitions leave open (kept here so every score is reproducible):

- **Matching.** In each GT keyframe, *all* GT boxes (uncertain ones too) are matched one-to-one to
  *all* ``tracks.csv`` boxes of that frame (``unknown`` ones too) by Hungarian assignment on IoU; pairs
  below IoU 0.5 are not allowed. Uncertain GT rows, and the predicted boxes matched to them, are then
  left out of every score, so a box on a person nobody could label is neither right nor wrong.
- **IDF1 / HOTA** use the ``person`` column as the predicted identity (an ID switch of the final
  identity counts). Rows named ``unknown`` are *not* identity predictions: they are dropped (the
  product says "I do not know who this is", e.g. a backup dancer whom GT does not label), so calling a
  performer ``unknown`` costs recall but not precision. A name used twice in one frame (the seed
  prototype allows this) keeps that name on its highest-scoring box; the other boxes each get an id of
  their own, since one trajectory cannot be in two places. A keyframe in which no performer is
  visible has no GT rows and is therefore not evaluated.
- **Crop metrics** consider the GT keyframes for which the crop file has a row (a render trimmed with
  ``--start``/``--end`` is scored on its own span).
- **Lag** needs at least :data:`LAG_MIN_PAIRS` frame pairs at a shift and movement in both series.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from fancam.errors import UsageError
from fancam.geometry import head_point, iou_matrix
from fancam.io.tables import (
    UNKNOWN,
    CropTable,
    GroundTruth,
    PredictedTracks,
    load_crop,
    load_gt,
    load_tracks,
)

logger = logging.getLogger(__name__)

MATCH_IOU = 0.5
"""Smallest IoU of a GT box and a predicted box that may be matched."""
LAG_MAX_SHIFT = 30
"""Lag is searched within +-this many frames."""
LAG_MAX_GAP_S = 1.0
"""GT keyframes further apart than this (seconds) are not interpolated between for the lag."""
LAG_MIN_PAIRS = 10
"""Fewest (camera, target) frame pairs a shift needs to count in the lag search."""
_EPS = 1e-9


# ----------------------------------------------------------------------------------------- matching
def match_keyframes(gt: GroundTruth, tracks: PredictedTracks) -> NDArray[np.int64]:
    """Match GT boxes to predicted boxes of the same frame (Hungarian on IoU, pairs with IoU >= 0.5).

    Returns:
        (N,) int64: for each GT row, the index of its matched ``tracks`` row, or -1.
    """
    match = np.full(len(gt.frame), -1, np.int64)
    at_key = np.flatnonzero(np.isin(tracks.frame, gt.keyframes))
    by_frame = _group(tracks.frame[at_key])
    for f, gt_rows in _group(gt.frame).items():
        pred_rows = at_key[by_frame.get(f, np.zeros(0, np.int64))]
        if len(pred_rows) == 0:
            continue
        iou = iou_matrix(gt.xyxy[gt_rows], tracks.xyxy[pred_rows])
        score = np.where(iou >= MATCH_IOU - _EPS, iou, 0.0)
        rows, cols = linear_sum_assignment(-score)
        keep = score[rows, cols] > 0
        match[gt_rows[rows[keep]]] = pred_rows[cols[keep]]
    return match


def _group(frame: NDArray[np.int64]) -> dict[int, NDArray[np.int64]]:
    """Row indices of each frame value."""
    if len(frame) == 0:
        return {}
    order = np.argsort(frame, kind="stable")
    values, starts = np.unique(frame[order], return_index=True)
    return dict(zip(values.tolist(), np.split(order, starts[1:]), strict=True))


def _check_alignment(gt: GroundTruth, tracks: PredictedTracks) -> None:
    """Log a warning when GT and tracks disagree on frame numbering or coverage."""
    if len(tracks.frame) and gt.frame.max() > tracks.frame.max():
        logger.warning(
            "%s ends at frame %d but %s labels frames up to %d: those keyframes count as misses",
            tracks.source, tracks.frame.max(), gt.source, gt.frame.max(),
        )
    t_of_frame = dict(zip(tracks.frame.tolist(), tracks.t.tolist(), strict=True))
    pairs = zip(gt.frame.tolist(), gt.t.tolist(), strict=True)
    diffs = [abs(t_of_frame[f] - t) for f, t in pairs if f in t_of_frame]
    if diffs and max(diffs) > 0.02:
        logger.warning(
            "GT and tracks disagree on the time of a frame by up to %.3f s: are both 0-based decode "
            "indices of the same video?", max(diffs),
        )


# ----------------------------------------------------------------------------------------- identity
@dataclass(frozen=True)
class IdentityScores:
    """Identity accuracy over the scored GT rows.

    Attributes:
        accuracy: Share of scored GT rows whose matched box carries the right name.
        correct: Rows counted right.
        total: Scored GT rows (uncertain rows excluded).
        unmatched: Scored GT rows without a matched box (counted wrong).
        mapping: (predicted name, GT person) pairs used without a gallery; empty with a gallery.
        per_person: (GT person, correct, total) for each performer.
    """

    accuracy: float
    correct: int
    total: int
    unmatched: int
    mapping: tuple[tuple[str, str], ...]
    per_person: tuple[tuple[str, int, int], ...]


def map_names(gt_person: Sequence[str], pred_person: Sequence[str]) -> dict[str, str]:
    """One-to-one map of predicted names to GT persons maximising the number of agreeing pairs.

    Args:
        gt_person: GT person of each matched pair.
        pred_person: Predicted name of each matched pair (``unknown`` is never mapped).

    Returns:
        Predicted name -> GT person, for the pairs with at least one agreement.
    """
    pairs = [(p, g) for g, p in zip(gt_person, pred_person, strict=True) if p != UNKNOWN]
    preds = sorted({p for p, _ in pairs})
    gts = sorted({g for _, g in pairs})
    if not pairs:
        return {}
    counts = np.zeros((len(preds), len(gts)))
    for p, g in pairs:
        counts[preds.index(p), gts.index(g)] += 1
    rows, cols = linear_sum_assignment(-counts)
    return {preds[r]: gts[c] for r, c in zip(rows, cols, strict=True) if counts[r, c] > 0}


def identity_scores(
    gt: GroundTruth, tracks: PredictedTracks, match: NDArray[np.int64], *, named: bool
) -> IdentityScores:
    """Identity accuracy (DESIGN.md): share of scored GT rows whose matched box has the GT name.

    Args:
        gt: Ground truth.
        tracks: Predictions.
        match: Output of :func:`match_keyframes`.
        named: True when names come from a gallery (compared as they are); False to first map
            predicted names one-to-one to GT persons so as to maximise agreement (as IDF1 does).
    """
    scored = ~gt.uncertain
    matched = scored & (match >= 0)
    pred = np.full(len(gt.frame), "", dtype=object)
    pred[matched] = tracks.person[match[matched]]
    mapping: dict[str, str] = {}
    if not named:
        mapping = map_names(gt.person[matched].tolist(), pred[matched].tolist())
        pred[matched] = [mapping.get(p, "") for p in pred[matched]]
    right = matched & (pred == gt.person.astype(object))
    per_person = tuple(
        (name, int(right[gt.person == name].sum()), int(scored[gt.person == name].sum()))
        for name in gt.names()
    )
    total = int(scored.sum())
    return IdentityScores(
        accuracy=float(right.sum()) / total if total else math.nan, correct=int(right.sum()), total=total,
        unmatched=int((scored & (match < 0)).sum()), mapping=tuple(sorted(mapping.items())),
        per_person=per_person,
    )


# ----------------------------------------------------------------------------------------- IDF1/HOTA
IDF1_HINT = "IDF1 needs motmetrics: pip install 'fancam[eval]'"
HOTA_HINT = "HOTA needs trackeval: pip install --no-deps trackeval==1.3.0"
"""What to install when a score is not available (trackeval's own dependencies would pull in a second,
GUI OpenCV over the headless one fancam uses, hence ``--no-deps``; it needs only numpy and scipy)."""


@dataclass(frozen=True)
class TrackingScores:
    """IDF1 (``motmetrics``, else ``trackeval``) and HOTA (``trackeval``) on the GT keyframes.

    A score whose library is not installed is None (see :data:`IDF1_HINT`, :data:`HOTA_HINT`).

    Attributes:
        idf1: Identity F1.
        idp: Identity precision.
        idr: Identity recall.
        hota: HOTA averaged over the IoU thresholds 0.05..0.95.
        deta: Detection accuracy (same average).
        assa: Association accuracy (same average).
        predictions: Predicted boxes scored (at keyframes, not ``unknown``, not on uncertain rows).
        unknown: ``unknown`` boxes at keyframes left out.
        duplicates: Boxes at keyframes that repeated a name already used in their frame.
    """

    idf1: float | None
    idp: float | None
    idr: float | None
    hota: float | None
    deta: float | None
    assa: float | None
    predictions: int
    unknown: int
    duplicates: int


def _dense_ids(labels: list[list[str]]) -> tuple[list[NDArray[np.int64]], int]:
    """Turn per-timestep string labels into 0-based int ids shared across timesteps."""
    table: dict[str, int] = {}
    ids = [np.array([table.setdefault(x, len(table)) for x in step], np.int64) for step in labels]
    return ids, len(table)


def _predicted_labels(tracks: PredictedTracks, rows: NDArray[np.int64]) -> tuple[list[str], int]:
    """Identity label of each predicted row of one frame; repeated names keep the best-scoring box."""
    labels = tracks.person[rows].tolist()
    order = np.lexsort((tracks.tracklet[rows], -tracks.score[rows]))
    seen: set[str] = set()
    duplicates = 0
    for i in order.tolist():
        if labels[i] in seen:
            labels[i] = f"{labels[i]}#row{rows[i]}"
            duplicates += 1
        seen.add(tracks.person[rows[i]])
    return labels, duplicates


def trackeval_data(gt: GroundTruth, tracks: PredictedTracks, match: NDArray[np.int64]) -> tuple[dict, dict]:
    """Build the per-sequence data dict trackeval's metrics expect, restricted to GT keyframes.

    Returns:
        The data dict, and counts of the predictions left out or relabelled.
    """
    gt_groups = _group(gt.frame)
    at_key = np.flatnonzero(np.isin(tracks.frame, gt.keyframes))
    pred_groups = _group(tracks.frame[at_key])
    on_uncertain = set(match[gt.uncertain & (match >= 0)].tolist())
    gt_labels, pred_labels, similarity = [], [], []
    counts = {"unknown": 0, "duplicates": 0}
    for f in gt.keyframes.tolist():
        g = gt_groups[f][~gt.uncertain[gt_groups[f]]]
        p = at_key[pred_groups.get(f, np.zeros(0, np.int64))]
        p = np.array([r for r in p.tolist() if r not in on_uncertain], np.int64)
        is_unknown = tracks.person[p] == UNKNOWN if len(p) else np.zeros(0, bool)
        counts["unknown"] += int(is_unknown.sum())
        p = p[~is_unknown]
        labels, dup = _predicted_labels(tracks, p)
        counts["duplicates"] += dup
        gt_labels.append(gt.person[g].tolist())
        pred_labels.append(labels)
        similarity.append(iou_matrix(gt.xyxy[g], tracks.xyxy[p]))
    gt_ids, n_gt = _dense_ids(gt_labels)
    pred_ids, n_pred = _dense_ids(pred_labels)
    data = {
        "num_timesteps": len(gt_ids), "num_gt_ids": n_gt, "num_tracker_ids": n_pred,
        "num_gt_dets": sum(map(len, gt_ids)), "num_tracker_dets": sum(map(len, pred_ids)),
        "gt_ids": gt_ids, "tracker_ids": pred_ids, "similarity_scores": similarity,
    }
    return data, counts


def _trackeval_metrics() -> tuple[type, type] | None:
    """The HOTA and Identity classes of trackeval, or None when trackeval is not installed."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints about optional datasets
            from trackeval.metrics import HOTA, Identity
    except ImportError as exc:
        logger.debug("trackeval unavailable: %s", exc)
        return None
    return HOTA, Identity


def motmetrics_identity(data: dict) -> tuple[float, float, float] | None:
    """(IDF1, IDP, IDR) by motmetrics from a :func:`trackeval_data` dict; None without motmetrics.

    Pairs with IoU >= 0.5 are candidate matches in each frame (as in trackeval's Identity metric); the
    identities are then matched globally to maximise the frames they share.
    """
    try:
        import motmetrics
    except ImportError as exc:
        logger.debug("motmetrics unavailable: %s", exc)
        return None
    acc = motmetrics.MOTAccumulator(auto_id=True)
    for gt_ids, pred_ids, sim in zip(data["gt_ids"], data["tracker_ids"], data["similarity_scores"], strict=True):
        sim = np.asarray(sim, np.float64).reshape(len(gt_ids), len(pred_ids))
        acc.update(gt_ids.tolist(), pred_ids.tolist(), np.where(sim >= MATCH_IOU, 1.0 - sim, np.nan))
    row = motmetrics.metrics.create().compute(acc, metrics=["idf1", "idp", "idr"], name="video").iloc[0]
    return float(row["idf1"]), float(row["idp"]), float(row["idr"])


def tracking_scores(gt: GroundTruth, tracks: PredictedTracks, match: NDArray[np.int64]) -> TrackingScores:
    """IDF1 (motmetrics, else trackeval) and HOTA (trackeval) of the ``person`` column on the keyframes."""
    data, counts = trackeval_data(gt, tracks, match)
    classes = _trackeval_metrics()
    ident = motmetrics_identity(data)
    if ident is None and classes is not None:
        scores = classes[1]({"THRESHOLD": MATCH_IOU, "PRINT_CONFIG": False}).eval_sequence(data)
        ident = float(scores["IDF1"]), float(scores["IDP"]), float(scores["IDR"])
    hota: tuple[float | None, ...] = (None, None, None)
    if classes is not None:
        h = classes[0]().eval_sequence(data)
        hota = float(np.mean(h["HOTA"])), float(np.mean(h["DetA"])), float(np.mean(h["AssA"]))
    idf1, idp, idr = ident if ident is not None else (None, None, None)
    return TrackingScores(
        idf1=idf1, idp=idp, idr=idr, hota=hota[0], deta=hota[1], assa=hota[2],
        predictions=int(data["num_tracker_dets"]), unknown=counts["unknown"], duplicates=counts["duplicates"],
    )


# ----------------------------------------------------------------------------------------- crop
@dataclass(frozen=True)
class CropScores:
    """How well a camera path follows one target (DESIGN.md, "crop hit rate" to "lag").

    Attributes:
        target: GT person followed.
        visible: Keyframes with a crop row where the target is labelled (wide share denominator).
        eligible: Those where the target is also not occluded (hit rate denominator).
        hits: Eligible keyframes counted as hits.
        hit_rate: ``hits / eligible``.
        framing: Median over the hits of target box height / crop height.
        jitter: Mean absolute second difference of the crop centre per frame / crop height.
        wide_share: Share of the visible keyframes in ``search`` or ``wide`` mode.
        lag_frames: Shift (frames) maximising the correlation of camera x and target head x;
            positive = camera late; None when undefined (camera or target still, too little overlap).
    """

    target: str
    visible: int
    eligible: int
    hits: int
    hit_rate: float
    framing: float
    jitter: float
    wide_share: float
    lag_frames: int | None


def clamped_centres(points: NDArray, crop_wh: tuple[float, float], frame_size: tuple[int, int]) -> NDArray:
    """Centres (N, 2) a crop of size ``crop_wh`` would have following ``points``, kept inside the frame."""
    (w, h), (fw, fh) = crop_wh, frame_size
    lo = np.array([min(w / 2, fw / 2), min(h / 2, fh / 2)])
    hi = np.array([max(fw - w / 2, fw / 2), max(fh - h / 2, fh / 2)])
    return np.clip(np.asarray(points, np.float64).reshape(-1, 2), lo, hi)


def is_hit(crop_xyxy: NDArray, target: int, boxes: NDArray, frame_size: tuple[int, int]) -> bool:
    """Hit test of one ``follow`` crop (DESIGN.md).

    A hit contains the target's head point and is centred no farther from the target's clamped centre
    than from any other performer's (ties are hits).

    Args:
        crop_xyxy: (4,) crop rectangle.
        target: Row of the target in ``boxes``.
        boxes: (P, 4) boxes of every labelled performer in the frame.
        frame_size: (width, height) of the source frame.
    """
    heads = head_point(boxes)
    x1, y1, x2, y2 = (float(v) for v in crop_xyxy)
    hx, hy = heads[target]
    if not (x1 <= hx <= x2 and y1 <= hy <= y2):
        return False
    centres = clamped_centres(heads, (x2 - x1, y2 - y1), frame_size)
    dist = np.hypot(*(centres - [(x1 + x2) / 2, (y1 + y2) / 2]).T)
    return bool(dist[target] <= np.delete(dist, target).min(initial=np.inf) + 1e-6)


def crop_jitter(crop: CropTable) -> float:
    """Mean |second difference| of the crop centre over runs of consecutive frames / crop height."""
    centre = (crop.xyxy[:, :2] + crop.xyxy[:, 2:]) / 2
    height = crop.xyxy[:, 3] - crop.xyxy[:, 1]
    inner = np.flatnonzero((crop.frame[2:] - crop.frame[:-2]) == 2) + 1
    if len(inner) == 0:
        return math.nan
    d2 = centre[inner - 1] - 2 * centre[inner] + centre[inner + 1]
    return float(np.mean(np.hypot(d2[:, 0], d2[:, 1]) / height[inner]))


def _series(frames: NDArray, values: NDArray, start: int, length: int) -> NDArray[np.float64]:
    """Per-frame series over ``[start, start + length)`` with NaN where no value is given."""
    out = np.full(length, np.nan)
    out[frames - start] = values
    return out


def target_head_x(gt: GroundTruth, target: str) -> tuple[int, NDArray[np.float64]]:
    """Target head x per frame, linear between keyframes at most :data:`LAG_MAX_GAP_S` apart.

    Returns:
        First frame, and (F,) head x from that frame on (NaN inside longer gaps).
    """
    rows = np.flatnonzero((gt.person == target) & ~gt.uncertain)
    rows = rows[np.argsort(gt.frame[rows])]
    f, t = gt.frame[rows], gt.t[rows]
    x = (gt.xyxy[rows, 0] + gt.xyxy[rows, 2]) / 2
    out = _series(f, x, int(f[0]), int(f[-1] - f[0] + 1))
    for i in np.flatnonzero(np.diff(t) <= LAG_MAX_GAP_S + 1e-6):
        span = np.arange(f[i], f[i + 1] + 1)
        out[span - f[0]] = np.interp(span, [f[i], f[i + 1]], [x[i], x[i + 1]])
    return int(f[0]), out


def crop_lag(gt: GroundTruth, crop: CropTable, target: str) -> int | None:
    """Shift within +-:data:`LAG_MAX_SHIFT` frames maximising corr(camera x at f + s, head x at f).

    Only ``follow`` frames of the camera count. Positive means the camera is late.
    """
    follow = crop.mode == "follow"
    cam_x = (crop.xyxy[follow, 0] + crop.xyxy[follow, 2]) / 2
    if len(cam_x) < 2 or np.ptp(cam_x) < 1e-6:
        return None
    head_start, head = target_head_x(gt, target)
    start = min(head_start, int(crop.frame.min())) - LAG_MAX_SHIFT
    length = max(head_start + len(head), int(crop.frame.max()) + 1) - start + LAG_MAX_SHIFT
    cam = _series(crop.frame[follow], cam_x, start, length)
    tgt = _series(np.arange(head_start, head_start + len(head)), head, start, length)
    best, best_corr = None, -np.inf
    for s in sorted(range(-LAG_MAX_SHIFT, LAG_MAX_SHIFT + 1), key=abs):
        a, b = cam[LAG_MAX_SHIFT + s: length - LAG_MAX_SHIFT + s], tgt[LAG_MAX_SHIFT: length - LAG_MAX_SHIFT]
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < LAG_MIN_PAIRS or np.ptp(a[ok]) < 1e-6 or np.ptp(b[ok]) < 1e-6:
            continue
        corr = float(np.corrcoef(a[ok], b[ok])[0, 1])
        if corr > best_corr + 1e-12:
            best, best_corr = s, corr
    return best


def crop_scores(gt: GroundTruth, crop: CropTable, target: str, frame_size: tuple[int, int]) -> CropScores:
    """Crop hit rate, framing, jitter, wide share and lag of a camera path following ``target``.

    Args:
        gt: Ground truth.
        crop: The camera path.
        target: GT person name the render follows.
        frame_size: Source frame (width, height) in pixels, to clamp crop centres.

    Raises:
        UsageError: ``target`` is not a (scored) GT person.
    """
    if target not in gt.names():
        names = ", ".join(gt.names())
        raise UsageError(f"target {target!r} is not in {gt.source}; its performers are {names}")
    crop_row = dict(zip(crop.frame.tolist(), range(len(crop.frame)), strict=True))
    groups = _group(gt.frame)
    visible = eligible = wide = 0
    framing: list[float] = []
    for f in gt.keyframes.tolist():
        rows = groups[f][~gt.uncertain[groups[f]]]
        names = gt.person[rows].tolist()
        if target not in names or f not in crop_row:
            if target in names and crop.frame[0] <= f <= crop.frame[-1]:
                logger.warning("%s has no row for keyframe %d", crop.source, f)
            continue
        k, i = crop_row[f], names.index(target)
        visible += 1
        wide += crop.mode[k] != "follow"
        if gt.occluded[rows[i]]:
            continue
        eligible += 1
        if crop.mode[k] == "follow" and is_hit(crop.xyxy[k], i, gt.xyxy[rows], frame_size):
            box, c = gt.xyxy[rows[i]], crop.xyxy[k]
            framing.append((box[3] - box[1]) / (c[3] - c[1]))
    return CropScores(
        target=target, visible=visible, eligible=eligible, hits=len(framing),
        hit_rate=len(framing) / eligible if eligible else math.nan,
        framing=float(np.median(framing)) if framing else math.nan,
        jitter=crop_jitter(crop), wide_share=wide / visible if visible else math.nan,
        lag_frames=crop_lag(gt, crop, target),
    )


# ----------------------------------------------------------------------------------------- report
@dataclass(frozen=True)
class EvalReport:
    """Everything ``fancam eval`` measures.

    Attributes:
        gt_file: Ground-truth file.
        tracks_file: Tracks file scored.
        named: Whether identities were compared by name (gallery) or mapped first (no gallery).
        keyframes: Labelled keyframes.
        gt_rows: Scored GT rows (uncertain excluded).
        uncertain_rows: GT rows left out.
        identity: Identity accuracy.
        tracking: IDF1 and HOTA.
        crop: Camera-path scores, when a crop file was given.
    """

    gt_file: str
    tracks_file: str
    named: bool
    keyframes: int
    gt_rows: int
    uncertain_rows: int
    identity: IdentityScores
    tracking: TrackingScores
    crop: CropScores | None = None

    def to_dict(self) -> dict:
        """Plain dict (NaN becomes None)."""
        plain = _no_nan(dataclasses.asdict(self))
        assert isinstance(plain, dict)
        return plain

    def to_json(self) -> str:
        """JSON text (NaN becomes null)."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)


def _no_nan(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_no_nan(v) for v in value]
    return value


def evaluate(
    tracks_csv: Path | str | PredictedTracks,
    gt_csv: Path | str | GroundTruth,
    *,
    named: bool,
    crop_csv: Path | str | CropTable | None = None,
    target: str | None = None,
    frame_size: tuple[int, int] | None = None,
) -> EvalReport:
    """Score an analysis (and optionally a camera path) against ground truth.

    Args:
        tracks_csv: ``tracks.csv`` path, or rows from :func:`~fancam.io.tables.load_tracks`.
        gt_csv: ``GT.csv`` path, or rows from :func:`~fancam.io.tables.load_gt` (load it yourself to check it
            against the video's frame count).
        named: True when ``person`` names come from a gallery and are compared as they are; False to
            map them one-to-one to GT persons first (identity accuracy only; IDF1/HOTA always map).
        crop_csv: Optional ``OUT.crop.csv`` path or rows from :func:`~fancam.io.tables.load_crop`.
        target: GT person the crop follows (required with ``crop_csv``).
        frame_size: Source (width, height) in pixels (required with ``crop_csv``).

    Returns:
        The report.

    Raises:
        InputError: A file is missing or malformed.
        UsageError: ``crop_csv`` without ``target``/``frame_size``, or an unknown target.
    """
    gt = gt_csv if isinstance(gt_csv, GroundTruth) else load_gt(gt_csv)
    tracks = tracks_csv if isinstance(tracks_csv, PredictedTracks) else load_tracks(tracks_csv)
    _check_alignment(gt, tracks)
    match = match_keyframes(gt, tracks)
    crop = None
    if crop_csv is not None:
        if target is None or frame_size is None:
            raise UsageError("scoring a crop needs the target's GT name and the frame size")
        path = crop_csv if isinstance(crop_csv, CropTable) else load_crop(crop_csv)
        crop = crop_scores(gt, path, target, frame_size)
    return EvalReport(
        gt_file=gt.source, tracks_file=tracks.source, named=named, keyframes=len(gt.keyframes),
        gt_rows=int((~gt.uncertain).sum()), uncertain_rows=int(gt.uncertain.sum()),
        identity=identity_scores(gt, tracks, match, named=named),
        tracking=tracking_scores(gt, tracks, match), crop=crop,
    )


def _fmt(value: float | int | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def format_report(report: EvalReport) -> str:
    """Plain-text table of a report, for the terminal."""
    ident, trk = report.identity, report.tracking
    mode = "gallery names" if report.named else "names mapped to GT persons"
    lines = [
        f"ground truth  {report.gt_file}: {report.keyframes} keyframes, {report.gt_rows} rows "
        f"({report.uncertain_rows} uncertain left out)",
        f"tracks        {report.tracks_file}",
        "",
        f"{'metric':<20}{'value':>8}  detail",
        f"{'identity accuracy':<20}{_fmt(ident.accuracy):>8}  {ident.correct}/{ident.total} rows, "
        f"{ident.unmatched} unmatched ({mode})",
    ]
    lines += [
        f"{'  ' + name:<20}{_fmt(c / n if n else math.nan):>8}  {c}/{n}" for name, c, n in ident.per_person
    ]
    if ident.mapping:
        lines.append(f"{'  mapping':<20}{'':>8}  " + ", ".join(f"{p}->{g}" for p, g in ident.mapping))
    idf1 = f"IDP {_fmt(trk.idp)}, IDR {_fmt(trk.idr)}" if trk.idf1 is not None else IDF1_HINT
    hota = f"DetA {_fmt(trk.deta)}, AssA {_fmt(trk.assa)}" if trk.hota is not None else HOTA_HINT
    lines += [
        f"{'IDF1':<20}{_fmt(trk.idf1):>8}  {idf1}",
        f"{'HOTA':<20}{_fmt(trk.hota):>8}  {hota}",
        f"{'boxes scored':<20}{trk.predictions:>8}  {trk.unknown} unknown left out, {trk.duplicates} "
        "repeated names",
    ]
    if report.crop is not None:
        c = report.crop
        lines += [
            f"camera on {c.target}",
            f"{'  crop hit rate':<20}{_fmt(c.hit_rate):>8}  {c.hits}/{c.eligible} keyframes",
            f"{'  framing':<20}{_fmt(c.framing, 2):>8}  target height / crop height (median of hits)",
            f"{'  jitter':<20}{_fmt(c.jitter, 4):>8}  crop heights per frame^2",
            f"{'  wide share':<20}{_fmt(c.wide_share):>8}  of {c.visible} keyframes with the target",
            f"{'  lag':<20}{_fmt(c.lag_frames):>8}  frames (positive = camera late)",
        ]
    return "\n".join(lines)
