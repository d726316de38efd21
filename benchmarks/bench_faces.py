"""Calibrate and benchmark the face stage (fancam.identity.faces, fancam.identity.gallery).

Reproduces the numbers of the faces report:

1. ``stills``: verification ROC of dlib embeddings (cosine similarity) on labelled photos
   (deepface_faces, face_recognition_hamilton identities, facenet_pytorch_crowd_faces test_images), the
   "same person" and "different/unknown" thresholds with their FAR/FRR, and leave-one-out
   nearest-neighbour identity accuracy.
2. ``sizes``: the same photos shrunk so the face is 16-100 px: ROC and thresholds by face size.
3. ``scales``: face found per labelled dancer box vs the head rescaling target, per detector.
4. ``dance``: on gillhung_dance/dance.mp4 with the hand-labelled boxes (keyframes every 0.5 s, boxes
   linearly interpolated in between), for dlib HOG and YuNet: how often a face is found per person box,
   nearest-member accuracy against the bench gallery by face size and quality, genuine/impostor
   similarities of dancer faces, and what the faces found only by YuNet are worth.

Usage::

    python benchmarks/bench_faces.py [--section stills|sizes|scales|dance|all] [--step 5] [--json out.json]

Timings are indicative only (shared 2-core machine): median milliseconds per call.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import av
import cv2
import numpy as np

from fancam.identity.faces import SAME_PERSON_SIMILARITY, UNKNOWN_SIMILARITY, FaceAnalyzer, FaceConfig
from fancam.identity.gallery import decode_image, load_gallery, pick_face
from fancam.models import registry as models

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
YUNET = SHARED / "models" / "yunet_s_640_640.onnx"
CLIP = DATA / "gillhung_dance" / "dance.mp4"
GT = SHARED / "bench" / "gillhung_dance.csv"
GALLERY = SHARED / "bench" / "gallery"
GALLERY_LAST_FRAME = 165  # the gallery crops come from the first 20% of the clip
SIZE_BINS = (0, 20, 25, 30, 35, 45, 1e9)


def analyzer(detector: str, **kwargs: float) -> FaceAnalyzer:
    return FaceAnalyzer(FaceConfig(detector=detector, yunet_model=YUNET, **kwargs))


# --------------------------------------------------------------------------------------------------
# Stills
# --------------------------------------------------------------------------------------------------


def labelled_photos() -> list[tuple[Path, str]]:
    """(photo, identity) of every labelled still; the same person across sets gets one label."""
    out = []
    with open(DATA / "deepface_faces" / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            if "reflection" in row["file"] or not row["identity_id"]:
                continue  # a mirrored copy of img11 (a trivial genuine pair), or an unlabelled group photo
            out.append((DATA / "deepface_faces" / row["file"], f"deepface:{row['identity_id']}"))
    for photo in sorted((DATA / "face_recognition_hamilton" / "identities").glob("*/*")):
        out.append((photo, f"hamilton:{photo.parent.name}"))
    for photo in sorted((DATA / "facenet_pytorch_crowd_faces" / "test_images").glob("*/*")):
        name = photo.parent.name
        # Angelina Jolie is deepface's id00 too.
        out.append((photo, "deepface:id00" if name == "angelina_jolie" else f"facenet:{name}"))
    return out


def embed_photos(an: FaceAnalyzer, photos: list[tuple[Path, str]]) -> tuple[np.ndarray, list[str], list]:
    embs, labels, failed = [], [], []
    for path, label in photos:
        image = decode_image(path.read_bytes())
        faces = an.faces_in_image(image) if image is not None else []
        face = pick_face(faces)
        if face is None:
            failed.append((path.name, len(faces)))
            continue
        embs.append(an.embed([face])[0].embedding)
        labels.append(label)
    return np.asarray(embs), labels, failed


def pair_scores(emb: np.ndarray, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    sim = emb @ emb.T
    lab = np.asarray(labels)
    iu = np.triu_indices(len(lab), 1)
    same = lab[iu[0]] == lab[iu[1]]
    return sim[iu][same], sim[iu][~same]


def auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Probability that a genuine pair scores above an impostor pair (ties count half)."""
    g, i = np.asarray(genuine)[:, None], np.asarray(impostor)[None, :]
    return float(((g > i).sum() + 0.5 * (g == i).sum()) / (g.size * i.size))


def far_frr(genuine: np.ndarray, impostor: np.ndarray, t: float) -> tuple[float, float]:
    return float((impostor >= t).mean()), float((genuine < t).mean())


