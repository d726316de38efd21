"""Identity timeline PNG: one row per performer, a coloured bar per tracklet, shaded by confidence.

Lets a user see at a glance who was seen when, where identities come from several tracklets, and how
sure the naming is (faint bars = low confidence).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fancam.identity.people import UNKNOWN, Cast  # noqa: E402
from fancam.io.cache import atomic_path  # noqa: E402
from fancam.types import Timeline, TrackTable  # noqa: E402


def plot_identity_timeline(path: Path, tracks: TrackTable, cast: Cast, timeline: Timeline) -> None:
    """Write the timeline PNG atomically."""
    people = cast.people
    fig, ax = plt.subplots(figsize=(10, 0.6 + 0.45 * max(1, len(people))), dpi=100)
    colours = plt.get_cmap("tab10")
    for row, person in enumerate(people):
        colour = "0.6" if person.label == UNKNOWN else colours(row % 10)
        alpha = 0.3 + 0.7 * float(np.clip(person.confidence, 0, 1)) if person.member else 0.9
        mask = cast.person == person.id
        for tracklet in np.unique(tracks.track_id[mask]):
            frames = tracks.frame[mask & (tracks.track_id == tracklet)]
            t0, t1 = timeline.t[frames.min()], timeline.t[frames.max()]
            ax.barh(row, max(t1 - t0, 0.05), left=t0, height=0.7, color=colour, alpha=alpha,
                    edgecolor="black", linewidth=0.4)
            ax.text(t0, row, f" {int(tracklet)}", va="center", ha="left", fontsize=6)
    for start in timeline.shot_starts[1:]:
        ax.axvline(timeline.t[start], color="red", linestyle=":", linewidth=0.8)
    ax.set_yticks(range(len(people)))
    ax.set_yticklabels([f"{p.id}: {p.label} ({p.confidence:.2f})" for p in people], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(float(timeline.t[-1]) if timeline.n_frames else 1.0, 0.1))
    ax.set_xlabel("time (s); bars = tracklets (id), red dotted = shot cuts")
    ax.set_title("who is who", fontsize=9)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
