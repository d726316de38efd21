"""Write ``benchmarks/REPORT.md`` from the JSON results of the benchmarks (running them first with --run).

Inputs, in ``--work`` (default ``$TMPDIR/fancam-bench``):

- ``accuracy.json`` from ``bench_accuracy.py`` (fancam vs the seed baseline, identity and camera);
- ``trackers.json`` from ``bench_trackers.py`` (fancam's tracker vs roboflow ``trackers``);
- ``pipeline.json`` from ``bench_pipeline.py`` (real-time factor per stage, peak memory);
- ``profile.json`` from ``bench_profile.py`` (where the analysis time goes, what was tried).
- ``memory.json`` from ``bench_memory.py`` (peak memory on long 4K clips: flat in length?).

Usage::

    python benchmarks/report.py [--work DIR] [--run] [--ref-python ../venv-ref/bin/python]
                                [--out benchmarks/REPORT.md]

``--run`` runs the benchmarks (pipeline and profile first, alone, since they measure time), then writes the
report. A missing JSON file leaves its section out, with a note.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_WORK = Path(tempfile.gettempdir()) / "fancam-bench"
DEFAULT_OUT = HERE / "REPORT.md"
DEFAULT_REF_PYTHON = Path(__file__).resolve().parents[2] / "venv-ref/bin/python"  # ../venv-ref
TRACKER_RATES = "--detect-fps 0"
"""Detection rate of the tracker comparison on every clip: the product's default (``bench_trackers.py
--clip bench --detect-fps 10 --detect-fps 30`` compares other rates on one clip)."""
ACCURACY_TIERS = "--quality fast"  # balanced/best download YOLOX-tiny/-s: not in ../shared/models


def _gallery_label(mode: str, long: bool = False) -> str:
    """How a run used the gallery: yes / no / without P1 ..."""
    if mode == "gallery":
        return "gallery" if long else "yes"
    if mode == "no-gallery":
        return "no gallery" if long else "no"
    return mode.replace("-", " ")


def fmt(value: object, digits: int = 3) -> str:
    """A table cell: numbers rounded, None/NaN as n/a."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(header: list[str], rows: list[list[object]]) -> list[str]:
    """Markdown table lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def load(work: Path, name: str) -> dict | None:
    path = work / name
    return json.loads(path.read_text()) if path.exists() else None


# ----------------------------------------------------------------------------------------- accuracy
TRACKER_NAMES = {"fancam": "fancam tracker", "sort": "SORT", "bytetrack": "ByteTrack", "ocsort": "OC-SORT"}


def _every(stride: int) -> str:
    return "every frame" if stride == 1 else f"every {stride} frames"


def _tracker_rows(run: dict) -> list[tuple[str, list[str]]]:
    """(name, [identity, IDF1, HOTA, tracks]) per tracker and variant of one trackers run."""
    out = []
    for r in run["results"]:
        label = TRACKER_NAMES.get(r["tracker"], r["tracker"])
        name = label if r["tracker"] == "fancam" else f"{label} (trackers {run['trackers_version']})"
        out.append((f"{name} {r['variant']}", [
            fmt(r["identity_accuracy"]), fmt(r["idf1"]), fmt(r["hota"]),
            f"{r['tracks']} tracks, {fmt(r['tracks_per_performer'], 2)} per performer, "
            f"{r['id_switches']} ID switches",
        ]))
    return out


TARGETS = {"identity_gallery": 0.95, "identity_no_gallery": 0.90, "detected": 0.95, "crop_hit": 0.95}
"""Issue 10's bars, on every labelled clip with the default preset."""
DEFAULT_QUALITY = "fast"


def _runs(acc: dict, clip: str, quality: str) -> dict[str, dict]:
    return {r["mode"]: r for r in acc["runs"] if r["clip"] == clip and r["quality"] == quality}


def _min_hit(run: dict | None, camera: str) -> tuple[float | None, str]:
    """Lowest crop hit rate over the targets of one run and camera, and whose it is."""
    if run is None:
        return None, ""
    mine = [c for c in run["crops"] if c["camera"] == camera]
    if not mine:
        return None, ""
    worst = min(mine, key=lambda c: -1.0 if c["hit_rate"] is None else c["hit_rate"])
    return worst["hit_rate"], worst["target"]


