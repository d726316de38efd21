"""The analysis cache: reused only for the same video bytes, settings, gallery photos and models, and then
only the stages that depend on what changed are recomputed; corrupt or half-replaced caches are never used.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

import fancam.pipeline.analyze
from badmedia import one_dancer_clip
from fancam.identity.faces import FaceAnalyzer
from fancam.identity.identify import IdentityConfig
from fancam.identity.sampling import SamplingConfig
from fancam.models import registry as models
from fancam.pipeline.analyze import AnalysisSettings, analyze
from fancam.tracking.scan import ScanConfig
from fancam.tracking.tracklets import TrackletConfig

MIDDLE_DANCER = (125, 235)
STAGES = {"scan": "scan", "extract_appearance": "appearance", "identify": "identity"}


@pytest.fixture(autouse=True)
def user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANCAM_HOME", str(tmp_path / "fancam-home"))


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory, gillhung_clip: Path) -> tuple[Path, Path]:
    """1.2 s of one dancer, analysed with the default settings (the warm cache every test starts from)."""
    video = one_dancer_clip(gillhung_clip, tmp_path_factory.mktemp("cache") / "solo.mp4", 1.2, MIDDLE_DANCER)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FANCAM_HOME", str(tmp_path_factory.mktemp("warm-home")))
        return video, analyze(video, progress=False).folder


@pytest.fixture
def warm(analysed: tuple[Path, Path], tmp_path: Path, user_cache: None) -> Path:
    """A private copy of the video (moved: the cache is keyed by content) and of its cached analysis."""
    video = tmp_path / "moved.mp4"
    shutil.copyfile(analysed[0], video)
    shutil.copytree(analysed[1], cached_folder() / analysed[1].name)
    return video


def cached_folder() -> Path:
    """The analyses folder of this test's user cache."""
    return Path(os.environ["FANCAM_HOME"]) / "analyses"


def warm_folder() -> Path:
    """The warm analysis in this test's user cache."""
    [folder] = cached_folder().iterdir()
    return folder


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts the stages that really run (scan, appearance, identity)."""
    counts: Counter = Counter()
    for attr, stage in STAGES.items():
        real = getattr(fancam.pipeline.analyze, attr)

        def counting(*args, _real=real, _stage=stage, **kwargs):
            counts[_stage] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(fancam.pipeline.analyze, attr, counting)
    return counts


def test_same_inputs_reuse_everything(warm: Path, computed: Counter) -> None:
    result = analyze(warm, progress=False)
    assert computed == Counter()
    assert len(result.cast.people) == 1


CHANGES = {
    "identity setting": (AnalysisSettings(identity=IdentityConfig(min_together_s=2.0)), {"identity"}),
    "sampling setting": (AnalysisSettings(sampling=SamplingConfig(window_s=0.5)), {"appearance", "identity"}),
    "tracklet setting": (AnalysisSettings(tracklets=TrackletConfig(min_duration_s=0.4)),
                         {"appearance", "identity"}),
    "scan setting": (AnalysisSettings(scan=ScanConfig(detect_fps=5.0)), {"scan", "appearance", "identity"}),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_changed_setting_recomputes_what_depends_on_it(warm: Path, computed: Counter, change: str) -> None:
    settings, stages = CHANGES[change]
    analyze(warm, settings=settings, progress=False)
    assert set(computed) == stages
    computed.clear()
    analyze(warm, settings=settings, progress=False)
    assert computed == Counter(), "the new result is cached in turn"


def test_a_changed_detector_model_recomputes_everything(
    warm: Path, computed: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = models.model_id
    monkeypatch.setattr(models, "model_id", lambda name: real(name) + "+retrained")
    analyze(warm, progress=False)
    assert set(computed) == {"scan", "appearance", "identity"}


def test_other_tracklets_from_the_same_settings_recompute_the_appearance(
    warm: Path, computed: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A development build with changed tracklet rules (same version, same settings) must not reuse the
    faces sampled from another tracklet table (it did, silently, while the row count fitted)."""
    real = fancam.pipeline.analyze.build_tracklets_explained

    def changed_rules(*args, **kwargs):
        tracks, report = real(*args, **kwargs)
        return dataclasses.replace(tracks, xyxy=tracks.xyxy + 2.0), report  # same rows, moved boxes

    monkeypatch.setattr(fancam.pipeline.analyze, "build_tracklets_explained", changed_rules)
    analyze(warm, progress=False)
    assert set(computed) == {"appearance", "identity"}


