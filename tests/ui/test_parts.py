"""The web app's parts without a server: upload names, gallery zips, job files, what the page says."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from fancam.errors import GalleryError, InputError
from fancam.ui import jobs as J
from fancam.ui.summary import absences, lost_stretches
from fancam.ui.uploads import Limits, display_name, extract_gallery_zip, safe_name, video_file_name

JPEG = cv2.imencode(".jpg", np.full((40, 30, 3), 90, np.uint8))[1].tobytes()


@pytest.mark.parametrize(("given", "shown"), [
    ("C:\\Users\\me\\Videos\\stage.mp4", "stage.mp4"),   # old browsers send the full Windows path
    ("../../etc/passwd", "passwd"),
    ("bad\nname\x00.mp4", "badname.mp4"),                  # control characters never reach a page or a log
    ("", "video"),
    ("x" * 300 + ".mp4", "x" * 120),
])
def test_display_names_are_only_text(given: str, shown: str) -> None:
    assert display_name(given) == shown


@pytest.mark.parametrize(("given", "stored"), [
    ("Stage.MOV", "video.mov"), ("clip.mp4", "video.mp4"), ("run.exe", "video"), ("noext", "video"),
    ("../../x.mkv", "video.mkv"),
])
def test_a_stored_video_is_always_named_video(given: str, stored: str) -> None:
    assert video_file_name(given) == stored


def test_member_names_keep_letters_of_any_script_and_nothing_else() -> None:
    assert safe_name(" Rosé ") == "Rosé"
    assert safe_name("지수") == "지수"
    assert safe_name("../etc/passwd") == "etcpasswd"
    assert safe_name("a" * 100) == "a" * 64
    with pytest.raises(GalleryError, match="has no letters or digits"):
        safe_name("../..")


def _zip(tmp_path: Path, entries: dict[str, bytes]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    path = tmp_path / "g.zip"
    path.write_bytes(buffer.getvalue())
    return path


def test_a_flat_member_zip_goes_into_one_group(tmp_path: Path) -> None:
    archive = _zip(tmp_path, {"Jisoo/1.jpg": JPEG, "Lisa/1.png": JPEG, "Lisa/2.webp": JPEG})
    assert extract_gallery_zip(archive, tmp_path / "g", Limits()) == 3
    assert sorted(p.relative_to(tmp_path / "g").as_posix() for p in (tmp_path / "g").rglob("*.*")) == [
        "gallery/Jisoo/photo-1.jpg", "gallery/Lisa/photo-1.png", "gallery/Lisa/photo-2.webp"]


@pytest.mark.parametrize(("entries", "limits", "message"), [
    ({"1.jpg": JPEG}, Limits(), "is not in a member folder"),
    ({"a/readme.txt": b"hi"}, Limits(), "holds no photos"),
    ({f"a/{i}.jpg": JPEG for i in range(3)}, Limits(photos=2), "holds 3 photos; the limit is 2"),
    ({"a/1.jpg": b"\0" * 3_000_000}, Limits(zip_unpacked_bytes=2_000_000), "unpacks to more than"),
    ({"a/1.jpg": b"\0" * 3_000_000}, Limits(photo_bytes=2 * 1024 * 1024), "is larger than 2 MB"),
])
def test_gallery_zip_limits(tmp_path: Path, entries: dict[str, bytes], limits: Limits, message: str) -> None:
    with pytest.raises(GalleryError, match=message):
        extract_gallery_zip(_zip(tmp_path, entries), tmp_path / "g", limits)


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "g.zip"
    path.write_text("hello")
    with pytest.raises(InputError, match="not a zip file"):
        extract_gallery_zip(path, tmp_path / "g", Limits())


def test_absences_list_only_real_gaps() -> None:
    times = np.arange(100) / 30.0
    frames = np.r_[0:10, 12:20, 50:60]  # a 2-frame blink (kept quiet), then a 1 s absence
    assert absences(times, frames) == [(round(19 / 30, 2), round(50 / 30, 2))]
    assert absences(times, np.arange(100)) == []
    assert absences(times, np.array([5])) == []


def test_lost_stretches_come_from_the_camera_path(tmp_path: Path) -> None:
    path = tmp_path / "x.crop.csv"
    # 0.1 s a frame: lost 0.3-0.9 s (kept), 1.1-1.3 s (a blink: left out), 1.5 s to the end (kept)
    modes = ["follow"] * 3 + ["search"] * 5 + ["wide"] + ["follow"] * 2 + ["search"] * 2 + ["follow"] * 2
    modes += ["search"] * 6
    rows = [f"{i},{i / 10:.4f},0,0,10,10,{m}" for i, m in enumerate(modes)]
    path.write_text("frame,t,x1,y1,x2,y2,mode\n" + "\n".join(rows) + "\n")
    assert lost_stretches(path) == [(0.3, 0.9), (1.5, 2.1)]


def test_jobs_survive_a_restart_and_ids_are_checked(tmp_path: Path) -> None:
    store = J.JobStore(tmp_path)
    job = store.create("dance.mp4", "input/video.mp4")
    render = J.Render(id=J.new_id(), person=2, all=False, framing="full", aspect="9:16", height=None,
                      start_s=1.0, end_s=None)
    render.outputs.append(J.Output(2, "person-2", "fancam.mp4", "fancam.crop.csv", 3.0, 90, [(1.0, 1.5)]))

    def change(j: J.Job) -> None:
        j.state, j.size = J.READY, (720, 1280)
        j.stages.append(J.Stage("detect+track", 1.0, 0.0, 5.0, True))
        j.renders.append(render)

    store.update(job.id, change)
    (tmp_path / "jobs" / "not-an-id!" ).mkdir()
    (tmp_path / "jobs" / "not-an-id!" / "job.json").write_text("{}")
    (tmp_path / "jobs" / "AAAAAAAAAAAAAAAA").mkdir()
    (tmp_path / "jobs" / "AAAAAAAAAAAAAAAA" / "job.json").write_text("{broken")
    again = J.JobStore(tmp_path)
    assert [j.id for j in again.all()] == [job.id]
    loaded = again.get(job.id)
    assert loaded.size == (720, 1280) and loaded.stages[0].name == "detect+track"
    assert loaded.renders[0].outputs[0].lost == [(1.0, 1.5)] and loaded.renders[0].start_s == 1.0
    assert json.loads((tmp_path / "jobs" / job.id / "job.json").read_text())["state"] == "ready"
    for bad in ("../x", "a" * 40, "short", "abc/defghijklmnop"):
        assert not J.valid_id(bad)
        with pytest.raises(KeyError):
            again.folder(bad)
    assert J.valid_id(J.new_id())


def test_messages_hide_server_paths() -> None:
    error = InputError("cannot open '/srv/fancam-jobs/abc/input/video.mp4' as a video: it is a text file")
    assert J.user_message(error, {"/srv/fancam-jobs/abc/input/video.mp4": "notes.mp4"}) == (
        "cannot open 'notes.mp4' as a video: it is a text file")
    assert J.user_message(ValueError("boom")).startswith("internal error: ValueError: boom (please report")
    assert "free disk space" in J.user_message(OSError(28, "No space left on device"))


def test_renders_go_before_waiting_analyses(tmp_path: Path) -> None:
    worker = J.Worker(J.JobStore(tmp_path))  # not started: only the queue
    worker.submit("jobAAAAAAAA")
    worker.submit("jobBBBBBBBB")
    worker.submit("jobAAAAAAAA", "render11111")
    worker.submit("jobAAAAAAAA", "render22222")
    assert worker.waiting_before("jobAAAAAAAA") == 0
    assert worker.waiting_before("jobAAAAAAAA", "render11111") == 1
    assert worker.waiting_before("jobAAAAAAAA", "render22222") == 2
    assert worker.waiting_before("jobBBBBBBBB") == 3
    worker.submit("jobBBBBBBBB", "render33333")  # never before its own job's analysis
    assert worker.waiting_before("jobBBBBBBBB", "render33333") == 4
    worker.forget("jobAAAAAAAA")
    assert worker.waiting_before("jobBBBBBBBB") == 0 and not worker.is_busy_with("jobAAAAAAAA")


def test_pipeline_warnings_of_the_worker_thread_reach_the_page() -> None:
    import logging
    import threading

    log = logging.getLogger("fancam.pipeline.produce")
    with J.pipeline_warnings({"/srv/jobs/abc/input/video.mp4": "dance.mp4"}) as warned:
        log.warning("%s: person-5 is on screen for only 44%% of it", "/srv/jobs/abc/input/video.mp4")
        log.warning("%s: person-5 is on screen for only 44%% of it", "/srv/jobs/abc/input/video.mp4")
        log.info("details nobody needs")
        other = threading.Thread(target=lambda: log.warning("another request's warning"))
        other.start()
        other.join()
    assert warned == ["dance.mp4: person-5 is on screen for only 44% of it"]
