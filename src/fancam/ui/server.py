"""Start the web app: check the address, lock the work folder, bind, serve until Ctrl-C."""

from __future__ import annotations

import fcntl
import importlib.util
import ipaddress
import logging
import socket
import sys
from pathlib import Path
from types import FrameType

from fancam.errors import EXIT_OK, InputError, UsageError
from fancam.ui.uploads import MB, Limits

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """Whether ``host`` is an address only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def default_workdir() -> Path:
    """``$FANCAM_HOME/ui`` (the user cache)."""
    from fancam.models.registry import fancam_home

    return fancam_home() / "ui"


def serve(  # noqa: PLR0913 - the command's options
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    workdir: Path | None = None,
    *,
    allow_remote: bool = False,
    max_upload_mb: int | None = None,
) -> int:
    """Run ``fancam ui`` until interrupted; returns the exit status.

    Raises:
        UsageError: a non-loopback ``host`` without ``allow_remote``, a port in use, a work folder
            another server uses, or the ``ui`` extra not installed.
    """
    local = is_loopback(host)
    if not local and not allow_remote:
        raise UsageError(f"--host {host} would let other computers use this app and its videos; add "
                         "--allow-remote if that is what you want, or leave --host at 127.0.0.1")
    needed = ("fastapi", "uvicorn", "jinja2", "python_multipart")
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"the web app needs the ui extra ({missing[0]} is missing): pip install 'fancam[ui]'")
    workdir = Path(workdir) if workdir is not None else default_workdir()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create the work folder {str(workdir)!r}: {e.strerror}; choose --workdir") from e
    lock = _lock_workdir(workdir)
    sock = _bind(host, port)
    import uvicorn  # the heavy imports once the cheap checks have passed

    from fancam.ui.app import Settings, create_app

    bound_port = sock.getsockname()[1]
    limits = Limits(video_bytes=max_upload_mb * MB) if max_upload_mb else Limits()
    hosts = frozenset() if not local else frozenset(
        f"{name}:{bound_port}" for name in ("127.0.0.1", "localhost", "[::1]", host)
    )
    app = create_app(Settings(workdir=workdir, limits=limits, local_paths=local, allowed_hosts=hosts))
    shown = f"[{host}]" if ":" in host else host
    if not local:
        print(f"fancam ui: WARNING: listening on {host}: anyone who can reach this computer on port "
              f"{bound_port} can upload videos, see every job and download the fancams", file=sys.stderr)
    try:  # Ctrl-C may come at any moment from here on (connections wait in the socket's backlog)
        print(f"fancam ui: open http://{shown}:{bound_port}/ (work folder {workdir}; Ctrl-C to stop)", flush=True)
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5, access_log=False)
        stopping = app.state.ui.stopping

        class Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: FrameType | None) -> None:
                stopping.set()  # event streams end, so the open pages do not hold the shutdown
                super().handle_exit(sig, frame)

        Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        lock.close()
    return EXIT_OK


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port), or a one-line error."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror}; choose another --port") from e
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def _lock_workdir(workdir: Path):  # noqa: ANN202 - an open file holding the lock
    """Hold a lock on the work folder so two servers never run the same jobs twice."""
    handle = open(workdir / ".server.lock", "a+")  # noqa: SIM115 - held until the server stops
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UsageError(f"another fancam ui is using {str(workdir)!r}; stop it, or choose another --workdir") from None
    return handle
