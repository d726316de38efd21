"""``fancam batch MANIFEST --out DIR [--engine local|ray]``: the command's options and what it runs.

Importing this module is cheap (the parser imports it); the pipeline, tqdm and Ray are imported only
when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
Render every requested performer of every video of a manifest, on this machine (a pool of worker
processes) or on a Ray cluster. Each video is analysed once and all its fancams are rendered from one
decode pass. Outputs go to OUT/<video>-<hash>/ under names derived from the video's content, the
settings and the fancam version; a rerun skips what is complete and redoes the rest. A failing video is
reported and does not stop the others. The report is OUT/batch-report.csv (and .json).

manifest (CSV with a header, or YAML; only `video` is required):
  video,members,framing,aspect,height,start,end,gallery
  stages/ep12.mp4,all,,,,,,photos/
  stages/ep13.mp4,Jisoo;Lisa,upper,4:5,1080,0:30,2:45,photos/
  https://example.org/stage.mp4,1;3,,,,,,
members: `all` (default), gallery member names and/or person numbers, separated by `;`. Paths are
relative to the manifest's folder. Bad rows are listed with their line numbers before anything runs.

exit status: 0 when every video is complete; 4 when a video failed or a row was bad; 130 when
interrupted (rerun to finish); 2/3 for a manifest that cannot be read (nothing runs).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``fancam batch``."""
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("manifest", type=Path, help="manifest file (.csv or .yaml)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output folder (with Ray: a folder every node sees at the same path)")
    parser.add_argument("--engine", choices=["local", "ray"], default="local",
                        help="local: worker processes on this machine (default); ray: Ray tasks "
                             "(pip install 'fancam[ray]')")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="parallel workers on this machine (default: one per core, fewer if memory "
                             "is short); with --engine ray and no --address, the CPUs of the private cluster")
    parser.add_argument("--address", metavar="ADDR",
                        help="with --engine ray: an existing cluster (HEAD_HOST:6379, auto, or ray://HOST:10001); "
                             "default: a private cluster on this machine")
    parser.add_argument("--task-memory", type=int, metavar="MB",
                        help="with --engine ray: memory reserved per video (default 1024)")
    parser.add_argument("--retries", type=int, default=2, metavar="N",
                        help="retries of a video whose worker died or whose download failed (default 2; "
                             "bad inputs are never retried)")
    parser.add_argument("--strict", action="store_true", help="run nothing if any manifest row is bad")
    parser.set_defaults(run=run_command)


def run_command(args: argparse.Namespace) -> int:
    """Run ``fancam batch``; returns the exit status."""
    from fancam.batch.manifest import read_manifest
    from fancam.batch.report import summary
    from fancam.batch.run import run_batch
    from fancam.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_PROCESSING, UsageError

    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.retries < 0:
        raise UsageError("--retries must be 0 or more")
    if args.engine != "ray" and (args.address or args.task_memory):
        raise UsageError("--address and --task-memory go with --engine ray")
    manifest = read_manifest(args.manifest)
    for bad in manifest.bad:
        print(f"fancam: {args.manifest}:{bad.line}: {bad.error}", file=sys.stderr)
    if manifest.bad and args.strict:
        raise UsageError(f"{args.manifest}: {len(manifest.bad)} bad row(s) (listed above); nothing was run "
                         "(--strict)")
    report = run_batch(manifest, args.out, _engine(args), progress=not args.quiet)
    print(summary(report))
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if report.ok else EXIT_PROCESSING


def _engine(args: argparse.Namespace):
    if args.engine == "ray":
        from fancam.batch.local import WORKER_MEMORY_MB
        from fancam.batch.ray_engine import RayEngine

        return RayEngine(args.address, args.workers, args.task_memory or WORKER_MEMORY_MB, args.retries)
    from fancam.batch.local import LocalEngine

    return LocalEngine(args.workers, max_attempts=args.retries + 1)
