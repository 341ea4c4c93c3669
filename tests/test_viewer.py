"""The viser viewer: framing of the initial view, point size, and the controls (all frames, minimum confidence)."""

from __future__ import annotations

import math
import socket

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from test_export import make_reconstruction

from sora3r.viz import viewer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _project(points: np.ndarray, camera: viewer.ViewerCamera, aspect: float) -> np.ndarray:
    """Points in normalised window coordinates of ``camera`` ([-1, 1] across the window in x and y)."""
    forward = camera.look_at - camera.position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, camera.up)  # up x forward would point left
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    cam = points - camera.position
    depth = cam @ forward
    assert (depth > 0).all(), "a framed point lies behind the viewer's camera"
    tan_y = math.tan(math.radians(camera.fov_deg) / 2)
    return np.stack([cam @ right / depth / (aspect * tan_y), cam @ up / depth / tan_y], axis=1)


@pytest.mark.parametrize("shape", ["room", "street"])
def test_initial_view_fills_most_of_the_window(shape):
    rng = np.random.default_rng(0)
    # OpenCV world of the first camera (x right, y down, z forward): a room 4 m wide in front of the camera, or a
    # long street 3 m wide running 40 m ahead.
    size = {"room": (4.0, 3.0, 4.0), "street": (3.0, 2.0, 40.0)}[shape]
    points = rng.uniform(-0.5, 0.5, (20000, 3)) * size + [0.0, 0.0, 2.0 + size[2] / 2]
    camera = viewer.initial_view(points, np.eye(4))
    assert camera.up @ [0, -1, 0] > 0.9  # upright: the first camera's up (-y)
    window = _project(points, camera, viewer.VIEW_ASPECT)
    inside = (np.abs(window) <= 1).all(axis=1).mean()
    assert inside > 0.96
    extent = np.percentile(np.abs(window), 98, axis=0).max()  # the binding direction
    assert extent == pytest.approx(viewer.VIEW_FILL, abs=0.02)  # ~85 % of the window, not ~15 %
    with pytest.raises(ValueError, match="no finite points"):
        viewer.initial_view(np.full((3, 3), np.nan), np.eye(4))


def _view_reconstruction() -> "viewer.Reconstruction":
    rec = make_reconstruction()
    rec.confidence = torch.linspace(0, 1, rec.confidence.numel()).reshape(rec.confidence.shape)
    return rec


def test_serve_opens_framed_with_points_that_touch():
    rec = _view_reconstruction()
    server = viewer.serve(rec, port=_free_port(), stride=1, block=False)
    try:
        frames = [viewer._frame_points(rec, t, 1) for t in range(rec.num_frames)]
        expected = viewer.initial_view(frames[0].points, rec.c2w[0].double().numpy())
        to_viser = Rotation.from_euler("x", -90, degrees=True)
        np.testing.assert_allclose(server.initial_camera.position, to_viser.apply(expected.position), atol=1e-6)
        np.testing.assert_allclose(server.initial_camera.look_at, to_viser.apply(expected.look_at), atol=1e-6)
        assert server.initial_camera.fov == pytest.approx(math.radians(viewer.VIEW_FOV_DEG))
    finally:
        server.stop()
    # A point spans 2 pixel steps at the median depth of the first frame, so neighbours overlap.
    size = viewer.default_point_size(rec, frames, stride=2)
    depth = np.median(rec.depth[0][rec.valid[0]].numpy())
    assert size == pytest.approx(2.0 * depth * 2 / rec.K[0, 0].item(), rel=0.02)


def test_controls_show_all_frames_and_hide_unconfident_points():
    rec = _view_reconstruction()
    server = viewer.viser.ViserServer(host="127.0.0.1", port=_free_port(), verbose=False)
    try:
        frames = [viewer._frame_points(rec, t, 1) for t in range(rec.num_frames)]
        nodes, clouds = viewer._add_timesteps(server, rec, frames, 0.01, 1.0)
        controls = viewer._add_controls(server, nodes, clouds, frames, 0.01)
        assert [node.visible for node in nodes] == [True, False, False]
        controls["timestep"].value = 2
        assert [node.visible for node in nodes] == [False, False, True]
        controls["all_frames"].value = True
        assert all(node.visible for node in nodes)

        assert controls["min_confidence"].visible
        controls["min_confidence"].value = 0.5
        for t, cloud in enumerate(clouds):
            keep = rec.valid[t] & (rec.confidence[t] >= 0.5)
            assert len(cloud.points) == int(keep.sum())
            np.testing.assert_allclose(cloud.points, rec.points[t][keep].numpy(), rtol=1e-3)  # sent as float16
            np.testing.assert_array_equal(cloud.colors, rec.rgb[t][keep].numpy())
        assert sum(len(c.points) for c in clouds) < int(rec.valid.sum())  # something was hidden
    finally:
        server.stop()

    rec.confidence = None  # no confidence: the slider is hidden
    server = viewer.viser.ViserServer(host="127.0.0.1", port=_free_port(), verbose=False)
    try:
        frames = [viewer._frame_points(rec, t, 1) for t in range(rec.num_frames)]
        controls = viewer._add_controls(server, *viewer._add_timesteps(server, rec, frames, 0.01, 1.0), frames, 0.01)
        assert not controls["min_confidence"].visible
    finally:
        server.stop()
