"""The analysis folder's files: their names, and how each is saved and loaded (one owner per file).

Caches (``scan.npz``, ``appearance.npz``, ``cast.npz``) are numpy archives; a damaged or foreign one loads
as None, so the stage that owns it is recomputed. The contract files of DESIGN.md (``tracks.csv``,
``people.json``) are written from the final records; the CSV format itself is owned by
:mod:`fancam.io.tables`. Every file is written atomically (temp file + rename).
"""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from fancam.identity.appearance import Appearance
from fancam.identity.gallery import Gallery
from fancam.identity.people import UNCERTAIN_BELOW, Cast, Person, Stretch, bridge_gaps
from fancam.io.cache import atomic_path
from fancam.io.tables import PredictedTracks, write_tracks_csv
from fancam.tracking.scan import ScanResult, StageTimer
from fancam.types import Timeline, TrackTable, VideoInfo

log = logging.getLogger(__name__)

SCAN_FILE = "scan.npz"
APPEARANCE_FILE = "appearance.npz"
CAST_FILE = "cast.npz"
TRACKS_CSV = "tracks.csv"
PEOPLE_JSON = "people.json"
TIMELINE_PNG = "identity_timeline.png"

CONFIDENCE_LEGEND = (
    "confidence: probability (0-1) that the rows show this performer under this name; a performer's is "
    "the time-weighted mean of their stretches (one per tracklet); uncertain_s: stretches below "
    f"{UNCERTAIN_BELOW:g}"
)
"""What the confidences in people.json mean (written into it, so the file explains itself)."""

CORRUPT = (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile)
"""What reading a damaged cache file raises (it is then recomputed)."""


# ----------------------------------------------------------------------------------------------- scan
def save_scan(path: Path, result: ScanResult) -> None:
    """Save the first pass (raw tracks, timeline, skipped ranges, stride)."""
    raw = result.raw
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(
                f, frame=raw.frame, track_id=raw.track_id, xyxy=raw.xyxy, score=raw.score,
                t=result.timeline.t, shot_starts=result.timeline.shot_starts,
                skipped=np.array(result.skipped, np.float64).reshape(-1, 2),
                stride=result.stride, n_detections=result.n_detections,
            )


def load_scan(path: Path) -> ScanResult | None:
    """The saved first pass, or None when the file is missing or damaged."""
    try:
        with open(path, "rb") as f, np.load(f) as z:
            raw = TrackTable(z["frame"], z["track_id"], z["xyxy"], z["score"], np.ones(len(z["frame"]), bool))
            return ScanResult(
                raw=raw, timeline=Timeline(z["t"], z["shot_starts"]),
                skipped=tuple(map(tuple, z["skipped"])), stride=int(z["stride"]),
                n_detections=int(z["n_detections"]), timer=StageTimer(),
            )
    except CORRUPT as e:
        log.warning("ignoring unreadable cache %s (%s)", path, e)
        return None


# ----------------------------------------------------------------------------------------- appearance
def save_appearance(path: Path, appearance: Appearance) -> None:
    """Save the faces and bodies of the sampled rows."""
    with atomic_path(path) as tmp:
        appearance.save(tmp)


def load_appearance(path: Path, n_rows: int) -> Appearance | None:
    """The saved appearance, or None when missing, damaged or made for a table of other rows."""
    try:
        if not zipfile.is_zipfile(path):
            raise ValueError("not an npz file")
        cached = Appearance.load(path)
    except CORRUPT as e:
        log.warning("ignoring unreadable cache %s (%s)", path, e)
        return None
    if len(cached.rows) and cached.rows.max() >= n_rows:
        return None
    return cached


# ----------------------------------------------------------------------------------------------- cast
def save_cast(path: Path, cast: Cast) -> None:
    """Save who is who (the person of every row and the performers)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, person=cast.person, people=json.dumps([p.to_json() for p in cast.people]),
                     stretches=json.dumps([s.to_json() for s in cast.stretches]))


def load_cast(path: Path, n_rows: int) -> Cast | None:
    """The saved cast, or None when missing, damaged or made for a table of other rows."""
    try:
        with open(path, "rb") as f, np.load(f) as z:
            person = z["person"]
            entries = json.loads(str(z["people"]))
            stretches = json.loads(str(z["stretches"]))
    except CORRUPT as e:
        log.warning("ignoring unreadable cache %s (%s)", path, e)
        return None
    if len(person) != n_rows:
        return None
    return Cast(person=person, people=tuple(Person.from_json(e) for e in entries),
                stretches=tuple(Stretch.from_json(e) for e in stretches))


# ------------------------------------------------------------------------------------ contract files
def people_document(info: VideoInfo, cast: Cast, gallery: Gallery | None, group: str | None) -> dict[str, Any]:
    """The people.json document."""
    return {
        "video": info.path.name, "width": info.width, "height": info.height, "fps": round(info.fps, 3),
        "gallery": str(gallery.root) if gallery is not None else None, "group": group,
        "gallery_warnings": list(gallery.warnings) if gallery is not None else [],
        "confidence": CONFIDENCE_LEGEND,
        "people": [
            {**p.to_json(), "uncertain_s": [[round(a, 2), round(b, 2)] for a, b in cast.uncertain_spans(p.id)],
             "stretches": [{k: v for k, v in s.to_json().items() if k != "person"} for s in cast.stretches_of(p.id)]}
            for p in cast.people
        ],
    }


def tracks_rows(
    tracks: TrackTable, cast: Cast, timeline: Timeline, *, bridge_s: float, source: str = ""
) -> PredictedTracks:
    """The tracks.csv rows of an analysis: by frame then tracklet; rows of nobody are left out.

    Each performer's gaps of at most ``bridge_s`` between her tracklets are filled (score 0; see
    :func:`~fancam.identity.people.bridge_gaps`).
    """
    keep = cast.person > 0
    bridged, owner = bridge_gaps(tracks, cast.person, timeline, bridge_s)
    rows = TrackTable.concat([tracks[keep], bridged])
    person = np.concatenate([cast.person[keep], owner])
    order = np.lexsort((rows.track_id, rows.frame))
    frame = rows.frame[order].astype(np.int64)
    return PredictedTracks(
        source, frame, np.asarray(timeline.t, np.float64)[frame], rows.track_id[order].astype(np.int64),
        np.asarray(cast.labels_of(person[order]), dtype=str),
        rows.xyxy[order].astype(np.float64), rows.score[order].astype(np.float64),
    )


def write_tracks(path: Path, tracks: TrackTable, cast: Cast, timeline: Timeline, *, bridge_s: float) -> None:
    """Write ``tracks.csv`` (DESIGN.md columns) of an analysis."""
    write_tracks_csv(path, tracks_rows(tracks, cast, timeline, bridge_s=bridge_s, source=str(path)))
