"""The web app end to end in headless Chromium: what a fan does, on real clips from ../shared."""

from __future__ import annotations

import csv
import json
import re
import signal
from pathlib import Path

import av
import pytest
from playwright.sync_api import Page, expect
from uiserver import ANALYSIS_TIMEOUT_MS, Server, browser, page, server  # noqa: F401 - fixtures

from conftest import shared_file, trimmed_copy

pytestmark = pytest.mark.slow
RENDER_TIMEOUT_MS = 180_000


def _upload(page: Page, server: Server, clip: Path) -> str:
    """Choose a video with the file chooser, start the analysis; the job's id."""
    page.goto(server.url)
    page.set_input_files("#video-file", clip)
    expect(page.locator("#video-chosen")).to_contain_text(clip.name)
    page.click("#analyse")
    page.wait_for_url(re.compile(r"/jobs/[\w-]+$"))
    return page.url.rsplit("/", 1)[-1]


def _job_state(server: Server, job_id: str) -> dict:
    return json.loads((server.workdir / "jobs" / job_id / "job.json").read_text())


def _running_percent(page: Page) -> int:
    """Percentage of the running stage once it has moved (waits for it)."""
    running = page.locator(".stages li.running .small")
    expect(running).to_have_text(re.compile(r"\b[1-9]\d?%"), timeout=ANALYSIS_TIMEOUT_MS)
    return int(re.search(r"(\d+)%", running.inner_text()).group(1))


