"""Where the analysis time goes: a profile of ``fancam analyze`` per phase, per thread and per function.

For each clip (fresh analysis folder, no cache), in its own subprocess:

- **phases** (scan = decode + cuts + detection + tracking, tracklets, appearance = faces and bodies,
  identity): wall and CPU seconds of each, and the mean number of cores busy (CPU / wall). CPU counts
  every thread of the process and of its child processes (a face-embedding worker), read from
  ``/proc`` every ``--interval`` seconds.
- **core use**: the share of the analysis wall time during which about 0, 1 or 2 cores were busy
  (from the same samples), so an idle core shows up.
- **2-core estimate**: per phase, max(CPU / 2, CPU of its busiest thread) -- the wall time the phase
  would need on two otherwise idle cores if it spread perfectly, never less than its longest serial
  chain; summed over the phases (``other``: its wall time). On a busy shared machine the measured wall
  is many times this; compare CPU seconds and this estimate across runs made at similar load.
- **threads**: CPU seconds per thread name (``MainThread``, the decode thread, FFmpeg's decoder
  threads, onnxruntime's, worker processes).
- **functions**: cProfile of every Python thread (merged), the top ``--top`` functions by cumulative
  and by self time (a C call such as ``compute_face_descriptor`` is its own row).
- **stage timers**: ``Analysis.stage_seconds`` (the scan's own timers: decode wait, shots, convert,
  detect, track; the appearance stage).

Usage::

    python benchmarks/bench_profile.py [--clips portrait,landscape] [--quality fast] [--top 25]
                                       [--work DIR] [--json OUT]

Results: ``WORK/profile.json`` (default WORK: ``$TMPDIR/fancam-bench``); ``report.py`` renders it as
"Where the time goes". Profiling adds ~5-10% to the wall time (cProfile on every Python call), so the
speed itself comes from ``bench_pipeline.py``; this shows the shares. :data:`TRIED` lists what was
tried to speed the analysis up and its measured effect; it is copied into the JSON.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import CLIPS, SHARED, machine  # noqa: E402

DEFAULT_WORK = Path(tempfile.gettempdir()) / "fancam-bench"
PHASES = ("scan", "tracklets", "appearance", "identity")
TICKS = os.sysconf("SC_CLK_TCK")

TRIED: tuple[dict[str, str], ...] = (
    # What was tried on issue 11 (analysis speed) and what it did, measured with bench_pipeline.py,
    # bench_profile.py and micro-benchmarks (dance2 = gillhung dance2 1080x1920 HEVC 23.8 s; crowd =
    # facenet crowd 1920x1080 H.264 4.2 s); accuracy with bench_accuracy.py --quality fast --fresh on the
    # 7 labelled clips, and the analysis files of 8 clips compared byte for byte with main's.
    {"change": "baseline (main at 69ee355), quiet machine (load 0.2)",
     "effect": "dance2 10.7 s wall = 2.23x RT, 16.3 s CPU; crowd 3.1 s = 1.35x RT, 4.9 s CPU. Appearance "
               "6.4 s wall, of which dlib embedding 4.5 s on one core (67 calls, ~57 ms per face)",
     "kept": "-"},
    {"change": "dlib face embedding in 2 threads",
     "effect": "no gain: dlib's compute_face_descriptor holds the GIL (58 ms per face either way)",
     "kept": "no"},
    {"change": "dlib embedding batches of 1 / 4 / 16 chips",
     "effect": "57 ms per face in every case (no batching gain on CPU)",
     "kept": "no"},
    {"change": "face embedding in a worker process (python -m fancam.identity.embedding over pipes); the "
               "caller takes back the batches not started yet, from the end",
     "effect": "dance2 appearance: busiest thread 5.4 -> 3.4 s CPU, 2-core estimate 5.4 -> 4.3 s; worker "
               "start 0.25 s CPU; analysis files byte-identical on 8 clips",
     "kept": "yes"},
    {"change": "appearance decode skips unsampled non-reference frames (skip_frame=NONREF per packet)",
     "effect": "dance2: 361 of 714 frames are non-reference; decoding CPU for the sampled frames 2.8 -> "
               "~1.6-2.1 s; pixels identical (tested), files byte-identical on 8 clips",
     "kept": "yes"},
    {"change": "cut thumbnails: bilinear to 2x the size + 2x2 area average instead of swscale's area "
               "filter on the whole frame",
     "effect": "1.7 -> 0.7 ms CPU per 1080p frame (dance2 ~0.7 s); same cuts on all 9 clips, scores "
               "within 0.09",
     "kept": "yes"},
    {"change": "cut thumbnails with cv2.resize (area) of the Y, U, V planes + cvtColor",
     "effect": "6.2 ms CPU per frame (OpenCV's threads), worse than swscale's 1.5 ms",
     "kept": "no"},
    {"change": "cut thumbnails by swscale POINT / FAST_BILINEAR straight to 64 px",
     "effect": "0.25-0.5 ms and the same cuts on 9 clips, but one sample per thumbnail pixel aliases "
               "(noisy scores on fine textures): the two-step filter above was kept instead",
     "kept": "no"},
    {"change": "dlib face models loaded on first use (not when the analyzer is built)",
     "effect": "a cached analysis no longer loads them: -0.08 s per cached call (0.21 -> ~0.13 s in-process)",
     "kept": "yes"},
    {"change": "onnxruntime intra-op threads 2 for the person detector (YOLOX-nano 416 px)",
     "effect": "8.2 -> 8.8 ms CPU per call (+7%); during the scan the other core decodes, so it only adds "
               "CPU; kept at 1 (inter-op 1, no spinning)",
     "kept": "no"},
    {"change": "FFmpeg decoder threads 1 / 2 / auto (HEVC 1080p)",
     "effect": "2.82-2.88 s CPU for dance2 in every case; left on auto",
     "kept": "no"},
    {"change": "all kept changes together (interleaved runs with main, load 10-16 from other jobs)",
     "effect": "dance2 CPU 16.9-17.7 -> 15.0-15.9 s; 2-core estimate 9.3 s (2.57x) -> 7.6-7.8 s "
               "(3.1x); wall at that load 46.8-50.3 -> 32.7-36.8 s; 3 more pairs at load ~8: CPU "
               "17.0-17.2 -> 15.9-16.0 s, wall median 17.3 -> 17.0 s (on a loaded machine the wall "
               "follows CPU, parallelism only pays on free cores; the estimate said 2.57x for main where "
               "a quiet run measured 2.23x, so expect ~2.7x on 2 free cores). crowd: 2-core estimate 2.74 s (1.5x) "
               "-> 2.2-2.5 s (1.7-1.9x): 2.5x missed on this 4.2 s clip (dlib embedding of its many "
               "faces is 1.2 s CPU; person detection 0.45 s; the phases are short and serial). Cached "
               "analysis 0.16 -> 0.09 s CPU. Analysis files byte-identical, accuracy unchanged on 7 clips",
     "kept": "-"},
    {"change": "not tried: fewer face embeddings per tracklet; an ONNX port of dlib's ResNet; keeping "
               "sampled frames from the scan",
     "effect": "the first drops identity evidence while the issue-10 identity targets are missed on 5 of 7 "
               "clips; the second needs weights fancam does not ship; the third needs the tracklets "
               "before the frames (3 MB per 1080p frame to keep)",
     "kept": "-"},
)


# ----------------------------------------------------------------------------------------- sampling
def _thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of every thread of process ``pid``: {tid: (name, seconds)}."""
    out: dict[int, tuple[str, float]] = {}
    base = Path(f"/proc/{pid}/task")
    try:
        tids = [int(p.name) for p in base.iterdir()]
    except OSError:
        return out
    for tid in tids:
        try:
            stat = (base / str(tid) / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1: stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[tid] = (name, (int(fields[11]) + int(fields[12])) / TICKS)
    return out


def _children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (from each thread's ``children`` file: cheap)."""
    found: list[int] = []
    base = Path(f"/proc/{pid}/task")
    try:
        for task in base.iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


class Sampler:
    """Reads the CPU time of every thread of this process and its children every ``interval`` s."""

    def __init__(self, interval: float, names: dict[int, str]) -> None:
        self.interval = interval
        self.names = names  # native thread id -> Python thread name (Linux shows "python" for all)
        self.samples: list[tuple[float, float]] = []  # (time, total CPU s so far)
        self.threads: dict[tuple[int, int], tuple[str, float]] = {}  # (pid, tid) -> (name, CPU s)
        self.snapshots: list[tuple[float, dict[tuple[int, int], float]]] = []  # (time, CPU s per thread)
        self._tid = -1  # the sampler thread's native id, once it runs
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def _read(self) -> float:
        me = os.getpid()
        pids = [me, *_children(me)]
        for pid in pids:
            for tid, (name, cpu) in _thread_cpu(pid).items():
                label = self.names.get(tid, name) if pid == me else f"child process {pid}"
                self.threads[(pid, tid)] = (label, cpu)
        self.snapshots.append((time.perf_counter(), {k: cpu for k, (_, cpu) in self.threads.items()}))
        # Every thread but this sampler's own (reading /proc costs a little CPU).
        return sum(cpu for (pid, tid), (_, cpu) in self.threads.items() if tid != self._tid)

    def _run(self) -> None:
        self._tid = threading.get_native_id()
        self.names[self._tid] = "bench-sampler"
        while not self._stop.wait(self.interval):
            self.samples.append((time.perf_counter(), self._read()))

    def __enter__(self) -> Sampler:
        self.samples.append((time.perf_counter(), self._read()))
        self._worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._worker.join()
        self.samples.append((time.perf_counter(), self._read()))

    def cpu_between(self, t0: float, t1: float) -> float:
        """CPU seconds used between two perf_counter times (linear between samples)."""
        times = [s[0] for s in self.samples]
        cpus = [s[1] for s in self.samples]

        def at(t: float) -> float:
            import numpy as np

            return float(np.interp(t, times, cpus))

        return at(t1) - at(t0)

    def busiest_thread(self, t0: float, t1: float) -> tuple[str, float]:
        """The thread that used the most CPU between two times (nearest samples), and its CPU s."""
        before = min(self.snapshots, key=lambda s: abs(s[0] - t0))[1]
        after = min(self.snapshots, key=lambda s: abs(s[0] - t1))[1]
        deltas = {k: cpu - before.get(k, 0.0) for k, cpu in after.items()}
        if not deltas:
            return "", 0.0
        key = max(deltas, key=lambda k: deltas[k])
        return self.threads[key][0], deltas[key]

    def core_use(self, t0: float, t1: float) -> dict[str, float]:
        """Share of [t0, t1] spent with < 0.5, 0.5-1.5 and >= 1.5 cores busy."""
        bins = {"~0 cores": 0.0, "~1 core": 0.0, "~2 cores": 0.0}
        total = 0.0
        for (ta, ca), (tb, cb) in zip(self.samples, self.samples[1:], strict=False):
            lo, hi = max(ta, t0), min(tb, t1)
            if hi <= lo or tb <= ta:
                continue
            busy = (cb - ca) / (tb - ta)
            key = "~0 cores" if busy < 0.5 else "~1 core" if busy < 1.5 else "~2 cores"
            bins[key] += hi - lo
            total += hi - lo
        return {k: v / total for k, v in bins.items()} if total else bins


# ----------------------------------------------------------------------------------------- profiling
class ThreadProfiles:
    """cProfile in the main thread and in every Python thread started while it is active."""

    def __init__(self, names: dict[int, str]) -> None:
        self.profiles: list[cProfile.Profile] = []
        self.names = names
        self._lock = threading.Lock()

    def _start_in_thread(self, frame: object, event: str, arg: object) -> None:
        sys.setprofile(None)
        if threading.current_thread().name == "bench-sampler":
            return
        profile = cProfile.Profile()
        self.names[threading.get_native_id()] = threading.current_thread().name
        with self._lock:
            self.profiles.append(profile)
        profile.enable()

    def __enter__(self) -> ThreadProfiles:
        threading.setprofile(self._start_in_thread)
        main = cProfile.Profile()
        self.profiles.append(main)
        main.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        self.profiles[0].disable()
        threading.setprofile(None)  # type: ignore[arg-type]

    def stats(self) -> pstats.Stats:
        stats = pstats.Stats(self.profiles[0])
        for other in self.profiles[1:]:
            try:
                other.disable()
            except Exception:  # noqa: BLE001 - a profile of a finished thread may refuse; keep its data
                pass
            stats.add(other)
        return stats


def _where(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    if filename == "~":
        return name
    for marker in ("/src/fancam/", "/site-packages/", "/lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({name})"


def top_functions(stats: pstats.Stats, n: int, by: str) -> list[dict]:
    """The ``n`` functions with the most cumulative (``by="cum"``) or self (``"self"``) time."""
    rows = []
    for key, (_, calls, self_s, cum_s, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": _where(key), "calls": calls, "self_s": self_s, "cum_s": cum_s})
    rows = [r for r in rows if not any(w in r["function"] for w in WAITING)]
    rows.sort(key=lambda r: r["cum_s" if by == "cum" else "self_s"], reverse=True)
    return rows[:n]


WAITING = (
    "<method 'acquire' of '_thread.lock' objects>", "threading.py:", "queue.py:", "bench_profile.py:",
    # the thread feeding the face-embedding worker waits in its pipe's read/write
    "<method 'read' of '_io.BufferedReader' objects>", "<method 'write' of '_io.BufferedWriter' objects>",
    "identity/embedding.py:",
)
"""Functions that only wait for another thread, or this benchmark's own wrappers (left out of the tables)."""


def profile_clip(clip: Path, folder: Path, quality: str, top: int, interval: float) -> dict:
    """One fresh analysis of ``clip`` under the profilers (runs in the task subprocess)."""
    import fancam.pipeline.analyze as analyze_module
    from fancam.pipeline.analyze import AnalysisSettings, analyze

    if folder.exists():
        shutil.rmtree(folder)
    spans: dict[str, list[float]] = {}

    def timed(name: str, fn):  # the phases run one after the other: wrap each to time it
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spans[name] = [start, time.perf_counter()]
        return wrapper

    analyze_module._scan_stage = timed("scan", analyze_module._scan_stage)
    analyze_module.build_tracklets_explained = timed("tracklets", analyze_module.build_tracklets_explained)
    analyze_module._appearance_stage = timed("appearance", analyze_module._appearance_stage)
    analyze_module._identity_stage = timed("identity", analyze_module._identity_stage)
    names = {threading.get_native_id(): "MainThread"}
    with Sampler(interval, names) as sampler, ThreadProfiles(names) as profiles:
        start = time.perf_counter()
        analysis = analyze(clip, out=folder, settings=AnalysisSettings(quality=quality), progress=False)
        end = time.perf_counter()
    stats = profiles.stats()
    info = analysis.info
    video_s = info.n_frames / info.fps if info.n_frames and info.fps else (info.duration_s or 0.0)
    phases = {}
    for name in PHASES:
        if name not in spans:
            continue
        t0, t1 = spans[name]
        cpu = sampler.cpu_between(t0, t1)
        thread, thread_cpu = sampler.busiest_thread(t0, t1)
        phases[name] = {"wall_s": t1 - t0, "cpu_s": cpu, "cores": cpu / (t1 - t0) if t1 > t0 else None,
                        "core_use": sampler.core_use(t0, t1), "busiest_thread": thread,
                        "busiest_thread_cpu_s": thread_cpu,
                        # What this phase needs on 2 free cores at best: all its CPU shared by both,
                        # but never less than its busiest thread (a serial chain).
                        "two_core_wall_s": max(cpu / 2, thread_cpu)}
    first = min(s[0] for s in spans.values()) if spans else start
    last = max(s[1] for s in spans.values()) if spans else end
    other_cpu = sampler.cpu_between(start, first) + sampler.cpu_between(last, end)
    phases["other"] = {"wall_s": max(0.0, (end - start) - sum(p["wall_s"] for p in phases.values())),
                       "cpu_s": other_cpu, "two_core_wall_s": other_cpu}
    threads: dict[str, float] = {}
    for name, cpu in sampler.threads.values():
        threads[name] = threads.get(name, 0.0) + cpu
    total_cpu = sampler.cpu_between(start, end)
    two_core = sum(p.get("two_core_wall_s", p["wall_s"]) for p in phases.values())
    return {
        "video_s": video_s, "width": info.width, "height": info.height, "codec": info.codec,
        "fps": info.fps, "wall_s": end - start, "cpu_s": total_cpu, "rtf": video_s / (end - start),
        "cores": total_cpu / (end - start), "core_use": sampler.core_use(start, end),
        "two_core_wall_s": two_core, "two_core_rtf": video_s / two_core if two_core else None,
        "phases": phases, "stage_seconds": dict(analysis.stage_seconds),
        "threads": dict(sorted(threads.items(), key=lambda kv: -kv[1])),
        "top_cumulative": top_functions(stats, top, "cum"), "top_self": top_functions(stats, top, "self"),
    }


# ----------------------------------------------------------------------------------------- parent
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("task", help="internal: profile one clip in this process")
    one.add_argument("--clip", type=Path, required=True)
    one.add_argument("--folder", type=Path, required=True)
    one.add_argument("--quality", default="fast")
    one.add_argument("--top", type=int, default=25)
    one.add_argument("--interval", type=float, default=0.05)
    one.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--clips", default="portrait,landscape")
    parser.add_argument("--quality", default="fast")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--interval", type=float, default=0.05, help="CPU sampling period, seconds")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    os.environ.setdefault("FANCAM_MODEL_MIRROR", str(SHARED / "models"))
    if args.command == "task":
        result = profile_clip(args.clip, args.folder, args.quality, args.top, args.interval)
        args.out.write_text(json.dumps(result))
        return 0
    unknown = [c for c in args.clips.split(",") if c not in CLIPS]
    if unknown:
        parser.error(f"unknown clip {unknown}; clips {tuple(CLIPS)}")
    args.work.mkdir(parents=True, exist_ok=True)
    result = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": machine(),
        "quality": args.quality, "tried": list(TRIED),
        "command": "python benchmarks/bench_profile.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "clips": [],
    }
    for key in args.clips.split(","):
        clip = SHARED / CLIPS[key][0]
        folder = args.work / f"profile-{args.quality}-{key}"
        out = args.work / f".profile-{key}.json"
        load_before = os.getloadavg()
        subprocess.run([sys.executable, __file__, "task", "--clip", str(clip), "--folder", str(folder),
                        "--quality", args.quality, "--top", str(args.top), "--interval", str(args.interval),
                        "--out", str(out)], check=True)
        clip_result = json.loads(out.read_text())
        out.unlink()
        clip_result.update({"key": key, "clip": CLIPS[key][0], "load_before": load_before,
                            "load_after": os.getloadavg()})
        result["clips"].append(clip_result)
        print(f"  {key:9s} wall {clip_result['wall_s']:6.2f} s  RTF {clip_result['rtf']:5.2f}  "
              f"cpu {clip_result['cpu_s']:6.1f} s  cores {clip_result['cores']:.2f}  "
              f"load {load_before[0]:.1f}", flush=True)
    out = args.json or args.work / "profile.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
