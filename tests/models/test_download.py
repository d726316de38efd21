"""Model downloads (fancam.models.download, through the models API): resume, retries, locks, mirrors, offline.

Downloads run against the threaded HTTP server of modelserver.py on 127.0.0.1; nothing touches the
internet.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import MODELS
from fancam.errors import ModelError
from fancam.models import download
from fancam.models import registry as models
from modelserver import FAST, ServerState, entry, isolate, serve_shared_models, sha256


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, ServerState]]:
    """(base URL, state) of a local server holding a copy of ../shared/models."""
    with serve_shared_models(tmp_path / "served") as served:
        yield served


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private FANCAM_HOME, no mirror, no proxies (127.0.0.1 must be reached directly)."""
    return isolate(tmp_path / "home", monkeypatch)


def cache_listing() -> list[str]:
    folder = models.cache_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    yunet_n = models.ensure_model("yunet-n", allow_download=False)
    assert yunet_n == models.cache_dir() / "yunet_n_640_640.onnx"
    assert yunet_n.read_bytes() == (MODELS / "yunet_n_640_640.onnx").read_bytes()
    assert models.model_id("yunet-n") == f"yunet-n@sha256:{sha256(MODELS / 'yunet_n_640_640.onnx')}"
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
    info = replace(entry(url, "upstream_name.onnx", digest_of="yunet_s_640_640.onnx"),
                   aliases=("yunet_s_640_640.onnx",))
    path = models.download_model(info, config=FAST)
    assert sha256(path) == sha256(MODELS / "yunet_s_640_640.onnx")
    # The upstream file name is asked first, then the alias.
    asked = [name for name, _ in state.requests]
    assert asked == ["upstream_name.onnx", "yunet_s_640_640.onnx"]


# ------------------------------------------------------------------------------------ the module alone


def test_install_needs_no_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # download.install works from a WantedFile and two digest-cache callbacks (here: a mirror folder).
    monkeypatch.setenv("FANCAM_MODEL_MIRROR", str(MODELS))
    source = MODELS / "yunet_s_640_640.onnx"
    wanted = download.WantedFile(
        label="yunet-alone", dest=tmp_path / "cache" / "yunet.onnx", url="https://example.invalid/yunet.onnx",
        mirror_names=("yunet_s_640_640.onnx",), digests=((sha256(source), source.stat().st_size),),
    )
    looked_up: list[Path] = []
    remembered: list[tuple[Path, str]] = []

    def cached_sha256(path: Path) -> str:
        looked_up.append(path)
        return download.file_sha256(path)

    def install() -> Path:
        return download.install(wanted, FAST, force=False, network=False, cached_sha256=cached_sha256,
                                remember=lambda path, digest: remembered.append((path, digest)))

    path = install()
    assert path == wanted.dest and sha256(path) == sha256(source)
    assert remembered == [(path, sha256(source))] and looked_up == []
    # A valid file in place is found through the digest cache, not copied again.
    assert install() == path
    assert looked_up == [path] and len(remembered) == 1


def test_download_does_not_import_models() -> None:
    # fancam.models.registry imports fancam.models.download; the reverse would be an import cycle.
    code = "import sys, fancam.models.download; assert 'fancam.models.registry' not in sys.modules, 'cycle'"
    subprocess.run([sys.executable, "-c", code], check=True)
