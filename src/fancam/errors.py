"""Errors raised by fancam, and the exit codes the CLI maps them to.

Every error a user can cause derives from :class:`FancamError`; the CLI prints its message as one
line on stderr and exits with its ``exit_code``:

====  ======================================================================
code  meaning
====  ======================================================================
0     success
2     usage error: bad or conflicting command-line options (:class:`UsageError`)
3     input error: a file, folder or video that cannot be used (:class:`InputError`)
4     processing error: the work itself failed (:class:`ProcessingError`)
5     model error: a model is missing, corrupt or cannot be downloaded (:class:`ModelError`)
130   interrupted (Ctrl-C); nothing is left under a final output name
====  ======================================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_PROCESSING = 4
EXIT_MODEL = 5
EXIT_INTERRUPTED = 130


class FancamError(Exception):
    """Base class of every error fancam reports to users."""

    exit_code = EXIT_PROCESSING


class UsageError(FancamError):
    """Command-line options are missing, malformed or contradict each other."""

    exit_code = EXIT_USAGE


class InputError(FancamError):
    """An input (video, gallery, ground truth, output location) cannot be used."""

    exit_code = EXIT_INPUT


class VideoError(InputError):
    """A video cannot be opened or decoded."""


class GalleryError(InputError):
    """A gallery folder is missing or unusable."""


class ProcessingError(FancamError):
    """The pipeline failed on valid input (e.g. no people found)."""

    exit_code = EXIT_PROCESSING


class ModelError(FancamError):
    """A model is unavailable, corrupt, or cannot be downloaded."""

    exit_code = EXIT_MODEL
