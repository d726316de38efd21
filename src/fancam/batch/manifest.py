"""The batch manifest: which videos, which performers, how to render them (CSV or YAML).

One row asks for the fancams of some performers of one video::

    video,members,framing,aspect,height,start,end,gallery
    stages/ep12.mp4,all,,,,,,photos/
    stages/ep13.mp4,Jisoo;Lisa,upper,4:5,1080,0:30,2:45,photos/
    https://example.org/stage.mp4,1;3,,,,,,

Columns (only ``video`` is required; an empty cell takes fancam's default):

- ``video``: a file (relative to the manifest's folder) or an http(s) URL (the ``url`` extra).
- ``members``: ``all`` (default), or gallery member names and/or person numbers (of
  ``fancam people``) separated by ``;``.
- ``framing``, ``aspect``, ``height``: as ``fancam render --framing/--aspect/--height``.
- ``start``, ``end``: the time range, in seconds or ``m:ss`` / ``h:mm:ss``.
- ``gallery``: a gallery folder (relative to the manifest's folder) naming the members.

A YAML manifest is a list of such mappings (``members`` may be a list), or a mapping with ``items``
(that list) and ``defaults`` (values for every item that does not set them); an item may also be
just the video.

Lines starting with ``#`` and empty lines are ignored. A manifest that cannot be read as a table
(unknown column, no ``video`` column, not CSV/YAML) is refused as a whole; a row with a bad value
(a missing file, an unknown framing, ``end`` before ``start``...) is a :class:`BadRow` with its line
number, reported before any work starts.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fancam.errors import FancamError, InputError

COLUMNS = ("video", "members", "framing", "aspect", "height", "start", "end", "gallery")
"""Manifest columns, in the order of the documentation."""

ALL = "all"
MEMBER_SEPARATORS = (";", "|")
"""What separates several members in one cell (a comma would clash with CSV)."""

URL_PREFIXES = ("http://", "https://")


@dataclass(frozen=True)
class Row:
    """One valid manifest row.

    Attributes:
        line: Line of the row in the manifest (1-based).
        video: Absolute path of the video, or its URL.
        members: Person numbers and/or member names; None = all performers (every member with a gallery).
        framing: Framing preset; None = fancam's default.
        aspect: Output aspect ``W:H``; None = fancam's default.
        height: Output height in pixels; None = the crop's own size.
        start_s: Start of the time range (s).
        end_s: End of the time range (s); None = the end of the video.
        gallery: Absolute path of the gallery folder, or None.
    """

    line: int
    video: str
    members: tuple[int | str, ...] | None = None
    framing: str | None = None
    aspect: str | None = None
    height: int | None = None
    start_s: float = 0.0
    end_s: float | None = None
    gallery: str | None = None


@dataclass(frozen=True)
class BadRow:
    """A row that cannot be run, with why (one line).

    Attributes:
        line: Line of the row in the manifest (1-based).
        video: The row's video as written (may be empty).
        error: What is wrong and what to do.
    """

    line: int
    video: str
    error: str


@dataclass(frozen=True)
class Manifest:
    """A read manifest: the rows to run and the rows that cannot run.

    Attributes:
        path: The manifest file.
        rows: Valid rows, in file order.
        bad: Invalid rows, in file order.
    """

    path: Path
    rows: tuple[Row, ...]
    bad: tuple[BadRow, ...] = field(default=())


class _RowError(Exception):
    """A bad value in one row (becomes a :class:`BadRow`)."""


def read_manifest(path: Path) -> Manifest:
    """Read and check a manifest (``.csv``, ``.tsv``, ``.yaml`` or ``.yml``).

    Raises:
        InputError: the file cannot be read or is not a manifest (nothing of it may run).
    """
    path = Path(path)
    kind = path.suffix.lower()
    if kind not in (".csv", ".tsv", ".yaml", ".yml"):
        raise InputError(f"manifest {str(path)!r}: use a .csv or .yaml file (see `fancam batch --help`)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise InputError(f"manifest not found: {str(path)!r}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the manifest {str(path)!r}: {e}") from e
    raw = _yaml_rows(path, text) if kind in (".yaml", ".yml") else _csv_rows(path, text, kind == ".tsv")
    rows: list[Row] = []
    bad: list[BadRow] = []
    for line, values in raw:
        try:
            rows.append(_row(line, values, path.parent))
        except _RowError as e:
            bad.append(BadRow(line, str(values.get("video") or ""), str(e)))
    if not rows and not bad:
        raise InputError(f"manifest {str(path)!r} has no rows")
    return Manifest(path, tuple(rows), tuple(bad))


# ------------------------------------------------------------------------------------------ reading


def _csv_rows(path: Path, text: str, tabs: bool) -> list[tuple[int, dict[str, Any]]]:
    """(line, {column: cell}) of every data row; the header is checked."""
    reader = csv.reader(io.StringIO(text), delimiter="\t" if tabs else ",")
    header: list[str] | None = None
    rows = []
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [c.strip().lower() for c in cells]
                _check_columns(path, line, header)
                continue
            if len(cells) > len(header):
                extra = [c for c in cells[len(header):] if c.strip()]
                if extra:
                    rows.append((line, {"video": cells[0], "__error__": f"{len(cells)} cells but the header "
                                        f"names {len(header)} columns (a comma inside a value needs quotes)"}))
                    continue
            rows.append((line, {name: cell for name, cell in zip(header, cells, strict=False) if name}))
    except csv.Error as e:
        raise InputError(f"{path}:{reader.line_num}: not valid CSV ({e})") from e
    if header is None:
        raise InputError(f"manifest {str(path)!r} is empty (expected a header line naming the columns, "
                         f"e.g. {','.join(COLUMNS)})")
    return rows


def _check_columns(path: Path, line: int, header: list[str], *, need_video: bool = True) -> None:
    unknown = [name for name in header if name and name not in COLUMNS]
    if unknown:
        raise InputError(f"{path}:{line}: unknown column {unknown[0]!r}; the columns are {', '.join(COLUMNS)}")
    if need_video and "video" not in header:
        raise InputError(f"{path}:{line}: no 'video' column in the header; the columns are {', '.join(COLUMNS)}")
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        raise InputError(f"{path}:{line}: column {repeated[0]!r} appears twice")


def _yaml_rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    """(line, mapping) of every item of a YAML manifest."""
    import yaml

    loader = _yaml_loader()(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise InputError(f"manifest {str(path)!r} is empty")
        defaults: dict[str, Any] = {}
        items = root
        if isinstance(root, yaml.MappingNode):
            top = loader.construct_document(root)
            unknown = sorted(set(top) - {"items", "defaults"})
            if unknown or "items" not in top:
                raise InputError(f"{path}:{root.start_mark.line + 1}: a YAML manifest is a list of items, or a "
                                 "mapping with 'items' (that list) and 'defaults'")
            items = next(v for k, v in root.value if k.value == "items")
            defaults = top.get("defaults") or {}
            if not isinstance(defaults, dict):
                raise InputError(f"{path}: 'defaults' must be a mapping of column: value")
            _check_columns(path, root.start_mark.line + 1, list(map(str, defaults)), need_video=False)
        if not isinstance(items, yaml.SequenceNode):
            raise InputError(f"{path}:{items.start_mark.line + 1}: expected a list of items")
        rows = []
        for node in items.value:
            line = node.start_mark.line + 1
            value = loader.construct_document(node)
            if isinstance(value, str):
                value = {"video": value}
            if not isinstance(value, dict):
                raise InputError(f"{path}:{line}: an item is a video or a mapping of column: value")
            _check_columns(path, line, list(map(str, value)), need_video=False)
            rows.append((line, {**defaults, **value}))
        return rows
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputError(f"{where}: not valid YAML ({problem})") from e
    finally:
        loader.dispose()


def _yaml_loader() -> Any:
    """PyYAML's safe loader without YAML 1.1's base-60 numbers: ``9:16`` stays an aspect, not 556."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    numbers = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in numbers]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(numbers[0], re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
    Loader.add_implicit_resolver(
        numbers[1], re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"), list("-+0123456789.")
    )
    return Loader


