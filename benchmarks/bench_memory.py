"""Peak memory of the analysis and of a render on long 4K clips composed at run time: flat in length?

1. ``compose``: the first ``--segment`` seconds of ``--source`` (default the line dance of
   ../shared/data, 640x360, 25 fps, with sound) are scaled up to ``--size`` (default 3840x2160) and
   re-encoded once with PyAV (libx264 ``ultrafast``, key frame every second, no B-frames; AAC sound),
   at ``--fps`` (default: the source's). That segment is then repeated by packet copy, every packet's
   timestamps shifted by the segment's length, to each length of ``--minutes`` (default 1 and 10).
   The clips are written in ``WORK`` (``$TMPDIR/fancam-bench/memory``), never in the repository,
   and reused by later runs with the same settings.
2. For every length, in a fresh subprocess each (peak memory = ``ru_maxrss`` from ``wait4``):
   ``analyze`` (a fresh analysis into ``--out``-style folder, no cache) and ``render`` (performer 1
   at the crop's native size, with sound, from that analysis).

The question is whether memory grows with the clip's length: the longer clip must not need more
than the short one beyond a few small per-frame tables (boxes, times, the camera path).

Usage::

    python benchmarks/bench_memory.py [--work DIR] [--minutes 1 --minutes 10] [--fps 10]
                                      [--size 3840x2160] [--segment 30] [--json OUT]

Results: ``WORK/memory.json`` (default ``$TMPDIR/fancam-bench/memory.json``), read by ``report.py``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

from jsonout import run_measured

SHARED = Path(__file__).resolve().parents[2] / "shared"
DEFAULT_WORK = Path(tempfile.gettempdir()) / "fancam-bench"
DEFAULT_SOURCE = SHARED / "data/divyanshu_line_dance/dance.mp4"
TASKS = ("analyze", "render")


# ----------------------------------------------------------------------------------------- compose
def upscale_segment(source: Path, dest: Path, size: tuple[int, int], seconds: float,  # noqa: PLR0913
                    fps: float | None) -> Path:
    """The first ``seconds`` of ``source`` scaled to ``size`` (H.264 ultrafast + AAC), at ``fps``."""
    import av

    tmp = dest.with_name(dest.name + ".part")
    with av.open(str(source)) as src, av.open(str(tmp), "w", format="mp4") as out:
        vin = src.streams.video[0]
        rate = Fraction(fps).limit_denominator(1001) if fps else (vin.average_rate or Fraction(25))
        vout = out.add_stream("libx264", rate=rate, options={
            "preset": "ultrafast", "crf": "23", "g": str(max(1, round(float(rate)))), "bf": "0"})
        vout.width, vout.height = size
        vout.pix_fmt = "yuv420p"
        vout.codec_context.time_base = 1 / rate
        aout = None
        if src.streams.audio:
            ain = src.streams.audio[0]
            aout = out.add_stream("aac", rate=48000)
            aout.layout = "stereo"
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000)
            written = 0
            for frame in src.decode(ain):
                if frame.time is not None and frame.time >= seconds:
                    break
                for chunk in resampler.resample(frame):
                    chunk.pts, chunk.time_base = written, Fraction(1, 48000)
                    written += chunk.samples
                    out.mux(aout.encode(chunk))
            out.mux(aout.encode(None))
            src.seek(0)
        step, n, next_t = 1 / float(rate), 0, 0.0
        for frame in src.decode(vin):
            t = frame.time or 0.0
            if t >= seconds:
                break
            if t + 1e-6 < next_t:  # drop frames to reach a lower rate
                continue
            big = frame.reformat(width=size[0], height=size[1], format="yuv420p", interpolation="BILINEAR")
            big.pts = n
            big.time_base = 1 / rate
            out.mux(vout.encode(big))
            n += 1
            next_t = n * step
        out.mux(vout.encode(None))
    tmp.replace(dest)
    return dest


def repeat_by_copy(segment: Path, dest: Path, seconds: float) -> Path:
    """``segment`` repeated by packet copy (timestamps shifted) until ``seconds`` long."""
    import av

    tmp = dest.with_name(dest.name + ".part")
    with av.open(str(segment)) as probe_in:
        video = probe_in.streams.video[0]
        frames = sum(1 for p in probe_in.demux(video) if p.dts is not None)
        length = float(frames / video.average_rate)
    copies = max(1, int(round(seconds / length)))
    with av.open(str(tmp), "w", format="mp4") as out:
        streams: dict[int, av.stream.Stream] = {}
        last_dts: dict[int, int] = {}
        for k in range(copies):
            with av.open(str(segment)) as src:
                kept = [s for s in src.streams if s.type in ("video", "audio")]
                if not streams:
                    streams = {s.index: out.add_stream_from_template(s) for s in kept}
                for packet in src.demux(*kept):
                    if packet.dts is None:
                        continue
                    index = packet.stream.index
                    shift = int(round(k * length / packet.time_base))
                    if packet.dts + shift <= last_dts.get(index, -(2**62)):
                        continue  # the sound of a segment can outlast its pictures by a frame
                    packet.dts += shift
                    if packet.pts is not None:
                        packet.pts += shift
                    last_dts[index] = packet.dts
                    packet.stream = streams[index]
                    out.mux(packet)
    tmp.replace(dest)
    return dest


def compose(work: Path, source: Path, size: tuple[int, int], segment_s: float, fps: float | None,
            minutes: float) -> Path:
    """The composed clip of ``minutes`` (made once, then reused)."""
    tag = f"{source.stem}-{size[0]}x{size[1]}-{segment_s:g}s-{fps or 'src'}fps"
    segment = work / f"{tag}.mp4"
    if not segment.exists():
        upscale_segment(source, segment, size, segment_s, fps)
    clip = work / f"{tag}-{minutes:g}min.mp4"
    if not clip.exists():
        repeat_by_copy(segment, clip, minutes * 60)
    return clip


# ----------------------------------------------------------------------------------------- tasks
def run_task(task: str, clip: Path, folder: Path) -> dict:
    """One task in this process (called in a subprocess by :func:`measure`)."""
    from fancam.pipeline.analyze import analyze

    start = time.perf_counter()
    if task == "analyze":
        if folder.exists():
            shutil.rmtree(folder)
        analysis = analyze(clip, out=folder, progress=False)
        return {"wall_s": time.perf_counter() - start, "frames": analysis.timeline.n_frames,
                "people": len(analysis.cast.people)}
    from fancam.pipeline.produce import RenderOptions, Selection, make_fancams

    analysis = analyze(clip, out=folder, progress=False)
    loaded = time.perf_counter()
    out = folder / "render"
    out.mkdir(exist_ok=True)
    person = analysis.cast.people[0].id
    (result,) = make_fancams(analysis, Selection(person=person), RenderOptions(output=out, force=True),
                             progress=False)
    return {"wall_s": time.perf_counter() - loaded, "frames": result.frames, "person": person,
            "output_mb": result.output.stat().st_size / 2**20}


def measure(task: str, clip: Path, folder: Path) -> dict:
    """Run one task in a fresh subprocess; add its peak memory and CPU time."""
    out = folder.parent / f".{folder.name}.{task}.json"
    command = [sys.executable, __file__, "task", task, "--clip", str(clip), "--folder", str(folder),
               "--out", str(out)]
    result = run_measured(command, out, f"task {task} on {clip}")
    result["load_after"] = os.getloadavg()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("task", help="internal: run one task in this process")
    one.add_argument("task", choices=TASKS)
    one.add_argument("--clip", type=Path, required=True)
    one.add_argument("--folder", type=Path, required=True)
    one.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--size", default="3840x2160")
    parser.add_argument("--segment", type=float, default=30.0, help="seconds of the source to scale up")
    parser.add_argument("--fps", type=float, help="frame rate of the composed clips (default: the source's)")
    parser.add_argument("--minutes", type=float, action="append", help="clip lengths (default 1 and 10)")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.command == "task":
        args.out.write_text(json.dumps(run_task(args.task, args.clip, args.folder)))
        return 0
    from fancam.io.video import probe

    size = tuple(int(v) for v in args.size.lower().split("x"))
    work = args.work / "memory"
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"), "source": str(args.source.name),
        "size": list(size), "segment_s": args.segment, "fps": args.fps, "load_before": os.getloadavg(),
        "command": "python benchmarks/bench_memory.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "runs": [],
    }
    for minutes in args.minutes or [1.0, 10.0]:
        start = time.perf_counter()
        clip = compose(work, args.source, size, args.segment, args.fps, minutes)
        info = probe(clip)
        run = {"minutes": minutes, "frames": info.n_frames, "fps": info.fps, "width": info.width,
               "height": info.height, "video_s": info.duration_s, "compose_s": time.perf_counter() - start,
               "tasks": {}}
        folder = work / f"analysis-{clip.stem}"
        for task in (t for t in args.tasks.split(",") if t):
            run["tasks"][task] = measure(task, clip, folder)
            r = run["tasks"][task]
            print(f"  {minutes:g} min {info.width}x{info.height} {task:8s} peak {r['peak_mb']:6.0f} MB  "
                  f"wall {r['wall_s']:7.1f} s  cpu {r['cpu_s']:7.1f} s", flush=True)
        result["runs"].append(run)
    result["load_after"] = os.getloadavg()
    out = args.json or args.work / "memory.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
