"""Engines that run items on this machine: a process pool (the default) and one item after another.

The pool has one process per worker, started fresh (``spawn``: no state inherited from the driver).
An item runs in one process from start to finish. When a worker process dies (killed, out of memory),
the pool breaks: a new pool is started and the items that were running are submitted again, at most
``max_attempts`` times in all. Ctrl-C (or SIGTERM) in the driver stops the workers, which remove their
temporary files first.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import FrameType

from fancam.batch.items import Item
from fancam.batch.work import FAILED, ItemResult, TransientError, count_attempts, run_item
from fancam.errors import EXIT_INTERRUPTED

OnResult = Callable[[ItemResult], None]

WORKER_MEMORY_MB = 1024
"""Memory one worker may need (MB), for sizing the pool and Ray's per-task reservation. Peak RSS of a
worker (benchmarks/bench_batch.py, ``peak_rss_mb``): 0.50 GB for the 360p-720p clips of its default
manifest, 0.54 GB for gillhung dance2 (1080x1920 HEVC, 24 s, 5 performers); about twice that leaves room
for longer and larger (4K, not measured) videos."""

MAX_ATTEMPTS = 3
"""Tries per item when its worker dies or its download fails (never for a bad input)."""

STOP_GRACE_S = 10.0
"""How long stopped workers get to remove their temporary files before they are killed."""


def default_workers(memory_mb: int = WORKER_MEMORY_MB) -> int:
    """Worker processes for this machine: one per core, fewer if the free memory is short."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    available = available_memory_mb()
    by_memory = cores if available is None else int(available // memory_mb)
    return max(1, min(cores, by_memory))


def available_memory_mb() -> float | None:
    """Memory available to new processes (MB), from /proc/meminfo; None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class InProcessEngine:
    """Every item in this process, one after another (``sequential``: for measuring and debugging)."""

    name = "sequential"
    workers = 1

    def run(self, items: Sequence[Item], out: Path, run_id: str, on_result: OnResult) -> None:
        """Run every item, reporting each result as it comes."""
        for item in items:
            try:
                on_result(run_item(item, str(out), run_id))
            except TransientError as e:
                on_result(ItemResult(item.index, FAILED, error=str(e), attempt=count_attempts(out, item, run_id)))


class LocalEngine:
    """A pool of worker processes on this machine.

    Attributes:
        workers: Worker processes (default: :func:`default_workers`).
        max_attempts: Tries per item when a worker dies or a download fails.
    """

    name = "local"

    def __init__(self, workers: int | None = None, max_attempts: int = MAX_ATTEMPTS) -> None:
        self.workers = workers or default_workers()
        self.max_attempts = max_attempts

    def run(self, items: Sequence[Item], out: Path, run_id: str, on_result: OnResult) -> None:
        """Run every item, reporting each result as it comes.

        Raises:
            KeyboardInterrupt: Ctrl-C; the workers have been stopped.
        """
        queue = deque(items)
        tries: dict[int, int] = {}
        running: dict[Future[ItemResult], Item] = {}
        pool = self._pool()
        try:
            while queue or running:
                while queue and len(running) < self.workers:  # no more in flight than workers
                    item = queue[0]
                    try:
                        future = pool.submit(_task, item, str(out), run_id)
                    except BrokenProcessPool:  # an idle worker died: start a new pool, submit again
                        pool.shutdown(wait=True)
                        pool = self._pool()
                        continue
                    queue.popleft()
                    tries[item.index] = tries.get(item.index, 0) + 1
                    running[future] = item
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = any(isinstance(f.exception(), BrokenProcessPool) for f in done)
                if broken:  # every item in flight failed with the pool (or had just finished)
                    done = set(wait(running).done)
                for future in done:
                    item = running.pop(future)
                    error = future.exception()
                    if error is None:
                        on_result(future.result())
                    elif isinstance(error, (BrokenProcessPool, TransientError)):
                        why = str(error) if isinstance(error, TransientError) else (
                            "its worker process died (killed, or out of memory)")
                        if tries[item.index] < self.max_attempts:
                            queue.appendleft(item)
                        else:
                            on_result(ItemResult(item.index, FAILED, error=f"{why}; gave up after "
                                                 f"{tries[item.index]} attempts", attempt=tries[item.index]))
                    else:
                        on_result(ItemResult(item.index, FAILED, attempt=tries[item.index],
                                             error=f"internal error: {type(error).__name__}: {error}"))
                if broken:
                    pool.shutdown(wait=True)
                    pool = self._pool()
        except KeyboardInterrupt:
            _stop(pool)
            raise
        pool.shutdown(wait=True)

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop every worker: SIGTERM (they clean up and exit), then SIGKILL after a grace period."""
    # The pool's processes (pid -> Process): private, but the same since Python 3.2.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()


# --------------------------------------------------------------------------- in the worker process

_busy = False
"""Whether this worker process is working on an item (worker-process state, for its signal handler)."""


def _init_worker() -> None:
    """Ctrl-C is the driver's to handle; SIGTERM stops the item (its files are cleaned up) or the idle worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    if _busy:
        raise KeyboardInterrupt
    os._exit(EXIT_INTERRUPTED)


def _task(item: Item, out: str, run_id: str) -> ItemResult:
    global _busy
    _busy = True
    try:
        return run_item(item, out, run_id)
    except KeyboardInterrupt:  # stopped: run_item removed its temporary files; leave quietly
        os._exit(EXIT_INTERRUPTED)
    finally:
        _busy = False
