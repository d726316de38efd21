"""One frame of an analysed video with the performers on it: what a picker or a preview shows.

The web app lets a user scrub to any time and click a person; this is the frame and the boxes it
draws, taken from the analysis (``tracks`` + ``cast``), so a click names the same performer that
``--person N`` would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fancam.identity.people import Person
from fancam.io.video import frame_at
from fancam.pipeline.analyze import Analysis

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Snapshot:
    """A frame of an analysed video and the performers seen on it.

    Attributes:
        frame: Decode index of the frame.
        t: Seconds from the first frame.
        image: (H, W, 3) uint8 RGB, as displayed (rotation applied); boxes are in its pixels.
        people: ``(person, xyxy box)`` of every performer on the frame, by person number.
    """

    frame: int
    t: float
    image: NDArray[np.uint8]
    people: tuple[tuple[Person, Box], ...]


def nearest_frame(analysis: Analysis, t: float) -> int:
    """Decode index of the frame nearest to ``t`` seconds (clamped to the video)."""
    times = analysis.timeline.t
    if not len(times):
        return 0
    i = min(int(np.searchsorted(times, t)), len(times) - 1)
    if i > 0 and t - times[i - 1] <= times[i] - t:
        i -= 1
    return i


def people_on_frame(analysis: Analysis, frame: int) -> tuple[tuple[Person, Box], ...]:
    """``(person, box)`` of every performer on decode index ``frame`` (rows of nobody left out)."""
    rows = np.flatnonzero((analysis.tracks.frame == frame) & (analysis.cast.person > 0))
    out: dict[int, tuple[Person, Box]] = {}
    for row in rows:
        person = analysis.cast.by_id(int(analysis.cast.person[row]))
        if person.id not in out:  # identity never puts one performer twice in a frame
            x1, y1, x2, y2 = (float(v) for v in analysis.tracks.xyxy[row])
            out[person.id] = (person, (x1, y1, x2, y2))
    return tuple(out[k] for k in sorted(out))


def snapshot(analysis: Analysis, t: float) -> Snapshot:
    """The frame nearest to ``t`` seconds with the performers on it (one seek, not a full decode).

    Raises:
        VideoError: the video can no longer be decoded.
    """
    frame = nearest_frame(analysis, t)
    exact = float(analysis.timeline.t[frame]) if analysis.timeline.n_frames else 0.0
    decoded = frame_at(analysis.info.path, exact, index=frame)
    return Snapshot(frame=frame, t=exact, image=decoded.rgb(), people=people_on_frame(analysis, frame))