def _check(value: float | None, bar: float) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f} {'ok' if value >= bar else 'MISSED'}"


def targets_section(acc: dict | None) -> list[str]:
    """Issue 10's bars per clip: identity with/without gallery, detected share, every performer's hit rate."""
    if acc is None:
        return []
    clips = list(dict.fromkeys(r["clip"] for r in acc["runs"]))
    cameras = [c["camera"] for r in acc["runs"] for c in r["crops"] if c["camera"].startswith("fancam")]
    camera = "fancam-auto" if "fancam-auto" in cameras else (cameras[0] if cameras else "fancam-full")
    out = [
        "## Targets (issue 10), default preset",
        "",
        f"Preset `{DEFAULT_QUALITY}`. Bars: identity accuracy >= {TARGETS['identity_gallery']} with a gallery and "
        f">= {TARGETS['identity_no_gallery']} without; detected share (GT boxes matched by a `tracks.csv` box "
        f"at IoU >= 0.5) >= {TARGETS['detected']}; crop hit rate >= {TARGETS['crop_hit']} for every performer "
        f"(camera `{camera}`; the lowest performer is shown).",
        "",
    ]
    rows = []
    for clip in clips:
        runs = _runs(acc, clip, DEFAULT_QUALITY)
        g, n = runs.get("gallery"), runs.get("no-gallery")
        hits = [_min_hit(run, camera) for run in (g, n)]
        rows.append([
            clip, _check(g and g["fancam"]["identity_accuracy"], TARGETS["identity_gallery"]),
            _check(n and n["fancam"]["identity_accuracy"], TARGETS["identity_no_gallery"]),
            _check(n and n["fancam"]["detected_share"], TARGETS["detected"]),
            *(f"{_check(hit, TARGETS['crop_hit'])} ({who})" if who else "n/a" for hit, who in hits),
        ])
    out += table(["clip", "identity, gallery", "identity, no gallery", "detected share",
                  "lowest crop hit, gallery", "lowest crop hit, no gallery"], rows)
    out += ["", "A crop hit rate of 0 means the camera had nobody to follow for that performer (the gallery "
            "named nobody as them)."]
    return out + [""]


def identity_section(acc: dict | None, trk: dict | None) -> list[str]:
    """Identity accuracy, IDF1, HOTA per clip: fancam vs the seed vs the reference trackers."""
    out = ["## Accuracy: identity and tracking", ""]
    if acc is None:
        return out + ["*accuracy.json missing: run `python benchmarks/bench_accuracy.py`.*", ""]
    clips = {r["clip"]: r for r in acc["runs"]}
    out += [
        f"Run {acc['date']} (load average {fmt(acc['load_before'][0], 1)}). Clips (GT every 0.5 s, hand-labelled):",
        "",
    ]
    out += [f"- `{name}`: `{r['video']}` with `{r['gt']}`: {r['what']} ({r['fancam']['total']} GT rows)."
            for name, r in clips.items()]
    out += [
        "",
        "fancam and the seed baseline are scored on the *same* analysis (same detections, tracklets and "
        "sampled faces): only the identity decisions differ. Without a gallery, names are mapped one-to-one "
        "to the GT performers before scoring (as `fancam eval` does). Galleries: the bench clip's own; "
        "hamilton's reference photos (taken elsewhere); for the others three crops per performer from the "
        "first 20% of the clip (`benchmarks/make_gallery.py`).",
        "",
    ]
    rows = []
    for run in acc["runs"]:
        f, s = run["fancam"], run["seed"]
        rows.append([
            run["clip"], run["quality"], _gallery_label(run["mode"]), fmt(f["identity_accuracy"]), fmt(f["idf1"]),
            fmt(f["hota"]), fmt(f.get("detected_share")), f"{f['people']} from {run['tracklets']} tracklets",
            fmt(s["identity_accuracy"]), fmt(s["idf1"]), fmt(s["repeated_names"], 0),
        ])
    out += table(["clip", "preset", "gallery", "fancam identity", "IDF1", "HOTA", "detected", "people",
                  "seed identity", "seed IDF1", "seed repeated names"], rows)
    default = [run for run in trk["runs"] if run.get("detect_fps") is None] if trk is not None else []
    if default:
        out += ["", "Trackers alone on the same detections (each track is its own person, no appearance):", ""]
        rows = [[run.get("clip", "bench"), f"{name}, detection {_every(run['stride'])}", *cells]
                for run in default for name, cells in _tracker_rows(run)]
        out += table(["clip", "tracker", "identity accuracy", "IDF1", "HOTA", "tracks"], rows)
    out += [
        "",
        "`+tracklets` is fancam's post-processing (cut wherever boxes merge so that no tracklet can hold an "
        "identity switch; identity then links the pieces, which is what the fancam rows add). `without P1` / "
        "`without P3` (bench clip): the gallery minus that dancer (P1 and P3 wear the same outfit): the "
        "missing dancer should be `unknown`, never someone else; wrong names lower IDF1 (IDP) while `unknown` "
        "only lowers recall.",
        "",
    ]
    return out


