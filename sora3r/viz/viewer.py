"""Interactive 4D viewer of a `Reconstruction` in the browser (viser).

One point cloud and one camera frustum (showing its frame) per timestep, and the camera path through all frames. The
view opens framed on the cloud (`initial_view`), looking the way the first camera looks, from a little above and
behind it, with the first frame's points (those shown at open) filling most of the window. Controls: a timestep slider, play and playback speed, point size, "all frames" (every frame's points at
once) and, when the reconstruction has a confidence, a minimum-confidence slider that hides less confident points.
The scene is shown in world coordinates (frame-0 camera, OpenCV axes) under a root node rotated so that -y is up.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np
import viser
from scipy.spatial.transform import Rotation

from sora3r.types import Reconstruction

__all__ = ["ViewerCamera", "initial_view", "serve"]

# Rotation of the root node: OpenCV world (y down, z forward) -> viser world (z up).
_OPENCV_TO_Z_UP = Rotation.from_euler("x", -90, degrees=True)
POINT_SPACINGS = 2.0  # a point's size in pixel-grid steps at its depth, so neighbouring points overlap a little
FRUSTUM_SCALE = 0.1  # frustum depth relative to the scene radius (median distance of frame 0's points)
THUMBNAIL_SIZE = 256  # longest side, in pixels, of the frame image drawn in each frustum (at most)
DEFAULT_FPS, MAX_FPS = 10, 30  # playback speed slider
VIEW_FOV_DEG = 50.0  # vertical field of view of the browser's camera
VIEW_ASPECT = 16 / 9  # window aspect assumed for framing (a taller window is framed by the vertical fov alone)
VIEW_FILL = 0.85  # the framed points span this fraction of the window in the binding direction
VIEW_PITCH = 0.35  # view direction = first camera's forward + this much of its "down": seen from above and behind
PATH_COLOUR = (255, 90, 30)


@dataclass
class ViewerCamera:
    """The browser's initial camera, in the reconstruction's world (OpenCV axes): ``position``, the point it looks
    at and its ``up`` direction (float64 (3,) each), and its vertical field of view in degrees."""

    position: np.ndarray
    look_at: np.ndarray
    up: np.ndarray
    fov_deg: float = VIEW_FOV_DEG


def initial_view(points: np.ndarray, c2w0: np.ndarray, fov_deg: float = VIEW_FOV_DEG, aspect: float = VIEW_ASPECT,
                 fill: float = VIEW_FILL) -> ViewerCamera:
    """A camera that frames ``points`` ``(N, 3)``: it looks along the first camera's forward axis (tilted down by
    `VIEW_PITCH`), with the first camera's up, at the middle of the points' central box (2nd-98th percentile across
    the view, median along it), from the nearest distance at which all but the outer 2 % of the points on each side
    fit in ``fill`` of the window (``fov_deg`` vertical, ``aspect`` = width / height) in the binding direction.

    Raises:
        ValueError: no finite points.
    """
    points = points[np.isfinite(points).all(axis=1)].astype(np.float64)
    if len(points) == 0:
        raise ValueError("no finite points to frame")
    forward, down = c2w0[:3, 2], c2w0[:3, 1]
    direction = forward + VIEW_PITCH * down
    direction /= np.linalg.norm(direction)
    right = np.cross(down, direction)
    right /= np.linalg.norm(right)
    up = np.cross(right, direction)  # the first camera's up, made orthogonal to the view direction
    centre = np.median(points, axis=0)
    lateral = np.stack([(points - centre) @ right, (points - centre) @ up], axis=1)
    low, high = np.percentile(lateral, [2.0, 98.0], axis=0)
    centre = centre + (low[0] + high[0]) / 2 * right + (low[1] + high[1]) / 2 * up  # the middle of the central box
    offset = points - centre
    lateral = np.stack([offset @ right, offset @ up], axis=1)
    along = offset @ direction
    half_tan = np.array([aspect, 1.0]) * math.tan(math.radians(fov_deg) / 2) * fill

    def overflow(distance: float) -> bool:  # do the central points reach past the framed part of the window?
        depth = np.maximum(along + distance, 1e-9 * distance)
        extent = np.percentile(np.abs(lateral) / depth[:, None], 98.0, axis=0)
        return bool((extent > half_tan).any())

    near, far = 1e-6, 1.0 + float(np.abs(offset).max())
    while overflow(far):
        far *= 2.0
    for _ in range(50):  # bisection on the distance from the centre
        middle = 0.5 * (near + far)
        near, far = (middle, far) if overflow(middle) else (near, middle)
    return ViewerCamera(position=centre - far * direction, look_at=centre, up=up, fov_deg=fov_deg)


@dataclass
class _Frame:
    """One timestep's points (``float32 (N, 3)``), colours (``uint8 (N, 3)``) and confidence (``(N,)`` or None)."""

    points: np.ndarray
    colours: np.ndarray
    confidence: np.ndarray | None

    def above(self, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        keep = slice(None) if self.confidence is None else self.confidence >= threshold
        return self.points[keep], self.colours[keep]


def _frame_points(rec: Reconstruction, t: int, stride: int) -> _Frame:
    """Valid points of frame ``t`` on a ``stride`` grid, with their colours and confidence."""
    points = rec.points[t, ::stride, ::stride].cpu().numpy().reshape(-1, 3)
    keep = np.isfinite(points).all(axis=1)
    if rec.valid is not None:
        keep &= rec.valid[t, ::stride, ::stride].cpu().numpy().reshape(-1)
    confidence = None
    if rec.confidence is not None:
        confidence = rec.confidence[t, ::stride, ::stride].cpu().numpy().reshape(-1)[keep]
    return _Frame(points[keep].astype(np.float32), rec.rgb[t, ::stride, ::stride].cpu().numpy().reshape(-1, 3)[keep],
                  confidence)


def default_point_size(rec: Reconstruction, frames: list[_Frame], stride: int) -> float:
    """World size of a point: `POINT_SPACINGS` times the distance between neighbouring pixels' points at the median
    depth of the first frame (``depth * stride / fx``)."""
    c2w0 = rec.c2w[0].cpu().double().numpy()
    depth = (frames[0].points - c2w0[:3, 3]) @ c2w0[:3, 2] if len(frames[0].points) else np.ones(1)
    median = float(np.median(depth[depth > 0])) if (depth > 0).any() else 1.0
    return POINT_SPACINGS * median * stride / float(rec.K[0, 0])


def _add_timesteps(server: viser.ViserServer, rec: Reconstruction, frames: list[_Frame], point_size: float,
                   radius: float) -> tuple[list, list]:
    """One frame node per timestep holding its point cloud and camera frustum (only timestep 0 visible), and the
    camera path. Returns ``(frame nodes, point clouds)``."""
    height, width = rec.points.shape[1:3]
    c2w = rec.c2w.detach().cpu().double().numpy()
    fov_y = 2.0 * math.atan2(height / 2.0, float(rec.K[1, 1]))
    thumbnail_step = max(1, max(height, width) // THUMBNAIL_SIZE)
    frame_nodes, clouds = [], []
    for t, frame in enumerate(frames):
        frame_nodes.append(server.scene.add_frame(f"/world/t{t}", show_axes=False, visible=t == 0))
        clouds.append(server.scene.add_point_cloud(f"/world/t{t}/points", points=frame.points, colors=frame.colours,
                                                   point_size=point_size))
        server.scene.add_camera_frustum(
            f"/world/t{t}/camera", fov=fov_y, aspect=width / height, scale=FRUSTUM_SCALE * radius,
            image=rec.rgb[t, ::thumbnail_step, ::thumbnail_step].cpu().numpy(),
            wxyz=Rotation.from_matrix(c2w[t, :3, :3]).as_quat(scalar_first=True), position=c2w[t, :3, 3])
    if len(c2w) > 1:
        server.scene.add_spline_catmull_rom("/world/camera_path", points=c2w[:, :3, 3], color=PATH_COLOUR,
                                            thickness=2.0, thickness_units="screen")
    return frame_nodes, clouds


def _add_controls(server: viser.ViserServer, frame_nodes: list, clouds: list, frames: list[_Frame],
                  point_size: float) -> dict:
    """Timestep slider, play checkbox, playback speed, point size, all frames and minimum confidence (hidden without
    confidence), wired to the scene nodes; returns the handles by name."""
    num_frames = len(frame_nodes)
    with server.gui.add_folder("Playback"):
        timestep = server.gui.add_slider("Timestep", min=0, max=num_frames - 1, step=1, initial_value=0)
        playing = server.gui.add_checkbox("Playing", initial_value=False)
        fps = server.gui.add_slider("FPS", min=1, max=MAX_FPS, step=1, initial_value=DEFAULT_FPS)
    size = server.gui.add_slider("Point size", min=0.1 * point_size, max=10 * point_size, step=0.05 * point_size,
                                 initial_value=point_size)  # 0.1x to 10x the initial size
    all_frames = server.gui.add_checkbox("All frames", initial_value=False)
    has_confidence = frames[0].confidence is not None
    threshold = server.gui.add_slider("Min confidence", min=0.0, max=1.0, step=0.01, initial_value=0.0,
                                      visible=has_confidence)

    def show() -> None:
        with server.atomic():
            for t, node in enumerate(frame_nodes):
                node.visible = all_frames.value or t == timestep.value

    timestep.on_update(lambda _event: show())
    all_frames.on_update(lambda _event: show())

    @size.on_update
    def _(_event) -> None:
        for cloud in clouds:
            cloud.point_size = size.value

    @threshold.on_update
    def _(_event) -> None:
        with server.atomic():
            for cloud, frame in zip(clouds, frames):
                cloud.points, cloud.colors = frame.above(threshold.value)

    _add_player(timestep, playing, fps)
    return {"timestep": timestep, "playing": playing, "fps": fps, "point_size": size, "all_frames": all_frames,
            "min_confidence": threshold}


def _add_player(timestep, playing, fps) -> None:
    """Advance ``timestep`` at ``fps`` in a background thread while ``playing`` is checked."""
    player: dict[str, threading.Thread | None] = {"thread": None}

    def play() -> None:
        while playing.value:
            timestep.value = (timestep.value + 1) % (int(timestep.max) + 1)
            time.sleep(1.0 / fps.value)

    @playing.on_update
    def _(_event) -> None:
        thread = player["thread"]
        if playing.value and (thread is None or not thread.is_alive()):
            player["thread"] = threading.Thread(target=play, daemon=True)
            player["thread"].start()


def _frame_view(server: viser.ViserServer, camera: ViewerCamera) -> None:
    """Set the browser's initial camera (viser world = the root rotation applied to the reconstruction's world)."""
    server.initial_camera.position = _OPENCV_TO_Z_UP.apply(camera.position)
    server.initial_camera.look_at = _OPENCV_TO_Z_UP.apply(camera.look_at)
    server.initial_camera.up = _OPENCV_TO_Z_UP.apply(camera.up)
    server.initial_camera.fov = math.radians(camera.fov_deg)


def serve(
    rec: Reconstruction, port: int = 8080, host: str = "127.0.0.1", stride: int = 2, block: bool = True
) -> viser.ViserServer | None:
    """Serve ``rec`` on ``http://host:port``; ``stride`` subsamples each frame's pixel grid.

    With ``block`` it serves until Ctrl+C (then stops the server and returns ``None``); otherwise it
    returns the running `viser.ViserServer` (call ``.stop()`` on it when done).

    Raises:
        ValueError: ``stride < 1``, a reconstruction without frames, or without a finite valid point.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if rec.num_frames < 1:
        raise ValueError("reconstruction has no frames")
    frames = [_frame_points(rec, t, stride) for t in range(rec.num_frames)]
    camera = initial_view(frames[0].points, rec.c2w[0].cpu().double().numpy())  # framed on what shows at open
    radius = float(np.median(np.linalg.norm(frames[0].points, axis=1))) if len(frames[0].points) else 1.0
    point_size = default_point_size(rec, frames, stride)

    server = viser.ViserServer(host=host, port=port, verbose=False)
    _frame_view(server, camera)
    server.scene.add_frame("/world", show_axes=False, wxyz=_OPENCV_TO_Z_UP.as_quat(scalar_first=True))
    frame_nodes, clouds = _add_timesteps(server, rec, frames, point_size, radius if radius > 0 else 1.0)
    _add_controls(server, frame_nodes, clouds, frames, point_size)
    if not block:
        return server
    try:
        server.sleep_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return None
