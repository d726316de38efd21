"""Screenshots of `fancam ui` for the README, taken on a synthetic clip (no third-party footage).

    python docs/ui/screenshots.py            # writes docs/ui/*.png (needs the ui + test extras, chromium)

Draws three cartoon dancers (the offline person detector finds them), starts `fancam ui` on a free
port with a temporary work folder, and walks through the app in headless Chromium like a user.
"""

from __future__ import annotations

import io
import math
import re
import shutil
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image
from playwright.sync_api import expect, sync_playwright

HERE = Path(__file__).parent
W, H, FPS, SECONDS = 1280, 720, 30, 8
DANCERS = [  # centre x, shirt, trousers, skin, phase (RGB)
    (330, (220, 60, 90), (40, 40, 70), (225, 190, 160), 0.0),
    (640, (50, 140, 230), (30, 30, 40), (200, 160, 130), 1.7),
    (950, (250, 200, 40), (70, 50, 40), (170, 120, 90), 3.1),
]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]
MAX_BYTES = 200_000


def stage() -> np.ndarray:
    """Purple backdrop and a wooden floor."""
    img = np.zeros((H, W, 3), np.uint8)
    for y in range(H):
        c = int(30 + 40 * y / H)
        img[y] = (c, c // 2 + 10, c + 25)
    cv2.rectangle(img, (0, int(H * 0.78)), (W, H), (70, 55, 50), -1)
    for x in range(0, W, 160):
        cv2.line(img, (x, int(H * 0.78)), (x + 60, H), (90, 75, 70), 2)
    return img


def dancer(img: np.ndarray, cx: int, colours: tuple, t: float, phase: float) -> None:
    """One cartoon dancer swaying, bobbing and waving at time ``t``."""
    shirt, pants, skin = colours
    x = int(cx + 60 * math.sin(math.pi * t + phase))
    top = int(170 - 10 * abs(math.sin(2 * math.pi * t + phase)))
    r = 34
    hip, shoulder = top + 2 * r + 170, top + 2 * r + 25
    foot = hip + 210
    beat = math.sin(2 * math.pi * t + phase)
    step = int(25 * beat)
    for dx, st in ((-22, step), (22, -step)):
        cv2.line(img, (x + dx // 2, hip), (x + dx + st, foot), pants, 34, cv2.LINE_AA)
        cv2.ellipse(img, (x + dx + st + (8 if dx > 0 else -8), foot + 6), (26, 12), 0, 0, 360, (240, 240, 240), -1,
                    cv2.LINE_AA)
    torso = np.array([[x - 55, shoulder], [x + 55, shoulder], [x + 42, hip], [x - 42, hip]], np.int32)
    cv2.fillConvexPoly(img, torso, shirt, cv2.LINE_AA)
    for side in (-1, 1):
        a = beat * side
        elbow = (x + side * 85, int(shoulder + 70 - 60 * a))
        hand = (x + side * 110, int(shoulder + 150 - 170 * max(a, -0.3)))
        cv2.line(img, (x + side * 50, shoulder + 12), elbow, shirt, 26, cv2.LINE_AA)
        cv2.line(img, elbow, hand, skin, 20, cv2.LINE_AA)
        cv2.circle(img, hand, 13, skin, -1, cv2.LINE_AA)
    cv2.line(img, (x, shoulder), (x, top + 2 * r - 5), skin, 24)
    cv2.circle(img, (x, top + r), r, skin, -1, cv2.LINE_AA)
    cv2.ellipse(img, (x, top + r - 8), (r + 4, r - 4), 0, 180, 360, (30, 25, 25), -1, cv2.LINE_AA)
    for ex in (-12, 12):
        cv2.circle(img, (x + ex, top + r + 2), 4, (30, 30, 30), -1, cv2.LINE_AA)
    cv2.ellipse(img, (x, top + r + 15), (10, 5), 0, 0, 180, (120, 40, 50), 2, cv2.LINE_AA)


def synthetic_clip(path: Path) -> Path:
    """8 s, 1280x720, 30 fps H.264 with a simple beat as AAC audio."""
    backdrop = stage()
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS, options={"preset": "medium", "crf": "23"})
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        audio = container.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        for i in range(FPS * SECONDS):
            img = backdrop.copy()
            for cx, shirt, pants, skin, phase in DANCERS:
                dancer(img, cx, (shirt, pants, skin), i / FPS, phase)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        rate = 48000
        for start in range(0, SECONDS * rate, 1024):
            t = np.arange(start, start + 1024) / rate
            click = 0.3 * np.exp(-((2 * t) % 1.0) * 30) * np.sin(2 * np.pi * 880 * t)  # two beats a second
            wave = 0.15 * np.sin(2 * np.pi * 110 * t) + click
            frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]).astype(np.float32), "fltp", "stereo")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return path


def save(shot: bytes, name: str) -> None:
    """Write a PNG under :data:`MAX_BYTES` (palette colours, scaled down if still too large)."""
    path = HERE / name
    image = Image.open(io.BytesIO(shot)).convert("RGB")
    while True:
        image.quantize(colors=192, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        if path.stat().st_size <= MAX_BYTES:
            break
        image = image.resize((int(image.width * 0.85), int(image.height * 0.85)), Image.Resampling.LANCZOS)
    print(f"{path} {image.width}x{image.height} {path.stat().st_size // 1024} KB")


def main() -> None:
    """Make the clip, start the app, take the screenshots."""
    work = Path(tempfile.mkdtemp(prefix="fancam-ui-shots-"))
    clip = synthetic_clip(work / "stage.mp4")
    server = subprocess.Popen([sys.executable, "-m", "fancam.cli", "ui", "--port", "0", "--workdir", str(work / "ui")],
                              stdout=subprocess.PIPE, text=True)
    url = re.search(r"open (http://\S+/)", server.stdout.readline()).group(1)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1000, "height": 760})
            page.goto(url)
            page.set_input_files("#video-file", clip)
            page.click("#gallery-box summary")
            save(page.screenshot(), "1-upload.png")
            page.click("#analyse")
            time_left = re.compile(r"\d+% · about .+ left")
            expect(page.locator(".stages li.running .small")).to_have_text(time_left, timeout=120_000)
            save(page.locator("main").screenshot(), "2-progress.png")
            expect(page.locator(".people .person")).to_have_count(3, timeout=300_000)
            page.locator("#scrub").fill("4.5")
            expect(page.locator("#frame .box")).to_have_count(3)
            page.wait_for_timeout(500)
            page.click('#frame .box[data-person="2"]')
            expect(page.locator("#chosen")).to_contain_text("2 ·")
            save(page.locator("section.card").nth(1).screenshot(), "3-choose.png")
            page.select_option("select[name=aspect]", "4:5")
            page.click("#render-one")
            video = page.locator(".render.done video").first
            expect(video).to_be_attached(timeout=120_000)
            video.evaluate("v => { v.muted = true; v.currentTime = 3; return v.play(); }")
            page.wait_for_function("v => v.currentTime > 3.5", arg=video.element_handle())
            video.evaluate("v => v.pause()")
            save(page.locator("section.card").nth(2).screenshot(), "4-fancam.png")
            save(page.locator("section.card").nth(3).screenshot(), "5-timeline.png")
            bad = work / "notes.mp4"
            bad.write_text("my concert notes\n" * 50)
            page.goto(url)
            page.set_input_files("#video-file", bad)
            page.click("#analyse")
            expect(page.locator("#message")).to_be_visible()
            save(page.locator("section.card").first.screenshot(), "6-bad-upload.png")
            browser.close()
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
