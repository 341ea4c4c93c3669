"""Screenshot of `sora3r view` as a browser shows it: serve a reconstruction with the viewer, open the page in headless
Chromium (Playwright driving Debian's ``chromium``; WebGL through its software renderer), wait until the scene has
drawn, and save a PNG. It prints how much of the window the scene covers (pixels that differ from the background).

    python scripts/viewer_screenshot.py OUT/reconstruction.npz -o docs/viewer.png [--all-frames] [--min-confidence 0.3]

Needs ``pip install playwright`` and ``apt-get install chromium`` (or ``SORA3R_CHROMIUM=/path/to/chrome``).
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import time
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from sora3r.export import read_npz
from sora3r.viz.viewer import serve

CHROMIUM = Path(os.environ.get("SORA3R_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run"]
WINDOW = {"width": 1280, "height": 720}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _canvas_pixels(page) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.locator("canvas").first.screenshot())).convert("RGB")).astype(int)


def _covered(image: np.ndarray) -> float:
    """Fraction of the canvas whose colour differs from its most common colour (the background)."""
    colours, counts = np.unique(image.reshape(-1, 3), axis=0, return_counts=True)
    background = colours[np.argmax(counts)]
    return float((np.abs(image - background).max(axis=2) > 12).mean())


def _wait_until_drawn(page, timeout_s: float) -> None:
    """Wait until two canvas screenshots a second apart are equal and show something besides the background."""
    deadline, previous = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        pixels = _canvas_pixels(page)
        if previous is not None and _covered(pixels) > 0.01 and np.abs(pixels - previous).mean() < 0.5:
            return
        previous = pixels
        time.sleep(1.0)
    raise TimeoutError(f"the viewer's scene did not settle within {timeout_s:.0f} s")


def _close_software_rendering_notice(page) -> None:
    """Remove viser's "Software WebGL rendering detected" notice (headless Chromium has no GPU), if it shows."""
    notice = page.get_by_text("Software WebGL rendering detected")
    try:
        notice.wait_for(timeout=5000)
    except PlaywrightTimeout:
        return
    notice.evaluate("node => node.closest('.mantine-Notification-root, [role=alert]').remove()")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reconstruction", type=Path, help="reconstruction.npz written by sora3r reconstruct / demo")
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/viewer.png"), help="PNG to write")
    parser.add_argument("--stride", type=int, default=1, help="the viewer's pixel stride")
    parser.add_argument("--all-frames", action="store_true", help="tick 'All frames' before the screenshot")
    parser.add_argument("--min-confidence", type=float, default=None, help="set the confidence slider to this")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the scene to draw")
    args = parser.parse_args()

    port = _free_port()
    server = serve(read_npz(args.reconstruction), port=port, stride=args.stride, block=False)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=WINDOW)
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("canvas", timeout=args.timeout * 1000)
            _close_software_rendering_notice(page)
            if args.all_frames:
                page.get_by_text("All frames", exact=True).click()
            if args.min_confidence is not None:
                slider = page.get_by_label("Min confidence").locator("input").first
                slider.fill(str(args.min_confidence))
                slider.press("Enter")
            _wait_until_drawn(page, args.timeout)
            args.output.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.output))
            print(f"wrote {args.output}: the scene covers {_covered(_canvas_pixels(page)):.0%} of the 3D view")
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
