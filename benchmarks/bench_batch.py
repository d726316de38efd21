"""Throughput of ``fancam batch``: one manifest run sequentially, with the local pool, and with Ray.

Engines (``--engines``):

- ``sequential``: every item in this process, one after another (no pool, no parallelism).
- ``local``: the default process pool with ``--workers`` processes.
- ``ray``: a private single-machine Ray cluster with ``--workers`` CPUs, started and stopped by the run
  (its start-up, ~5 s, is part of the wall time; it is also reported on its own).

Every engine starts from an empty output folder (no analysis cache), so each run does the same work:
one analysis per video and every performer's fancam. Reported per engine: wall time, videos per
minute, video seconds per wall second, and the largest worker peak memory (``peak_rss_mb``; for
``sequential`` the driver's own peak). The machine's load average before and after each run is
recorded: on a shared machine the numbers are indicative only.

Default manifest (``--clips``): four whole clips of ../shared/data, 67.5 s of video, 19 fancams:
fiyud_dance3 (720x1280, 9 s), tiktok_stage_ballet (360x632, 16 s), miryala_stage_dance (640x360,
15 s), gillhung dance (360x640, 27.5 s, with the bench gallery).

Usage::

    python benchmarks/bench_batch.py [--engines sequential,local,ray] [--workers 2] [--repeat N]
                                     [--work DIR] [--clips KEY,...] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from jsonout import clean_json

SHARED = Path(__file__).resolve().parents[2] / "shared"
DEFAULT_WORK = Path(tempfile.gettempdir()) / "fancam-bench"
CLIPS = {
    "fiyud": ("data/fiyud_dance3/dance.mp4", None),
    "ballet": ("data/tiktok_stage_ballet/4197989243424123418.mp4", None),
    "miryala": ("data/miryala_stage_dance/video.mp4", None),
    "gillhung": ("data/gillhung_dance/dance.mp4", "bench/gallery"),
    "portrait": ("data/gillhung_dance/dance2.mp4", None),
}
DEFAULT_CLIPS = "fiyud,ballet,miryala,gillhung"


def write_manifest(path: Path, clips: list[str]) -> Path:
    lines = ["video,members,gallery"]
    for key in clips:
        video, gallery = CLIPS[key]
        lines.append(f"{SHARED / video},all,{SHARED / gallery if gallery else ''}")
    path.write_text("\n".join(lines) + "\n")
    return path


def make_engine(name: str, workers: int):
    from fancam.batch.local import InProcessEngine, LocalEngine
    from fancam.batch.ray_engine import RayEngine

    if name == "sequential":
        return InProcessEngine()
    if name == "local":
        return LocalEngine(workers)
    return RayEngine(workers=workers)


def ray_startup_s(workers: int) -> float:
    """Seconds to start and stop a private Ray cluster (the fixed cost of --engine ray)."""
    import ray

    start = time.perf_counter()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray.init(address="local", num_cpus=workers, object_store_memory=200 * 1024 * 1024, include_dashboard=False,
             _node_ip_address="127.0.0.1", logging_level="ERROR", log_to_driver=False)
    ray.shutdown()
    return time.perf_counter() - start


def run_engine(name: str, manifest_path: Path, work: Path, workers: int) -> dict:
    from fancam.batch.manifest import read_manifest
    from fancam.batch.run import run_batch

    out = work / f"batch-{name}"
    shutil.rmtree(out, ignore_errors=True)
    load_before = os.getloadavg()
    report = run_batch(read_manifest(manifest_path), out, make_engine(name, workers), progress=False)
    load_after = os.getloadavg()
    items_per_min, rtf = report.throughput()
    done = [r for r in report.results if r.status == "done"]
    driver_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "engine": name, "workers": report.workers, "wall_s": report.wall_s, "items": len(report.items),
        "done": len(done), "fancams": sum(len(r.fancams) for r in done),
        "video_s": sum(r.video_s for r in done), "items_per_min": items_per_min, "video_s_per_wall_s": rtf,
        "peak_rss_mb": max((r.peak_rss_mb for r in done), default=0.0) if name != "sequential" else driver_peak,
        "item_seconds": [r.seconds for r in report.results],
        "errors": [r.error for r in report.results if r.error],
        "load_before": load_before, "load_after": load_after,
    }


def median_run(runs: list[dict]) -> dict:
    """The run with the median wall time (the lower middle one for an even count)."""
    return sorted(runs, key=lambda r: r["wall_s"])[(len(runs) - 1) // 2]


def table(runs: list[dict]) -> str:
    lines = ["| engine | workers | videos | fancams | video s | wall s | videos/min | video-s per wall-s | "
             "peak MB/worker | load avg (1 min) before/after |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(
            f"| {r['engine']} | {r['workers']} | {r['done']}/{r['items']} | {r['fancams']} | {r['video_s']:.1f} | "
            f"{r['wall_s']:.1f} | {r['items_per_min']:.2f} | {r['video_s_per_wall_s']:.3f} | "
            f"{r['peak_rss_mb']:.0f} | {r['load_before'][0]:.1f} / {r['load_after'][0]:.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="sequential,local,ray")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clips", default=DEFAULT_CLIPS, help=f"comma-separated keys of {', '.join(CLIPS)}")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the table shows each engine's median run")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--json", type=Path, help="results file (default WORK/batch.json)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    manifest = write_manifest(args.work / "batch-manifest.csv", args.clips.split(","))
    every: dict[str, list[dict]] = {name: [] for name in args.engines.split(",")}
    for round_ in range(args.repeat):  # rounds interleave the engines, so a change of load hits them all
        for name in every:
            print(f"[bench_batch] round {round_ + 1}: {name} ...", file=sys.stderr, flush=True)
            every[name].append(run_engine(name, manifest, args.work, args.workers))
            print(table(every[name][-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    runs = [median_run(r) for r in every.values()]
    result = {"manifest": args.clips.split(","), "cpus": os.cpu_count(), "repeat": args.repeat, "runs": runs,
              "all_runs": every}
    if "ray" in args.engines.split(","):
        result["ray_startup_s"] = ray_startup_s(args.workers)
    (args.json or args.work / "batch.json").write_text(json.dumps(clean_json(result), indent=2) + "\n")
    print(table(runs))
    if "ray_startup_s" in result:
        print(f"\nRay private cluster start + stop: {result['ray_startup_s']:.1f} s (included in the ray wall time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
