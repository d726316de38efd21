"""Ray engine (optional ``ray`` extra): the items as Ray tasks, on a cluster or on this machine.

Each item is one task that reserves one CPU and ``task_memory_mb`` of memory (Ray schedules no more
tasks on a node than fit). Ray retries a task whose worker process or node died (``max_retries``), and
one that raised :class:`~fancam.batch.work.TransientError` (a failed download); a bad input is a failed
result, never an exception, so it is never retried. Every worker writes into the batch's output folder,
which must be the same folder on every node (a shared file system), and reads the videos and galleries
at the paths of the manifest (absolute, also shared) or downloads the URLs.

Without an address, a private single-machine cluster is started for the run (bound to 127.0.0.1, no
dashboard, a small object store: the tasks pass only small records) and stopped at the end.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fancam.batch.items import Item
from fancam.batch.local import WORKER_MEMORY_MB, OnResult, default_workers
from fancam.batch.work import FAILED, ItemResult, TransientError, count_attempts, run_item
from fancam.errors import InputError, UsageError

OBJECT_STORE_MB = 200
"""Object store of a private cluster (MB): results are a few kB each, and the machine may be shared."""

RETRIES = 2
"""Retries of a task whose worker died or whose download failed (so up to 3 attempts)."""

WAIT_S = 0.5
"""How often the driver wakes up while waiting (so Ctrl-C is handled promptly)."""


class RayEngine:
    """Items as Ray tasks.

    Attributes:
        address: Address of an existing cluster (``HOST:PORT`` of the head, ``auto``, or ``ray://...``
            with Ray Client); None starts a private cluster on this machine.
        workers: CPUs of the private cluster (default: as the local pool); ignored with an address.
        task_memory_mb: Memory reserved per task (MB).
        retries: Retries of a task after a worker death or a failed download.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        task_memory_mb: int = WORKER_MEMORY_MB,
        retries: int = RETRIES,
    ) -> None:
        self.address = address
        self.workers = workers or default_workers(task_memory_mb)
        self.task_memory_mb = task_memory_mb
        self.retries = retries

    def run(self, items: Sequence[Item], out: Path, run_id: str, on_result: OnResult) -> None:
        """Run every item as a task, reporting each result as it comes.

        Raises:
            UsageError: Ray is not installed.
            InputError: the cluster cannot be reached.
            KeyboardInterrupt: Ctrl-C; the tasks have been cancelled.
        """
        ray = _import_ray()
        self._connect(ray)
        try:
            if self.address is not None:
                self.workers = int(ray.cluster_resources().get("CPU", 0)) or self.workers
            task = ray.remote(
                num_cpus=1, memory=self.task_memory_mb * 1024 * 1024, max_retries=self.retries,
                retry_exceptions=[TransientError],
            )(run_item)
            pending = {
                task.options(name=f"fancam-batch-item-{item.index}").remote(item, str(out), run_id): item
                for item in items
            }
            try:
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_S)
                    for ref in ready:
                        item = pending.pop(ref)
                        on_result(self._result(ray, ref, item, out, run_id))
            except KeyboardInterrupt:
                for ref in pending:
                    ray.cancel(ref, force=True)
                raise
        finally:
            ray.shutdown()

    def _connect(self, ray: Any) -> None:
        # Errors only: Ray would otherwise log its start-up (and token set-up) over the progress bar.
        quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
        try:
            if self.address is not None:
                ray.init(address=self.address, **quiet)
                return
            # A private cluster on this machine: every Ray process on the loopback address.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            ray.init(
                address="local",  # a new cluster, never one that happens to run on this machine
                num_cpus=self.workers, object_store_memory=OBJECT_STORE_MB * 1024 * 1024,
                include_dashboard=False, _node_ip_address="127.0.0.1", **quiet,
            )
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at {self.address!r}" if self.address else "a local Ray cluster"
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"cannot start or reach {where}: {first}") from e

    def _result(self, ray: Any, ref: Any, item: Item, out: Path, run_id: str) -> ItemResult:
        """The task's result, or a failed result saying why it has none."""
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if getattr(e, "cause", None) is not None else e
            if isinstance(cause, TransientError):
                why = f"{cause}; gave up after {self.retries + 1} attempts"
            else:
                why = f"internal error: {type(cause).__name__}: {_first_line(cause)}"
        except ray.exceptions.TaskCancelledError:
            why = "cancelled"
        except ray.exceptions.RayError as e:  # worker or node died (killed, out of memory) too often
            why = f"its worker died ({type(e).__name__}); gave up after {self.retries + 1} attempts"
        return ItemResult(item.index, FAILED, error=why, attempt=count_attempts(out, item, run_id))


def _import_ray() -> Any:
    # Ray's usage statistics would be sent over the network: off unless the user asked for them.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as e:
        raise UsageError("--engine ray needs Ray; install it with `pip install 'fancam[ray]'`") from e
    return ray


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__

