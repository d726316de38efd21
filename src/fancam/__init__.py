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
from fancam.version import __version__

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
