"""JSON output shared by the benchmark scripts, and the hand-off of a task run in its own process."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np


def clean_json(value: object) -> object:
    """JSON-ready copy (NaN -> None, numpy scalars -> Python, tuples -> lists, keys -> str)."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_measured(command: list[str], out: Path, what: str) -> dict:
    """Run ``command`` in a fresh subprocess that writes its result as JSON to ``out``.

    Returns that result with the process's peak memory (``peak_mb``, ``ru_maxrss`` from ``wait4``) and
    CPU time (``cpu_s``); ``out`` is removed. Raises RuntimeError naming ``what`` if the task fails.
    """
    proc = subprocess.Popen(command)
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{what} failed (exit {code}): {' '.join(command)}")
    result = json.loads(out.read_text())
    out.unlink()
    result.update({"peak_mb": usage.ru_maxrss / 1024, "cpu_s": usage.ru_utime + usage.ru_stime})
    return result