def test_drop_a_video_click_a_performer_watch_and_download(server: Server, page: Page, tmp_path: Path) -> None:
    job_id = _upload(page, server, shared_file("data/fiyud_dance3/dance.mp4"))
    # Progress streams in per stage (the time left: test_progress_shows_the_time_left, on a longer clip).
    expect(page.locator(".stages li").first).to_contain_text("detect+track")

    # The contact sheet: three women, numbered, with a confidence each.
    cards = page.locator(".people .person")
    expect(cards).to_have_count(3, timeout=ANALYSIS_TIMEOUT_MS)
    for card in cards.all():
        expect(card.locator(".conf")).to_have_text(re.compile(r"\d\.\d\d"))
        assert card.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")

    # Scrub to 3 s and click performer 2 on the frame.
    page.locator("#scrub").fill("3")
    frame = page.locator("#frame img")
    expect(frame).to_have_attribute("alt", "frame at 3.00 s")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=frame.element_handle())
    expect(page.locator("#frame .box")).to_have_count(3)
    page.click('#frame .box[data-person="2"]')
    expect(page.locator("#chosen")).to_contain_text("2 · person-2")
    expect(page.locator('.people .person[data-person="2"]')).to_have_class(re.compile(r"\bchosen\b"))

    # Framing, aspect, time range; render; it plays in the page.
    page.select_option("select[name=framing]", "upper")
    page.select_option("select[name=aspect]", "4:5")
    page.fill("input[name=start]", "2")
    page.fill("input[name=end]", "6")
    page.click("#render-one")
    video = page.locator(".render.done video").first
    expect(video).to_be_attached(timeout=RENDER_TIMEOUT_MS)
    video.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("v => v.readyState >= 3 && v.currentTime > 0.5 && !v.paused", arg=video.element_handle(),
                           timeout=30_000)
    assert video.evaluate("v => v.duration") == pytest.approx(4.0, abs=0.1)

    # The download is a valid H.264 MP4 of the chosen 4 s, 4:5, with its camera path.
    with page.expect_download() as info:
        page.click(".render.done a.download")
    assert info.value.suggested_filename == "dance.person-2.4x5.mp4"
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    with av.open(str(saved)) as container:
        stream = container.streams.video[0]
        assert "mp4" in container.format.name and stream.codec_context.name == "h264"
        assert stream.width / stream.height == pytest.approx(4 / 5, abs=0.02)
        frames = sum(1 for _ in container.decode(stream))
        duration = float(container.duration / av.time_base)
    assert frames == pytest.approx(120, abs=1)  # 4 s at 30 fps
    assert duration == pytest.approx(4.0, abs=0.1)
    with page.expect_download() as info:
        page.click(".render.done a.download-csv")
    with open(info.value.path(), newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["frame", "t", "x1", "y1", "x2", "y2", "mode"]
    assert len(rows) == frames and float(rows[0]["t"]) == pytest.approx(2.0, abs=0.04)

    # Everyone, from the same analysis: no second analysis, one fancam per performer.
    page.click("#render-all")
    everyone = page.locator(".render.done").filter(has_text="Everyone")
    expect(everyone.locator("video")).to_have_count(3, timeout=RENDER_TIMEOUT_MS)
    state = _job_state(server, job_id)
    assert state["state"] == "ready" and [r["state"] for r in state["renders"]] == ["done", "done"]
    assert [s["name"] for s in state["stages"]].count("detect+track") == 1
    assert sorted(o["label"] for o in state["renders"][1]["outputs"]) == ["person-1", "person-2", "person-3"]

    # The identity timeline and the stretches are shown.
    timeline = page.locator("img.timeline")
    assert timeline.evaluate("img => img.complete && img.naturalWidth > 0")
    expect(page.locator("#stretches li").first).to_be_visible()


def test_progress_shows_the_time_left(page: Page, tmp_path_factory: pytest.TempPathFactory) -> None:
    # The page estimates the time left once a stage has run ETA_AFTER_S (2 s); with the shipped detector
    # the stages of a 9 s clip can end sooner, so this uses the 24 s 1080x1920 HEVC clip.
    work = tmp_path_factory.mktemp("ui-eta")
    server = Server(work)
    try:
        _upload(page, server, shared_file("data/gillhung_dance/dance2.mp4"))
        expect(page.locator(".stages li").first).to_contain_text("detect+track")
        time_left = re.compile(r"\d+% · about .+ left")
        expect(page.locator(".stages li.running .small")).to_have_text(time_left, timeout=ANALYSIS_TIMEOUT_MS)
    finally:
        server.stop(signal.SIGKILL)


def test_reload_and_server_restart_do_not_lose_the_job(page: Page, tmp_path_factory: pytest.TempPathFactory) -> None:
    work = tmp_path_factory.mktemp("ui-restart")
    first = Server(work)
    try:
        # A 27.5 s clip, so that the analysis is still running after the reload.
        job_id = _upload(page, first, shared_file("data/gillhung_dance/dance.mp4"))
        before = _running_percent(page)
        page.reload()  # the page reattaches: same job, progress not lost
        expect(page.locator(".stages li").first).to_be_visible()
        assert _running_percent(page) >= before
        assert _job_state(first, job_id)["state"] == "analyzing"
    finally:
        first.stop(signal.SIGKILL)  # the server dies mid-analysis
    second = Server(work)
    try:
        page.goto(f"{second.url}jobs/{job_id}")  # a new server finds the job and finishes it
        expect(page.locator(".people .person").first).to_be_visible(timeout=ANALYSIS_TIMEOUT_MS)
        state = _job_state(second, job_id)
        assert state["state"] == "ready" and len(state["people"]) >= 3  # the three dancers at least
        expect(page.locator(".people .person")).to_have_count(len(state["people"]))
    finally:
        assert second.stop() == 0, second.log()


def test_a_text_file_named_mp4_gets_one_clear_message(server: Server, page: Page, tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("shopping list: rice, eggs, a new phone to film the concert\n" * 20)
    jobs_before = len(list((server.workdir / "jobs").iterdir()))
    page.goto(server.url)
    # Dropped on the page (the clip test above goes through the file chooser).
    dropped = page.evaluate_handle(
        "text => { const d = new DataTransfer(); d.items.add(new File([text], 'notes.mp4', {type: 'video/mp4'}));"
        " return d; }", fake.read_text())
    page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
    expect(page.locator("#video-chosen")).to_contain_text("notes.mp4")
    page.click("#analyse")
    message = page.locator("#message")
    expect(message).to_be_visible()
    # The CLI's message, naming the upload (not a server path); no trace of Python.
    expect(message).to_have_text("cannot open 'notes.mp4' as a video: it is a text file, not a video "
                                 "(was a web page saved instead of the video?)")
    assert "Traceback" not in page.content() and "/jobs/" not in page.url
    assert len(list((server.workdir / "jobs").iterdir())) == jobs_before  # nothing kept
    expect(page.locator("#analyse")).to_be_enabled()  # the user can choose another file


def test_a_path_on_this_machine_and_photos_per_member_name_the_performers(
    server: Server, page: Page, tmp_path: Path, bench_gallery: Path
) -> None:
    clip = trimmed_copy(shared_file("data/gillhung_dance/dance.mp4"), tmp_path / "practice.mp4", 8.0)
    page.goto(server.url)
    page.fill("#video-source", str(clip))
    page.click("#gallery-box summary")
    for member in ("P1", "P2", "P3"):
        page.click("#add-member")
        row = page.locator("#members .member").last
        row.locator(".member-name").fill(member)
        row.locator(".member-photos").set_input_files(sorted((bench_gallery / "gillhung_dance" / member).iterdir()))
    page.click("#analyse")
    page.wait_for_url(re.compile(r"/jobs/[\w-]+$"))
    names = page.locator(".people .person .name")
    expect(names).to_have_count(3, timeout=ANALYSIS_TIMEOUT_MS)
    assert sorted(names.all_inner_texts()) == ["P1", "P2", "P3"]
    job_id = page.url.rsplit("/", 1)[-1]
    photos = sorted(p.relative_to(server.workdir / "jobs" / job_id).as_posix()
                    for p in (server.workdir / "jobs" / job_id / "gallery").rglob("*.jpg"))
    assert len(photos) == 9 and all(re.fullmatch(r"gallery/gallery/P[123]/photo-[123]\.jpg", p) for p in photos)
    expect(page.locator("h1")).to_have_text("practice.mp4")
    assert not list(tmp_path.glob("*.fancam")) and sorted(tmp_path.iterdir()) == [clip]  # nothing beside it
