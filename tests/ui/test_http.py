"""The web app's safety, over plain HTTP against a real `fancam ui` process (no browser needed)."""

from __future__ import annotations

import http.client
import io
import json
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from uiserver import Server, server  # noqa: F401 - fixture

from badmedia import synth_video


def _new_job(server: Server, **fields: str) -> str:
    body = "&".join(f"{k}={v}" for k, v in fields.items()).encode()
    status, answer = server.request("POST", "/api/jobs", body,
                                    {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, answer
    return json.loads(answer)["id"]


def _jpeg(colour: int = 128) -> bytes:
    return _image(".jpg", colour)


def _image(suffix: str, colour: int = 128) -> bytes:
    return cv2.imencode(suffix, np.full((64, 48, 3), colour, np.uint8))[1].tobytes()


def test_only_our_own_host_and_same_origin_writes(server: Server) -> None:
    status, body = server.get("/", {"Host": "attacker.example:80"})  # DNS rebinding
    assert status == 403 and b"this server answers as" in body
    status, _ = server.request("POST", "/api/jobs", b"", {"Origin": "http://attacker.example"})
    assert status == 403
    status, body = server.get("/")
    assert status == 200 and b"Drop a video here" in body
    _, headers_body = server.get("/static/htmx.min.js")
    assert headers_body.startswith(b"var htmx=")


@pytest.mark.parametrize("path", [
    "/jobs/..%2F..%2Fetc%2Fpasswd", "/jobs/short", "/jobs/AAAAAAAAAAAAAAAA",
    "/jobs/AAAAAAAAAAAAAAAA/files/..%2Fjob.json", "/jobs/AAAAAAAAAAAAAAAA/renders/x/0.mp4",
    "/static/..%2Fjobs.py",
])
def test_urls_never_name_files(server: Server, path: str) -> None:
    status, body = server.get(path)
    assert status == 404, body
    assert b"Traceback" not in body


def test_a_job_serves_only_its_own_listed_files(server: Server) -> None:
    job_id = _new_job(server, name="clip.mp4")
    (server.workdir / "jobs" / job_id / "secret.txt").write_text("not for the web")
    for path in ("secret.txt", "job.json", "..%2F..%2Fsecret.txt"):
        assert server.get(f"/jobs/{job_id}/files/{path}")[0] == 404
    # Not analysed yet: nothing to show, but the page explains.
    assert server.get(f"/jobs/{job_id}/files/people.json")[0] == 404
    status, body = server.get(f"/jobs/{job_id}")
    assert status == 200 and b"Waiting for the upload" in body


def test_upload_names_are_never_paths(server: Server, tmp_path: Path) -> None:
    video = synth_video(tmp_path / "v.mp4", n=10, size=(48, 48)).read_bytes()
    job_id = _new_job(server, name="x")
    status, body = server.request("PUT", f"/api/jobs/{job_id}/video", video,
                                  {"X-File-Name": "..%2F..%2F..%2Fevil.mp4"})
    assert status == 200, body
    folder = server.workdir / "jobs" / job_id
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
        "input", "input/video.mp4", "job.json"]
    assert json.loads((folder / "job.json").read_text())["name"] == "evil.mp4"
    assert not (server.workdir / "evil.mp4").exists() and not (tmp_path.parent / "evil.mp4").exists()
    # A tiny clip is a video, but too small to find anyone in: the start says so, naming the upload.
    status, body = server.request("POST", f"/api/jobs/{job_id}/start")
    assert status == 400 and json.loads(body)["error"] == (
        "'evil.mp4' is 48x48 pixels, too small to find people in (fancam needs at least 64 pixels on each side)")
    assert not folder.exists()  # a refused start leaves nothing behind


def test_start_checks_the_video_with_the_cli_messages(server: Server, tmp_path: Path) -> None:
    job_id = _new_job(server, name="x")
    status, body = server.request("POST", f"/api/jobs/{job_id}/start")
    assert status == 400 and json.loads(body)["error"] == "no video: drop a video file or give its path"
    missing = tmp_path / "gone.mp4"
    job_id = _new_job(server, source=str(missing))
    status, body = server.request("POST", f"/api/jobs/{job_id}/start")
    assert status == 400 and json.loads(body)["error"] == f"video not found: {str(missing)!r}; check the path"
    status, body = server.request("POST", "/api/jobs", b"source=clips/dance.mp4",
                                  {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and "full path" in json.loads(body)["error"]


def test_a_video_url_that_cannot_be_downloaded_fails_the_job_with_the_cli_message(server: Server) -> None:
    job_id = _new_job(server, source="https://example.invalid/stage.mp4")
    status, body = server.request("POST", f"/api/jobs/{job_id}/start")
    assert status == 200, body
    state_file = server.workdir / "jobs" / job_id / "job.json"
    deadline = time.monotonic() + 120
    while json.loads(state_file.read_text())["state"] != "failed" and time.monotonic() < deadline:
        time.sleep(0.5)
    state = json.loads(state_file.read_text())
    assert state["state"] == "failed" and state["name"] == "stage.mp4"
    assert state["message"].startswith("could not download 'https://example.invalid/stage.mp4'")
    status, body = server.get(f"/jobs/{job_id}")
    assert status == 200 and b"could not download" in body and b"Try again" in body


def test_gallery_zip_is_unpacked_under_clean_names_only(server: Server) -> None:
    job_id = _new_job(server, name="x")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("photos/blackpink/Jisoo/a.jpg", _jpeg(100))
        zf.writestr("photos/blackpink/Jisoo/b.JPG", _jpeg(120))
        zf.writestr("photos/blackpink/Jisoo/scan.tiff", _image(".tiff"))  # read by the gallery: kept too
        zf.writestr("/abs/Lisa/c.jpg", _jpeg(140))  # only the two folder names count
        zf.writestr("../../../escape/Lisa/d.jpg", _jpeg(160))  # zip-slip: skipped
        zf.writestr("photos/blackpink/Rosé/readme.txt", "not a photo")
        zf.writestr("__MACOSX/photos/._a.jpg", b"junk")
    status, body = server.request("PUT", f"/api/jobs/{job_id}/gallery", archive.getvalue())
    assert status == 200, body
    assert json.loads(body) == {"photos": 4}
    gallery = server.workdir / "jobs" / job_id / "gallery"
    assert sorted(p.relative_to(gallery).as_posix() for p in gallery.rglob("*")) == [
        "abs", "abs/Lisa", "abs/Lisa/photo-1.jpg",
        "blackpink", "blackpink/Jisoo", "blackpink/Jisoo/photo-1.jpg", "blackpink/Jisoo/photo-2.jpg",
        "blackpink/Jisoo/photo-3.tif"]
    assert not list(server.workdir.parent.parent.rglob("escape"))
    status, body = server.request("PUT", f"/api/jobs/{job_id}/gallery", b"PK\x03\x04 not really a zip")
    assert status == 400 and "not a zip file" in json.loads(body)["error"]


def test_photos_must_be_photos_of_a_named_member(server: Server) -> None:
    job_id = _new_job(server, name="x")
    status, body = server.request("PUT", f"/api/jobs/{job_id}/photos?member=Jisoo", b"hello",
                                  {"X-File-Name": "notes.jpg"})
    assert status == 400 and json.loads(body)["error"] == (
        "'notes.jpg' is not a photo (JPEG, PNG, WebP, BMP, TIFF, GIF or AVIF)")
    status, body = server.request("PUT", f"/api/jobs/{job_id}/photos?member=..%2F..", _jpeg(),
                                  {"X-File-Name": "a.jpg"})
    assert status == 400 and "has no letters or digits" in json.loads(body)["error"]
    status, _ = server.request("PUT", f"/api/jobs/{job_id}/photos?member=%EC%A7%80%EC%88%98", _jpeg(),
                               {"X-File-Name": "a.jpg"})  # Korean names are names
    assert status == 200
    assert (server.workdir / "jobs" / job_id / "gallery" / "gallery" / "지수" / "photo-1.jpg").is_file()


def test_uploads_over_the_limit_are_refused(tmp_path: Path) -> None:
    small = Server(tmp_path / "work", "--max-upload-mb", "1")
    try:
        job_id = _new_job(small, name="big.mp4")
        status, body = small.request("PUT", f"/api/jobs/{job_id}/video", b"\0" * (2 * 1024 * 1024),
                                     {"X-File-Name": "big.mp4"})
        assert status == 413 and json.loads(body)["error"] == "the video is larger than the limit of 1 MB"
        assert not list((small.workdir / "jobs" / job_id).rglob("video*"))
        assert b"data-max-video=\"1048576\"" in small.get("/")[1]  # the page checks before sending
    finally:
        assert small.stop() == 0


def _ui(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fancam.cli", "ui", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_other_addresses_need_an_explicit_flag_and_get_a_warning(tmp_path: Path) -> None:
    refused = _ui("--host", "0.0.0.0", "--port", "0", "--workdir", str(tmp_path / "w1"))
    assert refused.returncode == 2
    assert refused.stderr.strip() == ("fancam: error: --host 0.0.0.0 would let other computers use this app and "
                                      "its videos; add --allow-remote if that is what you want, or leave --host "
                                      "at 127.0.0.1")
    remote = Server(tmp_path / "w2", "--host", "0.0.0.0", "--allow-remote")
    try:
        assert "WARNING: listening on 0.0.0.0: anyone who can reach this computer" in remote.log()
        port = remote.url.rsplit(":", 1)[1].strip("/")
        remote.url = f"http://127.0.0.1:{port}/"
        status, body = remote.request("POST", "/api/jobs", f"source={tmp_path}/x.mp4".encode(),
                                      {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 400 and "does not read files by path" in json.loads(body)["error"]
        assert b'id="video-source"' not in remote.get("/")[1]  # no path field for remote visitors
    finally:
        assert remote.stop() == 0


def test_one_server_per_work_folder_and_port(server: Server) -> None:
    again = _ui("--port", "0", "--workdir", str(server.workdir))
    assert again.returncode == 2 and "another fancam ui is using" in again.stderr
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    busy = _ui("--port", str(port), "--workdir", str(server.workdir.parent / "other"))
    assert busy.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    assert "Traceback" not in again.stderr + busy.stderr


def test_ctrl_c_stops_the_server_cleanly_with_pages_open(tmp_path: Path) -> None:
    running = Server(tmp_path / "w")
    job_id = _new_job(running, name="x")
    host, port = "127.0.0.1", int(running.url.rsplit(":", 1)[1].strip("/"))
    idle = socket.create_connection((host, port))
    page = http.client.HTTPConnection(host, port, timeout=30)
    page.request("GET", f"/jobs/{job_id}/events")
    events = page.getresponse()
    assert events.status == 200 and events.headers["content-type"].startswith("text/event-stream")
    assert events.readline() == b"event: status\n"  # a page following its job
    start = time.monotonic()
    try:
        assert running.stop() == 0
    finally:
        idle.close()
        page.close()
    assert time.monotonic() - start < 15
    assert "Traceback" not in running.log() and "ERROR" not in running.log(), running.log()
