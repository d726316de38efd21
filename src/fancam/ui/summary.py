"""What the page says about an analysis and a render: performers, how sure, when they are not seen.

Everything here reads the public API (``Analysis.cast``, ``Analysis.tracks``, ``snapshot``) or the
contract files (``OUT.crop.csv``); nothing is recomputed.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import fancam

UNCERTAIN_BELOW = 0.75
"""A performer whose identity confidence is below this is flagged "uncertain" in the page.

For a gallery name the confidence is ``sigmoid(margin)`` of the name's margin (log-odds per second over
the best assignment without that name, :func:`fancam.identity.naming.assign_people`), so 0.75 is a
margin of 1.1 (odds of 3 to 1; names on a thinner margin, down to ``NamingConfig.min_member_margin``,
are flagged); for a numbered performer it is ``sigmoid`` of the mean evidence joining their tracklets
(0.75: mean log-odds 1.1). Measured (fast preset): on ../shared/bench with its gallery the three dancers
are named with 1.00; on miryala_stage_dance without a gallery 9 of 11 performers have 0.81-1.00 and the
two flagged ones (0.61, 0.33) are tracklets joined across absences of 6.6 s and 0.8 s. ``unknown``
performers are always flagged.
"""

MIN_GAP_S = 0.5
"""Absences shorter than this are not listed (the labelled clips are keyed every 0.5 s; a shorter gap
is a missed detection, which the camera rides through)."""

THUMB_HEIGHT = 240
"""Height in pixels of a performer's picture on the page's contact sheet."""


def describe_people(analysis: fancam.Analysis) -> list[dict[str, Any]]:
    """One JSON-ready entry per performer: people.json's fields plus ``uncertain``, ``why`` and ``gaps``."""
    out = []
    times = analysis.timeline.t
    for person in analysis.cast.people:
        frames = np.unique(analysis.tracks.frame[analysis.cast.person == person.id])
        gaps = absences(times, frames)
        why = []
        if person.label == "unknown":
            why.append("matches no gallery member")
        elif person.confidence < UNCERTAIN_BELOW:
            why.append(f"identity confidence {person.confidence:.2f}")
        entry = {
            "id": person.id, "label": person.label, "member": person.member,
            "confidence": round(person.confidence, 3), "first_seen_s": round(person.first_seen_s, 2),
            "last_seen_s": round(person.last_seen_s, 2), "seen_s": round(person.seen_s, 2),
            "uncertain": bool(why), "why": "; ".join(why), "gaps": gaps,
        }
        out.append(entry)
    return out


def absences(times: np.ndarray, frames: np.ndarray) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` stretches of at least :data:`MIN_GAP_S` between first and last sight.

    Args:
        times: (F,) time of every frame.
        frames: Sorted unique frames where the performer is seen.
    """
    if len(frames) < 2:
        return []
    jumps = np.flatnonzero(np.diff(frames) > 1)
    out = []
    for j in jumps:
        start, end = float(times[frames[j]]), float(times[frames[j + 1]])
        if end - start >= MIN_GAP_S:
            out.append((round(start, 2), round(end, 2)))
    return out


def lost_stretches(crop_csv: Path) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` video times where a render's camera was not following (``search``/``wide``).

    A stretch ends when the camera follows again (or when the render ends); stretches shorter than
    :data:`MIN_GAP_S` are left out (a blink the viewer hardly sees).
    """
    with open(crop_csv, newline="") as f:
        rows = [(float(row["t"]), row["mode"] != "follow") for row in csv.DictReader(f)]
    if not rows:
        return []
    times = np.array([t for t, _ in rows])
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    out, start = [], None
    for t, lost in rows + [(float(times[-1]) + step, False)]:
        if lost and start is None:
            start = t
        elif not lost and start is not None:
            if t - start >= MIN_GAP_S:
                out.append((round(start, 2), round(t, 2)))
            start = None
    return out


def person_thumbnail(analysis: fancam.Analysis, person: fancam.Person) -> bytes:
    """JPEG of the performer's clearest view (their box with a margin), :data:`THUMB_HEIGHT` tall."""
    shot = fancam.snapshot(analysis, float(analysis.timeline.t[person.best_frame]))
    return jpeg(crop_box(shot.image, person.best_box), height=THUMB_HEIGHT)


def crop_box(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """``box`` with 10% side and 5% top/bottom margins, inside the image."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    mx, my = 0.1 * (x2 - x1), 0.05 * (y2 - y1)
    x1, x2 = int(max(0, x1 - mx)), int(min(w, x2 + mx))
    y1, y2 = int(max(0, y1 - my)), int(min(h, y2 + my))
    return image[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)]


def jpeg(rgb: np.ndarray, *, height: int | None = None, max_side: int | None = None, quality: int = 85) -> bytes:
    """Encode an RGB image as JPEG, scaled to ``height`` or to fit ``max_side`` (never enlarged)."""
    h, w = rgb.shape[:2]
    scale = 1.0
    if height is not None:
        scale = height / h
    elif max_side is not None:
        scale = min(1.0, max_side / max(h, w))
    if scale != 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise fancam.ProcessingError("could not encode a picture of the video as JPEG")
    return data.tobytes()