def _mean(values: list[object]) -> float | None:
    numbers = [float(v) for v in values if v is not None]
    return sum(numbers) / len(numbers) if numbers else None


def _same_as_seed(row: dict, rows: list[dict]) -> bool:
    """A 9:16 seed row whose scores equal the seed row of the same target (a 9:16 source)."""
    keys = ("hit_rate", "framing", "jitter", "wide_share", "lag_frames")
    twin = [r for r in rows if r["target"] == row["target"] and r["camera"] == "seed"]
    return row["camera"] == "seed-9x16" and bool(twin) and all(twin[0][k] == row[k] for k in keys)


def camera_section(acc: dict | None) -> list[str]:
    """Camera metrics: a summary per camera, then every target."""
    if acc is None:
        return []
    out = [
        "## Accuracy: camera",
        "",
        "Each camera follows its own system's identity of the target (with a gallery: the member name; "
        "without: the predicted name mapped to that GT performer). fancam: the path `fancam render` "
        "uses (9:16, framings `full` and `upper`). Seed: trailing 0.5 s median + 0.25 s mean of the head "
        "point, 0.4W x 0.4H crop (`seed`) and the same height at 9:16 (`seed-9x16`, left out below where "
        "it scores the same: on a 9:16 portrait source the two crops are identical). Hit rate, framing "
        "(target height / crop height), jitter (crop heights per frame^2), wide share and lag (frames; "
        "positive = late) are the DESIGN.md metrics, computed by `fancam.eval.metrics` from each path's "
        "`crop.csv`. `pan std` is the spread of the crop centre x in crop heights: when it is small the "
        "camera mostly holds still (its dead zone), the correlation the lag maximises is flat, and the lag "
        "says little (it may land on the +-30 search edge, or be undefined).",
        "",
        "Summary over each clip's performers (means; lag: median of the defined ones):",
        "",
    ]
    rows = []
    for run in acc["runs"]:
        cameras = dict.fromkeys(c["camera"] for c in run["crops"])
        for camera in cameras:
            mine = [c for c in run["crops"] if c["camera"] == camera]
            if all(_same_as_seed(c, run["crops"]) for c in mine):
                continue
            lags = sorted(c["lag_frames"] for c in mine if c["lag_frames"] is not None)
            lag = "n/a" if not lags else f"{lags[len(lags) // 2]} frames"
            rows.append([
                f"{run['clip']}, {run['quality']}, {_gallery_label(run['mode'], long=True)}", camera,
                fmt(_mean([c["hit_rate"] for c in mine])), fmt(_mean([c["framing"] for c in mine]), 2),
                fmt(_mean([c["jitter"] for c in mine]), 4), fmt(_mean([c["wide_share"] for c in mine])),
                lag, fmt(_mean([c["pan_std"] for c in mine]), 3),
            ])
    out += table(["run", "camera", "hit rate", "framing", "jitter", "wide share", "lag", "pan std"], rows)
    out += ["", "<details><summary>Every target</summary>", ""]
    rows = []
    for run in acc["runs"]:
        for c in run["crops"]:
            if _same_as_seed(c, run["crops"]):
                continue
            lag = "n/a" if c["lag_frames"] is None else f"{c['lag_frames']} ({fmt(c['lag_s'], 2)} s)"
            rows.append([
                f"{run['clip']}, {run['quality']}, {_gallery_label(run['mode'], long=True)}", c["target"],
                c["camera"], c["follows"] or "nobody", fmt(c["hit_rate"]), fmt(c["framing"], 2),
                fmt(c["jitter"], 4), fmt(c["wide_share"]), lag, fmt(c["pan_std"], 3),
            ])
    out += table(["run", "target", "camera", "follows", "hit rate", "framing", "jitter", "wide share", "lag",
                  "pan std"], rows)
    out += ["", "</details>"]
    for sanity in acc.get("sanity", []):
        out += [
            "",
            f"Sanity, no GT (`{Path(sanity['clip']).parent.name}/{Path(sanity['clip']).name}`, "
            f"{sanity['size'][0]}x{sanity['size'][1]}, {sanity['frames']} frames, {sanity['quality']}): "
            f"{sanity['tracklets']} tracklets; fancam: {sanity['fancam_people']} people, "
            f"{sanity['fancam_unknown_rows']} unknown rows; seed: {sanity['seed_people']} people. "
            "Follow share of the camera (fancam / seed on the performer's longest tracklet): "
            + ", ".join(f"{p['person']} {fmt(p['fancam_follow_share'], 2)} / {fmt(p['seed_follow_share'], 2)}"
                        for p in sanity["people"]) + ".",
        ]
    return out + [""]


