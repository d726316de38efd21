"""Command line: parse, delegate to the pipeline, map errors to exit codes. No logic lives here."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from fancam import __version__, models
from fancam.errors import (
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_MODEL,
    EXIT_OK,
    EXIT_PROCESSING,
    EXIT_USAGE,
    FancamError,
)

log = logging.getLogger("fancam")

EPILOG = f"""\
exit status:
  {EXIT_OK}    success
  {EXIT_USAGE}    usage error (bad or conflicting options)
  {EXIT_INPUT}    input error (missing/unreadable/invalid video, gallery, GT or output location)
  {EXIT_PROCESSING}    processing error (e.g. no people found in the video)
  {EXIT_MODEL}    model error (model missing, corrupt, or cannot be downloaded)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); no half-written output is left behind

examples:
  fancam analyze dance.mp4                      # writes dance.fancam/ (tracks.csv, people.json)
  fancam people dance.mp4                       # contact sheet: who is person 1, 2, ...
  fancam render dance.mp4 --person 2            # dance.person-2.mp4 (+ .crop.csv)
  fancam render dance.mp4 --member Jisoo --gallery photos/
  fancam render dance.mp4 --all --framing upper --aspect 4:5
  fancam eval dance.mp4 --gt dance.gt.csv --gallery photos/
  fancam models list
"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and our usage exit code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"fancam: error: {message}\n")


def _add_analysis_options(p: argparse.ArgumentParser, *, gallery: bool = True) -> None:
    if gallery:
        p.add_argument("--gallery", type=Path, metavar="DIR",
                       help="reference photos: DIR/<group>/<member>/*.jpg (names performers)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="analysis folder (default: VIDEO_STEM.fancam/ beside the video)")
    p.add_argument("--quality", choices=list(models.PRESETS), default=models.DEFAULT_QUALITY,
                   help="model preset: fast = offline PyPI models (default); balanced/best download "
                        "stronger models on first use")
    p.add_argument("--detector", metavar="NAME", help="person detector (see `fancam models list`)")
    p.add_argument("--face-model", metavar="NAME",
                   help="face detector or embedder (see `fancam models list`)")


def build_parser() -> argparse.ArgumentParser:
    """The ``fancam`` argument parser."""
    parser = _Parser(
        prog="fancam", description="Turn a group-performance video into a vertical fancam of one performer.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fancam {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details; show tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("analyze", help="detect, track and identify everyone (cached)",
                       description="Write the analysis folder: tracks.csv, people.json and caches.")
    p.add_argument("video", type=Path, help="video file")
    _add_analysis_options(p)
    p.set_defaults(run=_cmd_analyze)

    p = sub.add_parser("people", help="contact sheet of the performers, numbered for --person N")
    p.add_argument("video", type=Path)
    _add_analysis_options(p)
    p.add_argument("-o", "--output", type=Path, metavar="SHEET.jpg",
                   help="output image (default: VIDEO_STEM.people.jpg beside the video)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(run=_cmd_people)

    p = sub.add_parser("models", help="list, download or verify models")
    msub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    msub.required = True
    msub.add_parser("list", help="registered models and their status").set_defaults(run=_cmd_models_list)
    d = msub.add_parser("download", help="download (and verify) a model into the cache")
    d.add_argument("name")
    d.add_argument("--force", action="store_true", help="download again even if cached")
    d.set_defaults(run=_cmd_models_download)
    msub.add_parser("verify", help="check cached/installed models").set_defaults(run=_cmd_models_verify)
    return parser


def _settings(args: argparse.Namespace):
    from fancam.analysis import AnalysisSettings

    return AnalysisSettings(quality=args.quality, detector=args.detector, face_model=args.face_model)


def _analyze(args: argparse.Namespace):
    from fancam.analysis import analyze

    return analyze(
        args.video, out=args.out, gallery=args.gallery, settings=_settings(args), progress=not args.quiet
    )


def _cmd_analyze(args: argparse.Namespace) -> int:
    result = _analyze(args)
    print(f"analysis: {result.folder}")
    for person in result.cast.people:
        span = f"{person.first_seen_s:.1f}-{person.last_seen_s:.1f} s"
        print(f"  person {person.id}: {person.label}  seen {span}")
    return EXIT_OK


def _cmd_people(args: argparse.Namespace) -> int:
    from fancam.sheet import default_sheet_path, write_sheet

    output = args.output or default_sheet_path(args.video)
    result = _analyze(args)
    write_sheet(result, output, force=args.force)
    print(f"contact sheet: {output}")
    return EXIT_OK


def _cmd_models_list(args: argparse.Namespace) -> int:
    print(models.format_model_table())
    return EXIT_OK


def _cmd_models_download(args: argparse.Namespace) -> int:
    path = models.download_model(args.name, force=args.force)
    print(f"{args.name}: {path}")
    return EXIT_OK


def _cmd_models_verify(args: argparse.Namespace) -> int:
    bad = 0
    for name, status in models.verify_models():
        print(f"{name:14s} {status}")
        bad += status not in (models.STATUS_OK, models.STATUS_MISSING)
    return EXIT_MODEL if bad else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fancam`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    fmt = "%(name)s: %(levelname)s: %(message)s" if args.verbose else "fancam: %(levelname)s: %(message)s"
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format=fmt)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except FancamError as e:
        if args.verbose:
            log.exception("failed")
        print(f"fancam: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("fancam: interrupted; no partial output was kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print("fancam: error: out of memory; try a shorter clip (--start/--end)", file=sys.stderr)
        return EXIT_PROCESSING
    except Exception as e:  # a bug: say so in one line, keep the traceback for --verbose
        if args.verbose:
            raise
        print(f"fancam: internal error: {type(e).__name__}: {e} (rerun with --verbose for details "
              "and please report it)", file=sys.stderr)
        return EXIT_PROCESSING


if __name__ == "__main__":
    sys.exit(main())