# ------------------------------------------------------------------------------------------ values


def _row(line: int, values: Mapping[str, Any], base: Path) -> Row:
    """Check one row's values; _RowError with a one-line message when one is bad."""
    if "__error__" in values:
        raise _RowError(values["__error__"])
    cells = {k: _blank_to_none(v) for k, v in values.items()}
    video = cells.get("video")
    if video is None:
        raise _RowError("no video")
    start = _seconds(cells.get("start"), "start") or 0.0
    end = _seconds(cells.get("end"), "end")
    if end is not None and end <= start:
        raise _RowError(f"end ({end:g} s) must be after start ({start:g} s)")
    gallery = cells.get("gallery")
    return Row(
        line=line, video=_video(str(video), base), members=_members(cells.get("members")),
        framing=_framing(cells.get("framing")), aspect=_aspect(cells.get("aspect")),
        height=_height(cells.get("height")), start_s=start, end_s=end,
        gallery=None if gallery is None else _gallery(str(gallery), base),
    )


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _video(text: str, base: Path) -> str:
    if text.lower().startswith(URL_PREFIXES):
        return text
    path = (base / Path(text).expanduser()).absolute()
    if not path.exists():
        raise _RowError(f"video not found: {text!r}")
    if not path.is_file():
        raise _RowError(f"video {text!r} is not a file")
    return str(path)