def trackers_section(trk: dict | None) -> list[str]:
    if trk is None:
        missing = "*trackers.json missing: run `python benchmarks/bench_trackers.py all`.*"
        return ["## Tracker comparison", "", missing, ""]
    out = ["## Tracker comparison (details)", ""]
    for run in trk["runs"]:
        replay = "reproduces" if run.get("fancam_replay_reproduces_scan") else "does NOT reproduce"
        out += [
            f"- `{run.get('clip', 'bench')}`, detection {_every(run['stride'])}: {run['detections']} "
            f"`{run['detector']}` boxes from "
            f"{run['detector_calls']} detector calls (median {fmt(run['detect_ms_median'], 0)} ms per call), "
            f"recorded from fancam's own scan and fed to every tracker (fancam's tracker replayed on them "
            f"{replay} the scan's tracks). Update cost per detection frame (median): "
            + ", ".join(f"{r['tracker']} {fmt(r['ms_per_update'], 2)} ms" for r in run["results"]
                        if r["variant"] == "raw") + ".",
        ]
    out += ["", "Every clip and detection rate:", ""]
    rows = [[run.get("clip", "bench"), _every(run["stride"]), name, *cells] for run in trk["runs"]
            for name, cells in _tracker_rows(run)]
    out += table(["clip", "detection", "tracker", "identity accuracy", "IDF1", "HOTA", "tracks"], rows)
    version = trk["runs"][0]["trackers_version"] if trk["runs"] else "?"
    out += [
        "",
        f"Reference trackers: roboflow `trackers` {version}, library defaults, the detection frames' real "
        "timestamps, a lost-track buffer of 1 s (as fancam's `max_lost_s`), a new instance at each shot "
        "cut; run in a separate venv (their `opencv-python` 5 would shadow fancam's headless OpenCV 4).",
        "",
    ]
    return out


# ----------------------------------------------------------------------------------------- speed
STAGES = ("decode", "shots", "convert", "detect", "track", "appearance", "tracklets", "identity", "other")


