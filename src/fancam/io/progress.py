"""Progress of long work: tqdm bars on a terminal, or events for a program (the web app, batch runs).

Every long loop of the pipeline reports through :func:`progress_bar`. Its ``enabled`` argument is a
:data:`Progress`: ``True`` (a bar on stderr when it is a terminal), ``False`` (silent), or a callable that
receives a :class:`ProgressEvent` when a stage starts, at most every :data:`EVENT_INTERVAL_S` while it
runs, and when it ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TypeAlias

from tqdm import tqdm


@dataclass(frozen=True)
class ProgressEvent:
    """How far one stage of the work is.

    Attributes:
        stage: Stage name (``detect+track``, ``faces+bodies``, ``render``, ...).
        done: Units done so far (frames, sampled frames).
        total: Units in the stage, or None when unknown.
        elapsed_s: Seconds since the stage started.
        finished: True on the stage's last event.
    """

    stage: str
    done: int
    total: int | None
    elapsed_s: float
    finished: bool = False

    @property
    def fraction(self) -> float | None:
        """Share done in [0, 1], or None when the total is unknown."""
        if not self.total:
            return None
        return min(1.0, self.done / self.total)

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate, or None before there is a rate."""
        fraction = self.fraction
        if fraction is None or fraction <= 0.0:
            return None
        return self.elapsed_s * (1.0 - fraction) / fraction


ProgressCallback: TypeAlias = Callable[[ProgressEvent], None]
Progress: TypeAlias = bool | ProgressCallback
"""``True`` = a bar on a terminal, ``False`` = silent, a callable = events."""

EVENT_INTERVAL_S = 0.25
"""Least time between two events of one stage (a page or a log need no more than 4 a second)."""


class _EventBar:
    """The part of tqdm's interface the pipeline uses, reporting to a callback instead."""

    def __init__(self, callback: ProgressCallback, total: int | None, stage: str) -> None:
        self._callback = callback
        self._total = total or None
        self._stage = stage
        self._done = 0
        self._start = time.monotonic()
        self._last = float("-inf")

    def __enter__(self) -> _EventBar:
        self._emit(force=True)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self._emit(force=True, finished=True)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units done."""
        self._done += n
        self._emit()

    def _emit(self, *, force: bool = False, finished: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < EVENT_INTERVAL_S:
            return
        self._last = now
        done = self._total if finished and self._total else self._done
        self._callback(ProgressEvent(self._stage, done, self._total, now - self._start, finished))


def progress_bar(total: int | None, desc: str, *, enabled: Progress = True, unit: str = "frame") -> tqdm | _EventBar:
    """A bar for one stage: tqdm on a terminal, events to a callable, or nothing (see the module doc)."""
    if callable(enabled):
        return _EventBar(enabled, total, desc)
    return tqdm(
        total=total or None, desc=desc, unit=unit, dynamic_ncols=True, leave=False,
        disable=None if enabled else True,
    )
