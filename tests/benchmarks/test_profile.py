"""The analysis profile benchmark: its CPU accounting and the report section it feeds."""

from __future__ import annotations

import cProfile
import os
import pstats
import threading
import time

import report
from bench_profile import TRIED, Sampler, _thread_cpu, top_functions


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_thread_cpu_is_read_per_thread_from_proc() -> None:
    threads = _thread_cpu(os.getpid())
    assert threading.get_native_id() in threads
    name, cpu = threads[threading.get_native_id()]
    assert name and cpu >= 0.0


def test_sampler_sees_a_busy_thread_and_an_idle_wait() -> None:
    names = {threading.get_native_id(): "MainThread"}
    with Sampler(0.02, names) as sampler:
        t0 = time.perf_counter()
        _spin(0.3)
        t1 = time.perf_counter()
        time.sleep(0.3)
        t2 = time.perf_counter()
    assert sampler.cpu_between(t0, t1) > 0.15  # one core busy (a loaded machine may give less than 0.3)
    assert sampler.cpu_between(t1, t2) < 0.1   # sleeping
    assert sampler.core_use(t1 + 0.05, t2 - 0.05)["~0 cores"] > 0.9
    name, cpu = sampler.busiest_thread(t0, t1)
    assert name == "MainThread" and cpu > 0.1


def test_top_functions_leave_out_waiting() -> None:
    profile = cProfile.Profile()
    lock = threading.Lock()
    profile.enable()
    _spin(0.05)
    with lock:
        pass
    profile.disable()
    rows = top_functions(pstats.Stats(profile), 10, "self")
    assert any("_spin" in r["function"] for r in rows)
    assert not any("acquire" in r["function"] for r in rows)
    assert rows == sorted(rows, key=lambda r: r["self_s"], reverse=True)


def test_the_report_shows_phases_estimate_and_what_was_tried() -> None:
    phase = {"wall_s": 2.0, "cpu_s": 3.0, "cores": 1.5, "core_use": {"~0 cores": 0.0, "~1 core": 0.5,
             "~2 cores": 0.5}, "busiest_thread": "MainThread", "busiest_thread_cpu_s": 1.8,
             "two_core_wall_s": 1.8}
    clip = {
        "key": "portrait", "width": 1080, "height": 1920, "codec": "hevc", "video_s": 10.0, "wall_s": 2.1,
        "rtf": 4.8, "cpu_s": 3.0, "cores": 1.4, "core_use": phase["core_use"], "two_core_wall_s": 1.9,
        "two_core_rtf": 5.3, "load_before": [0.5, 0, 0], "load_after": [0.6, 0, 0],
        "phases": {"scan": phase, "other": {"wall_s": 0.1, "cpu_s": 0.1, "two_core_wall_s": 0.1}},
        "stage_seconds": {"detect": 1.0}, "threads": {"MainThread": 1.8},
        "top_cumulative": [{"function": "scan.py:1(scan)", "calls": 1, "cum_s": 2.0, "self_s": 0.1}],
        "top_self": [{"function": "scan.py:1(scan)", "calls": 1, "cum_s": 2.0, "self_s": 0.1}],
    }
    prof = {"date": "2026-12-07", "quality": "fast", "machine": {"cores": 2, "cpu": "test"},
            "tried": list(TRIED), "clips": [clip]}
    text = "\n".join(report.profile_section(prof))
    assert "## Where the time goes" in text
    assert "| scan | 2.00 | 3.00 | 1.50 | MainThread 1.80 | 1.80 | 0% / 50% / 50% |" in text
    assert "2-core estimate 1.90 s (RTF 5.30)" in text
    assert "`scan.py:1(scan)`" in text
    assert all(t["change"] in text for t in TRIED)
    assert "profile.json missing" in "\n".join(report.profile_section(None))
