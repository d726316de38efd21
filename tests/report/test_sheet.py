"""The contact sheet: a numbered tile per performer, with the identity confidence and its legend."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fancam.errors import InputError
from fancam.report.sheet import CAPTION_H, LEGEND, TILE_H, write_sheet


def test_sheet_shows_every_performer_and_a_confidence_legend(gillhung_analysis, tmp_path: Path):
    out = write_sheet(gillhung_analysis, tmp_path / "people.jpg")
    image = cv2.imread(str(out))
    assert image is not None
    n = len(gillhung_analysis.cast.people)
    assert image.shape[1] >= n * 240
    # Below the row of tiles: the legend band, with text in it.
    band = image[8 + TILE_H + CAPTION_H + 8:]
    assert band.shape[0] >= 30 and (band > 150).any()
    assert "conf = identity confidence" in LEGEND
    with pytest.raises(InputError, match="already exists"):
        write_sheet(gillhung_analysis, out)
    assert np.isfinite([p.confidence for p in gillhung_analysis.cast.people]).all()
