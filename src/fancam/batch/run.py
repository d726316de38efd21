"""Run a manifest: plan the items, hand them to an engine, collect and write the report."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from tqdm import tqdm

from fancam.batch.items import Item, plan_items
from fancam.batch.manifest import BadRow, Manifest
from fancam.batch.work import DONE, FAILED, INTERRUPTED, INVALID, SKIPPED, ItemResult, count_attempts
from fancam.errors import InputError

LOCK_FILE = Path(".batch") / "lock"


class Engine(Protocol):
    """Runs items somewhere and reports each result as it comes (see local.py, ray_engine.py)."""

    name: str
    workers: int

    def run(
        self, items: Sequence[Item], out: Path, run_id: str, on_result: Callable[[ItemResult], None]
    ) -> None:
        """Run every item; raise KeyboardInterrupt when stopped."""


@dataclass(frozen=True)
class BatchReport:
    """The outcome of a batch run.

    Attributes:
        manifest: The manifest file.
        out: The output folder.
        engine: Engine name (``local``, ``ray``, ``sequential``).
        workers: Parallel workers (processes or Ray CPUs).
        run_id: Id of the run (in the attempt logs).
        started: Start time (UTC, ISO 8601).
        wall_s: Wall time of the run (s).
        items: The items, by index.
        results: The result of every item, by index.
        bad: Manifest rows that were not run.
        interrupted: Whether the run was stopped (Ctrl-C) before every item finished.
    """

    manifest: Path
    out: Path
    engine: str
    workers: int
    run_id: str
    started: str
    wall_s: float
    items: tuple[Item, ...]
    results: tuple[ItemResult, ...]
    bad: tuple[BadRow, ...] = ()
    interrupted: bool = False

    def count(self, status: str) -> int:
        """Items with this status (``invalid`` counts bad rows)."""
        if status == INVALID:
            return len(self.bad)
        return sum(r.status == status for r in self.results)

    @property
    def ok(self) -> bool:
        """Every row ran and every item is complete."""
        return not self.bad and not self.interrupted and all(r.status in (DONE, SKIPPED) for r in self.results)

    def throughput(self) -> tuple[float, float]:
        """(items per minute, video seconds per wall second) of the items processed now (``done``)."""
        done = [r for r in self.results if r.status == DONE]
        if not done or self.wall_s <= 0:
            return 0.0, 0.0
        return 60.0 * len(done) / self.wall_s, sum(r.video_s for r in done) / self.wall_s


def run_batch(
    manifest: Manifest,
    out: Path,
    engine: Engine,
    *,
    progress: bool = True,
    on_result: Callable[[ItemResult], None] | None = None,
) -> BatchReport:
    """Run every valid row of ``manifest`` with ``engine`` and write ``batch-report.csv``/``.json`` in ``out``.

    A failed item does not stop the others. On Ctrl-C the engine stops its workers, the items not
    finished are reported as ``interrupted`` and the report is written (rerun to finish them).

    Args:
        manifest: The read manifest (its bad rows are reported as ``invalid``).
        out: Output folder (created if needed).
        engine: Where to run the items.
        progress: A progress bar over the items on stderr (when it is a terminal).
        on_result: Called with each item's result as it arrives.

    Raises:
        InputError: ``out`` cannot be written, or another batch is writing to it.
    """
    out = Path(out)
    _ensure_writable(out)
    with _exclusive(out):
        return _run(manifest, out, engine, progress, on_result)


def _run(
    manifest: Manifest, out: Path, engine: Engine, progress: bool, on_result: Callable[[ItemResult], None] | None
) -> BatchReport:
    from fancam.batch.report import write_reports

    items = tuple(plan_items(manifest.rows))
    run_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{os.getpid()}"
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results: dict[int, ItemResult] = {}
    start = time.perf_counter()
    bar = tqdm(total=len(items), desc="batch", unit="video", dynamic_ncols=True, disable=None if progress else True)

    def collect(result: ItemResult) -> None:
        results[result.index] = result
        bar.update(1)
        bar.set_postfix_str(", ".join(f"{n} {s}" for s in (DONE, SKIPPED, FAILED)
                                      if (n := sum(r.status == s for r in results.values()))))
        if result.status == FAILED:
            item = items[result.index]
            bar.write(f"fancam: line {_lines(item)}: {item.video}: {result.error}", file=sys.stderr)
        if on_result is not None:
            on_result(result)

    interrupted = False
    try:
        if items:
            engine.run(items, out, run_id, collect)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    final = tuple(
        results.get(item.index) or ItemResult(item.index, INTERRUPTED, attempt=count_attempts(out, item, run_id),
                                              error="the batch was stopped before this item finished")
        for item in items
    )
    report = BatchReport(
        manifest=manifest.path, out=out, engine=engine.name, workers=engine.workers, run_id=run_id,
        started=started, wall_s=time.perf_counter() - start, items=items, results=final, bad=manifest.bad,
        interrupted=interrupted or any(r.status == INTERRUPTED for r in final),
    )
    write_reports(report)
    return report


def _lines(item: Item) -> str:
    return ",".join(map(str, item.lines))


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """One batch at a time per output folder (two would redo and remove each other's work)."""
    lock = out / LOCK_FILE
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            raise InputError(f"another fancam batch is writing to {str(out)!r}; wait for it to finish or "
                             "choose another --out") from e
        yield


def _ensure_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the output folder {str(out)!r}: {e.strerror or e}; "
                         "choose another --out") from e
    if not os.access(out, os.W_OK | os.X_OK):
        raise InputError(f"output folder {str(out)!r} is not writable; choose another --out")

