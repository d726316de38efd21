"""Face embeddings computed beside the caller, in one worker process.

dlib's ResNet (:class:`~fancam.identity.faces.DlibEmbedder`) costs ~57 ms per face on one core and holds
the GIL while it runs, so a thread cannot overlap it with anything written in Python (measured: two
threads embed no faster than one). The appearance pass of a 1080p video spends most of its time there
(gillhung dance2: 4.5 s of 6.4 s) while the second core is half idle, so the batches go to one worker
process instead; the caller goes on finding faces and, once it has no more, embeds the batches the
worker has not started yet, from the last one backwards (the worker takes them from the front). The
worker computes exactly what the caller would (same network, same batches), so the results do not
depend on who embedded a batch.

The worker is a plain ``python -m fancam.identity.embedding`` child talking over its stdin/stdout (not
``multiprocessing``, whose ``spawn`` re-runs the caller's main script and whose ``fork`` is unsafe
beside decoder threads). It starts with the first batch and costs ~0.5 s of CPU (importing dlib,
loading the network), so short jobs stay in-process. If it cannot start or dies, the caller embeds
what is left.
"""

from __future__ import annotations

import collections
import logging
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import IO

import numpy as np
from numpy.typing import NDArray

from fancam.identity.faces import DlibEmbedder

log = logging.getLogger(__name__)

MIN_BATCHES_FOR_WORKER = 16
"""Fewest expected batches (sampled frames) for which a worker process pays: its start costs about as
much CPU as embedding 8-10 faces (~0.5 s), and on gillhung dance2 ~80 % of sampled frames hold a face."""

MAX_PENDING_BATCHES = 64
"""Batches waiting for the worker at most (~64 frames' chips, ~15 MB). Beyond, the caller embeds the
newest itself before going on, so memory stays flat in the video's length: a 10-minute 4K clip held
thousands of chips waiting (over 1 GB) when the worker alone could not keep up."""

Chips = list[NDArray[np.uint8]]


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def worker_possible() -> bool:
    """True when a worker process can help: two cores or more."""
    return usable_cores() >= 2


