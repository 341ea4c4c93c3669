"""`sora3r app`: the page driven in headless Chromium (Debian's chromium through Playwright) against the app served on
127.0.0.1, its downloads fetched and read back, bad uploads explained on the page, and the `app` command's checks.

Chromium is required: without it the browser tests fail (``apt-get install chromium``; `.ci/run` installs it).
``SORA3R_DOCS_SCREENSHOTS=1`` also writes the page after a reconstruction to docs/app.png (the README's picture).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image
from playwright.sync_api import Page, sync_playwright

from sora3r.app import App
from sora3r.app.figures import depth_video_frames, write_confidence_figure
from sora3r.app.job import user_message
from sora3r.app.sample import SAMPLE_CONFIG
from sora3r.app.workspace import Workspace
from sora3r.cli import main
from sora3r.export import read_npz
from sora3r.pipeline import Sora3RPipeline
from sora3r.viz.depth import colorize_depth, depth_range

CHROMIUM = Path(os.environ.get("SORA3R_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "app.png"
EXPORTS = ["reconstruction.npz", "points.ply", "scene.glb", "trajectory_tum.txt", "colmap.zip", "depth.mp4",
           "depth_sheet.png", "depth.zip", "intrinsics.txt"]
RUN_TIMEOUT_MS = 240_000  # one 17-frame window on a loaded 2-core CPU takes ~10-40 s
MODEL_BACKGROUND = np.array([26, 26, 31])  # the 3D view's clear colour (0.1, 0.1, 0.12)
SHOWN = ["depth-video", "trajectory", "scene", "confidence"]  # where the results render


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app on 127.0.0.1, started from an empty working folder; afterwards nothing may be left in that folder
    (uploads and outputs live in temporary folders) and the app's workspace must be gone."""
    cwd, user_folder = os.getcwd(), tmp_path_factory.mktemp("user_folder")
    os.chdir(user_folder)
    try:
        app = App(Sora3RPipeline.from_pretrained(None))
        try:
            yield app, app.launch("127.0.0.1", _free_port(), block=False)
        finally:
            app.close()
    finally:
        os.chdir(cwd)
    assert not app.workspace.root.exists()
    assert list(user_folder.iterdir()) == []


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: the app's browser tests need Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(served, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(served[1])
    page.wait_for_selector("#run-button")
    yield page
    context.close()


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _detail(image: np.ndarray) -> float:
    """Fraction of pixels outside the 8 most frequent colours: near 0 for an empty box, large for a picture."""
    _, counts = np.unique(image.reshape(-1, 3), axis=0, return_counts=True)
    return 1.0 - np.sort(counts)[::-1][:8].sum() / counts.sum()


def _element_pixels(page: Page) -> dict[str, np.ndarray]:
    return {name: _pixels(page.locator(f"#{name}").screenshot()) for name in SHOWN}


def _set_slider(page: Page, elem_id: str, value: float) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def _use_sample(page: Page, stride: int, samples: int = 1, min_confidence: float = 0.0) -> None:
    page.click("#sample-button")
    page.wait_for_selector("#input-video video[src]")
    _set_slider(page, "stride", stride)
    _set_slider(page, "samples", samples)
    _set_slider(page, "min-confidence", min_confidence)


def _error_text(page: Page, start: str) -> str:
    """The text of the page's error message that holds ``start`` (other notices, such as the player's "Video not
    playable" for a broken upload, may show too)."""
    toast = page.locator(".toast-body", has_text=start).first
    toast.wait_for(timeout=RUN_TIMEOUT_MS)
    return toast.inner_text()


