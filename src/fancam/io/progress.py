"""Progress bars on stderr (tqdm), shown only on a terminal and when wanted."""

from __future__ import annotations

from tqdm import tqdm


def progress_bar(total: int | None, desc: str, *, enabled: bool = True, unit: str = "frame") -> tqdm:
    """A tqdm bar with rate (e.g. frames per second); silent when not enabled or not on a terminal."""
    return tqdm(
        total=total or None, desc=desc, unit=unit, dynamic_ncols=True, leave=False,
        disable=None if enabled else True,
    )
