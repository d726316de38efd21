from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_file
from fancam.identity import embedding
from fancam.identity.embedding import EmbeddingQueue, worker_possible
from fancam.identity.faces import FaceAnalyzer, FaceConfig
from fancam.identity.gallery import decode_image


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer(FaceConfig(detector="yunet", yunet_model=shared_file("models/yunet_s_640_640.onnx")))


@pytest.fixture(scope="module")
def batches(analyzer: FaceAnalyzer) -> dict[int, list[np.ndarray]]:
    """Aligned chips of the bench gallery's photos, one batch per photo (some with no face: empty)."""
    photos = sorted(shared_file("bench/gallery").rglob("*.jpg"))[:6]
    assert len(photos) >= 3
    out = {}
    for key, photo in enumerate(photos):
        image = decode_image(photo.read_bytes())
        assert image is not None
        out[key] = [c.chip for c in analyzer.faces_in_image(image)]
    assert sum(len(c) for c in out.values()) >= 3
    return out


def _expected(analyzer: FaceAnalyzer, batches: dict[int, list[np.ndarray]]) -> dict[int, np.ndarray]:
    return {key: analyzer.embedder.embed(chips) for key, chips in batches.items()}


def test_the_worker_process_embeds_exactly_as_this_process(analyzer, batches) -> None:
    assert worker_possible()  # the test machine has 2 cores
    with EmbeddingQueue(analyzer.embedder, use_worker=True, take_back=False) as queue:
        for key, chips in batches.items():
            queue.submit(key, chips)
        got = queue.results()
        assert queue.worker_batches == sum(1 for chips in batches.values() if chips)
    expected = _expected(analyzer, batches)
    assert sorted(got) == sorted(expected)
    for key in expected:
        assert got[key].shape == (len(batches[key]), 128)
        assert np.array_equal(got[key], expected[key])


def test_batches_are_shared_between_the_worker_and_this_process(analyzer, batches) -> None:
    # Many batches: this process takes back the ones the worker has not started; every key is answered once.
    many = {10 * copy + key: chips for copy in range(4) for key, chips in batches.items()}
    with EmbeddingQueue(analyzer.embedder, use_worker=True) as queue:
        for key, chips in many.items():
            queue.submit(key, chips)
        got = queue.results()
    expected = _expected(analyzer, batches)
    assert sorted(got) == sorted(many)
    for key, vectors in got.items():
        assert np.array_equal(vectors, expected[key % 10])


@pytest.mark.parametrize("python", [
    "/nonexistent/python",  # the worker cannot start
    "true",                 # it starts and exits at once (closed pipe at the first batch)
])
def test_a_worker_that_fails_leaves_the_work_to_this_process(analyzer, batches, python: str) -> None:
    with EmbeddingQueue(analyzer.embedder, use_worker=True, take_back=False, python=python) as queue:
        for key, chips in batches.items():
            queue.submit(key, chips)
        got = queue.results()
        assert queue.worker_batches == 0
    expected = _expected(analyzer, batches)
    assert all(np.array_equal(got[key], expected[key]) for key in expected)


def test_without_a_worker_batches_are_embedded_at_once(analyzer, batches) -> None:
    queue = EmbeddingQueue(analyzer.embedder, use_worker=False)
    queue.submit(0, batches[0])
    assert queue.results()[0].shape == (len(batches[0]), 128)
    assert queue.worker_batches == 0


@pytest.mark.parametrize("python", ["/nonexistent/python", None])
def test_waiting_batches_stay_bounded_whatever_the_worker_does(analyzer, batches, python, monkeypatch) -> None:
    # Memory must not grow with the video: beyond MAX_PENDING_BATCHES this process embeds the newest
    # batch itself (a 10-minute 4K clip held thousands of chips waiting, over 1 GB).
    monkeypatch.setattr(embedding, "MAX_PENDING_BATCHES", 2)
    many = {10 * copy + key: chips for copy in range(3) for key, chips in batches.items() if chips}
    options = {} if python is None else {"python": python}
    with EmbeddingQueue(analyzer.embedder, use_worker=True, **options) as queue:
        for key, chips in many.items():
            queue.submit(key, chips)
            assert queue.pending <= 2
        got = queue.results()
    expected = _expected(analyzer, batches)
    assert sorted(got) == sorted(many)
    assert all(np.array_equal(vectors, expected[key % 10]) for key, vectors in got.items())