def _gallery(text: str, base: Path) -> str:
    path = (base / Path(text).expanduser()).absolute()
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "not found"
        raise _RowError(f"gallery folder {what}: {text!r} (expected GALLERY/<group>/<member>/*.jpg)")
    return str(path)


def _members(value: Any) -> tuple[int | str, ...] | None:
    """``all`` -> None; otherwise person numbers (int) and member names (str), each once."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, str):
        for sep in MEMBER_SEPARATORS[1:]:
            value = value.replace(sep, MEMBER_SEPARATORS[0])
        value = value.split(MEMBER_SEPARATORS[0])
    if not isinstance(value, list):
        raise _RowError(f"members: expected 'all', names or numbers, got {value!r}")
    members: list[int | str] = []
    for entry in value:
        token = _member(entry)
        if token is not None and token not in members:
            members.append(token)
    if any(m == ALL for m in members):
        if len(members) > 1:
            raise _RowError("members: 'all' cannot be combined with names or numbers")
        return None
    if not members:
        return None
    return tuple(members)


def _member(entry: Any) -> int | str | None:
    if isinstance(entry, bool) or entry is None:
        raise _RowError(f"members: bad entry {entry!r}")
    if isinstance(entry, float):
        if not entry.is_integer():
            raise _RowError(f"members: person numbers are whole numbers, got {entry!r}")
        entry = int(entry)
    if isinstance(entry, int):
        if entry < 1:
            raise _RowError(f"members: person numbers start at 1, got {entry}")
        return entry
    token = str(entry).strip()
    if not token:
        return None
    if token.isdigit():
        return _member(int(token))
    return ALL if token.lower() == ALL else token


def _framing(value: Any) -> str | None:
    if value is None:
        return None
    from fancam.camera.plan import check_framing  # the owner of the framing names (presets and auto)

    return _checked(lambda: check_framing(str(value).lower()))


def _aspect(value: Any) -> str | None:
    if value is None:
        return None
    from fancam.camera.plan import parse_aspect  # the owner of the aspect syntax

    text = str(value).strip()
    _checked(lambda: parse_aspect(text))
    return text


def _checked(check: Any) -> Any:
    try:
        return check()
    except FancamError as e:
        raise _RowError(str(e)) from e


def _height(value: Any) -> int | None:
    if value is None:
        return None
    text = str(value).strip().lower().removesuffix("p")
    if not text.isdigit() or int(text) < MIN_HEIGHT:
        raise _RowError(f"height: expected a number of pixels (at least {MIN_HEIGHT}), got {value!r}")
    return int(text)


MIN_HEIGHT = 16
"""Smallest output height the renderer accepts (fancam.camera.render.output_size)."""


def _seconds(value: Any, what: str) -> float | None:
    """Seconds from a number or ``[h:]m:ss[.f]``."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        parts = []
    if not 1 <= len(parts) <= 3 or any(p < 0 or not math.isfinite(p) for p in parts) or any(
        p >= 60 for p in parts[1:]
    ):
        raise _RowError(f"{what}: expected seconds or m:ss, got {value!r}")
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds
