"""Units of work: the manifest's rows grouped by video, so each video is analysed once.

An :class:`Item` is one video with one gallery: one analysis, then every render asked of it. Rows
with the same video, gallery and render settings are merged (their performers rendered in one pass);
rows with other settings become further renders of the same item.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from fancam.batch.manifest import Row


@dataclass(frozen=True)
class Render:
    """One render call: whom, and how (None = fancam's default).

    Attributes:
        lines: Manifest lines that asked for it.
        members: Person numbers and/or member names; None = all performers.
        framing: Framing preset.
        aspect: Output aspect ``W:H``.
        height: Output height in pixels.
        start_s: Start time (s).
        end_s: End time (s), None = the end.
    """

    lines: tuple[int, ...]
    members: tuple[int | str, ...] | None
    framing: str | None
    aspect: str | None
    height: int | None
    start_s: float
    end_s: float | None

    def settings(self) -> tuple:
        """What the output looks like (not whom it follows)."""
        return (self.framing, self.aspect, self.height, self.start_s, self.end_s)


@dataclass(frozen=True)
class Item:
    """One video (with one gallery) and the renders asked of it.

    Attributes:
        index: Position in the batch (0-based, manifest order).
        video: Absolute path or URL.
        gallery: Absolute gallery folder, or None.
        renders: Renders, in manifest order.
    """

    index: int
    video: str
    gallery: str | None
    renders: tuple[Render, ...]

    @property
    def lines(self) -> tuple[int, ...]:
        """Manifest lines of the item, sorted."""
        return tuple(sorted({line for r in self.renders for line in r.lines}))

    @property
    def key(self) -> str:
        """Stable id of the item's definition (video, gallery, renders), for its attempt log."""
        blob = json.dumps([self.video, self.gallery, [[r.members, r.settings()] for r in self.renders]])
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def plan_items(rows: tuple[Row, ...] | list[Row]) -> list[Item]:
    """Group rows into items (first appearance order); merge rows that can share one render call."""
    groups: dict[tuple[str, str | None], list[Render]] = {}
    for row in rows:
        renders = groups.setdefault((row.video, row.gallery), [])
        render = Render((row.line,), row.members, row.framing, row.aspect, row.height, row.start_s, row.end_s)
        for i, other in enumerate(renders):
            merged = _merge(other, render)
            if merged is not None:
                renders[i] = merged
                break
        else:
            renders.append(render)
    return [
        Item(index, video, gallery, tuple(renders))
        for index, ((video, gallery), renders) in enumerate(groups.items())
    ]


def _merge(a: Render, b: Render) -> Render | None:
    """One render doing both, or None: same settings, and both `all` or both explicit lists."""
    if a.settings() != b.settings() or (a.members is None) != (b.members is None):
        return None
    members = None if a.members is None else tuple(dict.fromkeys(a.members + (b.members or ())))
    return Render(a.lines + b.lines, members, *a.settings())
