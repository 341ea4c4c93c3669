"""Interactive 4D viewer of a `Reconstruction` in the browser (viser).

One point cloud and one camera frustum (showing its frame) per timestep; a slider picks the timestep,
a checkbox plays the clip, sliders set the playback speed and point size. The scene is shown in
world coordinates (frame-0 camera, OpenCV axes) under a root node rotated so that -y is up.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import viser
from scipy.spatial.transform import Rotation

from sora3r.types import Reconstruction

__all__ = ["serve"]

# Rotation of the root node: OpenCV world (y down, z forward) -> viser world (z up).
_OPENCV_TO_Z_UP_WXYZ = Rotation.from_euler("x", -90, degrees=True).as_quat(scalar_first=True)
# Sizes relative to the scene radius (median distance of frame 0's points to the origin): points of 0.4 % of it per
# pixel of grid stride, frustums a tenth of it.
POINT_SIZE = 0.004
FRUSTUM_SCALE = 0.1
THUMBNAIL_SIZE = 256  # longest side, in pixels, of the frame image drawn in each frustum (at most)
DEFAULT_FPS, MAX_FPS = 10, 30  # playback speed slider


def _frame_points(rec: Reconstruction, t: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Valid points ``float32 (N, 3)`` and colours ``uint8 (N, 3)`` of frame ``t`` on a ``stride`` grid."""
    points = rec.points[t, ::stride, ::stride].cpu().numpy().reshape(-1, 3)
    colours = rec.rgb[t, ::stride, ::stride].cpu().numpy().reshape(-1, 3)
    keep = np.isfinite(points).all(axis=1)
    if rec.valid is not None:
        keep &= rec.valid[t, ::stride, ::stride].cpu().numpy().reshape(-1)
    return points[keep].astype(np.float32), colours[keep]


def _scene_radius(rec: Reconstruction, stride: int) -> float:
    """Median distance of the first frame's points to the origin (sets frustum and point sizes)."""
    points, _ = _frame_points(rec, 0, stride)
    radius = float(np.median(np.linalg.norm(points, axis=1))) if len(points) else 1.0
    return radius if radius > 0 else 1.0


def _add_timesteps(server: viser.ViserServer, rec: Reconstruction, stride: int, point_size: float,
                   radius: float) -> tuple[list, list]:
    """One frame node per timestep holding its point cloud and camera frustum (only timestep 0 visible).

    Returns ``(frame nodes, point clouds)``.
    """
    height, width = rec.points.shape[1:3]
    K = rec.K.detach().cpu().double().numpy()
    c2w = rec.c2w.detach().cpu().double().numpy()
    fov_y = 2.0 * math.atan2(height / 2.0, K[1, 1])
    thumbnail_step = max(1, max(height, width) // THUMBNAIL_SIZE)
    frame_nodes, clouds = [], []
    for t in range(rec.num_frames):
        frame_nodes.append(server.scene.add_frame(f"/world/t{t}", show_axes=False, visible=t == 0))
        points, colours = _frame_points(rec, t, stride)
        clouds.append(server.scene.add_point_cloud(f"/world/t{t}/points", points=points, colors=colours,
                                                   point_size=point_size))
        server.scene.add_camera_frustum(
            f"/world/t{t}/camera",
            fov=fov_y,
            aspect=width / height,
            scale=FRUSTUM_SCALE * radius,
            image=rec.rgb[t, ::thumbnail_step, ::thumbnail_step].cpu().numpy(),
            wxyz=Rotation.from_matrix(c2w[t, :3, :3]).as_quat(scalar_first=True),
            position=c2w[t, :3, 3],
        )
    return frame_nodes, clouds


def _add_controls(server: viser.ViserServer, frame_nodes: list, clouds: list, point_size: float) -> None:
    """Timestep slider, play checkbox, playback speed and point size, wired to the scene nodes."""
    num_frames = len(frame_nodes)
    with server.gui.add_folder("Playback"):
        timestep = server.gui.add_slider("Timestep", min=0, max=num_frames - 1, step=1, initial_value=0)
        playing = server.gui.add_checkbox("Playing", initial_value=False)
        fps = server.gui.add_slider("FPS", min=1, max=MAX_FPS, step=1, initial_value=DEFAULT_FPS)
    size = server.gui.add_slider("Point size", min=0.1 * point_size, max=10 * point_size, step=0.05 * point_size,
                                 initial_value=point_size)  # 0.1x to 10x the initial size
    shown = {"t": 0}

    @timestep.on_update
    def _(_event) -> None:
        with server.atomic():
            frame_nodes[shown["t"]].visible = False
            frame_nodes[timestep.value].visible = True
        shown["t"] = timestep.value

    @size.on_update
    def _(_event) -> None:
        for cloud in clouds:
            cloud.point_size = size.value

    player: dict[str, threading.Thread | None] = {"thread": None}

    def play() -> None:
        while playing.value:
            timestep.value = (timestep.value + 1) % num_frames
            time.sleep(1.0 / fps.value)

    @playing.on_update
    def _(_event) -> None:
        thread = player["thread"]
        if playing.value and (thread is None or not thread.is_alive()):
            player["thread"] = threading.Thread(target=play, daemon=True)
            player["thread"].start()


def serve(
    rec: Reconstruction, port: int = 8080, host: str = "127.0.0.1", stride: int = 2, block: bool = True
) -> viser.ViserServer | None:
    """Serve ``rec`` on ``http://host:port``; ``stride`` subsamples each frame's pixel grid.

    With ``block`` it serves until Ctrl+C (then stops the server and returns ``None``); otherwise it
    returns the running `viser.ViserServer` (call ``.stop()`` on it when done).

    Raises:
        ValueError: ``stride < 1`` or a reconstruction without frames.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if rec.num_frames < 1:
        raise ValueError("reconstruction has no frames")
    radius = _scene_radius(rec, stride)
    point_size = POINT_SIZE * radius * stride

    server = viser.ViserServer(host=host, port=port, verbose=False)
    server.scene.add_frame("/world", show_axes=False, wxyz=_OPENCV_TO_Z_UP_WXYZ)
    frame_nodes, clouds = _add_timesteps(server, rec, stride, point_size, radius)
    _add_controls(server, frame_nodes, clouds, point_size)
    if not block:
        return server
    try:
        server.sleep_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return None