class EmbeddingQueue:
    """Embeds batches of aligned face chips, in a worker process when ``use_worker`` (else at once).

    Usage::

        with EmbeddingQueue(embedder, use_worker=True) as queue:
            for key, chips in batches:
                queue.submit(key, chips)
            vectors = queue.results()  # {key: (N, 128) float32}

    Args:
        embedder: The caller's embedder (used for the batches the worker does not take, and for all
            of them without a worker).
        use_worker: Start a worker process on the first batch.
        take_back: Let :meth:`results` embed the batches the worker has not started (False: wait for
            the worker to do them all, unless it stops).
        python: The interpreter that runs the worker.

    Attributes:
        worker_batches: Number of batches the worker embedded.
    """

    def __init__(self, embedder: DlibEmbedder, *, use_worker: bool, take_back: bool = True,
                 python: str = sys.executable) -> None:
        self._embedder = embedder
        self._use_worker = use_worker
        self._take_back = take_back
        self._python = python
        self.worker_batches = 0
        self._todo: collections.deque[tuple[int, Chips]] = collections.deque()
        self._done: dict[int, NDArray[np.float32]] = {}
        self._lock = threading.Condition()
        self._closing = False
        self._dispatcher: threading.Thread | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def submit(self, key: int, chips: Chips) -> None:
        """Queue a batch of (150, 150, 3) uint8 RGB chips under ``key`` (e.g. the frame; unique)."""
        if not self._use_worker or not chips:
            self._done[key] = self._embedder.embed(chips)
            return
        with self._lock:
            self._todo.append((key, chips))
            self._lock.notify_all()
        if self._dispatcher is None:
            self._dispatcher = threading.Thread(target=self._dispatch, name="fancam-embed", daemon=True)
            self._dispatcher.start()
        self._keep_up()

    @property
    def pending(self) -> int:
        """Batches submitted and not embedded yet."""
        with self._lock:
            return len(self._todo)

    def _keep_up(self) -> None:
        """Embed the newest waiting batches here while more than :data:`MAX_PENDING_BATCHES` wait."""
        while self._take_back:
            with self._lock:
                if len(self._todo) <= MAX_PENDING_BATCHES:
                    return
                key, chips = self._todo.pop()  # the newest: the worker takes the oldest
            vectors = self._embedder.embed(chips)
            with self._lock:
                self._done[key] = vectors

    def results(self) -> dict[int, NDArray[np.float32]]:
        """Every batch's (N, 128) float32 embeddings by key (waits for the worker's current batch)."""
        while True:
            with self._lock:
                if not self._todo or not self._take_back:
                    self._closing = True
                    self._lock.notify_all()
                    break
                key, chips = self._todo.pop()  # the newest: the worker takes the oldest
            vectors = self._embedder.embed(chips)
            with self._lock:
                self._done[key] = vectors
        if self._dispatcher is not None:
            self._dispatcher.join()
        for key, chips in self._todo:  # handed back by a worker that stopped
            self._done[key] = self._embedder.embed(chips)
        self._todo.clear()
        return dict(self._done)

    def close(self) -> None:
        """Stop the worker process (batches not embedded yet are dropped)."""
        with self._lock:
            self._closing = True
            self._todo.clear()
            self._lock.notify_all()
        if self._dispatcher is not None:
            self._dispatcher.join()
            self._dispatcher = None

    def __enter__(self) -> EmbeddingQueue:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    # -- the dispatcher thread: feeds the worker one batch at a time (so the rest can be taken back)

    def _dispatch(self) -> None:
        try:
            process = _start_worker_process(self._python)
        except OSError as e:
            log.info("face embedding stays in this process: cannot start a worker (%s)", e)
            return
        try:
            while True:
                with self._lock:
                    while not self._todo and not self._closing:
                        self._lock.wait()
                    if not self._todo:
                        return
                    key, chips = self._todo.popleft()
                try:
                    vectors = _ask(process, chips)
                except (OSError, EOFError, pickle.UnpicklingError, ValueError) as e:
                    log.warning("the face-embedding worker stopped (%s); embedding in this process", e)
                    with self._lock:
                        self._todo.appendleft((key, chips))
                    return
                with self._lock:
                    self._done[key] = vectors
                    self.worker_batches += 1
        finally:
            _stop_worker_process(process)


def _start_worker_process(python: str) -> subprocess.Popen[bytes]:
    """``python -m fancam.identity.embedding``, importing the same fancam as this process."""
    root = str(Path(__file__).resolve().parents[2])
    # The package's folder goes first only when the interpreter would not find it anyway (a source
    # checkout): an installed fancam's site-packages must not be put before the standard library.
    code = ("import runpy, sys\n"
            f"root = {root!r}\n"
            "if root not in sys.path: sys.path.insert(0, root)\n"
            "runpy.run_module('fancam.identity.embedding', run_name='__main__', alter_sys=True)\n")
    return subprocess.Popen([python, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)


def _stop_worker_process(process: subprocess.Popen[bytes]) -> None:
    try:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


def _send(stream: IO[bytes], payload: object) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "little") + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> object:
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError("the face-embedding worker closed its output")
    size = int.from_bytes(header, "little")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the face-embedding worker's answer was cut short")
    return pickle.loads(data)


def _ask(process: subprocess.Popen[bytes], chips: Chips) -> NDArray[np.float32]:
    if process.stdin is None or process.stdout is None:
        raise OSError("the worker has no pipes")
    _send(process.stdin, chips)
    answer = _receive(process.stdout)
    if not isinstance(answer, np.ndarray) or answer.shape != (len(chips), 128):
        raise ValueError(f"unexpected answer from the face-embedding worker: {type(answer).__name__}")
    return answer


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The worker's loop: read batches of chips, write their embeddings, until ``requests`` ends."""
    embedder = DlibEmbedder()
    while True:
        try:
            chips = _receive(requests)
        except EOFError:
            return
        _send(answers, embedder.embed(chips))  # type: ignore[arg-type]


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