def test_a_changed_face_model_keeps_the_detections(
    warm: Path, computed: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = FaceAnalyzer.model_id
    monkeypatch.setattr(FaceAnalyzer, "model_id", property(lambda self: real.fget(self) + "+v2"))
    analyze(warm, progress=False)
    assert set(computed) == {"appearance", "identity"}


def test_gallery_photos_invalidate_only_the_naming(warm: Path, computed: Counter, bench_gallery: Path,
                                                   tmp_path: Path) -> None:
    gallery = tmp_path / "photos"
    shutil.copytree(bench_gallery, gallery)
    for path in [gallery, *gallery.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    named = analyze(warm, gallery=gallery, progress=False)
    assert set(computed) == {"identity"} and named.cast.people[0].label == "P2"
    computed.clear()
    analyze(warm, gallery=gallery, progress=False)
    assert computed == Counter()
    # One photo of P2 replaced by a photo of P3: the names must be recomputed, nothing else.
    p2 = sorted((gallery / "gillhung_dance" / "P2").glob("*.jpg"))[0]
    p2.write_bytes(sorted((gallery / "gillhung_dance" / "P3").glob("*.jpg"))[0].read_bytes())
    analyze(warm, gallery=gallery, progress=False)
    assert set(computed) == {"identity"}
    computed.clear()
    shutil.rmtree(gallery / "gillhung_dance" / "P1")
    analyze(warm, gallery=gallery, progress=False)
    assert set(computed) == {"identity"}


def test_new_bytes_under_the_same_name_are_analysed_again(
    warm: Path, computed: Counter, gillhung_clip: Path, tmp_path: Path
) -> None:
    old = analyze(warm, progress=False)
    assert computed == Counter()
    one_dancer_clip(gillhung_clip, tmp_path / "other.mp4", 0.8, MIDDLE_DANCER)
    shutil.copyfile(tmp_path / "other.mp4", warm)  # same name, different video
    new = analyze(warm, progress=False)
    assert set(computed) == {"scan", "appearance", "identity"}
    assert new.timeline.n_frames == 24 != old.timeline.n_frames
    assert new.folder != old.folder, "another content, another cache folder"
    rows = (new.folder / "tracks.csv").read_text().splitlines()[1:]
    assert max(int(r.split(",")[0]) for r in rows) < 24, "tracks.csv describes the new video"


def test_corrupt_cache_files_are_recomputed(warm: Path, computed: Counter, caplog) -> None:
    folder = warm_folder()
    (folder / "scan.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (folder / "cast.npz").write_bytes(b"")
    analyze(warm, progress=False)
    assert set(computed) == {"scan", "identity"}
    assert "ignoring unreadable cache" in caplog.text
    computed.clear()
    data = (folder / "appearance.npz").read_bytes()
    (folder / "appearance.npz").write_bytes(data[: len(data) // 2])  # a copy cut short
    analyze(warm, progress=False)
    assert set(computed) == {"appearance"}, "same inputs: what builds on it stays valid"
    computed.clear()
    (folder / "manifest.json").write_text('{"format": 1, "stages": {"scan": ')  # cut short
    analyze(warm, progress=False)
    assert set(computed) == {"scan", "appearance", "identity"}
    assert json.loads((folder / "manifest.json").read_text())["stages"].keys() == {
        "scan", "appearance", "identity"}


def test_a_stage_killed_while_replacing_its_files_is_not_reused(
    warm: Path, computed: Counter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cast.npz is rewritten for new settings, then the run dies before the manifest is updated: the
    previous settings' entry must not vouch for the new file."""
    folder = warm_folder()
    reference = (folder / "tracks.csv").read_text()
    real = fancam.pipeline.analyze.write_tracks

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fancam.pipeline.analyze, "write_tracks", killed)
    other = AnalysisSettings(identity=IdentityConfig(min_together_s=2.0))
    with pytest.raises(KeyboardInterrupt):
        analyze(warm, settings=other, progress=False)
    assert "identity" not in json.loads((folder / "manifest.json").read_text())["stages"]
    assert not [p for p in folder.iterdir() if ".part" in p.name]
    monkeypatch.setattr(fancam.pipeline.analyze, "write_tracks", real)
    computed.clear()
    analyze(warm, progress=False)
    assert set(computed) == {"identity"}
    assert (folder / "tracks.csv").read_text() == reference


def test_only_temporary_files_of_dead_processes_are_swept(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from fancam.io.cache import sweep_stale_temps, temp_path_beside

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead = int(done.stdout)
    final = tmp_path / "dance.person-1.mp4"
    stale = tmp_path / f".dance.person-1.{dead}-abc_123x.part.mp4"
    running = tmp_path / f".dance.person-1.{os.getppid()}-zzz9.part.mp4"
    mine = temp_path_beside(final)
    other_output = tmp_path / f".dance.{dead}-abc_123x.part.mp4"
    for path in (stale, running, other_output):
        path.write_bytes(b"partial")
    assert sweep_stale_temps(final) == [stale]
    assert running.exists() and mine.exists() and other_output.exists() and not stale.exists()
    assert mine.name.startswith(f".dance.person-1.{os.getpid()}-") and mine.name.endswith(".part.mp4")
