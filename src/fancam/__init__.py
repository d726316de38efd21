"""fancam: turn a group-performance video into a vertical fancam that follows one performer.

The public API, shared by the command line, the web app and batch runs::

    import fancam

    analysis = fancam.analyze("stage.mp4", gallery="photos/")          # pass A, cached
    for person in analysis.cast.people:
        print(person.id, person.label, person.confidence)
    results = fancam.make_fancams(                                       # pass B, one decode
        analysis, fancam.Selection(person=1), fancam.RenderOptions(output="out/p1.mp4")
    )

Long calls take ``progress=``: ``True`` (bars on a terminal), ``False``, or a callable receiving
:class:`ProgressEvent`. Every error a user can cause is a :class:`FancamError` with a one-line message.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fancam.version import __version__

if TYPE_CHECKING:
    from fancam.camera.render import RenderResult
    from fancam.errors import (
        FancamError,
        GalleryError,
        InputError,
        ModelError,
        ProcessingError,
        UsageError,
        VideoError,
    )
    from fancam.identity.people import Person
    from fancam.io.progress import Progress, ProgressEvent
    from fancam.io.video import probe
    from fancam.pipeline.analyze import Analysis, AnalysisSettings, analyze
    from fancam.pipeline.produce import RenderOptions, Selection, make_fancams
    from fancam.report.sheet import write_sheet
    from fancam.report.snapshot import Snapshot, snapshot

# Public name -> module that defines it. Loaded on first use, so that ``import fancam.cli`` or
# ``import fancam.models.download`` does not pay for OpenCV, SciPy and dlib until they are needed.
_EXPORTS = {
    "Analysis": "fancam.pipeline.analyze",
    "AnalysisSettings": "fancam.pipeline.analyze",
    "FancamError": "fancam.errors",
    "GalleryError": "fancam.errors",
    "InputError": "fancam.errors",
    "ModelError": "fancam.errors",
    "Person": "fancam.identity.people",
    "ProcessingError": "fancam.errors",
    "Progress": "fancam.io.progress",
    "ProgressEvent": "fancam.io.progress",
    "RenderOptions": "fancam.pipeline.produce",
    "RenderResult": "fancam.camera.render",
    "Selection": "fancam.pipeline.produce",
    "Snapshot": "fancam.report.snapshot",
    "UsageError": "fancam.errors",
    "VideoError": "fancam.errors",
    "analyze": "fancam.pipeline.analyze",
    "make_fancams": "fancam.pipeline.produce",
    "probe": "fancam.io.video",
    "snapshot": "fancam.report.snapshot",
    "write_sheet": "fancam.report.sheet",
}

__all__ = [
    "Analysis",
    "AnalysisSettings",
    "FancamError",
    "GalleryError",
    "InputError",
    "ModelError",
    "Person",
    "ProcessingError",
    "Progress",
    "ProgressEvent",
    "RenderOptions",
    "RenderResult",
    "Selection",
    "Snapshot",
    "UsageError",
    "VideoError",
    "__version__",
    "analyze",
    "make_fancams",
    "probe",
    "snapshot",
    "write_sheet",
]


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fancam' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
