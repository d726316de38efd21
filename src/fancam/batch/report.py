"""The batch report: ``batch-report.csv``, ``batch-report.json`` and the summary on the terminal.

``batch-report.csv`` has one row per item and per bad row; ``batch-report.json`` the same with every
detail (each fancam's frames, duration and camera path file, the renders asked for, the run).

CSV columns: ``item`` (index), ``lines`` (manifest lines), ``video``, ``gallery``, ``status`` (done,
skipped, failed, invalid, interrupted), ``error``, ``attempts``, ``worker``, ``peak_rss_mb`` (the
worker's peak memory), ``video_s``, the wall seconds per stage ``fetch_s``, ``hash_s``, ``analyze_s``,
``render_s``, ``total_s``, the analysis's own stage times ``analysis_stages`` (``stage=seconds;...``,
each measured by the attempt or earlier run that computed it), ``analysis_reused`` (the analysis stages
this attempt found complete and did not compute, ``;``-separated: a retried item, a rerun), and per
rendered performer, in the same order and separated by ``;``: ``performers`` (name), ``person_ids``,
``confidences`` (identity confidence), ``outputs`` (paths relative to the output folder); then ``notes``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from fancam.batch.run import BatchReport
from fancam.batch.work import DONE, FAILED, INTERRUPTED, INVALID, SKIPPED, write_json_atomic, write_text_atomic
from fancam.version import __version__

CSV_NAME = "batch-report.csv"
JSON_NAME = "batch-report.json"
STAGES = ("fetch", "hash", "analyze", "render", "total")
COLUMNS = (
    "item", "lines", "video", "gallery", "status", "error", "attempts", "worker", "peak_rss_mb", "video_s",
    *(f"{s}_s" for s in STAGES), "analysis_stages", "analysis_reused", "performers", "person_ids", "confidences",
    "outputs", "notes",
)


def rows(report: BatchReport) -> list[dict[str, Any]]:
    """The CSV rows: the items in order, then the bad rows."""
    table = []
    for item, r in zip(report.items, report.results, strict=True):
        table.append({
            "item": item.index, "lines": ";".join(map(str, item.lines)), "video": item.video,
            "gallery": item.gallery or "", "status": r.status, "error": r.error, "attempts": r.attempt,
            "worker": r.worker, "peak_rss_mb": f"{r.peak_rss_mb:.0f}" if r.peak_rss_mb else "",
            "video_s": _num(r.video_s),
            **{f"{s}_s": _num(r.seconds.get(s)) for s in STAGES},
            "analysis_stages": ";".join(f"{k}={v:.2f}" for k, v in r.analysis_seconds.items()),
            "analysis_reused": ";".join(r.analysis_reused),
            "performers": ";".join(f.label for f in r.fancams),
            "person_ids": ";".join(str(f.person) for f in r.fancams),
            "confidences": ";".join(f"{f.confidence:.3f}" for f in r.fancams),
            "outputs": ";".join(f.output for f in r.fancams),
            "notes": " | ".join(r.notes),
        })
    for bad in report.bad:
        table.append({"lines": str(bad.line), "video": bad.video, "status": INVALID, "error": bad.error})
    return [{c: row.get(c, "") for c in COLUMNS} for row in table]


def document(report: BatchReport) -> dict[str, Any]:
    """The JSON report."""
    items_per_min, rtf = report.throughput()
    return {
        "manifest": str(report.manifest), "out": str(report.out), "engine": report.engine,
        "workers": report.workers, "run_id": report.run_id, "started": report.started,
        "wall_s": round(report.wall_s, 3), "interrupted": report.interrupted,
        "summary": {
            **{s: report.count(s) for s in (DONE, SKIPPED, FAILED, INVALID, INTERRUPTED)},
            "fancams": sum(len(r.fancams) for r in report.results if r.status in (DONE, SKIPPED)),
            "items_per_min": round(items_per_min, 3), "video_s_per_wall_s": round(rtf, 4),
        },
        "items": [
            {"item": item.index, "key": item.key, "lines": list(item.lines), "video": item.video,
             "gallery": item.gallery,
             "status": r.status, "error": r.error, "attempts": r.attempt, "worker": r.worker,
             "fancam_version": r.version, "peak_rss_mb": r.peak_rss_mb, "folder": r.folder,
             "video_s": r.video_s, "seconds": r.seconds,
             "analysis_seconds": r.analysis_seconds, "analysis_reused": list(r.analysis_reused),
             "notes": list(r.notes),
             "renders": [{"lines": list(x.lines), "members": "all" if x.members is None else list(x.members),
                          "framing": x.framing, "aspect": x.aspect, "height": x.height, "start_s": x.start_s,
                          "end_s": x.end_s} for x in item.renders],
             "fancams": [{"person": f.person, "label": f.label, "confidence": f.confidence, "output": f.output,
                          "crop_csv": f.crop_csv, "frames": f.frames, "duration_s": f.duration_s}
                         for f in r.fancams]}
            for item, r in zip(report.items, report.results, strict=True)
        ],
        "bad_rows": [{"line": b.line, "video": b.video, "error": b.error} for b in report.bad],
    }


def write_reports(report: BatchReport) -> tuple[Path, Path]:
    """Write ``batch-report.csv`` and ``batch-report.json`` into the output folder (atomically)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(report))
    csv_path, json_path = report.out / CSV_NAME, report.out / JSON_NAME
    write_text_atomic(csv_path, text.getvalue())
    write_json_atomic(json_path, document(report))
    return csv_path, json_path


def summary(report: BatchReport) -> str:
    """The summary printed after a run (a few lines)."""
    counts = [f"{report.count(s)} {s}" for s in (DONE, SKIPPED, FAILED, INTERRUPTED) if report.count(s)]
    bad = f"; {len(report.bad)} bad manifest row{'s' * (len(report.bad) != 1)} not run" if report.bad else ""
    n = len(report.items)
    lines = [f"batch: {n} video{'s' * (n != 1)}: {', '.join(counts) or 'nothing to do'}{bad}"]
    fancams = sum(len(r.fancams) for r in report.results if r.status in (DONE, SKIPPED))
    items_per_min, rtf = report.throughput()
    video_s = sum(r.video_s for r in report.results if r.status == DONE)
    lines.append(f"  {fancams} fancams; {video_s:.1f} s of video processed in {report.wall_s:.1f} s "
                 f"({rtf:.2f} video-s per s, {items_per_min:.1f} videos/min) on {report.engine} x{report.workers}")
    for item, r in zip(report.items, report.results, strict=True):
        if r.status == FAILED:
            lines.append(f"  failed: line {','.join(map(str, item.lines))} {item.video}: {r.error}")
    for b in report.bad:
        lines.append(f"  bad row: line {b.line}: {b.error}")
    versions = {r.version for r in report.results if r.worker}
    if versions - {__version__}:
        lines.append(f"  warning: the workers ran fancam {', '.join(sorted(versions))} and this driver {__version__}; "
                     "install the same version on every node (output names depend on it)")
    if report.interrupted:
        lines.append("  interrupted: run the same command again to finish (complete outputs are kept)")
    lines.append(f"  report: {report.out / CSV_NAME}")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"