def thresholds(genuine: np.ndarray, impostor: np.ndarray, far: float, frr: float) -> dict:
    """Same-person threshold: lowest t with FAR <= far; unknown threshold: highest t with FRR <= frr."""
    grid = np.round(np.arange(0.80, 0.995, 0.0025), 4)
    same = next(t for t in grid if far_frr(genuine, impostor, t)[0] <= far)
    unknown = max(t for t in grid if far_frr(genuine, impostor, t)[1] <= frr)
    return {"same": float(same), "same_far_frr": far_frr(genuine, impostor, same),
            "unknown": float(unknown), "unknown_far_frr": far_frr(genuine, impostor, unknown)}


def loo_nearest(emb: np.ndarray, labels: list[str]) -> float:
    sim = emb @ emb.T
    np.fill_diagonal(sim, -2)
    lab = np.asarray(labels)
    has_pair = np.array([(lab == x).sum() > 1 for x in lab])
    return float((lab[sim.argmax(axis=1)] == lab)[has_pair].mean())


def bench_stills(results: dict) -> None:
    photos = labelled_photos()
    for det in (models.DLIB_HOG, models.YUNET):
        an = analyzer(det)
        t0 = time.perf_counter()
        emb, labels, failed = embed_photos(an, photos)
        genuine, impostor = pair_scores(emb, labels)
        res = {
            "photos": len(photos), "enrolled": len(labels), "identities": len(set(labels)),
            "failed": failed, "genuine_pairs": len(genuine), "impostor_pairs": len(impostor),
            "auc": auc(genuine, impostor), "loo_nearest_acc": loo_nearest(emb, labels),
            "genuine_pct": np.percentile(genuine, [1, 5, 50]).round(3).tolist(),
            "impostor_pct": np.percentile(impostor, [50, 95, 99, 99.9]).round(3).tolist(),
            "thresholds": thresholds(genuine, impostor, far=0.001, frr=0.02),
            "far_frr_grid": {f"{t:.3f}": far_frr(genuine, impostor, t)
                             for t in (0.88, 0.90, 0.91, 0.92, 0.93, 0.94, 0.95)},
            "seconds": time.perf_counter() - t0,
        }
        results[f"stills_{det}"] = res
        print(f"\n## stills ({det})\n" + json.dumps(res, indent=1, default=str))