def speed_section(pipe: dict | None) -> list[str]:
    out = ["## Speed and memory", ""]
    if pipe is None:
        return out + ["*pipeline.json missing: run `python benchmarks/bench_pipeline.py`.*", ""]
    m = pipe["machine"]
    loads = [t["load_before"][0] for c in pipe["clips"] for t in c["tasks"].values()]
    out += [
        f"Run {pipe['date']} on {m['cores']} cores ({m['cpu']}, {m.get('cpu_mhz') or '?'} MHz), "
        f"{m['memory_gb']} GB; preset `{pipe['quality']}`; 1-min load average during the tasks "
        f"{fmt(min(loads), 1)}-{fmt(max(loads), 1)} (other work shared the 2 cores: wall times are "
        "indicative). RTF = video seconds per wall second (>1 = faster than real time). Each task ran in "
        "its own process: peak memory is that process's max RSS.",
        "",
    ]
    rows = []
    for c in pipe["clips"]:
        t = c["tasks"]
        a = t.get("analyze", {})
        stage_rtf = a.get("stage_rtf", {})
        rows.append([
            f"{c['key']}: {c['width']}x{c['height']} {c['codec']} {fmt(c['fps'], 0)} fps, "
            f"{fmt(c['video_s'], 1)} s",
            fmt(t.get("decode", {}).get("rtf"), 2),
            *[fmt(stage_rtf.get(s), 2) for s in STAGES],
            fmt(a.get("rtf"), 2),
        ])
    out += ["Real-time factor per analysis stage (fresh analysis folder, no cache):", ""]
    out += table(["clip", "decode alone", *[f"{s}" for s in STAGES], "**analysis**"], rows)
    out += [
        "",
        "`decode` inside the analysis is the time the scan *waited* for the decode thread (decoding "
        "overlaps detection); `decode alone` decodes every frame and nothing else. `other` = analysis wall "
        "time outside the stages (model loading, hashing the video, the gallery, writing files).",
        "",
    ]
    rows = []
    for c in pipe["clips"]:
        t = c["tasks"]
        wall = {k: t[k]["wall_s"] for k in t}
        overall = (c["video_s"] / (wall["analyze"] + wall["render-native"])
                   if "analyze" in wall and "render-native" in wall else None)
        together = "n/a"
        if "render-all" in t and "render-singles" in t:
            together = (f"{fmt(wall['render-all'], 1)} / {fmt(wall['render-singles'], 1)} s "
                        f"({t['render-all']['outputs']} people)")
        rows.append([
            c["key"], fmt(t.get("analyze", {}).get("rtf"), 2), fmt(t.get("analyze-cached", {}).get("rtf"), 1),
            fmt(t.get("render-native", {}).get("rtf"), 2), fmt(t.get("render-1080", {}).get("rtf"), 2),
            together, f"**{fmt(overall, 2)}**", fmt(max(r["peak_mb"] for r in t.values()), 0),
        ])
    out += ["Product view (RTF; `overall` = analysis + one native render, from scratch):", ""]
    out += table(["clip", "analysis", "cached analysis", "render native", "render 1080x1920",
                  "--all / singles wall", "overall", "peak MB"], rows)
    out += ["", "<details><summary>Every task</summary>", ""]
    rows = []
    for c in pipe["clips"]:
        for name, r in c["tasks"].items():
            detail = ""
            if "size" in r:
                detail = f"{r['outputs']} output(s) {r['size'][0][0]}x{r['size'][0][1]}"
            elif "people" in r:
                detail = f"{r['people']} people, {r['tracklets']} tracklets"
            rows.append([
                c["key"], name, fmt(r["wall_s"], 2), fmt(r.get("rtf"), 2), fmt(r["cpu_s"], 1),
                fmt(r["peak_mb"], 0), fmt(r["load_before"][0], 1), detail,
            ])
    out += table(["clip", "task", "wall s", "RTF", "CPU s", "peak MB", "load", "detail"], rows)
    out += [
        "",
        "Wall = median of the repeats; CPU = user + system time of all threads; load = 1-min load "
        "average when the task started.",
        "`render-all` renders the top N (`--together`, default 3) performers in one decode pass, as "
        "`fancam render --all` does; `render-singles` renders the same N one after the other. `render-1080` "
        "scales every crop to 1080x1920; `render-native` keeps the crop's own size. Render times include "
        "planning the camera path.",
        "",
        "</details>",
        "",
    ]
    return out


# ----------------------------------------------------------------------------------------- profile
def _share(use: dict) -> str:
    return " / ".join(f"{fmt(100 * use.get(k, 0.0), 0)}%" for k in ("~0 cores", "~1 core", "~2 cores"))


