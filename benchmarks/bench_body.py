"""Benchmark of the body appearance descriptor (fancam.identity.body): how well does it separate people?

Reproduces the numbers in the body report. Run from the repository root:

    python benchmarks/bench_body.py            # everything (~1-2 min on 2 cores)
    python benchmarks/bench_body.py --quick    # default config only, no ablations

Clips (all under ../shared/data, read-only):
- gillhung_dance/dance.mp4 with the hand-labelled GT of ../shared/bench/gillhung_dance.csv (P1..P3,
  one box per person every 0.5 s). P1 and P3 wear the same outfit and differ by hair colour.
- fiyud_dance3/dance.mp4: three women, similar jeans, different tops. Boxes are YOLOX-nano detections
  every 15 frames; identities A/B/C (left/centre/right; the formation never changes) were checked by
  eye. Labels are in FIYUD_LABELS below.
- tiktok_stage_ballet: three ballet dancers in identical costumes. A = the blonde dancer (right-most
  box from frame 45 on), B = the brunette with a bun (left-most box, frames 60-300 and 360), checked
  by eye; frames 0-30 and the left boxes at 315-345 (another dancer may be there) are unlabelled.

Metrics (pairs of single-box descriptors from different frames):
- AUC short / long / all: same-person vs different-person pairs with 0 < dt <= 2 s, dt >= 35% of the
  labelled span (>= 9.5 s on gillhung), any dt > 0.
- AUC per person pair (e.g. P1-P3): pairs among those two people only.
- id: nearest-prototype identification; prototypes (fancam.identity.body.body_prototype) from the first 20% of
  the labelled span, queries = every later box. id_hung: the same with one-to-one (Hungarian)
  assignment of the boxes of each frame to the prototypes.
- seg AUC: 2-second segments of one person -> prototype; prototype_similarity of segment pairs.
- jitter: queries described at randomly shifted (+-10% of width, +-5% of height) and scaled (+-20%)
  boxes, compared with descriptors at the true boxes.
- context AUC (control): the same AUC for a colour histogram of the outer 15% columns of each box
  (mostly background and neighbours). High values mean that position alone identifies people in that
  clip, so descriptor AUCs there are optimistic. The context-stratified AUC compares only pairs in the
  same quantile bin of context similarity (removes much, not all, of that bias).
"""

from __future__ import annotations

import argparse
import csv
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import rankdata

from fancam.identity import body
from fancam.identity.body import BodyConfig
from fancam.io.video import iter_frames

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

