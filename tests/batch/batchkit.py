"""Helpers of the batch tests: real ``fancam batch`` processes, their workers, and checks of the outputs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from conftest import REPO

HEADER = "video,members,framing,aspect,height,start,end,gallery\n"

# A shell that starts the tests in the background makes children ignore SIGINT; a user's Ctrl-C is
# what the interruption tests simulate, so restore Python's default handler first.
LAUNCH = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from fancam.cli import main; sys.exit(main(sys.argv[1:]))"
)


def env(**extra: str) -> dict[str, str]:
    """The environment of a batch process: this tree's fancam first on the path."""
    variables = dict(os.environ)
    variables["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
    variables.update(extra)
    return variables


def start_batch(manifest: Path, out: Path, *options: str, environ: dict[str, str] | None = None) -> subprocess.Popen:
    """``fancam -q batch MANIFEST --out OUT OPTIONS`` as a process (stdout and stderr piped)."""
    cmd = [sys.executable, "-c", LAUNCH, "-q", "batch", str(manifest), "--out", str(out), *options]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environ or env(), cwd=manifest.parent)


def finish(proc: subprocess.Popen, timeout: float = 400) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def wait_until(condition: Callable[[], object], proc: subprocess.Popen, what: str, timeout: float = 300) -> object:
    """Poll ``condition`` until it is truthy; fail if the batch ends first or it takes too long."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the batch ended (or took too long) before {what}: rc={proc.returncode}\n{out}\n{err}")
        time.sleep(0.05)


def worker_pids(out: Path, key: str) -> list[int]:
    """The worker pid of every attempt at item ``key`` (all runs), oldest first."""
    log = out / ".batch" / "attempts" / f"{key}.log"
    return [int(line.split("\t")[1].rsplit(":", 1)[1]) for line in log.read_text().splitlines()]


def parent_of(pid: int) -> int:
    """Parent pid of a running process (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def is_descendant(pid: int, ancestor: int) -> bool:
    while pid > 1:
        pid = parent_of(pid)
        if pid == ancestor:
            return True
    return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def kill_worker_of(out: Path, key: str, analysis_glob: str, ancestor: int, proc: subprocess.Popen) -> int:
    """SIGKILL the worker of item ``key`` once its analysis has started; return the worker's pid.

    The pid comes from the item's attempt log, and it must descend from ``ancestor`` (a process this
    test started): nothing else on the machine is ever touched.
    """
    wait_until(lambda: list(out.glob(analysis_glob)), proc, "the analysis started")
    time.sleep(0.5)  # well into detection
    return kill_worker_now(out, key, ancestor)


def recorded_stages(out: Path, analysis_glob: str) -> dict:
    """The stages recorded as complete in the manifest of the analysis folder ``analysis_glob`` (or {})."""
    for manifest in out.glob(f"{analysis_glob}/manifest.json"):
        try:
            return json.loads(manifest.read_text()).get("stages", {})
        except (OSError, ValueError):  # written atomically, but it may vanish between glob and read
            return {}
    return {}


def kill_worker_now(out: Path, key: str, ancestor: int) -> int:
    """SIGKILL the worker of the latest attempt at item ``key`` (a descendant of ``ancestor``); its pid."""
    log = out / ".batch" / "attempts" / f"{key}.log"
    victim = int(log.read_text().splitlines()[-1].split("\t")[1].rsplit(":", 1)[1])
    assert alive(victim) and is_descendant(victim, ancestor), victim
    os.kill(victim, signal.SIGKILL)
    return victim


def read_report(out: Path) -> tuple[list[dict[str, str]], dict]:
    with open(out / "batch-report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return rows, json.loads((out / "batch-report.json").read_text())


def check_outputs(out: Path, document: dict) -> int:
    """Every fancam of every complete item decodes, with audio, as many frames as its record and its
    camera path; no temporary file is left anywhere in ``out``. Returns the number of fancams."""
    n = 0
    for item in document["items"]:
        if item["status"] not in ("done", "skipped"):
            continue
        assert item["fancams"], item
        for fancam in item["fancams"]:
            video, crop = out / fancam["output"], out / fancam["crop_csv"]
            with av.open(str(video)) as container:
                assert container.streams.audio, video
                frames = sum(1 for _ in container.decode(video=0))
            assert frames == fancam["frames"] > 0, video
            assert len(crop.read_text().splitlines()) == frames + 1, crop
            assert 0.0 <= fancam["confidence"] <= 1.0
            n += 1
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".part-") or p.name.endswith(".tmp")
                 or ".part." in p.name]
    assert not leftovers, leftovers
    return n