def profile_section(prof: dict | None, top: int = 12) -> list[str]:
    """"Where the time goes": bench_profile.py's phases, core use, threads, hottest functions, and what
    was tried."""
    out = ["## Where the time goes (analysis)", ""]
    if prof is None:
        return out + ["*profile.json missing: run `python benchmarks/bench_profile.py`.*", ""]
    m = prof["machine"]
    out += [
        f"Run {prof['date']} by `benchmarks/bench_profile.py` on {m['cores']} cores ({m['cpu']}); preset "
        f"`{prof['quality']}`; a fresh analysis per clip under cProfile (adds ~5-10% to wall time; the "
        "speed itself is in the table above). CPU = every thread of the process and of its face-embedding "
        "worker process, sampled from /proc; cores = CPU / wall; core use = share of the wall time with "
        "about 0 / 1 / 2 cores busy (on a shared machine other work can hold a core: see the load).",
        "",
    ]
    for c in prof["clips"]:
        out += [f"### {c['key']}: {c['width']}x{c['height']} {c['codec']}, {fmt(c['video_s'], 1)} s of video",
                "",
                f"Wall {fmt(c['wall_s'], 2)} s (RTF {fmt(c['rtf'], 2)}), CPU {fmt(c['cpu_s'], 1)} s, "
                f"{fmt(c['cores'], 2)} cores busy on average; core use {_share(c['core_use'])}; load "
                f"average {fmt(c['load_before'][0], 1)} before, {fmt(c['load_after'][0], 1)} after. "
                f"**2-core estimate {fmt(c.get('two_core_wall_s'), 2)} s (RTF {fmt(c.get('two_core_rtf'), 2)})**: "
                "per phase max(CPU / 2, CPU of its busiest thread), what two idle cores would need at best.",
                ""]
        rows = []
        for name, p in c["phases"].items():
            busiest = (f"{p['busiest_thread']} {fmt(p['busiest_thread_cpu_s'], 2)}"
                       if p.get("busiest_thread") else "")
            rows.append([name, fmt(p["wall_s"], 2), fmt(p["cpu_s"], 2), fmt(p.get("cores"), 2), busiest,
                         fmt(p.get("two_core_wall_s"), 2), _share(p["core_use"]) if "core_use" in p else ""])
        out += table(["phase", "wall s", "CPU s", "cores", "busiest thread, CPU s", "2-core estimate s",
                      "core use 0 / 1 / 2"], rows)
        stages = ", ".join(f"{k} {fmt(v, 2)}" for k, v in c["stage_seconds"].items())
        threads = ", ".join(f"{k} {fmt(v, 2)}" for k, v in list(c["threads"].items())[:8])
        out += ["", f"Stage timers (s): {stages}. CPU s by thread: {threads}.", ""]
        rows = [[f"`{r['function']}`", r["calls"], fmt(r["cum_s"], 2), fmt(r["self_s"], 2)]
                for r in c["top_self"][:top]]
        out += ["<details><summary>Hottest functions</summary>", "", "By self time (every Python thread, "
                "merged; time spent waiting on a lock left out):", ""]
        out += table(["function", "calls", "cumulative s", "self s"], rows)
        rows = [[f"`{r['function']}`", r["calls"], fmt(r["cum_s"], 2), fmt(r["self_s"], 2)]
                for r in c["top_cumulative"][:top]]
        out += ["", "By cumulative time:", ""]
        out += table(["function", "calls", "cumulative s", "self s"], rows)
        out += ["", "</details>", ""]
    if prof.get("tried"):
        out += ["What was tried to make the analysis faster, and its measured effect:", ""]
        out += table(["change", "measured effect", "kept"],
                     [[t["change"], t["effect"], t["kept"]] for t in prof["tried"]])
        out += [""]
    return out


def portable(command: str) -> str:
    """``command`` without this machine's paths: shared media as ``../shared/...``, scratch as ``DIR``.

    The benchmarks record the command they ran with absolute paths; REPORT.md is in the repository,
    which must not hold paths of the machine it was measured on.
    """
    command = re.sub(r"(?<!\S)\S*?/shared/", "../shared/", command)
    return re.sub(r"(--work|--json)(\s+|=)\S+", r"\1\2DIR", command)


