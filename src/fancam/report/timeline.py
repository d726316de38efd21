"""Identity timeline PNG: one row per performer, a coloured bar per tracklet, shaded by confidence.

Lets a user see at a glance who was seen when, where identities come from several tracklets, and how
sure identity is, stretch by stretch (faint bars = low confidence, hatched = uncertain). A legend on
the figure says what the numbers and shades mean.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from fancam.identity.people import UNCERTAIN_BELOW, UNKNOWN, Cast  # noqa: E402
from fancam.io.cache import atomic_path  # noqa: E402
from fancam.types import Timeline, TrackTable  # noqa: E402

CONFIDENCE_NOTE = (
    "(0.97) = identity confidence, 0-1: the probability that the rows show this performer under this name "
    "(mean over their tracklets, weighted by time). Bars = tracklets (id), shaded by their own confidence; "
    "hatched = uncertain (below {threshold:g}): the camera may follow someone else there."
)


def plot_identity_timeline(path: Path, tracks: TrackTable, cast: Cast, timeline: Timeline) -> None:
    """Write the timeline PNG atomically."""
    people = cast.people
    fig, ax = plt.subplots(figsize=(10, 1.3 + 0.45 * max(1, len(people))), dpi=100)
    colours = plt.get_cmap("tab10")
    for row, person in enumerate(people):
        colour = "0.6" if person.label == UNKNOWN else colours(row % 10)
        for start, end, tracklet, confidence in _bars(tracks, cast, timeline, person.id):
            ax.barh(row, max(end - start, 0.05), left=start, height=0.7, color=colour,
                    alpha=0.25 + 0.75 * float(np.clip(confidence, 0, 1)), edgecolor="black", linewidth=0.4,
                    hatch="////" if confidence < UNCERTAIN_BELOW else None)
            ax.text(start, row, f" {int(tracklet)}", va="center", ha="left", fontsize=6)
    for start in timeline.shot_starts[1:]:
        ax.axvline(timeline.t[start], color="red", linestyle=":", linewidth=0.8)
    ax.set_yticks(range(len(people)))
    ax.set_yticklabels([f"{p.id}: {p.label} ({p.confidence:.2f})" for p in people], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(float(timeline.t[-1]) if timeline.n_frames else 1.0, 0.1))
    ax.set_xlabel("time (s)")
    handles = [
        Patch(facecolor="0.3", alpha=1.0, edgecolor="black", label="confidence 1"),
        Patch(facecolor="0.3", alpha=0.25 + 0.75 * 0.6, edgecolor="black", label="0.6"),
        Patch(facecolor="0.3", alpha=0.25 + 0.75 * 0.3, edgecolor="black", hatch="////",
              label=f"uncertain (< {UNCERTAIN_BELOW:g})"),
        Line2D([0], [0], color="red", linestyle=":", label="shot cut"),
    ]
    ax.set_title("who is who", fontsize=9, loc="left")
    ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=4, fontsize=7, frameon=False)
    height = fig.get_figheight()
    fig.text(0.01, 0.02 / height, textwrap.fill(CONFIDENCE_NOTE.format(threshold=UNCERTAIN_BELOW), 160),
             fontsize=6.5, va="bottom", ha="left")
    fig.tight_layout(rect=(0, 0.4 / height, 1, 1))
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _bars(
    tracks: TrackTable, cast: Cast, timeline: Timeline, person_id: int
) -> list[tuple[float, float, int, float]]:
    """(start_s, end_s, tracklet, confidence) of each stretch of a performer."""
    stretches = cast.stretches_of(person_id)
    if stretches:
        return [(s.start_s, s.end_s, s.tracklet, s.confidence) for s in stretches]
    # A cast without stretches (made elsewhere): one bar per tracklet at the performer's confidence.
    mask = cast.person == person_id
    confidence = cast.by_id(person_id).confidence
    out = []
    for tracklet in np.unique(tracks.track_id[mask]):
        frames = tracks.frame[mask & (tracks.track_id == tracklet)]
        out.append((float(timeline.t[frames.min()]), float(timeline.t[frames.max()]), int(tracklet), confidence))
    return out
