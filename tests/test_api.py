"""The public API: exactly these names, each importable, documented and usable as the README shows."""

from __future__ import annotations

import inspect
import subprocess
import sys

import fancam
from fancam import ProgressEvent
from fancam.io.progress import progress_bar

PUBLIC = {
    "Analysis", "AnalysisSettings", "FancamError", "GalleryError", "InputError", "ModelError", "Person",
    "ProcessingError", "Progress", "ProgressEvent", "RenderOptions", "RenderResult", "Selection",
    "Snapshot", "UsageError", "VideoError", "__version__", "analyze", "make_fancams", "probe", "snapshot",
    "write_sheet",
}


def test_all_is_exactly_the_public_api() -> None:
    # As httpx does: adding or removing a public name is a deliberate change of this test.
    assert set(fancam.__all__) == PUBLIC
    assert fancam.__all__ == sorted(fancam.__all__)
    # Every public name resolves (names load lazily); submodules aside, nothing else is public.
    for name in PUBLIC:
        assert getattr(fancam, name) is not None
    public_members = {name for name, obj in vars(fancam).items() if not name.startswith("_")
                      and not inspect.ismodule(obj) and name not in {"annotations", "TYPE_CHECKING", "Any"}}
    assert public_members <= PUBLIC
    assert set(dir(fancam)) >= PUBLIC


def test_importing_the_package_is_light() -> None:
    # The CLI and the model downloader import fancam first: that must not load the pipeline.
    code = ("import sys, fancam; heavy = [m for m in ('cv2', 'scipy', 'dlib', 'fancam.pipeline.analyze') "
            "if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_public_name_is_documented() -> None:
    for name in fancam.__all__:
        obj = getattr(fancam, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name


def test_errors_form_one_tree() -> None:
    for name in ("GalleryError", "InputError", "ModelError", "ProcessingError", "UsageError", "VideoError"):
        assert issubclass(getattr(fancam, name), fancam.FancamError)


def test_progress_callback_gets_start_updates_and_end() -> None:
    events: list[ProgressEvent] = []
    with progress_bar(10, "detect+track", enabled=events.append) as bar:
        for _ in range(10):
            bar.update(1)
    assert events[0].done == 0 and not events[0].finished
    assert events[-1].finished and events[-1].done == 10 and events[-1].fraction == 1.0
    assert all(e.stage == "detect+track" for e in events)
    # Updates are throttled: 10 quick updates do not make 10 events.
    assert len(events) < 12


def test_progress_event_time_left() -> None:
    assert ProgressEvent("render", 25, 100, 10.0).eta_s == 30.0
    assert ProgressEvent("render", 0, 100, 1.0).eta_s is None
    assert ProgressEvent("render", 5, None, 1.0).fraction is None