def _check_downloads(page: Page, folder: Path, num_frames: int, stride: int, min_confidence: float) -> None:
    """Every export is linked and, fetched as the browser would, reads back; the npz holds the confidence and the
    cloud only the points at or above ``min_confidence``."""
    links = page.locator("#downloads a[href]")
    names = [link.get_attribute("download") for link in links.all()]
    assert names == EXPORTS, names
    for name, link in zip(names, links.all()):
        response = page.request.get(link.get_attribute("href"))
        assert response.ok, (name, response.status)
        (folder / name).write_bytes(response.body())
    rec = read_npz(folder / "reconstruction.npz")
    assert rec.points.shape == (num_frames, 64, 96, 3) and torch.isfinite(rec.points).all()
    assert rec.metadata["num_samples"] == 2 and rec.confidence.shape == (num_frames, 64, 96)
    assert 0 < rec.confidence.min() < min_confidence < rec.confidence.max() <= 1
    assert rec.metadata["source"].startswith("sample_synthetic_")
    kept = int((rec.valid & (rec.confidence >= min_confidence)).sum())
    assert 0 < kept < int(rec.valid.sum())
    assert len(trimesh.load(folder / "points.ply").vertices) == kept
    assert (folder / "scene.glb").read_bytes()[:4] == b"glTF"
    trajectory = np.loadtxt(folder / "trajectory_tum.txt")
    np.testing.assert_allclose(trajectory[:, 0], np.arange(num_frames) * stride / SAMPLE_CONFIG.fps, atol=1e-6)
    with zipfile.ZipFile(folder / "colmap.zip") as archive:
        listed = set(archive.namelist())
    assert {"colmap/cameras.txt", "colmap/images.txt", "colmap/points3D.txt", "colmap/images/00000.png"} <= listed


def _check_results_shown(page: Page, empty: dict[str, np.ndarray]) -> np.ndarray:
    """The depth video plays the 4x-zoomed input | depth frames, the camera path and the 3D scene are drawn, and
    their boxes, blank before the run, now hold pictures. Returns the page's screenshot."""
    page.wait_for_function("() => { const v = document.querySelector('#depth-video video');"
                           " return v && v.readyState >= 2 && v.videoWidth > 0; }")
    assert page.eval_on_selector("#depth-video video", "v => [v.videoWidth, v.videoHeight]") == [4 * 192, 4 * 64]
    # the plot's image may still be loading when the video is ready (it did once on a slow machine): wait for it
    page.wait_for_function("() => { const img = document.querySelector('#trajectory img');"
                           " return img && img.complete && img.naturalWidth > 0; }")
    scene = page.locator("#scene canvas")
    scene.wait_for()
    page.wait_for_timeout(1500)  # the 3D view draws the points after the GLB has loaded
    drawn = _pixels(scene.screenshot())
    not_background = (np.abs(drawn - MODEL_BACKGROUND).sum(-1) > 40).mean()
    assert not_background > 0.03, f"the 3D view shows {not_background:.1%} non-background pixels"
    assert page.eval_on_selector("#confidence img", "img => img.complete && img.naturalWidth") > 0
    assert not page.locator("#confidence-note").is_visible()
    shown = _element_pixels(page)
    for name in SHOWN:
        assert _detail(empty[name]) < 0.02 and _detail(shown[name]) > 0.08, (name, _detail(shown[name]))
    return _pixels(page.screenshot(full_page=True))


@pytest.mark.slow
def test_a_reconstruction_through_the_page(page, tmp_path):
    """Sample clip, stride 2 (17 frames, one window), 2 samples: the summary, the depth video, the camera path, the 3D
    scene, the confidence map and all five downloads appear; the downloaded npz holds the confidence."""
    empty = _element_pixels(page)
    stride, samples, min_confidence = 2, 2, 0.3
    _use_sample(page, stride, samples, min_confidence)
    page.click("#run-button")
    page.wait_for_selector("#downloads a[href]", timeout=RUN_TIMEOUT_MS)
    summary = page.inner_text("#summary")
    num_frames = len(range(0, SAMPLE_CONFIG.num_frames, stride))
    assert f"{num_frames} frames" in summary and f"stride {stride}" in summary, summary
    assert f"{samples} samples" in summary and "mean confidence 0." in summary, summary
    assert f"of the points at or above {min_confidence:g}" in summary, summary
    screenshot = _check_results_shown(page, empty)
    Image.fromarray(screenshot.astype(np.uint8)).save(tmp_path / "app.png")
    if os.environ.get("SORA3R_DOCS_SCREENSHOTS"):
        shutil.copyfile(tmp_path / "app.png", DOCS_SCREENSHOT)
    _check_downloads(page, tmp_path, num_frames, stride, min_confidence)


