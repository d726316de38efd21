"""Manifest reading: CSV and YAML, values checked row by row with line numbers, unreadable files refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from fancam.batch.items import plan_items
from fancam.batch.manifest import read_manifest
from fancam.errors import InputError


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "b.mp4").write_bytes(b"x")
    (tmp_path / "photos" / "grp" / "P1").mkdir(parents=True)
    return tmp_path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_csv_rows_with_defaults_lists_times_and_relative_paths(folder):
    manifest = read_manifest(write(folder, "m.csv", (
        "Video, Members ,framing,aspect,height,start,end,gallery\n"
        "a.mp4,,,,,,,\n"
        "# a comment line, skipped\n"
        "\n"
        "b.mp4,Jisoo; 3 ;jisoo|2,UPPER,4:5,1080p,0:30,1:02:03.5,photos\n"
        "https://example.org/v.mp4,all\n"
    )))
    assert not manifest.bad
    a, b, url = manifest.rows
    assert (a.line, a.video, a.members, a.framing, a.aspect, a.height, a.start_s, a.end_s, a.gallery) == (
        2, str(folder / "a.mp4"), None, None, None, None, 0.0, None, None)
    assert b.line == 5
    assert b.members == ("Jisoo", 3, "jisoo", 2)  # names are matched case-insensitively later, not here
    assert (b.framing, b.aspect, b.height, b.start_s, b.end_s) == ("upper", "4:5", 1080, 30.0, 3723.5)
    assert b.gallery == str(folder / "photos")
    assert url.video == "https://example.org/v.mp4" and url.members is None


@pytest.mark.parametrize(("cells", "message"), [
    ("missing.mp4,all", "video not found: 'missing.mp4'"),
    ("photos,all", "video 'photos' is not a file"),
    ("a.mp4,all,wide", "unknown framing 'wide'; choose one of auto, full, upper, face"),
    ("a.mp4,all,,9-16", "bad aspect '9-16'"),
    ("a.mp4,all,,,tall", "height: expected a number of pixels"),
    ("a.mp4,all,,,8", "at least 16"),
    ("a.mp4,all,,,,abc", "start: expected seconds or m:ss, got 'abc'"),
    ("a.mp4,all,,,,1:75", "start: expected seconds or m:ss"),
    ("a.mp4,all,,,,10,5", "end (5 s) must be after start (10 s)"),
    ("a.mp4,0", "person numbers start at 1"),
    ("a.mp4,all;Jisoo", "'all' cannot be combined"),
    ("a.mp4,all,,,,,,nowhere", "gallery folder not found: 'nowhere'"),
    (",all", "no video"),
    ("a.mp4,all,,,,,,,extra", "cells but the header names 8 columns"),
])
def test_each_bad_row_is_reported_with_its_line(folder, cells, message):
    header = "video,members,framing,aspect,height,start,end,gallery\n"
    manifest = read_manifest(write(folder, "m.csv", header + "a.mp4\n" + cells + "\nb.mp4\n"))
    assert [r.line for r in manifest.rows] == [2, 4]  # the good rows around it still run
    (bad,) = manifest.bad
    assert bad.line == 3 and message in bad.error and "\n" not in bad.error


@pytest.mark.parametrize(("name", "text", "message"), [
    ("m.csv", "video,framng\na.mp4,full\n", "m.csv:1: unknown column 'framng'"),
    ("m.csv", "members,framing\nall,full\n", "m.csv:1: no 'video' column"),
    ("m.csv", "video,video\na.mp4,a.mp4\n", "column 'video' appears twice"),
    ("m.csv", "# only a comment\n", "is empty"),
    ("m.csv", "video\n", "has no rows"),
    ("m.txt", "video\na.mp4\n", "use a .csv or .yaml file"),
    ("m.yaml", "- video: a.mp4\n  framing: [unclosed\n", "m.yaml:3: not valid YAML"),
    ("m.yaml", "video: a.mp4\n", "a YAML manifest is a list of items"),
    ("m.yaml", "- video: a.mp4\n- 42\n", "m.yaml:2: an item is a video or a mapping"),
    ("m.yaml", "- video: a.mp4\n  colour: red\n", "m.yaml:1: unknown column 'colour'"),
])
def test_a_manifest_that_does_not_parse_runs_nothing(folder, name, text, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        read_manifest(write(folder, name, text))


def test_missing_manifest_is_an_input_error(folder):
    with pytest.raises(InputError, match="manifest not found"):
        read_manifest(folder / "nope.csv")


def test_yaml_items_defaults_lists_and_aspects_that_look_like_times(folder):
    manifest = read_manifest(write(folder, "m.yaml", (
        "defaults:\n"
        "  gallery: photos\n"
        "  aspect: 9:16\n"          # YAML 1.1 would read 9:16 as the number 556
        "items:\n"
        "  - a.mp4\n"
        "  - video: b.mp4\n"
        "    members: [Jisoo, 2]\n"
        "    aspect: 1:1\n"
        "    start: 1:30\n"
        "    end: 100.5\n"
        "  - video: b.mp4\n"
        "    framing: sideways\n"
    )))
    a, b = manifest.rows
    assert (a.line, a.aspect, a.gallery, a.members) == (5, "9:16", str(folder / "photos"), None)
    assert (b.line, b.aspect, b.members, b.start_s, b.end_s) == (6, "1:1", ("Jisoo", 2), 90.0, 100.5)
    (bad,) = manifest.bad
    assert bad.line == 11 and "unknown framing 'sideways'" in bad.error


def test_rows_of_one_video_become_one_item_and_share_render_calls(folder):
    manifest = read_manifest(write(folder, "m.csv", (
        "video,members,framing,gallery\n"
        "a.mp4,Jisoo,upper,photos\n"
        "b.mp4,all,,\n"
        "a.mp4,2;Jisoo,upper,photos\n"   # same settings: merged into the first render call
        "a.mp4,1,face,photos\n"          # other framing: a second call on the same analysis
        "a.mp4,1,face,\n"                # no gallery: another analysis, so another item
        "a.mp4,all,upper,photos\n"       # `all` is not merged with a list
    )))
    items = plan_items(manifest.rows)
    assert [(Path(i.video).name, i.gallery is not None, i.lines) for i in items] == [
        ("a.mp4", True, (2, 4, 5, 7)), ("b.mp4", False, (3,)), ("a.mp4", False, (6,))]
    first = items[0]
    assert [(r.lines, r.members, r.framing) for r in first.renders] == [
        ((2, 4), ("Jisoo", 2), "upper"), ((5,), (1,), "face"), ((7,), None, "upper")]
    assert len({i.key for i in items}) == 3 and items[0].key == plan_items(manifest.rows)[0].key