# (frame, person or "-" for an unlabelled box that only masks overlaps, x1, y1, x2, y2)
FIYUD_LABELS = [
    (0, 'A', 62, 543, 280, 1128),
    (0, 'B', 233, 546, 503, 1165),
    (0, 'C', 489, 545, 727, 1122),
    (15, 'B', 274, 554, 535, 1156),
    (15, 'A', 78, 548, 305, 1130),
    (15, 'C', 501, 539, 725, 1107),
    (30, 'B', 269, 534, 523, 1163),
    (30, 'C', 485, 531, 730, 1114),
    (30, 'A', 71, 538, 286, 1126),
    (45, 'C', 459, 531, 726, 1124),
    (45, 'B', 240, 563, 512, 1161),
    (45, 'A', 40, 545, 272, 1133),
    (45, '-', -1, 502, 94, 1121),
    (60, 'B', 245, 542, 468, 1150),
    (60, 'A', 22, 539, 244, 1126),
    (60, 'C', 461, 533, 681, 1111),
    (60, '-', 570, 537, 686, 1111),
    (75, 'A', 54, 548, 256, 1111),
    (75, 'B', 231, 551, 463, 1149),
    (75, 'C', 460, 532, 691, 1122),
    (75, '-', 578, 568, 695, 1112),
    (90, 'B', 242, 550, 468, 1148),
    (90, 'A', 64, 547, 267, 1113),
    (90, 'C', 473, 555, 706, 1116),
    (105, 'C', 486, 549, 719, 1119),
    (105, 'A', 58, 546, 268, 1126),
    (105, 'B', 253, 554, 506, 1160),
    (120, 'B', 256, 562, 483, 1154),
    (120, 'A', 21, 569, 253, 1124),
    (120, 'C', 482, 556, 718, 1119),
    (135, 'B', 234, 532, 483, 1139),
    (135, 'A', 15, 540, 262, 1128),
    (135, 'C', 471, 515, 695, 1110),
    (150, 'B', 242, 527, 484, 1140),
    (150, 'A', 33, 539, 270, 1127),
    (150, 'C', 482, 524, 718, 1112),
    (165, 'B', 250, 523, 473, 1159),
    (165, 'A', 12, 504, 261, 1141),
    (165, 'C', 451, 511, 712, 1113),
    (180, 'A', 8, 524, 215, 1113),
    (180, 'B', 218, 524, 473, 1150),
    (180, 'C', 446, 512, 719, 1100),
    (195, 'B', 235, 515, 490, 1132),
    (195, 'A', 22, 527, 261, 1112),
    (195, 'C', 454, 509, 715, 1098),
    (210, 'B', 231, 509, 500, 1126),
    (210, 'A', 18, 524, 245, 1113),
    (210, 'C', 456, 465, 695, 1083),
    (225, 'A', 3, 523, 240, 1143),
    (225, 'B', 195, 516, 509, 1158),
    (225, 'C', 482, 514, 669, 1096),
    (240, 'C', 480, 518, 672, 1141),
    (240, 'B', 234, 523, 468, 1179),
    (240, 'A', 13, 528, 245, 1147),
    (255, 'C', 459, 528, 700, 1138),
    (255, 'A', 53, 532, 232, 1170),
    (255, 'B', 279, 522, 462, 1201),
]
BALLET_LABELS = [
    (0, '-', 141, 273, 277, 423),
    (0, '-', 2, 235, 106, 453),
    (15, '-', 60, 228, 138, 442),
    (15, '-', 1, 247, 93, 443),
    (15, '-', 128, 250, 191, 401),
    (15, '-', 91, 239, 190, 435),
    (30, '-', 113, 200, 217, 426),
    (30, '-', 36, 263, 113, 427),
    (30, '-', 42, 262, 111, 348),
    (45, 'A', 166, 217, 311, 445),
    (45, '-', 3, 261, 92, 430),
    (45, '-', 8, 261, 91, 345),
    (60, 'B', 0, 194, 91, 439),
    (60, 'A', 174, 193, 312, 442),
    (75, 'A', 210, 205, 315, 440),
    (75, 'B', 1, 211, 112, 444),
    (90, 'A', 222, 208, 322, 447),
    (90, 'B', 5, 213, 99, 437),
    (105, 'B', 3, 193, 83, 425),
    (105, 'A', 190, 193, 312, 410),
    (120, 'B', 1, 194, 89, 422),
    (120, 'A', 210, 188, 331, 420),
    (135, 'A', 164, 219, 265, 434),
    (135, 'B', 0, 194, 75, 429),
    (150, 'B', -1, 199, 67, 419),
    (150, 'A', 109, 300, 210, 413),
    (165, 'B', 0, 204, 77, 427),
    (165, 'A', 83, 344, 202, 420),
    (180, 'A', 92, 325, 198, 430),
    (180, 'B', 0, 209, 85, 420),
    (195, 'A', 101, 298, 187, 436),
    (195, 'B', 0, 220, 66, 437),
    (210, 'B', 0, 241, 62, 461),
    (210, 'A', 102, 283, 195, 465),
    (225, 'A', 147, 265, 227, 493),
    (225, 'B', 0, 264, 62, 484),
    (240, 'A', 149, 286, 251, 517),
    (240, 'B', 0, 293, 75, 502),
    (255, 'A', 156, 302, 242, 533),
    (255, 'B', 1, 310, 39, 514),
    (270, 'A', 166, 316, 258, 541),
    (270, 'B', 1, 315, 94, 522),
    (285, 'A', 154, 311, 234, 538),
    (285, 'B', 0, 310, 77, 537),
    (300, 'A', 148, 303, 246, 533),
    (300, 'B', -1, 309, 57, 523),
    (315, 'A', 150, 281, 230, 508),
    (315, '-', 1, 326, 114, 498),
    (330, 'A', 127, 263, 234, 488),
    (330, '-', 13, 317, 70, 456),
    (345, 'A', 128, 239, 250, 458),
    (345, '-', 1, 261, 77, 441),
    (360, 'B', 9, 268, 79, 436),
    (360, 'A', 155, 222, 236, 449),
]


