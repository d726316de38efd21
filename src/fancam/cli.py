"""Command line: parse, delegate to the pipeline, map errors to exit codes. No logic lives here."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from fancam.errors import (
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_MODEL,
    EXIT_OK,
    EXIT_PROCESSING,
    EXIT_USAGE,
    FancamError,
    InputError,
    UsageError,
)
from fancam.models import registry as models
from fancam.version import __version__

log = logging.getLogger("fancam")

EPILOG = f"""\
exit status:
  {EXIT_OK}    success
  {EXIT_USAGE}    usage error (bad or conflicting options, unknown --person/--member)
  {EXIT_INPUT}    input error (missing/unreadable/invalid video, gallery, GT or output location)
  {EXIT_PROCESSING}    processing error (e.g. no people found in the video)
  {EXIT_MODEL}    model error (model missing, corrupt, or cannot be downloaded)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C or kill); no half-written output is left behind
  Errors are one line on stderr naming the file and what to do; --verbose adds the traceback.

files:
  Inputs are never modified, and nothing is written beside a video or into a gallery. The analysis
  (tracks.csv, people.json) is cached in the user cache ($FANCAM_HOME, default ~/.cache/fancam): one
  folder per video content and model choice (each --quality keeps its own), reused while the video
  bytes, settings, gallery photos and models are the same; least recently used ones are removed above
  $FANCAM_CACHE_MAX_GB (default 5); see `fancam cache list`. `analyze --out DIR` writes the analysis
  into DIR instead, and people, render and eval read it with `--analysis DIR`. Outputs (-o) go to
  the current folder by default; a missing output folder is created. They are written under a
  temporary name and renamed when complete. An existing output is replaced only with --force (eval
  --json reports are always replaced); an output equal to the input is refused.

examples:
  fancam people dance.mp4                       # ./dance.people.jpg: who is person 1, 2, ...
  fancam render dance.mp4 --person 2            # ./dance.person-2.mp4 (+ .crop.csv)
  fancam render dance.mp4 --member Jisoo --gallery photos/
  fancam render dance.mp4 --all --framing upper --aspect 4:5 -o fancams/
  fancam analyze dance.mp4 --out dance-analysis/   # tracks.csv + people.json into a folder of yours
  fancam render dance.mp4 --person 2 --analysis dance-analysis/
  fancam eval dance.mp4 --gt dance.gt.csv --gallery photos/ --json scores.json
  fancam render left.mp4 right.mp4 front.mp4 --member Jisoo --gallery photos/   # best angle per moment
  fancam batch stages.csv --out fancams/          # every member of every video, resumable
  fancam cache list
  fancam models list
"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and our usage exit code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"fancam: error: {message}\n")


