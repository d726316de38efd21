"""Contact sheet: one numbered tile per performer, so a user can pick ``--person N`` by eye."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from fancam.errors import InputError, UsageError
from fancam.identity.people import Person
from fancam.io.cache import atomic_path, check_output_folder, ensure_writable_dir
from fancam.io.video import iter_frames
from fancam.pipeline.analyze import Analysis

TILE_W, TILE_H, CAPTION_H = 240, 400, 64
MAX_COLUMNS = 6


IMAGE_TYPES = {".jpg": ".jpg", ".jpeg": ".jpg", ".png": ".png", ".webp": ".webp"}
"""Sheet file extensions and the encoder each one gets (the data always matches the name)."""


def default_sheet_path(video: Path, folder: Path | None = None) -> Path:
    """``VIDEO_STEM.people.jpg`` in ``folder`` (default: the current folder)."""
    return (Path(folder) if folder is not None else Path.cwd()) / (Path(video).stem + ".people.jpg")


def sheet_path(output: Path | None, video: Path) -> Path:
    """Where ``people -o OUTPUT`` writes.

    The file itself, or the default name in a folder (an existing folder or a name without extension)
    or, without ``-o``, in the current folder.
    """
    if output is None:
        return default_sheet_path(video)
    output = Path(output)
    if output.is_dir() or not output.suffix:
        return default_sheet_path(video, output)
    return output


def check_sheet_output(output: Path, video: Path, *, force: bool = False) -> None:
    """Refuse a sheet path that is the input, is not an image, exists (without ``force``) or is unwritable.

    A missing folder is fine: it is created when the sheet is written.

    Raises:
        InputError: the path is the input, exists, or its folder cannot be created or written.
        UsageError: an extension other than .jpg, .jpeg, .png or .webp.
    """
    output, video = Path(output), Path(video)
    if output.resolve() == video.resolve() or (output.exists() and output.samefile(video)):
        raise InputError(f"refusing to overwrite the input video {str(video)!r}; choose another -o")
    if output.suffix.lower() not in IMAGE_TYPES:
        raise UsageError(f"the contact sheet is an image: give -o a name ending in .jpg, .png or .webp, or a "
                         f"folder; {str(output)!r} has the extension {output.suffix!r}")
    if output.is_dir():
        raise InputError(f"{str(output)!r} is a folder; give -o a file name ending in .jpg")
    check_output_folder(output.parent, "-o")
    if output.exists() and not force:
        raise InputError(f"{str(output)!r} already exists; use --force to overwrite it")


def write_sheet(analysis: Analysis, output: Path, *, force: bool = False) -> Path:
    """Write the contact sheet (JPEG, PNG or WebP by the extension), atomically.

    An existing file is replaced only with ``force``; a missing folder is created.
    """
    output = Path(output)
    check_sheet_output(output, analysis.info.path, force=force)
    tiles = [_tile(person, crop) for person, crop in zip(analysis.cast.people, _crops(analysis), strict=True)]
    sheet = _grid(tiles)
    ensure_writable_dir(output.parent, "output folder", "-o")
    kind = IMAGE_TYPES[output.suffix.lower()]
    params = [cv2.IMWRITE_JPEG_QUALITY, 90] if kind == ".jpg" else []
    with atomic_path(output) as tmp:
        bgr = cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)
        ok, data = cv2.imencode(kind, bgr, params)
        if not ok:
            raise InputError(f"could not encode the contact sheet for {str(output)!r}")
        tmp.write_bytes(data.tobytes())
    return output


def _crops(analysis: Analysis) -> list[NDArray[np.uint8]]:
    """Crop of each performer's clearest view (one decode pass, converting only the needed frames)."""
    wanted: dict[int, list[int]] = {}
    for i, person in enumerate(analysis.cast.people):
        wanted.setdefault(person.best_frame, []).append(i)
    crops: list[NDArray[np.uint8] | None] = [None] * len(analysis.cast.people)
    last = max(wanted, default=-1)
    for frame in iter_frames(analysis.info.path):
        if frame.index in wanted:
            image = frame.rgb()
            for i in wanted[frame.index]:
                crops[i] = _crop(image, analysis.cast.people[i].best_box)
        if frame.index >= last:
            break
    blank = np.zeros((TILE_H, TILE_W, 3), np.uint8)
    return [c if c is not None else blank for c in crops]


def _crop(image: NDArray[np.uint8], box: tuple[float, float, float, float]) -> NDArray[np.uint8]:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    mx, my = 0.1 * (x2 - x1), 0.05 * (y2 - y1)
    x1, x2 = int(max(0, x1 - mx)), int(min(w, x2 + mx))
    y1, y2 = int(max(0, y1 - my)), int(min(h, y2 + my))
    return image[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)]


def _tile(person: Person, crop: NDArray[np.uint8]) -> NDArray[np.uint8]:
    tile = np.full((TILE_H + CAPTION_H, TILE_W, 3), 24, np.uint8)
    scale = min(TILE_W / crop.shape[1], TILE_H / crop.shape[0])
    size = (max(1, int(crop.shape[1] * scale)), max(1, int(crop.shape[0] * scale)))
    resized = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    x0, y0 = (TILE_W - size[0]) // 2, (TILE_H - size[1]) // 2
    tile[y0:y0 + size[1], x0:x0 + size[0]] = resized
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.rectangle(tile, (0, 0), (64, 48), (255, 200, 0), -1)
    cv2.putText(tile, str(person.id), (8, 38), font, 1.2, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, person.label[:18], (8, TILE_H + 26), font, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
    span = f"{person.first_seen_s:.1f}-{person.last_seen_s:.1f} s ({person.seen_s:.0f} s)"
    cv2.putText(tile, span, (8, TILE_H + 54), font, 0.5, (200, 200, 200), 1, cv2.LINE_AA)
    return tile


def _grid(tiles: list[NDArray[np.uint8]]) -> NDArray[np.uint8]:
    cols = min(MAX_COLUMNS, max(1, len(tiles)))
    rows = (len(tiles) + cols - 1) // cols
    th, tw = TILE_H + CAPTION_H, TILE_W
    gap = 8
    sheet = np.full((rows * (th + gap) + gap, cols * (tw + gap) + gap, 3), 48, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = gap + r * (th + gap), gap + c * (tw + gap)
        sheet[y:y + th, x:x + tw] = tile
    return sheet
