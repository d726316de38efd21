"""Issue 12: `fancam analyze --quality best` downloads its detector on first use, from the command line.

The analysis cache key (the detector's model id) used to be computed with downloads off, before the step
that would download, so `balanced`/`best` always stopped with "downloads are disabled". Here the real CLI
runs against the local model server of modelserver.py (never the internet).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest

from conftest import trimmed_copy
from fancam.cli import main
from fancam.errors import EXIT_MODEL, EXIT_OK
from fancam.models import registry as models
from fancam.models.registry import Digest, ModelFile
from modelserver import isolate, serve_shared_models


def test_best_downloads_its_detector_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, gillhung_clip: Path
) -> None:
    isolate(tmp_path / "home", monkeypatch)
    video = trimmed_copy(gillhung_clip, tmp_path / "clip.mp4", 2.0)
    with serve_shared_models(tmp_path / "served") as (url, state):
        # YOLOX-s (36 MB) cannot be fetched here: the server offers YOLOX-nano's bytes under its name, and
        # the registry entry points at the server and accepts those bytes. Everything else is the product.
        shutil.copyfile(state.root / "yolox_nano.onnx", state.root / "yolox_s.onnx")
        nano = models.get_model(models.YOLOX_NANO).files[0].digests[0]
        served = replace(models.get_model(models.YOLOX_S), url=f"{url}/yolox_s.onnx",
                         files=(ModelFile("yolox_s.onnx", (Digest(nano.sha256, nano.size, True, "test"),)),))
        monkeypatch.setattr(models, "REGISTRY", MappingProxyType({**models.REGISTRY, models.YOLOX_S: served}))
        argv = ["-q", "analyze", str(video), "--quality", "best", "--out", str(tmp_path / "analysis")]

        # Offline: one line that says how to get the file; nothing requested, nothing cached.
        monkeypatch.setenv("FANCAM_OFFLINE", "1")
        assert main(argv) == EXIT_MODEL
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        assert "model yolox-s is not in the cache" in err and "FANCAM_OFFLINE is set" in err
        assert "fancam models download yolox-s" in err and "FANCAM_MODEL_MIRROR" in err
        assert state.requests == [] and not (models.cache_dir() / "yolox_s.onnx").exists()

        # Online: downloaded once (the same verified install as `fancam models download`), then used.
        monkeypatch.delenv("FANCAM_OFFLINE")
        assert main(argv) == EXIT_OK, capsys.readouterr().err
        assert state.requests == [("yolox_s.onnx", None)]
        assert (models.cache_dir() / "yolox_s.onnx").read_bytes() == (state.root / "yolox_nano.onnx").read_bytes()
        assert (tmp_path / "analysis" / "tracks.csv").is_file()
        # The cached file is reused (the cached analysis too): no second request.
        assert main(argv) == EXIT_OK
        assert state.requests == [("yolox_s.onnx", None)]
        assert dict(models.verify_models([models.YOLOX_S])) == {"yolox-s": "ok"}


def test_default_preset_needs_no_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, gillhung_clip: Path
) -> None:
    # Issue 10: the default works offline on an empty cache (shipped YOLOX-nano + YuNet, dlib from PyPI).
    isolate(tmp_path / "home", monkeypatch)
    monkeypatch.setenv("FANCAM_OFFLINE", "1")
    video = trimmed_copy(gillhung_clip, tmp_path / "clip.mp4", 2.0)
    rc = main(["-q", "analyze", str(video), "--out", str(tmp_path / "analysis")])
    out, err = capsys.readouterr()
    assert rc == EXIT_OK, err
    assert "person 3: person-3" in out  # the three dancers
    assert not (models.cache_dir() / "yolox_nano.onnx").exists()  # used in place, never copied
