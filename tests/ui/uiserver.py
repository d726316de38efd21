"""The web app under test: a real `fancam ui` process and a real headless Chromium (Debian's package).

Test modules import the fixtures from here (a second conftest.py would clash with tests/conftest.py,
which the tests import by name).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--autoplay-policy=no-user-gesture-required",
]
ANALYSIS_TIMEOUT_MS = 300_000
"""An analysis of a 9 s clip takes 25-40 s on 2 busy cores; the limit only catches a hang."""


def chromium_path() -> str:
    """Debian's chromium (installed by .ci/run), or FANCAM_CHROMIUM."""
    path = os.environ.get("FANCAM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("chromium not found: apt-get install chromium (as .ci/run does), or set FANCAM_CHROMIUM")
    return path


class Server:
    """A `fancam ui` process on a free port of 127.0.0.1 (its log is kept for failure messages)."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.workdir = workdir
        self.args = args
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fancam.cli", "ui", "--port", "0", "--workdir", str(workdir), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        found: queue.Queue[str] = queue.Queue()

        def read() -> None:
            for line in self.process.stdout:
                self.lines.append(line)
                match = re.search(r"open (http://\S+/)", line)
                if match:
                    found.put(match.group(1))

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        try:
            self.url = found.get(timeout=60)
        except queue.Empty:
            self.stop()
            pytest.fail("fancam ui did not start:\n" + "".join(self.lines))

    def stop(self, sig: int = signal.SIGINT) -> int:
        """Stop the server (Ctrl-C by default) and return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            self._reader.join(timeout=5)
            self.process.stdout.close()

    def log(self) -> str:
        """Everything the server printed."""
        return "".join(self.lines)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """GET a path: (status, body)."""
        return self.request("GET", path, headers=headers)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """One HTTP request without a browser: (status, body)."""
        request = urllib.request.Request(self.url.rstrip("/") + path, data=body, method=method,
                                         headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per test module, on its own work folder."""
    running = Server(tmp_path_factory.mktemp("ui-work"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    """A fresh browser tab; fails the test on any JavaScript error in the page."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.set_default_timeout(30_000)
    yield tab
    context.close()
    assert not errors, errors
