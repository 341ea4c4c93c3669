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
