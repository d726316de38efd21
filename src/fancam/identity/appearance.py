"""The second analysis pass: faces and body appearance at the sampled rows of each tracklet.

One more decode, of the sampled frames only (frames nothing else refers to are skipped by the decoder
unless sampled, see :func:`fancam.io.video.iter_frames_at`); only the sampled frames are converted to
RGB, at full resolution because faces of dancers are small. Every box of a sampled frame is given to
the face and body code (so a neighbour's face is never taken for this person's, and pixels shared with
a neighbour count less), but only the sampled rows are described and embedded. Face embedding, the
dominant cost, runs in a worker process while this one decodes and finds faces
(:mod:`fancam.identity.embedding`; same results either way).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fancam.identity.body import describe_bodies
from fancam.identity.embedding import MIN_BATCHES_FOR_WORKER, EmbeddingQueue, worker_possible
from fancam.identity.faces import EMBEDDING_DIM, FaceAnalyzer
from fancam.io.progress import Progress, progress_bar
from fancam.io.video import DecodedFrame, iter_frames, iter_frames_at
from fancam.tracking.scan import prefetch
from fancam.types import TrackTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Appearance:
    """Face and body evidence at sampled rows of the tracklet table.

    Attributes:
        rows: (S,) int64 row indices into the tracklet table, sorted by frame.
        frames: (S,) int64 frame of each sample.
        body: (S, D) float32 body descriptors (all-zero rows when the box could not be described).
        face: (S, 128) float32 L2-normalised face embeddings; NaN rows where no usable face was found.
        face_quality: (S,) float32 face quality in [0, 1]; NaN without a face.
        face_size: (S,) float32 face box side in pixels; NaN without a face.
    """

    rows: NDArray[np.int64]
    frames: NDArray[np.int64]
    body: NDArray[np.float32]
    face: NDArray[np.float32]
    face_quality: NDArray[np.float32]
    face_size: NDArray[np.float32]

    @property
    def has_face(self) -> NDArray[np.bool_]:
        """(S,) True where a face embedding exists."""
        return np.isfinite(self.face_quality)

    def save(self, path: Path) -> None:
        """Write to an ``.npz`` file (the caller makes it atomic)."""
        with open(path, "wb") as f:
            np.savez(f, rows=self.rows, frames=self.frames, body=self.body, face=self.face,
                     face_quality=self.face_quality, face_size=self.face_size)

    @classmethod
    def load(cls, path: Path) -> Appearance:
        """Read from an ``.npz`` file written by :meth:`save`."""
        with np.load(path) as z:
            return cls(z["rows"], z["frames"], z["body"], z["face"], z["face_quality"], z["face_size"])


def extract_appearance(
    video: Path,
    tracks: TrackTable,
    rows: NDArray[np.int64],
    analyzer: FaceAnalyzer,
    *,
    progress: Progress = True,
    n_frames: int | None = None,
) -> Appearance:
    """Describe bodies and embed faces at ``rows`` of ``tracks`` (one decode pass).

    Args:
        video: The video file.
        tracks: Tracklet table.
        rows: Row indices of ``tracks`` to describe.
        analyzer: Face detector and embedder.
        progress: Progress bars.
        n_frames: Frames in the video as the scan decoded them (lets the decoder skip unsampled
            frames safely, see :func:`~fancam.io.video.iter_frames_at`); None decodes every frame.
    """
    rows = rows[np.argsort(tracks.frame[rows], kind="stable")]
    sampled_frames = np.unique(tracks.frame[rows])
    by_frame = {int(f): np.flatnonzero(tracks.frame == f) for f in sampled_frames}
    position = {int(r): k for k, r in enumerate(rows)}
    n = len(rows)
    body: NDArray[np.float32] | None = None
    face = np.full((n, EMBEDDING_DIM), np.nan, np.float32)
    quality = np.full(n, np.nan, np.float32)
    size = np.full(n, np.nan, np.float32)
    # Faces are embedded in a worker process when there are enough of them to pay for its start.
    embed_worker = len(sampled_frames) >= MIN_BATCHES_FOR_WORKER and worker_possible()
    pending: dict[int, list[tuple[int, float, float]]] = {}  # frame -> (sample, quality, face size)
    with (progress_bar(len(sampled_frames), "faces+bodies", enabled=progress) as bar,
          EmbeddingQueue(analyzer.embedder, use_worker=embed_worker) as queue):
        frames: Iterator[DecodedFrame]
        if n_frames is None:
            frames = (f for f in iter_frames(video) if f.index in by_frame)
        else:
            frames = iter_frames_at(video, sampled_frames, n_frames=n_frames)
        # Decoding in a background thread overlaps the face work on the sampled frames.
        for frame in prefetch(frames):
            everyone = by_frame[frame.index]
            wanted = np.array([i for i, r in enumerate(everyone) if int(r) in position], np.int64)
            out = np.array([position[int(everyone[i])] for i in wanted], np.int64)
            image = frame.rgb()
            boxes = tracks.xyxy[everyone]
            pending[frame.index] = _faces(analyzer, image, boxes[wanted], out, queue, frame.index)
            # A box cut by the frame bottom is described as the top of the body its face tells the size of.
            face_sides = {k: s for k, _, s in pending[frame.index]}
            descs = describe_bodies(image, boxes, indices=wanted,
                                    face_sides=[face_sides.get(int(k), np.nan) for k in out])
            if body is None:
                body = np.zeros((n, descs.shape[1]), np.float32)
            body[out] = descs
            bar.update(1)
        for index, vectors in queue.results().items():
            for (k, score, side), vector in zip(pending[index], vectors, strict=True):
                face[k], quality[k], size[k] = vector, score, side
    if body is None:
        body = np.zeros((n, 0), np.float32)
    return Appearance(rows, tracks.frame[rows], body, face, quality, size)


def _faces(
    analyzer: FaceAnalyzer,
    image: NDArray[np.uint8],
    boxes: NDArray[np.float32],
    out: NDArray[np.int64],
    queue: EmbeddingQueue,
    key: int,
) -> list[tuple[int, float, float]]:
    """Find the faces of the sampled ``boxes`` and queue their embedding under ``key``.

    Sampled boxes barely overlap anyone, so their head regions hold no other face; detecting in every
    box of the frame would multiply the cost. Returns (sample index, quality, face side px) of each
    queued face, in the order of the queued chips.
    """
    found = analyzer.find_faces(image, boxes)
    keep = [c for c in found if c is not None and c.quality.score >= analyzer.config.min_quality]
    queue.submit(key, [c.chip for c in keep])
    return [(int(out[c.box_index]), c.quality.score, float(c.xyxy[2] - c.xyxy[0])) for c in keep]
