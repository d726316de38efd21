"""A local HTTP server holding model files, and registry entries pointing at it (model and download tests).

The server serves a temp copy of ../shared/models on 127.0.0.1 and can cut transfers mid-body, ignore
Range requests or hold a request until released. Nothing here is a test; nothing touches the internet.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import shutil
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import shared_file
from fancam.models.download import DownloadConfig
from fancam.models.registry import Digest, ModelFile, ModelInfo

FAST = DownloadConfig(timeout_s=5.0, attempts=3, backoff_s=0.01, progress=False)
SHARED_FILES = ("yolox_nano.onnx", "yunet_s_640_640.onnx", "yunet_n_640_640.onnx")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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

@contextlib.contextmanager
def serve_shared_models(root: Path) -> Iterator[tuple[str, ServerState]]:
    """(base URL, state) of a local server holding a copy of ../shared/models in ``root``."""
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


def isolate(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Use a private FANCAM_HOME, no mirror, no proxies (127.0.0.1 must be reached directly)."""
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
        preprocess="", runner="fancam.identity.faces.YuNetDetector", description="test entry",
    )
