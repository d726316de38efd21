"""``fancam batch --engine ray`` on a local Ray cluster started by the test (``ray start --head`` on
127.0.0.1, 2 CPUs, a 200 MB object store), as a user points it at an existing cluster: a worker killed
mid-run is retried by Ray and every output is valid; a bad video is not retried. Then the same batch
on a private cluster (no ``--address``) finds everything complete.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from batchkit import HEADER, alive, check_outputs, env, finish, kill_worker_of, read_report, start_batch, worker_pids

from conftest import shared_file, trimmed_copy
from fancam.batch.items import plan_items
from fancam.batch.manifest import read_manifest
from fancam.errors import EXIT_PROCESSING

pytestmark = pytest.mark.slow

RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",              # nothing sent over the network
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",    # single machine: every Ray process on 127.0.0.1
    "RAY_AUTH_MODE": "disabled",                 # a throw-away cluster on the loopback address
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_with_parent() -> None:
    """In the child: SIGTERM when the test process dies, even by SIGKILL (the head then stops the cluster)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """A Ray head on this machine, stopped (with every process it started) at the end."""
    temp = Path(tempfile.mkdtemp(prefix="fcray", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    port = free_port()
    environ = env(FANCAM_HOME=str(tmp_path_factory.mktemp("home")), **RAY_ENV)
    ray = Path(sys.executable).with_name("ray")
    log_path = temp / "head.log"
    cmd = [str(ray), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
           "--object-store-memory=200000000", "--node-ip-address=127.0.0.1", "--include-dashboard=false",
           f"--temp-dir={temp}", "--disable-usage-stats"]
    with open(log_path, "w") as log:
        head = subprocess.Popen(cmd, env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_stop_with_parent)
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log_path.read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start failed ({head.poll()}): {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield {"address": f"127.0.0.1:{port}", "env": environ, "head": head}
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # its own session: only the processes of this cluster
        head.wait()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_run(cluster, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("ray")
    fiyud = trimmed_copy(shared_file("data/fiyud_dance3/dance.mp4"), folder / "fiyud5.mp4", 5.0)
    gill = trimmed_copy(shared_file("data/gillhung_dance/dance.mp4"), folder / "gill4.mp4", 4.0)
    (folder / "broken.mp4").write_bytes(b"\x00" * 5000)
    manifest = folder / "stages.csv"
    manifest.write_text(HEADER + f"{fiyud},all\n{gill},all,upper,,,,,{shared_file('bench/gallery')}\n"
                        f"{folder / 'broken.mp4'},all\n")
    keys = [item.key for item in plan_items(read_manifest(manifest).rows)]
    out = folder / "out"
    proc = start_batch(manifest, out, "--engine", "ray", "--address", cluster["address"], environ=cluster["env"])
    victim = kill_worker_of(out, keys[0], "fiyud5-*/analysis-*", cluster["head"].pid, proc)
    rc, stdout, stderr = finish(proc)
    rows, document = read_report(out)
    return {"rc": rc, "stdout": stdout, "stderr": stderr, "out": out, "rows": rows, "doc": document,
            "victim": victim, "keys": keys, "manifest": manifest}


def test_ray_retries_the_killed_worker_and_completes_with_valid_outputs(ray_run):
    run = ray_run
    assert run["rc"] == EXIT_PROCESSING, run["stderr"]  # the broken video
    assert [r["status"] for r in run["rows"]] == ["done", "done", "failed"]
    pids = worker_pids(run["out"], run["keys"][0])
    assert pids[0] == run["victim"] and len(pids) == 2 and pids[1] != run["victim"]
    assert not alive(run["victim"])
    assert run["rows"][0]["attempts"] == "2" and run["rows"][1]["attempts"] == "1"
    assert check_outputs(run["out"], run["doc"]) == 6
    assert sorted(f["label"] for f in run["doc"]["items"][1]["fancams"]) == ["P1", "P2", "P3"]
    assert run["doc"]["engine"] == "ray" and run["doc"]["workers"] == 2


def test_ray_never_retries_a_bad_video(ray_run):
    bad = ray_run["rows"][2]
    assert bad["attempts"] == "1" and "broken.mp4" in bad["error"] and "\n" not in bad["error"]
    assert "batch: 3 videos: 2 done, 1 failed" in ray_run["stdout"]


def test_private_cluster_rerun_skips_what_is_complete(ray_run, cluster):
    out = ray_run["out"]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}
    # No --address: a private single-machine cluster (1 CPU), not the one the test started.
    proc = start_batch(ray_run["manifest"], out, "--engine", "ray", "--workers", "1", environ=cluster["env"])
    rc, stdout, stderr = finish(proc)
    assert rc == EXIT_PROCESSING, stderr
    rows, document = read_report(out)
    assert [r["status"] for r in rows] == ["skipped", "skipped", "failed"]
    assert document["workers"] == 1
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")} == before
    assert check_outputs(out, document) == 6
