"""Video URLs as input (optional ``url`` extra: yt-dlp): download once into the user cache.

``fancam render https://... --person 1`` downloads the video with yt-dlp into
``<fancam home>/downloads/<sha256 of the URL>/`` and then works on that file like on any other; a
second run reuses the download. Offline, or without yt-dlp, the error says what to do.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path

from fancam.errors import InputError, UsageError
from fancam.io.cache import ensure_writable_dir
from fancam.models.registry import fancam_home

log = logging.getLogger(__name__)

URL_PREFIXES = ("http://", "https://")


def is_url(text: str | Path) -> bool:
    """True when the input names a web address rather than a file."""
    return str(text).lower().startswith(URL_PREFIXES)


def download_dir(url: str) -> Path:
    """Cache folder of one URL's download."""
    return fancam_home() / "downloads" / hashlib.sha256(url.encode()).hexdigest()[:16]


def fetch_video(url: str) -> Path:
    """The local file of a video URL, downloading it with yt-dlp on first use.

    Raises:
        UsageError: yt-dlp is not installed (install the ``url`` extra).
        InputError: the download failed (offline, unsupported site, private video...).
    """
    folder = download_dir(url)
    done = sorted(folder.glob("video.*")) if folder.is_dir() else []
    done = [p for p in done if not p.name.endswith((".part", ".ytdl"))]
    if done:
        log.info("reusing the download of %s: %s", url, done[0])
        return done[0]
    if importlib.util.find_spec("yt_dlp") is None:
        raise UsageError(
            f"cannot read {url!r}: video URLs need yt-dlp; install it with `pip install 'fancam[url]'`, "
            "or download the video yourself and pass the file"
        )
    import yt_dlp  # optional dependency, imported only for URLs

    ensure_writable_dir(folder, "download folder")
    options = {
        "outtmpl": str(folder / "video.%(ext)s"), "format": "bv*[ext=mp4]+ba[ext=m4a]/b[ext=mp4]/b",
        "quiet": True, "noprogress": True, "noplaylist": True, "socket_timeout": 20, "retries": 1,
        "logger": _QuietLogger(),  # yt-dlp's own error lines would repeat our one-line message
    }
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            ydl.download([url])
    except Exception as e:  # yt-dlp raises its own DownloadError and network errors
        raise InputError(
            f"could not download {url!r} ({_first_line(e)}); are you online? You can also download "
            "the video yourself and pass the file"
        ) from e
    files = [p for p in sorted(folder.glob("video.*")) if not p.name.endswith((".part", ".ytdl"))]
    if not files:
        raise InputError(f"yt-dlp finished but left no video for {url!r}")
    return files[0]


class _QuietLogger:
    """Routes yt-dlp's messages to fancam's log (debug level) instead of stderr."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