@dataclass(frozen=True)
class Labelled:
    """Labelled boxes of one clip.

    Attributes:
        name: Clip name.
        frame: (N,) decode index of each labelled box.
        person: (N,) identity of each labelled box.
        boxes: (N, 4) xyxy boxes.
        context: frame -> (M, 4) every person box of that frame (labelled or not).
        images: frame -> (H, W, 3) uint8 RGB.
        fps: Frame rate used to turn frames into seconds.
    """

    name: str
    frame: np.ndarray
    person: np.ndarray
    boxes: np.ndarray
    context: dict
    images: dict
    fps: float

    @property
    def t(self) -> np.ndarray:
        return self.frame / self.fps


def _decode(video: Path, frames: set[int]) -> dict[int, np.ndarray]:
    images = {}
    for f in iter_frames(video):
        if f.index in frames:
            images[f.index] = f.rgb()
        if f.index >= max(frames):
            break
    return images


def load_gillhung() -> Labelled:
    with open(SHARED / "bench" / "gillhung_dance.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["uncertain"] != "1"]
    frame = np.array([int(r["frame"]) for r in rows])
    boxes = np.array([[float(r[k]) for k in ("x1", "y1", "x2", "y2")] for r in rows])
    context = {f: boxes[frame == f] for f in np.unique(frame)}
    images = _decode(SHARED / "data" / "gillhung_dance" / "dance.mp4", set(frame.tolist()))
    person = np.array([r["person"] for r in rows])
    return Labelled("gillhung", frame, person, boxes, context, images, 30.0)


def load_table(name: str, video: Path, table: list[tuple]) -> Labelled:
    frame_all = np.array([r[0] for r in table])
    boxes_all = np.array([r[2:] for r in table], float)
    labelled = np.array([r[1] != "-" for r in table])
    context = {f: boxes_all[frame_all == f] for f in np.unique(frame_all)}
    images = _decode(video, set(frame_all[labelled].tolist()))
    person = np.array([r[1] for r in table])[labelled]
    return Labelled(name, frame_all[labelled], person, boxes_all[labelled], context, images, 30.0)


def load_all() -> list[Labelled]:
    data = SHARED / "data"
    return [
        load_gillhung(),
        load_table("fiyud", data / "fiyud_dance3" / "dance.mp4", FIYUD_LABELS),
        load_table("ballet", data / "tiktok_stage_ballet" / "4197989243424123418.mp4", BALLET_LABELS),
    ]


# ---------------------------------------------------------------------------------------------


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that a positive scores above a negative (ties count half)."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    if not len(pos) or not len(neg):
        return float("nan")
    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def jitter_boxes(boxes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 + rng.uniform(-0.1, 0.1, len(boxes)) * w
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 + rng.uniform(-0.05, 0.05, len(boxes)) * h
    s = 1 + rng.uniform(-0.2, 0.2, len(boxes))
    return np.stack([cx - w * s / 2, cy - h * s / 2, cx + w * s / 2, cy + h * s / 2], axis=1)


def describe(ds: Labelled, config: BodyConfig, boxes: np.ndarray | None = None) -> np.ndarray:
    """Descriptor of every labelled box, with all the frame's other boxes masking overlaps."""
    boxes = ds.boxes if boxes is None else boxes
    out = np.zeros((len(ds.frame), config.layout.dim), np.float32)
    for i, (f, true_box) in enumerate(zip(ds.frame, ds.boxes, strict=True)):
        ctx = ds.context[f]
        others = ctx[np.any(np.abs(ctx - true_box) > 0.5, axis=1)]
        out[i] = body.describe_bodies(ds.images[f], np.vstack([boxes[i][None], others]), indices=[0],
                                      config=config)[0]
    return out


_CONTEXT: dict[str, np.ndarray] = {}


def context_descriptors(ds: Labelled) -> np.ndarray:
    """Control: unit-norm colour histograms of the outer 15% columns of each box (3 stripes)."""
    if ds.name not in _CONTEXT:
        _CONTEXT[ds.name] = _context_descriptors(ds)
    return _CONTEXT[ds.name]


def _context_descriptors(ds: Labelled) -> np.ndarray:
    cfg = BodyConfig(stripes=((0, 1 / 3), (1 / 3, 2 / 3), (2 / 3, 1)), stripe_weights=(1, 1, 1),
                     stripe_taper=0.0, centre_sigma=0.0, overlap_weight=1.0)
    out = []
    for f, (x1, y1, x2, y2) in zip(ds.frame, ds.boxes, strict=True):
        m = 0.15 * (x2 - x1)
        sides = np.array([[x1, y1, x1 + m, y2], [x2 - m, y1, x2, y2]])
        d = body.describe_bodies(ds.images[f], sides, config=cfg)
        out.append(body.body_prototype(d, cfg).centre)
    return np.array(out) / np.sqrt(3)


def stratified_auc(ds: Labelled, sim: np.ndarray, ctx_sim: np.ndarray, n_bins: int = 5) -> float:
    """Pair AUC within bins of equal context similarity (quantiles), averaged (weighted by pairs).

    Compares same- and different-person pairs whose surroundings are about as similar, which removes
    much (not all) of what position alone explains.
    """
    iu = np.triu_indices(len(ds.t), 1)
    dt = np.abs(ds.t[:, None] - ds.t[None])[iu]
    same = (ds.person[:, None] == ds.person[None])[iu][dt > 0]
    s, c = sim[iu][dt > 0], ctx_sim[iu][dt > 0]
    edges = np.quantile(c, np.linspace(0, 1, n_bins + 1))
    k = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, n_bins - 1)
    num = den = 0.0
    for b in range(n_bins):
        pos, neg = s[(k == b) & same], s[(k == b) & ~same]
        if len(pos) and len(neg):
            num += auc(pos, neg) * len(pos) * len(neg)
            den += len(pos) * len(neg)
    return num / den if den else float("nan")


def pair_metrics(ds: Labelled, sim: np.ndarray) -> dict:
    t, person = ds.t, ds.person
    iu = np.triu_indices(len(t), 1)
    dt = np.abs(t[:, None] - t[None])[iu]
    same = (person[:, None] == person[None])[iu]
    s = sim[iu]
    span = t.max() - t.min()
    out = {}
    for name, sel in (("short", (dt > 0) & (dt <= 2)), ("long", dt >= 0.35 * span), ("all", dt > 0)):
        out[f"auc_{name}"] = auc(s[sel & same], s[sel & ~same])
    people = sorted(str(p) for p in set(person))
    pa, pb = person[iu[0]], person[iu[1]]
    for i, a in enumerate(people):
        for b in people[i + 1 :]:
            sel = (dt > 0) & np.isin(pa, [a, b]) & np.isin(pb, [a, b])
            out[f"auc_{a}-{b}"] = auc(s[sel & same], s[sel & ~same])
    out["same_pct"] = np.nanpercentile(s[same & (dt > 0)], [5, 50, 95])
    out["diff_pct"] = np.nanpercentile(s[~same], [5, 50, 95])
    return out


def identification(ds: Labelled, config: BodyConfig, gallery: np.ndarray, queries: np.ndarray) -> dict:
    t, person = ds.t, ds.person
    people = sorted(str(p) for p in set(person))
    train = t < t.min() + 0.2 * (t.max() - t.min())
    protos = np.stack([body.body_prototype(gallery[train & (person == p)], config).centre for p in people])
    q = ~train
    sims = np.nan_to_num(body.similarity_matrix(queries[q], protos, config), nan=-1.0)
    pred = np.array(people)[np.argmax(sims, axis=1)]
    confusion = np.zeros((len(people), len(people)), int)
    for g, p in zip(person[q], pred, strict=True):
        confusion[people.index(g), people.index(p)] += 1
    hits = 0
    for f in np.unique(ds.frame[q]):
        rows = np.where(q & (ds.frame == f))[0]
        s = np.nan_to_num(body.similarity_matrix(queries[rows], protos, config), nan=-1.0)
        r, c = linear_sum_assignment(-s)
        hits += int(np.sum(np.array(people)[c] == person[rows][r]))
    # Segment-level identification: 2 s segments after the prototype window.
    seg = ((t - t.min()) // 2).astype(int)
    seg_hits = seg_n = 0
    for p in people:
        for k in np.unique(seg[q & (person == p)]):
            proto = body.body_prototype(queries[q & (person == p) & (seg == k)], config)
            s = [body.body_similarity(proto.centre, c, config) for c in protos]
            seg_hits += people[int(np.nanargmax(s))] == p
            seg_n += 1
    return {"id": float(np.mean(pred == person[q])), "id_hung": hits / int(q.sum()),
            "seg_id": seg_hits / seg_n, "confusion": confusion, "people": people}


def segment_auc(ds: Labelled, config: BodyConfig, descs: np.ndarray, how: str = "median") -> float:
    """AUC of segment-to-segment similarities (2 s segments) for one aggregation method."""
    t, person = ds.t, ds.person
    seg = ((t - t.min()) // 2).astype(int)
    keys = [(p, k) for p in sorted(set(person)) for k in np.unique(seg[person == p])]
    groups = [descs[(person == p) & (seg == k)] for p, k in keys]
    n = len(keys)
    sim = np.full((n, n), np.nan)
    if how == "median":
        protos = [body.body_prototype(g, config) for g in groups]
        for i in range(n):
            for j in range(i + 1, n):
                sim[i, j] = body.prototype_similarity(protos[i], protos[j], config)
    elif how == "mean":
        centres = [_mean_centre(g, config) for g in groups]
        for i in range(n):
            for j in range(i + 1, n):
                sim[i, j] = body.body_similarity(centres[i], centres[j], config)
    else:  # mean of all cross-segment sample pairs
        for i in range(n):
            for j in range(i + 1, n):
                sim[i, j] = np.nanmean(body.similarity_matrix(groups[i], groups[j], config))
    labels = np.array([p for p, _ in keys])
    iu = np.triu_indices(n, 1)
    same = (labels[:, None] == labels[None])[iu]
    return auc(sim[iu][same], sim[iu][~same])


def _mean_centre(descs: np.ndarray, config: BodyConfig) -> np.ndarray:
    out = np.zeros(config.layout.dim, np.float32)
    for s, n in config.layout.spans():
        m = descs[:, s : s + n].mean(axis=0)
        if np.linalg.norm(m) > 0:
            out[s : s + n] = m / np.linalg.norm(m)
    return out


def evaluate(ds: Labelled, config: BodyConfig, *, jitter: bool = True, aggregations: bool = False) -> dict:
    descs = describe(ds, config)
    sim = body.similarity_matrix(descs, descs, config)
    out = pair_metrics(ds, sim)
    ctx = context_descriptors(ds)
    out["strat_auc"] = stratified_auc(ds, sim, ctx @ ctx.T)
    out.update(calibration(ds, sim))
    out.update(identification(ds, config, descs, descs))
    out["seg_auc"] = segment_auc(ds, config, descs)
    if aggregations:
        out["seg_auc_mean"] = segment_auc(ds, config, descs, "mean")
        out["seg_auc_pairs"] = segment_auc(ds, config, descs, "pairs")
    if jitter:
        jittered = describe(ds, config, jitter_boxes(ds.boxes, np.random.default_rng(1)))
        sim = body.similarity_matrix(jittered, descs, config)
        jm = pair_metrics(ds, (sim + sim.T) / 2)
        out["jit_auc"] = jm["auc_all"]
        out["jit_pairs"] = {k: v for k, v in jm.items() if k.startswith("auc_") and "-" in k}
        out["jit_id"] = identification(ds, config, descs, jittered)["id"]
        out["jit_self"] = float(np.nanmedian(np.diag(sim)))
    return out


def calibration(ds: Labelled, sim: np.ndarray) -> dict:
    """Fit fancam.identity.body.fit_calibration as a pipeline could without identities, test on long gaps.

    Known-same pairs: one person 0 < dt <= 1 s apart (what one tracklet provides); known-different:
    two people in the same frame. Test: every pair >= 5 s apart.
    """
    iu = np.triu_indices(len(ds.t), 1)
    dt = np.abs(ds.t[:, None] - ds.t[None])[iu]
    same = (ds.person[:, None] == ds.person[None])[iu]
    s = sim[iu]
    cal = body.fit_calibration(s[same & (dt > 0) & (dt <= 1.0)], s[~same & (dt == 0)])
    test = dt >= 5.0
    p, y = cal.p_same(s[test]), same[test]
    balanced = 0.5 * (np.mean(p[y] > 0.5) + np.mean(p[~y] <= 0.5))
    log_loss = -np.mean(np.where(y, np.log(p + 1e-9), np.log(1 - p + 1e-9)))
    return {"cal_threshold": cal.threshold, "cal_balanced_acc": float(balanced),
            "cal_log_loss": float(log_loss)}


def hard_pair(ds: Labelled) -> str:
    return {"gillhung": "auc_P1-P3", "fiyud": "auc_B-C", "ballet": "auc_A-B"}[ds.name]


def timing(ds: Labelled, config: BodyConfig, scale: int = 1, repeats: int = 5) -> float:
    """Median ms per box over the labelled frames (frames upscaled by ``scale`` to mimic 1080p+)."""
    import cv2

    frames = sorted(ds.context)[:10]
    per_box = []
    for _ in range(repeats):
        for f in frames:
            if f not in ds.images:
                continue
            img = ds.images[f]
            if scale > 1:
                img = cv2.resize(img, (img.shape[1] * scale, img.shape[0] * scale))
            boxes = ds.context[f] * scale
            t0 = time.perf_counter()
            body.describe_bodies(img, boxes, config=config)
            per_box.append((time.perf_counter() - t0) * 1000 / len(boxes))
    return float(np.median(per_box))


ABLATIONS = {
    "default": {},
    "no centre weighting": {"centre_sigma": 0.0},
    "overlaps ignored (w=0)": {"overlap_weight": 0.0},
    "overlaps kept (w=1)": {"overlap_weight": 1.0},
    "hard stripe edges": {"stripe_taper": 0.0},
    "Lab colour": {"colour_space": "lab"},
    "+ texture (w=0.5)": {"texture_weight": 0.5},
    "+ background suppression": {"suppress_background": True},
    "resample 128 px": {"resample_height": 128},
    "head stripe only": {"stripe_weights": (1.0, 0, 0, 0, 0, 0)},
    "without head stripe": {"stripe_weights": (0, 1.0, 1.0, 1.0, 1.0, 1.0)},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="default config only")
    args = parser.parse_args()
    datasets = load_all()
    default = BodyConfig()
    print(f"descriptor: {default.layout.dim} floats, {len(default.stripes)} stripes\n")
    print("## Default config\n")
    for ds in datasets:
        m = evaluate(ds, default, aggregations=True)
        ctx = context_descriptors(ds)
        control = pair_metrics(ds, ctx @ ctx.T)
        pairs = " ".join(f"{k[4:]}={v:.3f}" for k, v in m.items() if k.startswith("auc_") and "-" in k)
        jit_pairs = " ".join(f"{k[4:]}={v:.3f}" for k, v in m["jit_pairs"].items())
        print(f"### {ds.name}: {len(ds.frame)} boxes, {len(set(ds.person))} people, "
              f"{ds.t.max() - ds.t.min():.1f} s labelled\n")
        print(f"- pair AUC: short {m['auc_short']:.3f}, long {m['auc_long']:.3f}, all {m['auc_all']:.3f}")
        print(f"- per pair AUC: {pairs}")
        print(f"- similarity same person (p5/p50/p95): {np.round(m['same_pct'], 3).tolist()}, "
              f"different: {np.round(m['diff_pct'], 3).tolist()}")
        print(f"- identification vs first-20% prototypes: per box {m['id']:.3f}, per frame one-to-one "
              f"{m['id_hung']:.3f}, per 2 s segment {m['seg_id']:.3f}")
        print(f"- confusion (rows truth, cols predicted, {m['people']}): {m['confusion'].tolist()}")
        print(f"- segment AUC (2 s): median prototype {m['seg_auc']:.3f}, mean prototype "
              f"{m['seg_auc_mean']:.3f}, mean of sample pairs {m['seg_auc_pairs']:.3f}")
        print(f"- per-video calibration (fit on <= 1 s same-person and same-frame pairs, test on pairs "
              f">= 5 s apart): p=0.5 at similarity {m['cal_threshold']:.3f}, balanced accuracy "
              f"{m['cal_balanced_acc']:.3f}, log loss {m['cal_log_loss']:.3f}")
        print(f"- jittered boxes: AUC {m['jit_auc']:.3f} ({jit_pairs}), id {m['jit_id']:.3f}, "
              f"median self-similarity {m['jit_self']:.3f}")
        print(f"- control, box-border context only: AUC {control['auc_all']:.3f}; descriptor AUC within "
              f"bins of equal context similarity {m['strat_auc']:.3f} (the control itself "
              f"{stratified_auc(ds, ctx @ ctx.T, ctx @ ctx.T):.3f} there)")
        ms = timing(ds, default)
        print(f"- speed: {ms:.1f} ms per box (frame {ds.images[ds.frame[0]].shape[1]}x"
              f"{ds.images[ds.frame[0]].shape[0]})\n")
    ms = timing(datasets[0], default, scale=3)
    print(f"speed on gillhung frames upscaled to 1080x1920: {ms:.1f} ms per box\n")
    if args.quick:
        return
    print("## Ablations (AUC all / hard pair AUC / context-stratified AUC / id per box / AUC with jittered "
          "boxes)\n")
    print("| variant | " + " | ".join(f"{ds.name} ({hard_pair(ds)[4:]})" for ds in datasets) + " | ms/box |")
    print("|---|" + "---|" * (len(datasets) + 1))
    for name, change in ABLATIONS.items():
        config = replace(default, **change)
        cells = []
        for ds in datasets:
            m = evaluate(ds, config)
            values = (m["auc_all"], m[hard_pair(ds)], m["strat_auc"], m["id"], m["jit_auc"])
            cells.append(" / ".join(f"{v:.3f}" for v in values))
        print(f"| {name} | " + " | ".join(cells) + f" | {timing(datasets[0], config, repeats=2):.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
