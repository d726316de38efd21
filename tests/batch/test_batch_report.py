"""The batch report and summary from results (no video work: the records are built by hand)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from fancam.batch.items import Item, Render
from fancam.batch.manifest import BadRow
from fancam.batch.report import COLUMNS, summary, write_reports
from fancam.batch.run import BatchReport
from fancam.batch.work import Fancam, ItemResult


def report(tmp_path: Path, *results: ItemResult, bad=(), interrupted=False) -> BatchReport:
    render = Render((2,), None, None, None, None, 0.0, None)
    items = tuple(Item(r.index, f"/v/{r.index}.mp4", None, (render,)) for r in results)
    return BatchReport(tmp_path / "m.csv", tmp_path, "local", 2, "run", "2026-01-01T00:00:00+00:00", 60.0,
                       items, tuple(results), tuple(bad), interrupted)


def fancam(person: int, label: str, confidence: float) -> Fancam:
    return Fancam(person, label, confidence, f"v/{label}.mp4", f"v/{label}.crop.csv", 100, 4.0)


def test_csv_and_json_have_one_row_per_item_and_bad_row(tmp_path):
    done = ItemResult(0, "done", fancams=(fancam(1, "P1", 0.9), fancam(3, "unknown", 0.2)),
                      seconds={"hash": 0.1, "analyze": 20.0, "render": 9.0, "total": 29.5},
                      analysis_seconds={"detect": 12.0}, analysis_reused=("scan", "appearance"), video_s=30.0,
                      worker="h:1", attempt=2, peak_rss_mb=512.4)
    failed = ItemResult(1, "failed", error="cannot open it", worker="h:2", attempt=1)
    csv_path, json_path = write_reports(report(tmp_path, done, failed, bad=[BadRow(5, "x.mp4", "bad framing")]))
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMNS
    assert [(r["item"], r["lines"], r["status"], r["error"]) for r in rows] == [
        ("0", "2", "done", ""), ("1", "2", "failed", "cannot open it"), ("", "5", "invalid", "bad framing")]
    first = rows[0]
    assert (first["performers"], first["person_ids"], first["confidences"]) == ("P1;unknown", "1;3", "0.900;0.200")
    assert first["outputs"] == "v/P1.mp4;v/unknown.mp4" and first["attempts"] == "2" and first["peak_rss_mb"] == "512"
    assert (first["analyze_s"], first["render_s"], first["fetch_s"]) == ("20.000", "9.000", "")
    assert first["analysis_stages"] == "detect=12.00" and first["analysis_reused"] == "scan;appearance"
    document = json.loads(json_path.read_text())
    assert document["summary"] == {"done": 1, "skipped": 0, "failed": 1, "invalid": 1, "interrupted": 0,
                                   "fancams": 2, "items_per_min": 1.0, "video_s_per_wall_s": 0.5}
    assert document["items"][0]["fancams"][1]["label"] == "unknown"
    assert document["items"][0]["analysis_reused"] == ["scan", "appearance"]


def test_summary_names_failures_bad_rows_interruption_and_version_mismatch(tmp_path):
    text = summary(report(
        tmp_path,
        ItemResult(0, "skipped", fancams=(fancam(1, "P1", 0.9),), video_s=10.0, worker="h:1", version="0.0.9"),
        ItemResult(1, "failed", error="no people found", worker="h:1"),
        ItemResult(2, "interrupted", error="stopped"),
        bad=[BadRow(7, "y.mp4", "video not found: 'y.mp4'")], interrupted=True,
    ))
    lines = text.splitlines()
    assert lines[0] == "batch: 3 videos: 1 skipped, 1 failed, 1 interrupted; 1 bad manifest row not run"
    assert "1 fancams; 0.0 s of video processed in 60.0 s" in lines[1]
    assert "  failed: line 2 /v/1.mp4: no people found" in lines
    assert "  bad row: line 7: video not found: 'y.mp4'" in lines
    assert any("workers ran fancam 0.0.9" in line for line in lines)
    assert any(line.startswith("  interrupted: run the same command again") for line in lines)