def test_no_video_is_explained_on_the_page(page):
    page.click("#run-button")
    assert "Upload a video or press" in _error_text(page, "Upload a video")


@pytest.mark.slow
def test_bad_uploads_are_explained_on_the_page(page, tmp_path):
    """A file that is not a video, a clip too short for the chosen stride and a confidence filter without confidence:
    one sentence naming the upload or the control, no traceback, no results."""
    broken = tmp_path / "holiday.mp4"
    broken.write_text("not a video\n")
    page.set_input_files("#input-video input[type=file]", str(broken))
    page.wait_for_selector("#input-video video[src]")  # uploaded (the player shows it cannot play the file)
    page.click("#run-button")
    text = _error_text(page, "holiday.mp4")
    assert "holiday.mp4: not a readable video file" in text and "Traceback" not in text and "/tmp" not in text
    page.reload()
    _use_sample(page, stride=8)
    page.click("#run-button")
    text = _error_text(page, "sample_synthetic_")
    assert "sample_synthetic_" in text and "stride 8" in text and "at least 17" in text, text
    page.reload()
    _use_sample(page, stride=1, samples=1, min_confidence=0.5)
    page.click("#run-button")
    assert "min confidence 0.5 needs 2 or more samples" in _error_text(page, "min confidence")
    assert page.locator("#downloads a[href]").count() == 0


def test_app_command_without_the_extra(monkeypatch, capsys):
    """Without Gradio, `sora3r app` says which extra to install: one line, exit status 2."""
    monkeypatch.setitem(sys.modules, "gradio", None)  # what `import gradio` finds when it is not installed
    assert main(["app"]) == 2
    assert capsys.readouterr().err.splitlines() == ["sora3r app: error: sora3r app needs the app extra: pip install "
                                                    "'sora3r[app]'"]


@pytest.mark.parametrize("args, mention", [(["--port", "70000"], "--port 70000"),
                                           (["--device", "cuda:7"], "--device cuda:7"),
                                           (["--model", "no_such_model"], "no_such_model: no such model folder"),
                                           (["--overlap", "17"], "--overlap 17: must be less than the model's window"),
                                           (["--samples", "0"], "--samples 0")])
def test_app_command_checks_its_options(args, mention, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["app", *args]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and mention in lines[0], lines
    assert list(tmp_path.iterdir()) == []


def test_app_command_on_a_taken_port(tmp_path, monkeypatch, capsys):
    """A port another program holds: the last stderr line says so and names the option; exit status 2, and the app's
    temporary folder is gone."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the app's workspace goes
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["app", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (f"sora3r app: error: cannot serve on 127.0.0.1:{port}: the port is in use or "
                                    f"the address is not one of this machine's (choose another --port or --host)")
    assert "Traceback" not in err
    assert not list(tmp_path.glob("sora3r-app-*"))


def _page_config(url: str, server: subprocess.Popen, timeout: float = 240.0) -> dict:
    """Gradio's description of the served page (``GET /config``), once the server answers."""
    deadline = time.monotonic() + timeout
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy for 127.0.0.1
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()[1]
        try:
            with direct.open(f"{url}/config", timeout=5) as response:
                return json.load(response)
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout:.0f} s")


