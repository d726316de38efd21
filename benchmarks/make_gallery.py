"""Build a test gallery for a labelled clip from its own ground truth (like ../shared/bench/gallery).

For each GT person: three crops from the first 20% of the clip (one upper body, two full body), so
the rest of the clip is unseen. Used to score gallery mode on the extra labelled clips in
benchmarks/gt/ (the galleries themselves are media: they are written outside the repository).

    python benchmarks/make_gallery.py ../shared/data/gillhung_dance/dance2.mp4 \
        benchmarks/gt/gillhung_dance2.csv /tmp/gal_dance2 dance2
    fancam eval ../shared/data/gillhung_dance/dance2.mp4 --gt benchmarks/gt/gillhung_dance2.csv \
        --gallery /tmp/gal_dance2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from fancam.io.tables import load_gt
from fancam.io.video import iter_frames


def make_gallery(video: Path, gt_path: Path, out: Path, group: str) -> dict[str, int]:
    """Write ``out/<group>/<person>/*.jpg`` (3 crops per GT person); return the crops per person."""
    gt = load_gt(gt_path)
    early = gt.frame <= 0.2 * gt.frame.max()
    picks = {}
    for person in np.unique(gt.person):
        rows = np.flatnonzero(early & (gt.person == person) & ~gt.occluded)
        if len(rows) < 3:
            rows = np.flatnonzero((gt.person == person) & ~gt.occluded)[:3]
        picks[str(person)] = rows[np.linspace(0, len(rows) - 1, 3).astype(int)]
    wanted = {int(gt.frame[r]) for rows in picks.values() for r in rows}
    frames = {}
    for frame in iter_frames(video):
        if frame.index in wanted:
            frames[frame.index] = frame.rgb()
        if frame.index >= max(wanted):
            break
    for person, rows in picks.items():
        folder = out / group / person
        folder.mkdir(parents=True, exist_ok=True)
        for k, r in enumerate(rows):
            image = frames[int(gt.frame[r])]
            x1, y1, x2, y2 = gt.xyxy[r]
            if k == 0:  # the upper body
                y2 = y1 + 0.5 * (y2 - y1)
            h, w = image.shape[:2]
            x1, y1, x2, y2 = int(max(0, x1)), int(max(0, y1)), int(min(w, x2)), int(min(h, y2))
            name = f"{'upper' if k == 0 else 'full'}_f{int(gt.frame[r]):05d}.jpg"
            cv2.imwrite(str(folder / name), cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_RGB2BGR))
    return {p: len(r) for p, r in picks.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("gt", type=Path)
    parser.add_argument("out", type=Path, help="gallery folder to create")
    parser.add_argument("group", help="group folder name")
    args = parser.parse_args(argv)
    picks = make_gallery(args.video, args.gt, args.out, args.group)
    print(f"gallery {args.out}: {', '.join(f'{p} ({n})' for p, n in picks.items())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
