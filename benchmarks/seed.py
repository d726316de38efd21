"""The seed prototype's outputs from an analysis, written in our formats so ``evaluate`` scores both alike.

The seed (shared/seed/torchkpop-README.md) names each whole track once by a face vote against the
gallery, never answers "unknown", allows one member in two places at once, and follows a member with
a fixed 0.4W x 0.4H crop centred on a trailing 0.5 s median + 0.25 s mean of the head point. This
module replays those decisions on *our* tracklets and *our* faces (the sampled faces of the analysis
folder's ``appearance.npz``), so a comparison isolates the decisions, not the models. (The seed's own
post-processor also gave a new id at heavy overlaps and dropped short tracks, as our tracklets do.)

- **Identity** (:func:`seed_identity`): with a gallery, the group is the one most faces vote for (the
  seed's group recogniser), each face votes for its most similar member of that group, and each
  tracklet takes the member with the most votes (:func:`baseline.name_tracklets_by_face_vote`).
  A tracklet without any face is still given a member: the seed's predictor fell back to a body score
  that reused the face score, so all members tie and the first one (gallery order, as ``argmax``
  picks) wins. Without a gallery the seed has no names: every tracklet is its own person
  ``tracklet-<id>`` (no linking).
- **Camera** (:func:`seed_crop_path`): the tracklets named as the target; where several are present
  in one frame (duplicates), the one with the most votes for that name (then the lowest id) is
  followed. See :func:`baseline.seed_camera`.

Outputs (:func:`write_seed`): ``tracks.csv`` (DESIGN.md columns, every tracklet row) and one
``<target>.<variant>.crop.csv`` per target and crop shape, written with
:func:`fancam.camera.plan.write_crop_path`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from baseline import SeedCameraConfig, head_points_per_frame, name_tracklets_by_face_vote, seed_camera
from fancam.camera.plan import CropPath, write_crop_path
from fancam.errors import UsageError
from fancam.identity.appearance import Appearance
from fancam.identity.gallery import Gallery, load_gallery
from fancam.io.cache import ensure_writable_dir
from fancam.io.tables import PredictedTracks, write_tracks_csv
from fancam.pipeline.analyze import APPEARANCE_FILE, Analysis, AnalysisSettings, make_face_analyzer
from fancam.types import Timeline, TrackTable

TRACKLET_PREFIX = "tracklet-"
"""Name of a tracklet without a gallery: ``tracklet-<id>``."""
CROP_VARIANTS: Mapping[str, SeedCameraConfig] = {
    "seed": SeedCameraConfig(),
    "seed-9x16": SeedCameraConfig(aspect=9 / 16),
}
"""Seed camera shapes: the seed's own 0.4W x 0.4H crop, and the same height at 9:16."""


@dataclass(frozen=True)
class SeedIdentity:
    """The seed's identity answer: one name per whole tracklet.

    Attributes:
        names: Tracklet id -> name, for every tracklet of the table (never ``unknown``).
        votes: Tracklet id -> number of its faces that voted for its name (0 = a forced guess).
        faces: Tracklet id -> number of its faces.
        group: Gallery group chosen by the face vote, or None without a gallery.
    """

    names: Mapping[int, str]
    votes: Mapping[int, int] = field(default_factory=dict)
    faces: Mapping[int, int] = field(default_factory=dict)
    group: str | None = None

    def tracklets_of(self, name: str) -> list[int]:
        """Tracklet ids named ``name``, most votes first (then lowest id)."""
        hits = [t for t, n in self.names.items() if n == name]
        return sorted(hits, key=lambda t: (-self.votes.get(t, 0), t))

    @property
    def guessed(self) -> int:
        """Number of named tracklets whose name no face voted for (forced guesses)."""
        if self.group is None:
            return 0
        return sum(1 for t in self.names if self.votes.get(t, 0) == 0)


