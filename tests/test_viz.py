"""Trajectory plot output and the viser viewer's lifecycle."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image
from test_export import make_reconstruction

from sora3r.viz import plot_trajectories, serve


def test_plot_trajectories_draws_both_paths(tmp_path):
    rec = make_reconstruction()
    gt = rec.c2w.clone()
    gt[:, :3, 3] += 0.5
    path = plot_trajectories(tmp_path / "plots" / "traj.png", rec.c2w, gt, title="test")
    image = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert image.shape == (480, 1000, 3)
    blue = np.array([31, 119, 180])  # matplotlib tab:blue (estimate)
    gray = np.array([127, 127, 127])  # tab:gray (ground truth)
    assert (np.abs(image - blue).sum(-1) < 30).sum() > 50
    assert (np.abs(image - gray).sum(-1) < 30).sum() > 50
    assert [p.name for p in path.parent.iterdir()] == ["traj.png"]
    with pytest.raises(ValueError, match="est_c2w must have shape"):
        plot_trajectories(tmp_path / "bad.png", torch.eye(4))


def test_pose_plot_shows_what_ate_measures(tmp_path, monkeypatch):
    """The estimate is drawn after the Sim(3) alignment ATE uses (a scaled, turned copy of the ground truth lands on
    it), labelled so; a pure rotation, where no Sim(3) exists, is drawn from the ground truth's first camera."""
    from scipy.spatial.transform import Rotation

    from sora3r.viz import plots

    drawn = {}
    monkeypatch.setattr(plots, "plot_trajectories", lambda path, est, gt, title, est_label: drawn.update(
        est=np.asarray(est), gt=np.asarray(gt), label=est_label))
    rng = np.random.default_rng(0)
    gt = np.tile(np.eye(4), (12, 1, 1))
    gt[:, :3, :3] = Rotation.from_rotvec(rng.normal(scale=0.1, size=(12, 3))).as_matrix()
    gt[:, :3, 3] = np.cumsum(rng.normal(size=(12, 3)), axis=0)
    similarity = np.eye(4)
    similarity[:3, :3] = Rotation.from_rotvec([0.3, -1.0, 0.2]).as_matrix()
    similarity[:3, 3] = [4.0, 0.0, -2.0]
    estimate = similarity @ gt
    estimate[:, :3, 3] *= 0.2  # the 6x-short, turned estimate of an unaligned plot
    plots.plot_pose_alignment(tmp_path / "p.png", torch.from_numpy(estimate), torch.from_numpy(gt), "sim3", "t")
    np.testing.assert_allclose(drawn["est"], gt, atol=1e-9)
    assert "Sim(3)-aligned" in drawn["label"]
    pan = gt.copy()
    pan[:, :3, 3] = [1.0, 2.0, 3.0]
    plots.plot_pose_alignment(tmp_path / "p.png", torch.from_numpy(estimate), torch.from_numpy(pan), "sim3", "t")
    np.testing.assert_allclose(drawn["est"][0], pan[0], atol=1e-9)
    assert "centres coincide" in drawn["label"]
    plots.plot_pose_alignment(tmp_path / "p.png", torch.from_numpy(estimate), torch.from_numpy(gt), "none", "t")
    np.testing.assert_allclose(drawn["est"], estimate)
    assert "unaligned" in drawn["label"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_viewer_serves_http_then_stops():
    port = _free_port()
    server = serve(make_reconstruction(), port=port, stride=1, block=False)
    try:
        assert server.get_port() == port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200
            assert b"<html" in response.read().lower()
    finally:
        server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