class _MisplacedOut(argparse.Action):
    """``--out`` given to a command that reads an analysis: say which option was meant."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        parser.error("--out belongs to `fancam analyze` (where to write an analysis folder); here use "
                     "-o FILE for the output, or --analysis DIR to read an analysis folder")


def _add_analysis_options(p: argparse.ArgumentParser, *, writes: bool = False) -> None:
    p.add_argument("--gallery", type=Path, metavar="DIR",
                   help="reference photos: DIR/<group>/<member>/*.jpg (names performers)")
    if writes:
        p.add_argument("--out", type=Path, metavar="DIR",
                       help="write the analysis folder (tracks.csv, people.json) into DIR, for other "
                            "programs or `--analysis DIR` (default: the user cache, see `fancam cache`)")
    else:
        p.add_argument("--analysis", type=Path, metavar="DIR",
                       help="use the analysis folder written by `fancam analyze VIDEO --out DIR` "
                            "(default: the user cache)")
        p.add_argument("--out", nargs="?", action=_MisplacedOut, help=argparse.SUPPRESS)
    p.add_argument("--quality", choices=list(models.PRESETS), default=models.DEFAULT_QUALITY,
                   help=models.QUALITY_HELP)
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
                       description="Analyse a video into the user cache, or with --out DIR into DIR: "
                                   "tracks.csv, people.json and caches.")
    p.add_argument("video", help="video file (or a URL, with the `url` extra: pip install 'fancam[url]')")
    _add_analysis_options(p, writes=True)
    p.set_defaults(run=_cmd_analyze)

    p = sub.add_parser("people", help="contact sheet of the performers, numbered for --person N")
    p.add_argument("video", help="video file or URL")
    _add_analysis_options(p)
    p.add_argument("-o", "--output", type=Path, metavar="SHEET.jpg",
                   help="output image: .jpg, .png or .webp, or a folder (default: ./VIDEO_STEM.people.jpg)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(run=_cmd_people)

    p = sub.add_parser("render", help="render the fancam of one performer (or all)",
                       description="Write VIDEO_STEM.<person>.mp4 (+ .crop.csv) following a performer, in "
                                   "the current folder or -o. Several VIDEOs (or a folder) are angles of one "
                                   "performance: aligned by their sound, cut from the best angle per moment "
                                   "(+ .edl.csv).")
    p.add_argument("video", help="video file or URL (or a folder of angles)")
    p.add_argument("angles", nargs="*", metavar="VIDEO", help="more angles of the same performance")
    p.add_argument("--audio", type=int, metavar="N", help="with several VIDEOs: use the sound of the Nth "
                   "(default: the cleanest of the longest)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--person", type=int, metavar="N", help="performer number from `fancam people`")
    who.add_argument("--member", metavar="NAME", help="gallery member (group/member if ambiguous)")
    who.add_argument("--all", action="store_true", help="every performer (every member with --gallery)")
    _add_analysis_options(p)
    # The names are owned by fancam.camera.plan (not imported here: it loads SciPy, and the parser is
    # built on every start); tests/test_cli.py checks that these lists equal the owner's.
    p.add_argument("--framing", choices=["auto", "full", "upper", "face"], default="auto",
                   help="auto (default): full body where that crop is clearly narrower than the group, "
                        "otherwise upper body (says which); or full body, head and torso, close-up")
    p.add_argument("--aspect", choices=["9:16", "4:5", "1:1", "16:9"], default="9:16", help="default 9:16")
    p.add_argument("--height", type=int, metavar="PX",
                   help="output height (default: the crop's own size, 480-1920 px)")
    p.add_argument("--start", type=float, default=0.0, metavar="S", help="start time in seconds")
    p.add_argument("--end", type=float, metavar="S", help="end time in seconds")
    p.add_argument("-o", "--output", type=Path, metavar="OUT.mp4",
                   help="output video (.mp4 or .mov), or a folder (with --all: a folder); default: "
                        "./VIDEO_STEM.<person>.mp4")
    p.add_argument("--debug", action="store_true", help="also write OUT.debug.mp4 with every box drawn")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(run=_cmd_render)

    p = sub.add_parser("eval", help="score the analysis (and a camera path) against ground truth",
                       description="Metrics of DESIGN.md: identity accuracy, IDF1, HOTA, and with --crop "
                                   "the camera's hit rate, framing, jitter, wide share and lag.")
    p.add_argument("video", help="video file or URL")
    p.add_argument("--gt", type=Path, required=True, metavar="GT.csv", help="hand-labelled ground truth")
    _add_analysis_options(p)
    p.add_argument("--crop", type=Path, metavar="OUT.crop.csv", help="camera path of a render to score")
    p.add_argument("--target", metavar="NAME", help="GT person the --crop render follows")
    p.add_argument("--json", type=Path, metavar="OUT.json",
                   help="also write the metrics as JSON to this file (replaced if it exists)")
    p.set_defaults(run=_cmd_eval)

    p = sub.add_parser("cache", help="list or clear the user cache (analyses, gallery embeddings)",
                       description="The user cache ($FANCAM_HOME): analyses (one per video and settings, "
                                   "capped by $FANCAM_CACHE_MAX_GB, default 5), gallery embeddings, models.")
    csub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    csub.required = True
    csub.add_parser("list", help="cached analyses: size, video, preset, last use").set_defaults(run=_cmd_cache_list)
    c = csub.add_parser("clear", help="remove cached analyses and gallery embeddings",
                        description="Remove cached analyses, gallery embeddings and video digests (kept: "
                                    "models and downloaded videos, unless --all).")
    when = c.add_mutually_exclusive_group()
    when.add_argument("--older-than", metavar="AGE",
                      help="only what was last used more than AGE ago: days, or 12h, 7d, 2w")
    when.add_argument("--all", action="store_true",
                      help="everything in the cache folder, downloaded models and videos included")
    c.set_defaults(run=_cmd_cache_clear)

    p = sub.add_parser("ui", help="local web app: drop a video, click the performer, watch the fancam",
                       description="Serve the web app (needs the ui extra: pip install 'fancam[ui]').")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free port)")
    p.add_argument("--workdir", type=Path, metavar="DIR", help="jobs folder (default: $FANCAM_HOME/ui)")
    p.add_argument("--allow-remote", action="store_true", help="allow a --host other computers can reach")
    p.add_argument("--max-upload-mb", type=int, metavar="MB", help="largest video upload (default 4096)")
    p.set_defaults(run=_cmd_ui)

    from fancam.batch.command import add_arguments as add_batch_arguments

    add_batch_arguments(sub.add_parser("batch", help="every member of every video of a manifest (local or Ray)"))

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
    from fancam.pipeline.analyze import AnalysisSettings

    return AnalysisSettings(quality=args.quality, detector=args.detector, face_model=args.face_model)


def _analyze(args: argparse.Namespace):
    from fancam.pipeline.analyze import analyze

    folder = getattr(args, "out", None)
    if getattr(args, "analysis", None) is not None:
        folder = args.analysis
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "not found"
            raise InputError(f"analysis folder {what}: {str(folder)!r}; write one with `fancam analyze VIDEO "
                             "--out DIR`, or leave out --analysis to use the user cache")
    return analyze(
        args.video, out=folder, gallery=args.gallery, settings=_settings(args), progress=not args.quiet
    )


def _full(path: Path) -> str:
    """A path as printed to the user: absolute, normalised."""
    return os.path.abspath(path)


def _cmd_analyze(args: argparse.Namespace) -> int:
    result = _analyze(args)
    print(f"analysis: {_full(result.folder)}")
    for person in result.cast.people:
        span = f"{person.first_seen_s:.1f}-{person.last_seen_s:.1f} s"
        print(f"  person {person.id}: {person.label}  seen {span}")
    return EXIT_OK


def _cmd_people(args: argparse.Namespace) -> int:
    from fancam.report.sheet import check_sheet_output, sheet_path, write_sheet

    output = sheet_path(args.output, args.video)
    check_sheet_output(output, args.video, force=args.force)
    result = _analyze(args)
    write_sheet(result, output, force=args.force)
    print(f"wrote {_full(output)}")
    return EXIT_OK


def _cmd_render(args: argparse.Namespace) -> int:
    from fancam.pipeline.produce import RenderOptions, Selection, check_output_location, make_fancams

    if args.start < 0 or (args.end is not None and args.end <= args.start):
        raise UsageError("need 0 <= --start < --end")
    if args.angles or Path(args.video).is_dir():
        from fancam.multicam.edit import is_angle_folder  # SciPy's signal module: only for angles

        if args.angles or is_angle_folder(args.video):
            return _cmd_render_angles(args)
    if args.audio is not None:
        raise UsageError("--audio chooses among several VIDEOs (angles of one performance)")
    selection = Selection(person=args.person, member=args.member, all=args.all)
    options = RenderOptions(
        framing=args.framing, aspect=args.aspect, height=args.height, start_s=args.start,
        end_s=args.end, output=args.output, debug=args.debug, force=args.force,
    )
    check_output_location(args.video, selection, options)
    result = _analyze(args)
    for done in make_fancams(result, selection, options, progress=not args.quiet):
        print(f"wrote {_full(done.output)} ({done.frames} frames, {done.duration_s:.1f} s)")
        if done.crop_csv:
            print(f"wrote {_full(done.crop_csv)}")
        if done.note:  # a choice made for the user: said on stderr, stdout lists the files written
            print(f"fancam: {_full(done.output)}: {done.note}", file=sys.stderr)
    return EXIT_OK


def _cmd_render_angles(args: argparse.Namespace) -> int:
    from fancam.multicam.edit import describe, make_multicam
    from fancam.pipeline.produce import RenderOptions, Selection

    if args.debug:
        raise UsageError("--debug is for one video; render the angles one by one to see their boxes")
    if getattr(args, "analysis", None) is not None:
        raise UsageError("--analysis reads the analysis of one video; several angles are each analysed "
                         "(and cached) on their own")
    options = RenderOptions(framing=args.framing, aspect=args.aspect, height=args.height, start_s=args.start,
                            end_s=args.end, output=args.output, force=args.force)
    result = make_multicam(
        [args.video, *map(_local_video, args.angles)], Selection(person=args.person, member=args.member,
        all=args.all), options, gallery=args.gallery, settings=_settings(args),
        audio=None if args.audio is None else args.audio - 1, progress=not args.quiet,
    )
    print(f"wrote {_full(result.output)} ({result.frames} frames, {result.duration_s:.1f} s)")
    for extra in (result.edl, result.crop_csv, result.timeline_png):
        print(f"wrote {_full(extra)}")
    print("\n".join(describe(result)))
    return EXIT_OK


def _cmd_eval(args: argparse.Namespace) -> int:
    from fancam.eval.metrics import evaluate, format_report
    from fancam.io.cache import check_output_folder, ensure_writable_dir, write_text_atomic
    from fancam.io.tables import load_gt
    from fancam.io.video import check_readable_file

    if (args.crop is None) != (args.target is None):
        raise UsageError("--crop and --target go together: the camera path and the GT person it follows")
    check_readable_file(args.gt, "ground truth")
    if args.crop is not None:
        check_readable_file(args.crop, "camera path")
    if args.json is not None:
        inputs = [args.video, args.gt] + ([args.crop] if args.crop else [])
        if any(args.json.resolve() == Path(f).resolve() for f in inputs):
            raise InputError(f"refusing to overwrite the input {str(args.json)!r} with the report; "
                             "choose another --json")
        if args.json.is_dir():
            raise InputError(f"--json {str(args.json)!r} is a folder; give it a file name such as scores.json")
        check_output_folder(args.json.parent, "--json")
    result = _analyze(args)
    gt = load_gt(args.gt, n_frames=result.timeline.n_frames)
    report = evaluate(
        result.folder / "tracks.csv", gt, named=args.gallery is not None, crop_csv=args.crop,
        target=args.target, frame_size=(result.info.width, result.info.height),
    )
    print(format_report(report))
    if args.json:
        ensure_writable_dir(args.json.parent, "output folder", "--json")
        write_text_atomic(args.json, report.to_json())
        print(f"wrote {_full(args.json)}")
    return EXIT_OK


def _cmd_cache_list(args: argparse.Namespace) -> int:
    import time

    from fancam.io import usercache as uc

    home = models.fancam_home()
    entries = uc.list_analyses(home)
    total = sum(e.size_bytes for e in entries)
    print(f"user cache: {_full(home)}")
    print(f"analyses: {len(entries)}, {uc.format_size(total)} (cap {uc.format_size(uc.max_cache_bytes())}, "
          f"${uc.ENV_MAX_GB})")
    now = time.time()
    if entries:
        print(f"  {'size':>9}  {'last used':<13} {'preset':<9} video")
        for e in entries:
            print(f"  {uc.format_size(e.size_bytes):>9}  {uc.format_age(now - e.last_used):<13} {e.preset:<9} "
                  f"{e.video}  ({e.folder.name})")
    for part, (count, size) in uc.cache_summary(home).items():
        print(f"{part}: {count} item{'s' * (count != 1)}, {uc.format_size(size)}")
    return EXIT_OK


def _cmd_cache_clear(args: argparse.Namespace) -> int:
    from fancam.io import usercache as uc

    older = uc.parse_age(args.older_than) if args.older_than is not None else None
    home = models.fancam_home()
    done = uc.clear(older_than_s=older, everything=args.all, home=home)
    print(f"removed {len(done.removed)} item{'s' * (len(done.removed) != 1)} "
          f"({uc.format_size(done.freed_bytes)}) from {_full(home)}")
    for folder in done.in_use:
        print(f"kept {_full(folder)}: another fancam process is using it")
    return EXIT_OK


def _cmd_ui(args: argparse.Namespace) -> int:
    from fancam.ui.server import serve

    return serve(args.host, args.port, args.workdir, allow_remote=args.allow_remote,
                 max_upload_mb=args.max_upload_mb)


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
    """Run the ``fancam`` command; returns the exit status (also for usage errors and ``--help``)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help, --version or a usage error (already printed)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    with _stderr_logging(args.verbose), _sigterm_as_interrupt():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        if getattr(args, "video", None) is not None:
            args.video = _local_video(args.video)
        return run(args)
    except FancamError as e:
        if args.verbose:
            traceback.print_exc(file=sys.stderr)
        print(f"fancam: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("fancam: interrupted; no partial output was kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print("fancam: error: out of memory; try a shorter clip (--start/--end)", file=sys.stderr)
        return EXIT_PROCESSING
    except OSError as e:  # disk full, a file vanished or was locked while we worked
        if args.verbose:
            traceback.print_exc(file=sys.stderr)
        where = f": {e.filename!r}" if e.filename else ""
        print(f"fancam: error: {e.strerror or e}{where}; check the file, its folder and the free disk "
              "space", file=sys.stderr)
        return EXIT_INPUT
    except Exception as e:  # a bug: say so in one line, keep the traceback for --verbose
        if args.verbose:
            traceback.print_exc(file=sys.stderr)
        print(f"fancam: internal error: {type(e).__name__}: {e} (rerun with --verbose for details "
              "and please report it)", file=sys.stderr)
        return EXIT_PROCESSING


def _local_video(video: str) -> Path:
    """The video file to work on: the path itself, or the download of a URL (``url`` extra)."""
    from fancam.io.remote import fetch_video, is_url

    return fetch_video(video) if is_url(video) else Path(video)


@contextlib.contextmanager
def _stderr_logging(verbose: bool) -> Iterator[None]:
    """Send fancam's log records to the current stderr for the duration of one command."""
    fmt = "%(name)s: %(levelname)s: %(message)s" if verbose else "fancam: %(levelname)s: %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    level = logging.INFO if verbose else logging.WARNING
    handler.setLevel(level)
    old_level = log.level
    log.addHandler(handler)
    log.setLevel(level)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM (``kill PID``) into KeyboardInterrupt, so partial outputs are cleaned up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