@pytest.mark.slow
def test_app_command_serves_its_options_and_cleans_up_on_sigterm(tmp_path):
    """`sora3r app --steps 7 --samples 3 --seed 11 --overlap 4`: it prints where it serves (naming --share, not
    Gradio's `launch()` argument), the served page's controls open at those values; SIGTERM stops it with exit status
    143 and removes the app's temporary folder."""
    port = _free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    server = subprocess.Popen([sys.executable, "-m", "sora3r.cli", "app", "--port", str(port), "--steps", "7",
                               "--samples", "3", "--seed", "11", "--overlap", "4"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        config = _page_config(f"http://127.0.0.1:{port}", server)
        assert len(list(tmp_path.glob("sora3r-app-*"))) == 1
        # The page can answer while Gradio's launch() is still finishing, before the start line is printed: wait for
        # the line (EOF if the server died) before stopping the server.
        started = server.stdout.readline()
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=60)
    url = f"http://127.0.0.1:{port}/"
    assert started == f"sora3r app on {url} (Ctrl+C stops it; --share adds a temporary public link)\n", started
    assert "launch()" not in out, out
    values = {component["props"].get("elem_id"): component["props"].get("value") for component in config["components"]}
    assert [values[name] for name in ("steps", "samples", "seed", "overlap", "min-confidence")] == [7, 3, 11, 4, 0]
    assert server.returncode == 143 and err.splitlines()[-1] == "sora3r app: terminated", err
    assert not list(tmp_path.glob("sora3r-app-*"))


def test_the_depth_video_shows_the_input_next_to_the_packages_depth_colours():
    """The app's depth video is the input (left) next to `sora3r.viz.depth`'s colours over the clip's one range (right),
    the colours of depth.mp4 and the demo: bright near, dark far, black where invalid; each pixel a zoom x zoom block."""
    rgb = torch.randint(0, 256, (2, 3, 4, 3), dtype=torch.uint8)
    depth = torch.linspace(1.0, 10.0, 24).reshape(2, 3, 4)
    valid = torch.ones(2, 3, 4, dtype=torch.bool)
    valid[1, 2, 3] = False
    frames = depth_video_frames(rgb, depth, valid, zoom=2)
    assert frames.shape == (2, 6, 16, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[:, ::2, :8:2], rgb.numpy())
    coloured = frames[:, ::2, 8::2]
    np.testing.assert_array_equal(coloured, colorize_depth(depth, *depth_range(depth, valid), valid))
    assert coloured[1, 2, 3].tolist() == [0, 0, 0]
    brightness = coloured.astype(int).sum(-1)
    assert brightness[0, 0, 0] > brightness[0, 2, 3] > brightness[1, 2, 2]  # nearer is brighter


def test_confidence_figure(tmp_path):
    confidence = torch.linspace(0, 1, 9 * 8 * 12).reshape(9, 8, 12)
    path = write_confidence_figure(tmp_path / "confidence.png", confidence, num_shown=4)
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[1] > 2 * image.shape[0]  # four maps side by side
    assert _detail(image) > 0.1


def test_workspace_keeps_recent_runs_and_removes_everything_on_close():
    with Workspace(keep_runs=2) as workspace:
        runs = [workspace.new_run() for _ in range(3)]
        assert [run.exists() for run in runs] == [False, True, True]
        assert all(run.parent == workspace.root for run in runs)
    assert not workspace.root.exists()


def test_user_message_names_the_upload_not_its_temporary_path():
    error = ValueError("/tmp/gradio/abc/clip.mp4: not a readable video file\n(truncated)")
    assert user_message(error, "/tmp/gradio/abc/clip.mp4") == "clip.mp4: not a readable video file (truncated)"


def test_the_3d_view_thins_large_clouds(tmp_path, monkeypatch):
    """Up to `MAX_SHOWN_POINTS` the 3D view shows the exported GLB; above it, a copy on a coarser pixel grid that
    holds no more than that many points."""
    from test_export import make_reconstruction

    from sora3r.app import job
    from sora3r.export import write_glb

    rec = make_reconstruction()
    exported = write_glb(tmp_path / "scene.glb", rec)
    assert job._shown_scene(tmp_path, rec, exported) == exported
    limit = int(rec.valid.sum()) // 10
    monkeypatch.setattr(job, "MAX_SHOWN_POINTS", limit)
    shown = job._shown_scene(tmp_path, rec, exported)
    assert shown != exported
    points = trimesh.load(shown, force="scene").geometry["points"].vertices
    assert limit / 4 < len(points) <= limit
