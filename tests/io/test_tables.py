"""Loading of GT.csv, tracks.csv and crop files (fancam.io.tables): a malformed file is named in the error."""

from __future__ import annotations

from pathlib import Path

import pytest

from fancam.errors import InputError
from fancam.io.tables import load_crop, load_gt, load_tracks
from fancam.io.video import probe

GT_HEADER = "frame,t,person,x1,y1,x2,y2,occluded,manual,uncertain\n"
TRACKS_HEADER = "frame,t,tracklet,person,x1,y1,x2,y2,score\n"
CROP_HEADER = "frame,t,x1,y1,x2,y2,mode\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


BAD_GT = {
    "missing column": ("frame,t,person,x1,y1,x2,y2,occluded,manual\n0,0,P1,0,0,1,1,0,0\n", "uncertain"),
    "bad number": (GT_HEADER + "0,0,P1,ten,0,10,10,0,0,0\n", "'ten'"),
    "x2 <= x1": (GT_HEADER + "0,0,P1,10,0,10,10,0,0,0\n", "x2 > x1"),
    "y2 <= y1": (GT_HEADER + "0,0,P1,0,10,10,5,0,0,0\n", "y2 > y1"),
    "duplicate": (GT_HEADER + "0,0,P1,0,0,10,10,0,0,0\n0,0,P1,5,0,20,10,0,0,0\n", "repeats line 2"),
    "empty file": ("", "empty"),
    "header only": (GT_HEADER, "no labelled rows"),
    "bad flag": (GT_HEADER + "0,0,P1,0,0,10,10,2,0,0\n", "0 or 1"),
    "negative frame": (GT_HEADER + "-1,0,P1,0,0,10,10,0,0,0\n", "non-negative integer"),
    "fractional frame": (GT_HEADER + "1.5,0,P1,0,0,10,10,0,0,0\n", "non-negative integer"),
    "nan": (GT_HEADER + "0,nan,P1,0,0,10,10,0,0,0\n", "finite"),
    "short row": (GT_HEADER + "0,0,P1,0,0,10,10,0,0\n", "fields"),
    "reserved name": (GT_HEADER + "0,0,unknown,0,0,10,10,0,0,0\n", "reserved"),
    "two times": (GT_HEADER + "0,0,P1,0,0,10,10,0,0,0\n0,0.5,P2,0,0,10,10,0,0,0\n", "t="),
    "all uncertain": (GT_HEADER + "0,0,P1,0,0,10,10,0,0,1\n", "uncertain"),
}


@pytest.mark.parametrize("case", sorted(BAD_GT))
def test_bad_gt_names_the_file(tmp_path: Path, case: str) -> None:
    text, message = BAD_GT[case]
    path = write(tmp_path, "broken_gt.csv", text)
    with pytest.raises(InputError, match=message) as info:
        load_gt(path)
    assert "broken_gt.csv" in str(info.value)


@pytest.mark.parametrize(
    ("loader", "text", "message"),
    [
        (load_tracks, TRACKS_HEADER + "0,0,1,P1,0,0,10,10,0.9\n0,0,1,P2,20,0,30,10,0.8\n", "tracklet"),
        (load_tracks, "frame,t,tracklet,x1,y1,x2,y2,score\n", "person"),
        (load_crop, CROP_HEADER + "0,0,0,0,10,10,zoom\n", "zoom"),
        (load_crop, CROP_HEADER + "0,0,0,0,10,10,wide\n0,0,0,0,10,10,wide\n", "repeats"),
        (load_crop, CROP_HEADER, "no rows"),
    ],
)
def test_bad_tracks_and_crop_files(tmp_path: Path, loader, text: str, message: str) -> None:
    path = write(tmp_path, "bad_file.csv", text)
    with pytest.raises(InputError, match=message) as info:
        loader(path)
    assert "bad_file.csv" in str(info.value)


def test_gt_beyond_video_frames(bench_gt: Path, gillhung_clip: Path) -> None:
    n = probe(gillhung_clip).n_frames
    assert n == 825
    assert len(load_gt(bench_gt, n_frames=n).keyframes) == 55
    with pytest.raises(InputError, match="beyond the video's 800 frames"):
        load_gt(bench_gt, n_frames=800)
