"""Speed and memory of the whole pipeline: real-time factor per stage and peak memory, per clip.

Real-time factor (RTF) = video seconds / wall seconds (above 1 is faster than real time). Every task
runs in its own subprocess, so each has its own peak memory (``ru_maxrss`` from ``wait4``) and CPU
time (user + system, all threads; less sensitive to other load than wall time). Tasks per clip:

- ``decode``: PyAV decode of every frame alone (threaded), for reference.
- ``analyze``: ``fancam.pipeline.analyze.analyze`` in a *fresh* folder (no cache). Stages from its timers:
  ``decode`` (time the scan waited for the decode thread; decoding itself overlaps detection),
  ``shots``, ``convert`` (RGB at the detector's size), ``detect``, ``track``, ``appearance`` (faces and
  bodies). ``tracklets`` and ``identity`` are timed by re-running those two stages on the saved
  inputs in the same process; ``other`` is the analysis wall time not in any stage (model loading,
  hashing the video, gallery, writing files).
- ``analyze-cached``: the same call again (cache validation only: hashes the video).
- ``render-native``: ``fancam render --person 1`` at the crop's native size; ``render-1080``: at
  ``--height 1920`` (1080x1920).
- ``render-all``: the top N performers (``--together N``, default 3, by prominence) in one decode
  pass, as ``--all`` does; ``render-singles``: the same N as N separate renders (one process).

Clips (``--clips``, comma-separated keys): ``bench`` (gillhung 360x640, with the bench gallery),
``portrait`` (gillhung dance2 1080x1920 HEVC), ``landscape`` (facenet crowd 1920x1080),
``street`` (openpose 1280x720 @ 50 fps). ``--max-seconds`` trims clips (stream copy) to keep runs short.

Usage::

    python benchmarks/bench_pipeline.py [--work DIR] [--clips bench,portrait,landscape,street]
                                        [--quality fast] [--repeat 1] [--max-seconds S] [--json OUT]
                                        [--together N] [--update]

Results: ``WORK/pipeline.json`` (default WORK: ``$TMPDIR/fancam-bench``). The machine is described
(CPU model, cores, memory, load average before and after each task): on a shared machine the wall
times are indicative only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from jsonout import run_measured

SHARED = Path(__file__).resolve().parents[2] / "shared"
DEFAULT_WORK = Path(tempfile.gettempdir()) / "fancam-bench"
CLIPS = {
    "bench": ("data/gillhung_dance/dance.mp4", "bench/gallery"),
    "portrait": ("data/gillhung_dance/dance2.mp4", None),
    "landscape": ("data/facenet_pytorch_crowd_faces/video.mp4", None),
    "street": ("data/openpose_street_dance/video.avi", None),
}
TASKS = (
    "decode", "analyze", "analyze-cached", "render-native", "render-1080", "render-all", "render-singles",
)
MAX_TOGETHER = 3
SCAN_STAGES = ("decode", "shots", "convert", "detect", "track")


# ----------------------------------------------------------------------------------------- machine
def machine() -> dict:
    """What the numbers were measured on."""
    cpu: dict[str, str] = {}
    mem_kb = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key in ("model name", "cpu MHz", "cache size") and key not in cpu:
                cpu[key] = value
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    versions = {}
    for package in ("fancam", "av", "numpy", "scipy", "onnxruntime", "opencv-python-headless", "dlib-bin"):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:  # noqa: BLE001 - a missing package is just not listed
            continue
    return {
        "cpu": cpu.get("model name", "unknown"), "cpu_mhz": cpu.get("cpu MHz"),
        "cache": cpu.get("cache size"), "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 2**20, 1) if mem_kb else None,
        "python": platform.python_version(), "platform": platform.platform(), "packages": versions,
        "load_average": os.getloadavg(),
    }


# ----------------------------------------------------------------------------------------- one task
def _video_seconds(info) -> float:
    return info.n_frames / info.fps if info.n_frames and info.fps else (info.duration_s or 0.0)


def task_decode(clip: Path, folder: Path, gallery: Path | None, quality: str) -> dict:
    from fancam.io.video import iter_frames

    n = 0
    start = time.perf_counter()
    for _ in iter_frames(clip):
        n += 1
    return {"wall_s": time.perf_counter() - start, "frames": n}


def task_analyze(clip: Path, folder: Path, gallery: Path | None, quality: str) -> dict:
    """Fresh analysis; then re-time tracklets and identity on the saved inputs."""
    import numpy as np

    from fancam.identity.appearance import Appearance
    from fancam.identity.gallery import load_gallery
    from fancam.identity.identify import identify
    from fancam.pipeline.analyze import AnalysisSettings, analyze, make_face_analyzer
    from fancam.pipeline.store import APPEARANCE_FILE, SCAN_FILE
    from fancam.tracking.tracklets import build_tracklets_explained
    from fancam.types import TrackTable

    if folder.exists():
        shutil.rmtree(folder)
    settings = AnalysisSettings(quality=quality)
    start = time.perf_counter()
    analysis = analyze(clip, out=folder, gallery=gallery, settings=settings, progress=False)
    wall = time.perf_counter() - start
    stages = dict(analysis.stage_seconds)
    with np.load(folder / SCAN_FILE) as z:
        raw = TrackTable(z["frame"], z["track_id"], z["xyxy"], z["score"], np.ones(len(z["frame"]), bool))
    size = (analysis.info.width, analysis.info.height)
    t0 = time.perf_counter()
    tracks, report = build_tracklets_explained(raw, analysis.timeline, size, settings.tracklets)
    t1 = time.perf_counter()
    loaded = load_gallery(gallery, make_face_analyzer(settings.model_names())) if gallery else None
    t2 = time.perf_counter()
    identify(tracks, analysis.timeline, Appearance.load(folder / APPEARANCE_FILE), report, loaded,
             settings.identity)
    t3 = time.perf_counter()
    stages.update({"tracklets": t1 - t0, "identity": t3 - t2})
    if gallery:
        stages["gallery (cached)"] = t2 - t1
    timed = (*SCAN_STAGES, "appearance", "tracklets", "identity")
    accounted = sum(v for k, v in stages.items() if k in timed)
    stages["other"] = max(0.0, wall - accounted)
    return {
        "wall_s": wall, "stages": stages, "people": len(analysis.cast.people),
        "tracklets": int(len(np.unique(tracks.track_id))), "models": settings.model_names(),
    }


def task_analyze_cached(clip: Path, folder: Path, gallery: Path | None, quality: str) -> dict:
    from fancam.pipeline.analyze import AnalysisSettings, analyze

    start = time.perf_counter()
    analyze(clip, out=folder, gallery=gallery, settings=AnalysisSettings(quality=quality), progress=False)
    return {"wall_s": time.perf_counter() - start}


def _render(clip: Path, folder: Path, gallery: Path | None, quality: str, *, height: int | None,
            people: int, together: bool) -> dict:
    """Render the top ``people`` performers, in one pass (``together``) or one pass each."""
    from fancam.camera.render import RenderJob, output_size, render
    from fancam.pipeline.analyze import AnalysisSettings, analyze
    from fancam.pipeline.produce import RenderOptions, plan

    analysis = analyze(clip, out=folder, gallery=gallery, settings=AnalysisSettings(quality=quality),
                       progress=False)
    chosen = analysis.cast.people[:people]
    out_dir = folder / "renders"
    out_dir.mkdir(exist_ok=True)
    options = RenderOptions(height=height)
    start = time.perf_counter()
    jobs = []
    for person in chosen:
        path = plan(analysis, person, options)
        size = output_size(path, height)
        jobs.append(RenderJob(out_dir / f"p{person.id}-{height or 'native'}.mp4", path, size))
    planned = time.perf_counter()
    cpu0 = time.process_time()
    results = render(clip, jobs, progress=False) if together else [
        r for job in jobs for r in render(clip, [job], progress=False)
    ]
    done = time.perf_counter()
    return {
        "wall_s": done - start, "plan_s": planned - start, "render_s": done - planned,
        "render_cpu_s": time.process_time() - cpu0,
        "outputs": len(results), "size": [list(j.size) for j in jobs],
        "frames": [r.frames for r in results],
    }


def run_task(task: str, clip: Path, folder: Path, gallery: Path | None, quality: str,
             together: int = MAX_TOGETHER) -> dict:
    """One task in this process (called in a subprocess by :func:`measure`)."""
    if task == "decode":
        return task_decode(clip, folder, gallery, quality)
    if task == "analyze":
        return task_analyze(clip, folder, gallery, quality)
    if task == "analyze-cached":
        return task_analyze_cached(clip, folder, gallery, quality)
    if task == "render-native":
        return _render(clip, folder, gallery, quality, height=None, people=1, together=True)
    if task == "render-1080":
        return _render(clip, folder, gallery, quality, height=1920, people=1, together=True)
    if task in ("render-all", "render-singles"):
        return _render(clip, folder, gallery, quality, height=None, people=together,
                       together=task == "render-all")
    raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")


# ----------------------------------------------------------------------------------------- parent
def measure(task: str, clip: Path, folder: Path, gallery: Path | None, quality: str,
            together: int = MAX_TOGETHER) -> dict:
    """Run one task in a fresh subprocess; add its peak memory, CPU time and the load around it."""
    out = folder.parent / f".{folder.name}.{task}.json"
    command = [sys.executable, __file__, "task", task, "--clip", str(clip), "--folder", str(folder),
               "--quality", quality, "--out", str(out), "--together", str(together)]
    if gallery is not None:
        command += ["--gallery", str(gallery)]
    load_before = os.getloadavg()
    result = run_measured(command, out, f"task {task} on {clip}")
    result.update({"load_before": load_before, "load_after": os.getloadavg()})
    return result


def trimmed_copy(source: Path, dest: Path, seconds: float) -> Path:
    """The first ``seconds`` of a video by stream copy (no re-encode; cut at a packet boundary)."""
    import av

    with av.open(str(source)) as src, av.open(str(dest), "w") as out:
        kept = [s for s in src.streams if s.type in ("video", "audio")]
        streams = {s.index: out.add_stream_from_template(s) for s in kept}
        for packet in src.demux(*kept):
            late = packet.pts is not None and float(packet.pts * packet.time_base) > seconds
            if packet.dts is None or late:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return dest


def _median_run(runs: list[dict]) -> dict:
    """The run with the median wall time, with the largest peak memory of all runs."""
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    best = dict(ordered[(len(ordered) - 1) // 2])
    best["peak_mb"] = max(r["peak_mb"] for r in runs)
    best["repeats"] = len(runs)
    best["wall_s_all"] = [r["wall_s"] for r in runs]
    return best


def bench_clip(key: str, work: Path, quality: str, repeat: int, max_seconds: float | None,  # noqa: PLR0913
               tasks: tuple[str, ...], together: int = MAX_TOGETHER) -> dict:
    """Every task on one clip."""
    from fancam.io.video import probe

    rel, gallery_rel = CLIPS[key]
    clip = SHARED / rel
    gallery = SHARED / gallery_rel if gallery_rel else None
    folder = work / f"pipeline-{quality}-{key}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    if max_seconds:
        clip = trimmed_copy(clip, work / f"{key}-{max_seconds:g}s{clip.suffix}", max_seconds)
    info = probe(clip)
    seconds = _video_seconds(info)
    results = {}
    for task in tasks:
        runs = [measure(task, clip, folder, gallery, quality, together) for _ in range(repeat)]
        result = _median_run(runs)
        result["rtf"] = seconds / result["wall_s"] if result["wall_s"] > 0 else None
        if "render_s" in result:
            frames = max(result["frames"]) if result["frames"] else 0
            result["render_rtf"] = frames / info.fps / result["render_s"] if result["render_s"] else None
        if "stages" in result:
            result["stage_rtf"] = {k: seconds / v for k, v in result["stages"].items() if v > 0}
        results[task] = result
        print(f"  {key:9s} {task:15s} wall {result['wall_s']:7.2f} s  RTF {result['rtf']:6.2f}  "
              f"peak {result['peak_mb']:6.0f} MB  cpu {result['cpu_s']:6.1f} s  "
              f"load {result['load_before'][0]:.1f}", flush=True)
    return {
        "key": key, "clip": rel, "gallery": gallery_rel, "trimmed_to_s": max_seconds,
        "width": info.width, "height": info.height, "fps": info.fps, "codec": info.codec,
        "frames": info.n_frames, "video_s": seconds, "tasks": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("task", help="internal: run one task in this process")
    one.add_argument("task", choices=TASKS)
    one.add_argument("--clip", type=Path, required=True)
    one.add_argument("--folder", type=Path, required=True)
    one.add_argument("--gallery", type=Path)
    one.add_argument("--quality", default="fast")
    one.add_argument("--out", type=Path, required=True)
    one.add_argument("--together", type=int, default=MAX_TOGETHER)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--clips", default="bench,portrait,landscape,street")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--quality", default="fast")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--max-seconds", type=float)
    parser.add_argument("--together", type=int, default=MAX_TOGETHER,
                        help="performers in render-all / render-singles (default 3)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--update", action="store_true",
                        help="replace only these clips in an existing JSON (machine info: this run's)")
    args = parser.parse_args(argv)
    os.environ.setdefault("FANCAM_MODEL_MIRROR", str(SHARED / "models"))
    if args.command == "task":
        result = run_task(args.task, args.clip, args.folder, args.gallery, args.quality, args.together)
        args.out.write_text(json.dumps(result))
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    tasks = tuple(t for t in args.tasks.split(",") if t)
    unknown = [t for t in tasks if t not in TASKS] + [c for c in args.clips.split(",") if c not in CLIPS]
    if unknown:
        parser.error(f"unknown task/clip {unknown}; tasks {TASKS}, clips {tuple(CLIPS)}")
    result = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": machine(),
        "quality": args.quality, "repeat": args.repeat, "together": args.together,
        "command": "python benchmarks/bench_pipeline.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "clips": [],
    }
    for key in args.clips.split(","):
        result["clips"].append(bench_clip(key, args.work, args.quality, args.repeat, args.max_seconds, tasks,
                                          args.together))
    result["load_after"] = os.getloadavg()
    out = args.json or args.work / "pipeline.json"
    if args.update and out.exists():  # keep the other clips of an earlier run
        ran = {c["key"] for c in result["clips"]}
        earlier = [c for c in json.loads(out.read_text())["clips"] if c["key"] not in ran]
        result["clips"] = [c for key in CLIPS for c in earlier + result["clips"] if c["key"] == key]
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

