"""`sora3r reconstruct` on inputs as people have them: phone videos with a display matrix, frames named by capture
time, files that are not what their name says. Each test runs the real command in a subprocess."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from sora3r.data.synthetic import SyntheticConfig, render_clip, split_seed
from sora3r.data.video import resize_and_crop
from sora3r.eval.pose import evaluate_trajectory_files, pose_metrics
from sora3r.export import read_npz, write_tum
from test_cli import assert_nothing_written, assert_ok, assert_user_error, sora3r
from test_video import _blocks, _write_audio_only, _write_pyav


@pytest.mark.slow
def test_portrait_phone_video_is_reconstructed_upright_with_its_presentation_times(tmp_path):
    """34 frames at 30 fps stored 192x108 with a display matrix of -90 degrees (players show them 108 wide, 192
    high), read with --stride 2: 17 upright frames at 0, 1/15, 2/15, ... s."""
    stored = np.stack([_blocks(112, 192, seed) for seed in range(34)])[:, 2:110]
    _write_pyav(tmp_path / "phone.mp4", stored, fps=30, pix_fmt="yuv444p", rotation=(-90, False), lossless=True)
    assert_ok(sora3r("reconstruct", "phone.mp4", "-o", "out", "--stride", 2, "--formats", "npz", "tum",
                     "--intrinsics", 150, 150, 53.5, 95.5, cwd=tmp_path))
    rec = read_npz(tmp_path / "out" / "reconstruction.npz")
    upright = torch.from_numpy(np.rot90(stored[::2], k=-1, axes=(1, 2)).copy())  # (17, 192, 108, 3)
    expected, affine = resize_and_crop(upright, 64, 96)
    assert (rec.rgb.float() - expected.float()).abs().mean() < 2.0
    sideways, _ = resize_and_crop(torch.from_numpy(stored[::2].copy()), 64, 96)
    assert (rec.rgb.float() - sideways.float()).abs().mean() > 20.0
    np.testing.assert_allclose(rec.metadata["crop_affine"], affine.numpy(), atol=1e-12)
    K_in = torch.tensor([[150.0, 0.0, 53.5], [0.0, 150.0, 95.5], [0.0, 0.0, 1.0]], dtype=torch.float64)
    np.testing.assert_allclose(rec.K.double().numpy(), (affine @ K_in).numpy(), rtol=1e-5)
    times = np.arange(17) * 2 / 30
    np.testing.assert_allclose(rec.timestamps.numpy(), times, atol=1e-9)
    np.testing.assert_allclose(np.loadtxt(tmp_path / "out" / "trajectory_tum.txt")[:, 0], times, atol=1e-9)


@pytest.mark.slow
def test_frames_named_by_capture_time_keep_their_times_for_evo(tmp_path):
    """A TUM-style folder (``<seconds>.png``, plus the macOS ``._`` files a copy leaves): the estimate's
    trajectory_tum.txt associates with the sequence's groundtruth.txt in evo, frame for frame."""
    seq = render_clip(split_seed("test", 0), SyntheticConfig(num_frames=17, height=64, width=96))
    times = 1305031102.175304 + np.cumsum(np.r_[0.0, np.full(16, 0.033)]) + np.arange(17) * 1e-6
    frames = tmp_path / "rgb"
    frames.mkdir()
    for time, image in zip(times, seq.rgb.numpy()):
        iio.imwrite(frames / f"{time:.6f}.png", image)
        (frames / f"._{time:.6f}.png").write_bytes(b"\0\5\26\7")
    write_tum(tmp_path / "groundtruth.txt", seq.c2w, torch.from_numpy(np.round(times, 6)))
    assert_ok(sora3r("reconstruct", "rgb", "-o", "out", "--formats", "npz", "tum", cwd=tmp_path))
    rec = read_npz(tmp_path / "out" / "reconstruction.npz")
    np.testing.assert_allclose(rec.timestamps.numpy(), np.round(times, 6), rtol=0, atol=1e-7)
    scores = evaluate_trajectory_files(tmp_path / "out" / "trajectory_tum.txt", tmp_path / "groundtruth.txt")
    # Associated frame for frame: the same ATE as pairing the arrays index by index (whatever the model's accuracy).
    paired = pose_metrics(rec.c2w, seq.c2w)
    assert scores["num_poses"] == 17 and abs(scores["ate"] - paired["ate"]) < 1e-4 * max(1.0, paired["ate"])


@pytest.mark.slow
def test_inputs_that_are_not_what_they_seem_give_one_line(tmp_path):
    (tmp_path / "notes.mp4").write_text("shopping list\n")
    whole = _write_pyav(tmp_path / "whole.mp4", np.stack([_blocks(64, 96, s) for s in range(24)]), faststart=True)
    (tmp_path / "cut.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    whole.unlink()
    _write_audio_only(tmp_path / "voice.mp4")
    (tmp_path / "one").mkdir()
    iio.imwrite(tmp_path / "one" / "0001.png", np.zeros((64, 96, 3), np.uint8))
    cases = {
        "notes.mp4": ["notes.mp4: not a readable video file"],
        "cut.mp4": ["cut.mp4: video file is truncated", "of its 24 frames decode", "--max-frames"],
        "voice.mp4": ["voice.mp4: no video stream (the file holds audio)"],
        "one": ["one: 1 frame;", "at least 17"],
    }
    inputs = {p.name for p in tmp_path.iterdir()}
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda name: sora3r("reconstruct", name, "-o", f"out_{name}", cwd=tmp_path), cases))
    for mentions, result in zip(cases.values(), results):
        assert_user_error(result, *mentions)
    assert_nothing_written(tmp_path, inputs)


@pytest.mark.slow
def test_demo_on_the_pure_pan_clip_reports_undefined_translation_scores(tmp_path):
    """Held-out clip 2 is a pure pan: the demo finishes, scores RPE-rot and depth, and marks ATE / RPE-trans
    undefined for every method instead of dying after the whole run."""
    import json

    result = sora3r("demo", "--clip", 2, "-o", "out", cwd=tmp_path)
    assert_ok(result)
    assert "undefined" in result.stdout
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    for name, scores in metrics.items():
        assert scores["ate"] is None and scores["rpe_trans"] is None and "coincide" in scores["undefined"], name
        assert scores["rpe_rot"] >= 0 and 0 <= scores["abs_rel"] < 2, name
    assert metrics["oracle"]["rpe_rot"] < 1e-3 and (tmp_path / "out" / "trajectory.png").stat().st_size > 0
    assert read_npz(tmp_path / "out" / "reconstruction.npz").timestamps.tolist() == pytest.approx(
        [0.1 * i for i in range(17)])