def degraded_embeddings(an: FaceAnalyzer, photos: list[tuple[Path, str]], sizes: tuple[int, ...]) -> dict:
    """Embed each photo's face after shrinking the photo so the face is ``size`` px, as in a video.

    The shrunk photo is enlarged again so the face is ~100 px (what the head-crop rescaling gives), then
    aligned at the known (scaled) box and embedded. Returns ``{size: (embeddings, labels, sharpness)}``.
    """
    out: dict = {s: ([], [], []) for s in sizes}
    for path, label in photos:
        image = decode_image(path.read_bytes())
        face = pick_face(an.faces_in_image(image)) if image is not None else None
        if face is None:
            continue
        side = float(face.xyxy[2] - face.xyxy[0])
        for size in sizes:
            shrink = min(size / side, 1.0)
            small = cv2.resize(image, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
            grow = 100.0 / (side * shrink)
            big = cv2.resize(small, None, fx=grow, fy=grow, interpolation=cv2.INTER_LINEAR)
            cand = an.align(big, face.xyxy * shrink * grow, face.quality.detector)
            embs, labels, sharp = out[size]
            embs.append(an.embed([cand])[0].embedding)
            labels.append(label)
            sharp.append(cand.quality.sharpness)
    return out


def bench_sizes(results: dict, sizes: tuple[int, ...] = (16, 20, 25, 30, 40, 60, 100)) -> None:
    """Verification on the stills at simulated face sizes: thresholds as a function of face size."""
    an = analyzer(models.DLIB_HOG)
    per_size = degraded_embeddings(an, labelled_photos(), sizes)
    table: dict = {}
    for size, (embs, labels, sharp) in per_size.items():
        genuine, impostor = pair_scores(np.asarray(embs), labels)
        strict = thresholds(genuine, impostor, far=0.001, frr=0.02)
        loose = thresholds(genuine, impostor, far=0.01, frr=0.02)
        table[str(size)] = {
            "faces": len(labels), "auc": round(auc(genuine, impostor), 4),
            "loo_nearest_acc": round(loo_nearest(np.asarray(embs), labels), 3),
            "genuine_pct_1_5_50": np.percentile(genuine, [1, 5, 50]).round(3).tolist(),
            "impostor_pct_50_99_99.9": np.percentile(impostor, [50, 99, 99.9]).round(3).tolist(),
            "same_far0.1%": strict["same"], "far_frr_at_same_far0.1%": strict["same_far_frr"],
            "same_far1%": loose["same"], "far_frr_at_same_far1%": loose["same_far_frr"],
            "unknown_frr2%": loose["unknown"], "far_frr_at_unknown": loose["unknown_far_frr"],
            "chip_sharpness_median": round(float(np.median(sharp)), 1),
        }
    results["stills_by_face_size"] = table
    results["thresholds_by_size"] = envelope(table)
    print("\n## stills by simulated face size (hog)\n" + json.dumps(table, indent=1))
    print("\n## thresholds by size (size, same, unknown)\n" + json.dumps(results["thresholds_by_size"]))


def envelope(table: dict) -> list[tuple[int, float, float]]:
    """Monotone thresholds: "same" never looser for smaller faces, "unknown" never above "same"."""
    rows, same, unknown = [], 0.0, 1.0
    for size in sorted(table, key=int, reverse=True):
        same = max(same, table[size]["same_far0.1%"])
        unknown = min(unknown, table[size]["unknown_frr2%"])
        rows.append((int(size), same, min(unknown, same)))
    return sorted(rows)


# --------------------------------------------------------------------------------------------------
# Dance clip
# --------------------------------------------------------------------------------------------------


def gt_boxes(step: int) -> dict[int, dict[str, np.ndarray]]:
    """Boxes per sampled frame: keyframes as labelled, frames between keyframes interpolated."""
    keys: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
    with open(GT, newline="") as f:
        for row in csv.DictReader(f):
            if row["uncertain"] == "1":
                continue
            box = np.array([float(row[k]) for k in ("x1", "y1", "x2", "y2")])
            keys[row["person"]][int(row["frame"])] = box
    out: dict[int, dict[str, np.ndarray]] = defaultdict(dict)
    for person, frames in keys.items():
        ks = sorted(frames)
        for a, b in zip(ks, ks[1:], strict=False):
            if b - a > 15:
                continue
            for fr in range(a, b, step):
                w = (fr - a) / (b - a)
                out[fr][person] = (1 - w) * frames[a] + w * frames[b]
        out[ks[-1]][person] = frames[ks[-1]]
    return dict(out)


def decode_frames(wanted: set[int]) -> dict[int, np.ndarray]:
    frames = {}
    with av.open(str(CLIP)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                frames[i] = frame.to_ndarray(format="rgb24")
            if i >= max(wanted):
                break
    return frames


def size_bin(size: float) -> str:
    for lo, hi in zip(SIZE_BINS, SIZE_BINS[1:], strict=False):
        if lo <= size < hi:
            return f"{lo}-{hi:.0f}" if hi < 1e9 else f">={lo}"
    return "?"


def decile(value: float) -> str:
    return f"{np.floor(min(value, 0.99) * 10) / 10:.1f}"


def mean_or_none(values: list) -> float | None:
    return round(float(np.mean(values)), 3) if values else None


def detect_dance(an: FaceAnalyzer, frames: dict, boxes: dict) -> tuple[list[dict], list[float]]:
    rows, times = [], []
    for fr in sorted(boxes):
        people = sorted(boxes[fr])
        xyxy = np.array([boxes[fr][p] for p in people])
        t0 = time.perf_counter()
        cands = an.find_faces(frames[fr], xyxy)
        times.append((time.perf_counter() - t0) * 1000 / len(people))
        for person, cand in zip(people, cands, strict=True):
            rows.append({"frame": fr, "person": person, "key": fr % 15 == 0, "cand": cand})
    return rows, times


def embed_rows(an: FaceAnalyzer, rows: list[dict]) -> list[float]:
    times = []
    for row in rows:
        if row["cand"] is not None:
            t0 = time.perf_counter()
            row["emb"] = an.embed([row["cand"]])[0].embedding
            times.append((time.perf_counter() - t0) * 1000)
    return times


def accuracy_table(rows: list[dict], key) -> dict:
    groups = defaultdict(list)
    for r in rows:
        groups[key(r)].append(r["correct"])
    return {k: {"n": len(v), "acc": round(float(np.mean(v)), 3)} for k, v in sorted(groups.items())}


def score_against_gallery(rows: list[dict], gallery) -> list[dict]:
    names = list(gallery.names)
    scored = []
    for r in rows:
        if "emb" not in r:
            continue
        sim = gallery.similarity(r["emb"][None])[0]
        order = np.argsort(-sim)
        r.update(sim=sim, pred=names[order[0]], margin=float(sim[order[0]] - sim[order[1]]),
                 correct=names[order[0]] == r["person"], held_out=r["frame"] > GALLERY_LAST_FRAME)
        scored.append(r)
    return scored


def match_stats(scored: list[dict], gallery, same: float, unknown: float) -> dict:
    """Genuine/impostor similarities of dancer faces vs gallery members, and decision rates."""
    names = list(gallery.names)
    gen = np.array([r["sim"][names.index(r["person"])] for r in scored])
    imp = np.concatenate([np.delete(r["sim"], names.index(r["person"])) for r in scored])
    best = np.array([r["sim"].max() for r in scored])
    correct = np.array([r["correct"] for r in scored])
    margin = np.array([r["margin"] for r in scored])
    out = {"auc": auc(gen, imp), "genuine_pct": np.percentile(gen, [5, 50]).round(3).tolist(),
           "impostor_pct": np.percentile(imp, [50, 95, 99]).round(3).tolist(),
           "at_still_thresholds": {"FAR_same": far_frr(gen, imp, same)[0],
                                   "FRR_same": far_frr(gen, imp, same)[1],
                                   "FAR_unknown": far_frr(gen, imp, unknown)[0],
                                   "FRR_unknown": far_frr(gen, imp, unknown)[1]}}
    out["footage_thresholds"] = thresholds(gen, imp, far=0.01, frr=0.02)
    out["far_frr_grid"] = {f"{t:.3f}": far_frr(gen, imp, t) for t in (0.92, 0.93, 0.94, 0.95, 0.96, 0.97)}
    for m in (0.0, 0.01, 0.02, 0.03, 0.05):
        sel = margin >= m
        out[f"margin>={m}"] = {"kept": round(float(sel.mean()), 3),
                               "acc": round(float(correct[sel].mean()), 3) if sel.any() else None}
    sel = best >= same
    out["best>=same"] = {"kept": round(float(sel.mean()), 3),
                         "acc": round(float(correct[sel].mean()), 3) if sel.any() else None}
    return out


def video_pairs(scored: list[dict]) -> dict:
    """Face-to-face verification between held-out video faces (no gallery), by smaller face size."""
    rows = [r for r in scored if r["held_out"] and r["person"] != "P2"]
    if len(rows) < 3:
        return {}
    emb = np.array([r["emb"] for r in rows])
    lab = [r["person"] for r in rows]
    genuine, impostor = pair_scores(emb, lab)
    return {"faces": len(rows), "auc": auc(genuine, impostor),
            "genuine_pct": np.percentile(genuine, [5, 50]).round(3).tolist(),
            "impostor_pct": np.percentile(impostor, [50, 95, 99]).round(3).tolist()}


def bench_dance(results: dict, step: int) -> None:
    boxes = gt_boxes(step)
    frames = decode_frames(set(boxes))
    same, unknown = SAME_PERSON_SIMILARITY, UNKNOWN_SIMILARITY
    found: dict[str, list[dict]] = {}
    for det in (models.DLIB_HOG, models.YUNET):
        an = analyzer(det)
        with tempfile.TemporaryDirectory() as home:
            os.environ["FANCAM_HOME"] = home
            gallery = load_gallery(GALLERY, an)
        rows, det_ms = detect_dance(an, frames, boxes)
        emb_ms = embed_rows(an, rows)
        found[det] = rows
        scored = score_against_gallery(rows, gallery)
        held = [r for r in scored if r["held_out"]]
        res = {
            "person_boxes": len(rows),
            "found_per_box": accuracy_table(
                [{**r, "correct": r["cand"] is not None} for r in rows], lambda r: r["person"]),
            "found_per_box_keyframes": float(np.mean([r["cand"] is not None for r in rows if r["key"]])),
            "ms_find_per_box_median": statistics.median(det_ms),
            "ms_embed_per_face_median": statistics.median(emb_ms) if emb_ms else None,
            "gallery_warnings": list(gallery.warnings),
            "nearest_acc_all": round(float(np.mean([r["correct"] for r in scored])), 3),
            "nearest_acc_held_out": round(float(np.mean([r["correct"] for r in held])), 3),
            "held_out_by_person": accuracy_table(held, lambda r: r["person"]),
            "held_out_by_size": accuracy_table(held, lambda r: size_bin(r["cand"].quality.size_px)),
            "held_out_by_quality": accuracy_table(held, lambda r: decile(r["cand"].quality.score)),
            "held_out_by_frontal": accuracy_table(held, lambda r: decile(r["cand"].quality.frontal)),
            "held_out_no_P2_by_size": accuracy_table(
                [r for r in held if r["person"] != "P2"], lambda r: size_bin(r["cand"].quality.size_px)),
            "match_held_out": match_stats(held, gallery, same, unknown),
            "video_pairs_P1_P3": video_pairs(scored),
            "_scored": scored,
        }
        results[f"dance_{det}"] = res
        print(f"\n## dance ({det})\n" + json.dumps({k: v for k, v in res.items() if k[0] != "_"}, indent=1))
    compare_detectors(results, found)


def compare_detectors(results: dict, found: dict[str, list[dict]]) -> None:
    """Per person box: found by both, HOG only, YuNet only; what YuNet-only faces are worth."""
    hog = {(r["frame"], r["person"]): r for r in found[models.DLIB_HOG]}
    yun = {(r["frame"], r["person"]): r for r in found[models.YUNET]}
    counts = defaultdict(int)
    only_y = []
    for key, ry in yun.items():
        h, y = hog[key]["cand"] is not None, ry["cand"] is not None
        counts["both" if h and y else "hog_only" if h else "yunet_only" if y else "neither"] += 1
        if y and not h and "correct" in ry:
            only_y.append(ry)
    held = [r for r in only_y if r["held_out"]]
    res = {"boxes": dict(counts),
           "yunet_only_held_out": {
               "n": len(held), "acc": mean_or_none([r["correct"] for r in held]),
               "by_person": accuracy_table(held, lambda r: r["person"]),
               "mean_frontal": mean_or_none([r["cand"].quality.frontal for r in held]),
               "mean_size": mean_or_none([r["cand"].quality.size_px for r in held]),
               "mean_quality": mean_or_none([r["cand"].quality.score for r in held])}}
    both = [r for k, r in yun.items() if "correct" in r and r["held_out"] and hog[k]["cand"] is not None]
    res["both_held_out_yunet_acc"] = mean_or_none([r["correct"] for r in both])
    results["detector_comparison"] = res
    print("\n## detector comparison\n" + json.dumps(res, indent=1))


def bench_scales(results: dict) -> None:
    """Face found per labelled person box (keyframes) vs the head rescaling target, per detector."""
    boxes = {k: v for k, v in gt_boxes(15).items() if k % 15 == 0}
    frames = decode_frames(set(boxes))
    table = {}
    settings = ((models.DLIB_HOG, 100), (models.DLIB_HOG, 140), (models.DLIB_HOG, 180), (models.YUNET, 60),
                (models.YUNET, 80), (models.YUNET, 100))
    for det, head_px in settings:
        rows, ms = detect_dance(analyzer(det, head_px=head_px), frames, boxes)
        table[f"{det}@{head_px}"] = {
            "found": round(float(np.mean([r["cand"] is not None for r in rows])), 3),
            "found_by_person": accuracy_table([{**r, "correct": r["cand"] is not None} for r in rows],
                                              lambda r: r["person"]),
            "ms_per_box_median": round(statistics.median(ms), 1),
        }
    results["head_scale_sweep"] = table
    print("\n## head rescaling sweep (keyframes)\n" + json.dumps(table, indent=1))


def quality_sweep(results: dict) -> None:
    """Accuracy and kept share above each min_quality (held-out faces, HOG and YuNet)."""
    for det in (models.DLIB_HOG, models.YUNET):
        scored = [r for r in results[f"dance_{det}"]["_scored"] if r["held_out"]]
        q = np.array([r["cand"].quality.score for r in scored])
        ok = np.array([r["correct"] for r in scored])
        table = {}
        for t in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6):
            sel = q >= t
            table[f"{t:.1f}"] = {"kept": round(float(sel.mean()), 3),
                                 "acc": round(float(ok[sel].mean()), 3) if sel.any() else None}
        default = FaceConfig().min_quality
        table["default_min_quality"] = {"value": default, "kept": round(float((q >= default).mean()), 3)}
        table["median_quality"] = round(float(np.median(q)), 3)
        results[f"quality_sweep_{det}"] = table
        print(f"\n## quality sweep ({det})\n" + json.dumps(table, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=("stills", "sizes", "scales", "dance", "all"), default="all")
    parser.add_argument("--step", type=int, default=5, help="frame step on the dance clip")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    cv2.setNumThreads(1)
    results: dict = {}
    if args.section in ("stills", "all"):
        bench_stills(results)
    if args.section in ("sizes", "all"):
        bench_sizes(results)
    if args.section in ("scales", "all"):
        bench_scales(results)
    if args.section in ("dance", "all"):
        bench_dance(results, args.step)
        quality_sweep(results)
    if args.json:
        clean = {k: {kk: vv for kk, vv in v.items() if not str(kk).startswith("_")} if isinstance(v, dict)
                 else v for k, v in results.items()}
        args.json.write_text(json.dumps(clean, indent=1, default=str))


if __name__ == "__main__":
    main()


