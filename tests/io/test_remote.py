"""Video URLs: a clear message without yt-dlp or without network (never the internet in tests)."""

from __future__ import annotations

import importlib.util
import socket

import pytest

from fancam.errors import InputError, UsageError
from fancam.io.remote import fetch_video, is_url


def test_urls_are_told_apart_from_files():
    assert is_url("https://www.youtube.com/watch?v=x") and is_url("HTTP://example.org/v.mp4")
    assert not is_url("dance.mp4") and not is_url("/videos/http-talk.mp4")


def test_without_yt_dlp_the_message_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("FANCAM_HOME", str(tmp_path))
    real = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "yt_dlp" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(UsageError, match=r"pip install 'fancam\[url\]'"):
        fetch_video("https://example.org/dance.mp4")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_download_fails_with_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setenv("FANCAM_HOME", str(tmp_path))
    url = f"http://127.0.0.1:{_closed_port()}/dance.mp4"  # nothing listens: like being offline
    with pytest.raises(InputError, match="are you online"):
        fetch_video(url)
    assert not list((tmp_path / "downloads").rglob("video.mp4"))


def test_cli_accepts_a_url_and_fails_cleanly_offline(monkeypatch, tmp_path, capsys):
    from fancam.cli import main

    monkeypatch.setenv("FANCAM_HOME", str(tmp_path))
    url = f"http://127.0.0.1:{_closed_port()}/dance.mp4"
    assert main(["-q", "analyze", url]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "are you online" in err[0] and "Traceback" not in err[0]