def _face_evidence(
    tracks: TrackTable, appearance: Appearance
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """(N, 128) face embeddings of the appearance samples that have one, and their tracklet ids."""
    has = appearance.has_face
    rows = appearance.rows[has]
    if len(rows) and rows.max() >= len(tracks):
        raise UsageError(
            "appearance samples refer to rows beyond the tracklet table: the appearance file belongs "
            "to another analysis; re-run `fancam analyze`"
        )
    return appearance.face[has], tracks.track_id[rows]


def _choose_group(gallery: Gallery, embeddings: NDArray[np.float32]) -> Gallery:
    """The members of the group most faces vote for (every face votes: the seed had no threshold)."""
    if len(gallery.groups) == 1:
        return gallery
    best = gallery.vote_groups(embeddings, min_similarity=-1.0)[0]
    return gallery.subset(best.group)


def seed_identity(tracks: TrackTable, appearance: Appearance, gallery: Gallery | None) -> SeedIdentity:
    """Name every tracklet the way the seed did (see the module docstring).

    Args:
        tracks: Tracklet table of the analysis (``track_id`` = tracklet id).
        appearance: Face samples at rows of ``tracks``.
        gallery: Loaded gallery, or None.

    Returns:
        One name per tracklet: a member of the chosen group for every tracklet (faceless ones
        included), or ``tracklet-<id>`` without a gallery.
    """
    ids = [int(t) for t in tracks.track_ids()]
    emb, owner = _face_evidence(tracks, appearance)
    faces = {t: int((owner == t).sum()) for t in ids}
    if gallery is None:
        return SeedIdentity({t: f"{TRACKLET_PREFIX}{t}" for t in ids}, dict.fromkeys(ids, 0), faces)
    group = _choose_group(gallery, emb)
    sims = group.similarity(emb)
    members = list(group.names)
    voted = name_tracklets_by_face_vote({t: sims[owner == t] for t in ids}, members)
    names, votes = {}, {}
    for t in ids:
        names[t] = voted.get(t, members[0])
        column = members.index(names[t])
        mine = sims[owner == t]
        votes[t] = int((mine.argmax(axis=1) == column).sum()) if len(mine) else 0
    return SeedIdentity(names, votes, faces, group.groups[0])


# ----------------------------------------------------------------------------------------- tracks.csv
def seed_tracks(tracks: TrackTable, timeline: Timeline, identity: SeedIdentity) -> PredictedTracks:
    """Every tracklet row with the seed's name, as ``tracks.csv`` rows (frame, then tracklet order)."""
    order = np.lexsort((tracks.track_id, tracks.frame))
    frame = tracks.frame[order]
    tracklet = tracks.track_id[order]
    person = np.array([identity.names[int(t)] for t in tracklet.tolist()], dtype=str).reshape(-1)
    return PredictedTracks(
        "seed", frame, timeline.t[frame], tracklet, person,
        tracks.xyxy[order].astype(np.float64), tracks.score[order].astype(np.float64),
    )


# ----------------------------------------------------------------------------------------- camera
def seed_target_boxes(
    tracks: TrackTable, identity: SeedIdentity, name: str, n_frames: int
) -> NDArray[np.float64]:
    """(F, 4) box the seed follows for ``name`` in every frame, NaN where no tracklet has that name.

    Where several tracklets carry the name in one frame, the one with the most votes (then the lowest
    id) wins.
    """
    boxes = np.full((n_frames, 4), np.nan)
    # Lowest priority first, so higher-priority tracklets overwrite shared frames.
    for t in reversed(identity.tracklets_of(name)):
        rows = np.flatnonzero(tracks.track_id == t)
        boxes[tracks.frame[rows]] = tracks.xyxy[rows]
    return boxes


def seed_crop_path(
    tracks: TrackTable,
    timeline: Timeline,
    identity: SeedIdentity,
    name: str,
    frame_size: tuple[int, int],
    config: SeedCameraConfig | None = None,
) -> CropPath:
    """The seed camera following the tracklets named ``name``: one crop per timeline frame.

    Args:
        tracks: Tracklet table.
        timeline: Frame times (F frames).
        identity: The seed's names (:func:`seed_identity`).
        name: Name to follow (a gallery member, or ``tracklet-<id>``).
        frame_size: Source (width, height) in pixels.
        config: Crop shape and smoothing (default: the seed's 0.4W x 0.4H).

    Raises:
        UsageError: No tracklet has that name.
    """
    if not identity.tracklets_of(name):
        known = ", ".join(sorted(set(identity.names.values()))[:20])
        raise UsageError(f"the seed named no tracklet {name!r}; its names: {known}")
    boxes = seed_target_boxes(tracks, identity, name, timeline.n_frames)
    found = np.isfinite(boxes).all(axis=1)
    frames = np.flatnonzero(found)
    head = head_points_per_frame(frames, boxes[found], timeline.n_frames)
    path = seed_camera(head, timeline.t, frame_size, config)
    return CropPath(path.xyxy.astype(np.float32), path.mode)


# ----------------------------------------------------------------------------------------- outputs
@dataclass(frozen=True)
class SeedOutputs:
    """Files written by :func:`write_seed`.

    Attributes:
        tracks_csv: The seed's ``tracks.csv``.
        crops: (target, variant) -> ``crop.csv`` path, variant being a key of :data:`CROP_VARIANTS`.
        identity: The names behind them.
    """

    tracks_csv: Path
    crops: Mapping[tuple[str, str], Path]
    identity: SeedIdentity


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def load_seed_gallery(path: Path, settings: AnalysisSettings | None = None) -> Gallery:
    """Load a gallery with the face models of ``settings`` (those the analysis embedded faces with)."""
    return load_gallery(Path(path), make_face_analyzer((settings or AnalysisSettings()).model_names()))


def write_seed(
    analysis: Analysis,
    out_dir: Path,
    gallery: Gallery | None = None,
    targets: Sequence[str] | None = None,
    variants: Sequence[str] = tuple(CROP_VARIANTS),
) -> SeedOutputs:
    """Write the seed prototype's ``tracks.csv`` and camera paths for an analysis.

    Args:
        analysis: A finished analysis (its folder holds ``appearance.npz``).
        out_dir: Folder for the outputs (created if needed).
        gallery: Loaded gallery (see :func:`load_seed_gallery`), or None for the no-gallery seed.
        targets: Names to write camera paths for (default: every name the seed gave with a gallery,
            none without one).
        variants: Crop shapes, keys of :data:`CROP_VARIANTS`.

    Returns:
        The paths written and the seed's names.

    Raises:
        UsageError: An unknown variant or a target the seed never named.
    """
    unknown = [v for v in variants if v not in CROP_VARIANTS]
    if unknown:
        raise UsageError(f"unknown seed crop variant(s) {unknown}; choose from {', '.join(CROP_VARIANTS)}")
    out_dir = ensure_writable_dir(Path(out_dir), "seed output folder")
    appearance = Appearance.load(analysis.folder / APPEARANCE_FILE)
    identity = seed_identity(analysis.tracks, appearance, gallery)
    rows = seed_tracks(analysis.tracks, analysis.timeline, identity)
    tracks_csv = write_tracks_csv(out_dir / "tracks.csv", rows)
    if targets is None:
        targets = sorted(set(identity.names.values())) if gallery is not None else []
    size = (analysis.info.width, analysis.info.height)
    frames = np.arange(analysis.timeline.n_frames)
    crops = {}
    for target in targets:
        for variant in variants:
            path = seed_crop_path(analysis.tracks, analysis.timeline, identity, target, size,
                                  CROP_VARIANTS[variant])
            out = out_dir / f"{_safe(target)}.{variant}.crop.csv"
            crops[(target, variant)] = write_crop_path(out, path, analysis.timeline, frames)
    return SeedOutputs(tracks_csv, crops, identity)