def memory_section(mem: dict | None) -> list[str]:
    out = ["## Memory on long 4K clips", ""]
    if mem is None:
        return out + ["*memory.json missing: run `python benchmarks/bench_memory.py`.*", ""]
    w, h = mem["size"]
    fps = f"{fmt(mem['fps'], 0)} fps" if mem.get("fps") else "the source's frame rate"
    out += [
        f"Run {mem['date']} (`{portable(mem['command'])}`): the first {fmt(mem['segment_s'], 0)} s of "
        f"`{mem['source']}` "
        f"scaled up to {w}x{h} at {fps}, repeated by packet copy to each length; every task in its own "
        "process (peak memory = its max RSS). `analyze` is a fresh analysis; `render` follows person 1 at "
        "the crop's native size, with sound, from that analysis.",
        "",
    ]
    rows = []
    for run in mem["runs"]:
        t = run["tasks"]
        rows.append([
            f"{run['minutes']:g} min", f"{run['width']}x{run['height']}", run["frames"],
            *[fmt(t[k]["peak_mb"], 0) if k in t else "n/a" for k in ("analyze", "render")],
            *[fmt(t[k]["cpu_s"], 0) if k in t else "n/a" for k in ("analyze", "render")],
        ])
    out += table(["clip", "size", "frames", "analyze peak MB", "render peak MB", "analyze CPU s",
                  "render CPU s"], rows)
    # Later measurements on the same clips (a stage re-run after a fix), added to the JSON by their author.
    for note in mem.get("notes", []):
        out += ["", note]
    return out + [""]


# ----------------------------------------------------------------------------------------- main
def run_benchmarks(work: Path, ref_python: Path) -> None:
    """Run the three benchmarks (the timed one first, alone)."""
    python = sys.executable
    subprocess.run([python, str(HERE / "bench_pipeline.py"), "--work", str(work)], check=True)
    subprocess.run([python, str(HERE / "bench_profile.py"), "--work", str(work)], check=True)
    subprocess.run([python, str(HERE / "bench_trackers.py"), "all", "--work", str(work),
                    "--ref-python", str(ref_python), *TRACKER_RATES.split()], check=True)
    subprocess.run([python, str(HERE / "bench_accuracy.py"), "--work", str(work),
                    *ACCURACY_TIERS.split()], check=True)


def render_report(work: Path) -> str:
    acc, trk, pipe = load(work, "accuracy.json"), load(work, "trackers.json"), load(work, "pipeline.json")
    prof = load(work, "profile.json")
    mem = load(work, "memory.json")
    lines = [
        "# fancam benchmarks",
        "",
        f"Written {datetime.date.today().isoformat()} by `benchmarks/report.py` from the JSON results of the "
        "benchmarks below (see `benchmarks/README.md` for what each measures and how).",
        "",
        "```bash",
        "python benchmarks/bench_pipeline.py   # speed, memory -> $TMPDIR/fancam-bench/pipeline.json",
        "python benchmarks/bench_profile.py    # where the analysis time goes -> profile.json",
        "python benchmarks/bench_memory.py     # memory on 1- and 10-min 4K clips -> memory.json",
        f"python benchmarks/bench_trackers.py all --ref-python ../venv-ref/bin/python {TRACKER_RATES}",
        f"python benchmarks/bench_accuracy.py {ACCURACY_TIERS}   # fancam vs the seed baseline",
        "python benchmarks/report.py           # this file (report.py --run: all of the above, then this)",
        "```",
        "",
    ]
    lines += targets_section(acc)
    lines += identity_section(acc, trk)
    lines += camera_section(acc)
    lines += trackers_section(trk)
    lines += speed_section(pipe)
    lines += profile_section(prof)
    lines += memory_section(mem)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--run", action="store_true", help="run the benchmarks first")
    parser.add_argument("--ref-python", type=Path, default=DEFAULT_REF_PYTHON)
    args = parser.parse_args(argv)
    if args.run:
        run_benchmarks(args.work, args.ref_python)
    args.out.write_text(render_report(args.work))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
