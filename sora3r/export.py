"""Writers for a `Reconstruction`: coloured point clouds (PLY, GLB), TUM trajectories, COLMAP text
models, a lossless npz bundle (with its reader), a colourised depth video, a depth contact sheet, 16-bit depth PNGs
and the intrinsics as text.

Every writer creates parent folders, writes to a hidden temp file next to the target and renames it
into place (``os.replace``), so a crash never leaves a half-written file behind. Inputs that break the
package conventions (wrong shapes, NaNs in poses or exported points) raise a one-line ``ValueError``.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from sora3r.fs import atomic_output_path
from sora3r.geometry.projection import field_of_view
from sora3r.geometry.transforms import pose_array
from sora3r.types import Reconstruction

__all__ = [
    "EXPORT_FORMATS",
    "export_all",
    "read_npz",
    "write_colmap_text",
    "write_depth_png",
    "write_depth_sheet",
    "write_depth_video",
    "write_glb",
    "write_intrinsics",
    "write_npz",
    "write_ply",
    "write_tum",
]

EXPORT_FORMATS = ("npz", "ply", "glb", "tum", "colmap", "depth_video", "depth_sheet", "depth_png", "intrinsics")
DEPTH_SHEET_FRAMES = 6  # frames of the video in depth_sheet.png, spread evenly from the first to the last

FRUSTUM_FRACTION = 0.05  # default depth of a camera frustum in scene.glb, relative to the median point distance
# OpenCV camera axes (y down, z forward) -> glTF / OpenGL axes (y up, z backward).
_OPENCV_TO_GLTF = np.diag([1.0, -1.0, -1.0, 1.0])

_NPZ_FORMAT_VERSION = 1
_NPZ_REQUIRED = ("points", "depth", "c2w", "K", "rgb", "metadata")
_NPZ_OPTIONAL = ("confidence", "valid", "timestamps")


def _numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _check_reconstruction(rec: Reconstruction, target: Path) -> None:
    """Raise ValueError (naming the file ``target`` being written) if the fields of ``rec`` disagree in shape or
    hold NaNs where it matters."""
    points = rec.points
    if points.ndim != 4 or points.shape[-1] != 3:
        raise ValueError(f"{target}: points must have shape (T, H, W, 3), got {tuple(points.shape)}")
    t, h, w = points.shape[:3]
    expected = {
        "depth": (t, h, w),
        "rgb": (t, h, w, 3),
        "confidence": (t, h, w),
        "valid": (t, h, w),
    }
    for name, shape in expected.items():
        value = getattr(rec, name)
        if value is not None and tuple(value.shape) != shape:
            raise ValueError(f"{target}: {name} must have shape {shape} to match points, got {tuple(value.shape)}")
    if rec.rgb.dtype != torch.uint8:
        raise ValueError(f"{target}: rgb must be uint8, got {rec.rgb.dtype}")
    if rec.valid is not None and rec.valid.dtype != torch.bool:
        raise ValueError(f"{target}: valid must be bool, got {rec.valid.dtype}")
    c2w = pose_array(rec.c2w, f"{target}: c2w")
    if c2w.shape[0] != t:
        raise ValueError(f"{target}: c2w has {c2w.shape[0]} poses but points have {t} frames")
    if tuple(rec.K.shape) != (3, 3):
        raise ValueError(f"{target}: K must have shape (3, 3), got {tuple(rec.K.shape)}")
    if not torch.isfinite(rec.K).all():
        raise ValueError(f"{target}: K contains NaN or infinite values")
    if rec.timestamps is not None:
        _check_timestamps(_numpy(rec.timestamps), t, target)


def _check_timestamps(stamps: np.ndarray, num_frames: int, target: Path) -> None:
    if stamps.shape != (num_frames,):
        raise ValueError(f"{target}: timestamps must have shape ({num_frames},), got {tuple(stamps.shape)}")
    if not np.isfinite(stamps).all():
        raise ValueError(f"{target}: timestamps contain NaN or infinite values")


@dataclass
class _SelectedPoints:
    """Pixels chosen for export, flattened: N points with their colour, frame and pixel."""

    xyz: np.ndarray  # float32 (N, 3) world coordinates
    rgb: np.ndarray  # uint8 (N, 3)
    frame: np.ndarray  # int64 (N,) frame index
    pixel: np.ndarray  # float64 (N, 2) (u, v) in OpenCV pixel coordinates of that frame
    confidence: np.ndarray | None  # float32 (N,) the reconstruction's confidence, if it has one


def _select_points(rec: Reconstruction, stride: int, min_confidence: float | None, target: Path) -> _SelectedPoints:
    """Valid (and confident enough) pixels on a ``stride`` grid of every frame (errors name ``target``)."""
    _check_reconstruction(rec, target)
    if stride < 1:
        raise ValueError(f"{target}: stride must be >= 1, got {stride}")
    t, h, w = rec.points.shape[:3]
    keep = torch.zeros((t, h, w), dtype=torch.bool)
    keep[:, ::stride, ::stride] = True
    if rec.valid is not None:
        keep &= rec.valid.cpu()
    if min_confidence is not None:
        if rec.confidence is None:
            raise ValueError(f"{target}: min_confidence given but the reconstruction has no confidence")
        keep &= rec.confidence.cpu() >= min_confidence
    frame, v, u = (i.numpy() for i in torch.nonzero(keep, as_tuple=True))
    xyz = _numpy(rec.points[keep]).astype(np.float32)
    if not np.isfinite(xyz).all():
        bad = int((~np.isfinite(xyz).all(axis=1)).sum())
        raise ValueError(f"{target}: {bad} exported points are NaN or infinite (mark them invalid in rec.valid)")
    return _SelectedPoints(
        xyz=xyz,
        rgb=_numpy(rec.rgb[keep]),
        frame=frame,
        pixel=np.stack([u, v], axis=1).astype(np.float64),
        confidence=None if rec.confidence is None else _numpy(rec.confidence[keep]).astype(np.float32),
    )


def write_ply(
    path: str | os.PathLike, rec: Reconstruction, stride: int = 1, min_confidence: float | None = None
) -> Path:
    """Write the valid points of all frames as one coloured binary PLY point cloud.

    ``stride`` subsamples the pixel grid of each frame; ``min_confidence`` drops pixels whose
    ``rec.confidence`` is below it. Coordinates are world (frame-0 camera, OpenCV axes). Vertex properties:
    ``x y z`` (float), ``red green blue alpha`` (uchar) and, when ``rec.confidence`` is set, ``confidence`` (float,
    in [0, 1]; CloudCompare and MeshLab show it as a scalar field, plyfile and trimesh read it by name).
    """
    import trimesh  # here, not at the top: it takes ~1.3 s to import, and every command imports this module

    selected = _select_points(rec, stride, min_confidence, Path(path))
    # A Trimesh without faces: trimesh writes its vertex_attributes as extra vertex properties (a PointCloud has
    # none); the face element it declares holds 0 faces, and readers load the file as a point cloud.
    cloud = trimesh.Trimesh(selected.xyz, np.zeros((0, 3), dtype=np.int64), vertex_colors=selected.rgb,
                            process=False)
    if selected.confidence is not None:
        cloud.vertex_attributes["confidence"] = selected.confidence
    with atomic_output_path(path) as tmp:
        tmp.write_bytes(trimesh.exchange.ply.export_ply(cloud, encoding="binary"))
    return Path(path)


def _frustum_segments(c2w: np.ndarray, K: np.ndarray, hw: tuple[int, int], size: float) -> np.ndarray:
    """Line segments ``(T*8, 2, 3)`` of each camera's frustum: 4 rays to the image corners at depth
    ``size`` plus the image rectangle, in world coordinates."""
    h, w = hw
    corners_px = np.array([[-0.5, -0.5, 1], [w - 0.5, -0.5, 1], [w - 0.5, h - 0.5, 1], [-0.5, h - 0.5, 1]])
    corners_cam = size * corners_px @ np.linalg.inv(K).T  # (4, 3) at z = size
    corners_world = corners_cam @ c2w[:, :3, :3].transpose(0, 2, 1) + c2w[:, None, :3, 3]  # (T, 4, 3)
    centres = np.broadcast_to(c2w[:, None, :3, 3], corners_world.shape)
    rays = np.stack([centres, corners_world], axis=2)  # (T, 4, 2, 3)
    rectangle = np.stack([corners_world, np.roll(corners_world, -1, axis=1)], axis=2)  # (T, 4, 2, 3)
    return np.concatenate([rays, rectangle], axis=1).reshape(-1, 2, 3)


def write_glb(
    path: str | os.PathLike,
    rec: Reconstruction,
    stride: int = 1,
    min_confidence: float | None = None,
    cameras: bool = True,
    frustum_size: float | None = None,
) -> Path:
    """Write a binary glTF scene: the coloured points of all frames and (``cameras``) one wireframe
    frustum per camera.

    Vertices keep the world coordinates (OpenCV axes); the scene's root node flips y and z so glTF
    viewers (y up) show the scene upright. ``frustum_size`` is the frustum depth in world units
    (default: 5 % of the median point distance to the origin).
    """
    import trimesh  # see write_ply

    selected = _select_points(rec, stride, min_confidence, Path(path))
    scene = trimesh.Scene()
    scene.add_geometry(
        trimesh.PointCloud(selected.xyz, colors=selected.rgb), geom_name="points", transform=_OPENCV_TO_GLTF
    )
    if cameras:
        if frustum_size is None:
            radius = np.median(np.linalg.norm(selected.xyz, axis=1)) if len(selected.xyz) else 1.0
            frustum_size = FRUSTUM_FRACTION * (float(radius) if radius > 0 else 1.0)
        segments = _frustum_segments(
            _numpy(rec.c2w).astype(np.float64),
            _numpy(rec.K).astype(np.float64),
            tuple(rec.points.shape[1:3]),
            frustum_size,
        )
        scene.add_geometry(trimesh.load_path(segments), geom_name="cameras", transform=_OPENCV_TO_GLTF)
    with atomic_output_path(path) as tmp:
        scene.export(file_obj=str(tmp), file_type="glb")
    return Path(path)


def write_tum(
    path: str | os.PathLike, c2w: torch.Tensor | np.ndarray, timestamps: torch.Tensor | np.ndarray | None = None
) -> Path:
    """Write camera-to-world poses ``(T, 4, 4)`` as TUM lines ``t tx ty tz qx qy qz qw``.

    ``timestamps`` ``(T,)`` in seconds; frame indices when ``None``.
    """
    c2w = pose_array(c2w, f"{path}: c2w")
    stamps = np.arange(len(c2w), dtype=np.float64) if timestamps is None else _numpy(timestamps).astype(np.float64)
    _check_timestamps(stamps, len(c2w), Path(path))
    quat_xyzw = Rotation.from_matrix(c2w[:, :3, :3]).as_quat()
    rows = np.concatenate([stamps[:, None], c2w[:, :3, 3], quat_xyzw], axis=1)
    with atomic_output_path(path) as tmp:
        np.savetxt(tmp, rows, fmt="%.9f", header="timestamp tx ty tz qx qy qz qw")
    return Path(path)


def _reprojection_errors(selected: _SelectedPoints, w2c: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixel distance between each point projected into the frame that observed it and its pixel (COLMAP's "error"
    column); -1 for a point at z = 0, which has no finite projection."""
    xyz = selected.xyz.astype(np.float64)
    cam = np.einsum("nij,nj->ni", w2c[selected.frame, :3, :3], xyz) + w2c[selected.frame, :3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        projected = (cam @ K.T)[:, :2] / cam[:, 2:3]
    error = np.linalg.norm(projected - selected.pixel, axis=1)
    return np.where(np.isfinite(error), error, -1.0)


def _colmap_cameras(K: np.ndarray, height: int, width: int) -> str:
    """``cameras.txt``: one PINHOLE camera, principal point shifted by +0.5 px to COLMAP's pixel convention."""
    # .tolist() gives Python floats, whose repr is the shortest exact round-trip text.
    fx, fy, cx, cy = (K[[0, 1, 0, 1], [0, 1, 2, 2]] + [0.0, 0.0, 0.5, 0.5]).tolist()
    return ("# Camera list with one line of data per camera:\n#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n"
            f"1 PINHOLE {width} {height} {fx!r} {fy!r} {cx!r} {cy!r}\n")


def _colmap_images(w2c: np.ndarray, image_names: Sequence[str], selected: _SelectedPoints,
                   first_of_frame: np.ndarray) -> str:
    """``images.txt``: per image its world-to-camera pose line and its 2D points with the ids of their 3D points."""
    quat_xyzw = Rotation.from_matrix(w2c[:, :3, :3]).as_quat().tolist()
    translations = w2c[:, :3, 3].tolist()
    point_ids = np.arange(1, len(selected.frame) + 1)
    pixel_colmap = selected.pixel + 0.5
    lines = [
        "# Image list with two lines of data per image:",
        "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
        "#   POINTS2D[] as (X, Y, POINT3D_ID)",
    ]
    for i, name in enumerate(image_names):
        qx, qy, qz, qw = quat_xyzw[i]
        tx, ty, tz = translations[i]
        lines.append(f"{i + 1} {qw!r} {qx!r} {qy!r} {qz!r} {tx!r} {ty!r} {tz!r} 1 {name}")
        in_frame = slice(first_of_frame[i], first_of_frame[i + 1])
        observations = zip(pixel_colmap[in_frame].tolist(), point_ids[in_frame].tolist())
        lines.append(" ".join(f"{u!r} {v!r} {pid}" for (u, v), pid in observations))
    return "\n".join(lines) + "\n"


def _colmap_points(selected: _SelectedPoints, error: np.ndarray, first_of_frame: np.ndarray) -> str:
    """``points3D.txt``: each point with its colour, reprojection error and its one-observation track."""
    point_ids = np.arange(1, len(selected.frame) + 1)
    # Row of each point in its image's POINTS2D list (points are grouped by frame, in order).
    point2d_idx = np.arange(len(selected.frame)) - first_of_frame[selected.frame]
    lines = [
        "# 3D point list with one line of data per point:",
        "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)",
    ]
    columns = (point_ids, selected.xyz.astype(np.float64), selected.rgb, error, selected.frame, point2d_idx)
    for pid, (x, y, z), (r, g, b), err, frame, idx in zip(*(column.tolist() for column in columns)):
        lines.append(f"{pid} {x!r} {y!r} {z!r} {r} {g} {b} {err:.6g} {frame + 1} {idx}")
    return "\n".join(lines) + "\n"


def write_colmap_text(
    folder: str | os.PathLike,
    rec: Reconstruction,
    image_names: Sequence[str] | None = None,
    stride: int = 8,
    min_confidence: float | None = None,
    write_images: bool = True,
) -> Path:
    """Write a COLMAP text model (``cameras.txt``, ``images.txt``, ``points3D.txt``) into ``folder``.

    One PINHOLE camera shared by all frames. COLMAP puts the centre of the top-left pixel at
    (0.5, 0.5) where OpenCV puts it at (0, 0), so the principal point and the 2D points are shifted by
    +0.5 px. Each image line holds the world-to-camera pose (``qw qx qy qz tx ty tz``); its 2D point
    line lists the sampled pixels (every ``stride``-th row/column of valid pixels) with the id of the
    3D point they produced. Each 3D point has a one-observation track and, as its error, the
    reprojection error of that observation in pixels. With ``write_images`` the frames are also saved
    as PNG under ``folder/images/<name>`` so the model is ready for COLMAP-based tools. Format: COLMAP's
    documentation, "Output Format" (text models).
    """
    selected = _select_points(rec, stride, min_confidence, Path(folder))
    t, h, w = rec.points.shape[:3]
    if image_names is None:
        image_names = [f"{i:05d}.png" for i in range(t)]
    if len(image_names) != t:
        raise ValueError(f"{folder}: got {len(image_names)} image names for {t} frames")
    folder = Path(folder)
    w2c = np.linalg.inv(_numpy(rec.c2w).astype(np.float64))
    K = _numpy(rec.K).astype(np.float64)
    first_of_frame = np.searchsorted(selected.frame, np.arange(t + 1))
    texts = {
        "cameras.txt": _colmap_cameras(K, h, w),
        "images.txt": _colmap_images(w2c, image_names, selected, first_of_frame),
        "points3D.txt": _colmap_points(selected, _reprojection_errors(selected, w2c, K), first_of_frame),
    }
    for name, text in texts.items():
        with atomic_output_path(folder / name) as tmp:
            tmp.write_text(text)
    if write_images:
        for name, frame in zip(image_names, _numpy(rec.rgb)):
            with atomic_output_path(folder / "images" / name) as tmp:
                Image.fromarray(frame).save(tmp, format="PNG")
    return folder


DEPTH_VIDEO_MIN_WIDTH = 384  # depth.mp4 repeats each pixel k x k so that it is at least this wide
DEPTH_PNG_MAX = 65535  # 16-bit code of the largest depth of the video; 0 marks pixels without depth
DEPTH_SCALE_FILE = "depth_scale.json"


def _video_fps(timestamps: torch.Tensor | np.ndarray | None, default: float = 10.0) -> float:
    """Frame rate from frame times in seconds (1 / their median step) when that lies in [1, 120] fps; otherwise
    (no times, or frame indices of an image folder) ``default``."""
    if timestamps is None or len(timestamps) < 2:
        return default
    step = float(np.median(np.diff(_numpy(timestamps).astype(np.float64))))
    return 1.0 / step if 1.0 / 120 <= step <= 1.0 else default


def write_depth_video(path: str | os.PathLike, rec: Reconstruction, fps: float | None = None) -> Path:
    """Write the depth as a colour video (H.264 mp4 through PyAV, one frame at a time).

    Colours: inverse depth through matplotlib's perceptual ``inferno`` (bright = near, dark = far), with near and far
    fixed for the whole video (2nd / 98th percentiles of the valid depth of all frames, `sora3r.viz.depth`), so a
    colour means the same depth in every frame; invalid pixels are black. Each depth pixel becomes a k x k block so
    that the video is at least `DEPTH_VIDEO_MIN_WIDTH` pixels wide. ``fps`` defaults to the frame rate of
    ``rec.timestamps`` (10 when they give none).
    """
    from sora3r.data.video import encode_video
    from sora3r.viz.depth import colorize_depth, depth_range

    _check_reconstruction(rec, Path(path))
    near, far = depth_range(rec.depth, rec.valid)
    block = -(-DEPTH_VIDEO_MIN_WIDTH // rec.depth.shape[2])  # ceil
    frames = (colorize_depth(rec.depth[t], near, far, None if rec.valid is None else rec.valid[t])
              .repeat(block, axis=0).repeat(block, axis=1) for t in range(rec.num_frames))
    return encode_video(path, frames, fps or _video_fps(rec.timestamps))


def write_depth_sheet(path: str | os.PathLike, rec: Reconstruction, num_frames: int = DEPTH_SHEET_FRAMES) -> Path:
    """Write a PNG contact sheet: ``num_frames`` input frames spread over the video above their depth, in the colours
    of `write_depth_video` (one near / far for the whole sheet), to see at a glance whether the depth follows the
    video (`sora3r.viz.depth.plot_depth_comparison`)."""
    from sora3r.viz.depth import plot_depth_comparison

    _check_reconstruction(rec, Path(path))
    title = f"{rec.num_frames} frames, depth at {rec.depth.shape[2]}x{rec.depth.shape[1]}"
    return plot_depth_comparison(path, rec.rgb, rec.depth, valid=rec.valid, num_frames=num_frames, title=title)


def write_depth_png(folder: str | os.PathLike, rec: Reconstruction) -> Path:
    """Write each frame's depth as a 16-bit grayscale PNG ``folder/00000.png, ...`` and the scale beside them.

    ``depth = value * depth_per_unit``, with ``depth_per_unit = max depth / 65535`` (the largest valid depth of the
    video maps to 65535, so the 16 bits are used whatever the scale) written to ``folder/depth_scale.json``
    (``{"depth_per_unit": ..., "invalid": 0, "units": ...}``); 0 marks pixels without a valid depth. One scale for
    the whole video. Units: those of the reconstruction (the model's output is relative: ``metadata["scale"]``).
    The PNGs have the reconstruction's resolution (the model's grid for `Sora3RPipeline` output).
    """
    folder = Path(folder)
    _check_reconstruction(rec, folder)
    depth = _numpy(rec.depth).astype(np.float64)
    keep = np.isfinite(depth) & (depth > 0)
    if rec.valid is not None:
        keep &= _numpy(rec.valid)
    if not keep.any():
        raise ValueError(f"{folder}: depth has no valid pixel to write")
    per_unit = float(depth[keep].max()) / DEPTH_PNG_MAX
    for t in range(rec.num_frames):
        # A valid depth never rounds to 0, the code of "no depth".
        codes = np.where(keep[t], np.maximum(np.round(np.where(keep[t], depth[t], 0.0) / per_unit), 1), 0)
        codes = codes.astype(np.uint16)
        with atomic_output_path(folder / f"{t:05d}.png") as tmp:
            Image.fromarray(codes).save(tmp, format="PNG")
    scale = {"depth_per_unit": per_unit, "invalid": 0, "formula": "depth = png_value * depth_per_unit",
             "units": rec.metadata.get("scale", "those of the reconstruction"), "num_frames": rec.num_frames}
    with atomic_output_path(folder / DEPTH_SCALE_FILE) as tmp:
        tmp.write_text(json.dumps(scale, indent=2) + "\n")
    return folder


def _intrinsics_lines(label: str, K: np.ndarray, width: int, height: int) -> list[str]:
    fx, fy, cx, cy = K[[0, 1, 0, 1], [0, 1, 2, 2]].tolist()  # Python floats: repr is the shortest exact text
    fov_x, fov_y = field_of_view(K, height, width)
    return [f"# {label}: {width}x{height} pixels (width x height); field of view {fov_x:.2f} x {fov_y:.2f} degrees",
            "# fx fy cx cy", f"{fx!r} {fy!r} {cx!r} {cy!r}", "# K",
            *(" ".join(repr(value) for value in row) for row in K.tolist())]


def write_intrinsics(path: str | os.PathLike, rec: Reconstruction) -> Path:
    """Write the intrinsics as text: ``fx fy cx cy`` and the 3x3 K, in pixels of the reconstruction's grid and, when
    ``rec.metadata`` has ``crop_affine`` (input pixels -> grid pixels) and ``input_hw``, of the input video.

    OpenCV's pixel convention (centre of the top-left pixel at (0, 0)); lines starting with ``#`` are comments (the
    grid's size and field of view); per grid, the number lines are ``fx fy cx cy`` then K's three rows. The input's K is
    ``A^-1 K`` for the resize + centre-crop affine ``A``: the model sees only the crop, so the principal point lies
    where the crop's centre was.
    """
    _check_reconstruction(rec, Path(path))
    K = _numpy(rec.K).astype(np.float64)
    height, width = rec.points.shape[1:3]
    lines = ["# sora3r intrinsics, pinhole, pixels; OpenCV convention (x right, y down, pixel centres at integers)",
             *_intrinsics_lines("model grid", K, width, height)]
    affine, input_hw = rec.metadata.get("crop_affine"), rec.metadata.get("input_hw")
    if affine is not None and input_hw is not None:
        K_input = np.linalg.solve(np.asarray(affine, dtype=np.float64), K)
        lines += _intrinsics_lines("input video (through the inverse of the resize and centre crop)", K_input,
                                   int(input_hw[1]), int(input_hw[0]))
    with atomic_output_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return Path(path)


def write_npz(path: str | os.PathLike, rec: Reconstruction) -> Path:
    """Write every field of ``rec`` into one npz (uncompressed: float maps barely compress and zlib is slow;
    metadata as a JSON string, no pickles)."""
    _check_reconstruction(rec, Path(path))
    try:
        metadata = json.dumps(rec.metadata)
    except TypeError as err:
        raise ValueError(f"{path}: metadata is not JSON-serializable: {err}") from None
    arrays = {
        name: _numpy(getattr(rec, name))
        for name in (*_NPZ_REQUIRED[:-1], *_NPZ_OPTIONAL)
        if getattr(rec, name) is not None
    }
    arrays["metadata"] = np.array(metadata)
    arrays["format_version"] = np.array(_NPZ_FORMAT_VERSION)
    with atomic_output_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return Path(path)


def read_npz(path: str | os.PathLike) -> Reconstruction:
    """Read a bundle written by `write_npz` back into a `Reconstruction` (CPU tensors, same dtypes)."""
    path = Path(path)
    if path.is_dir():
        inside = path / "reconstruction.npz"
        hint = f"; did you mean {inside}?" if inside.is_file() else " (an npz file is needed)"
        raise IsADirectoryError(f"{path}: is a folder{hint}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):  # else np.load reads it as a pickle and suggests allow_pickle=True
        raise ValueError(f"{path}: not an npz bundle (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as bundle:
            arrays = {name: bundle[name] for name in bundle.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable npz bundle ({err})") from None
    missing = [name for name in _NPZ_REQUIRED if name not in arrays]
    if missing:
        raise ValueError(f"{path}: not a sora3r reconstruction bundle (missing {', '.join(missing)})")
    tensors = {
        name: torch.from_numpy(arrays[name]) if name in arrays else None
        for name in (*_NPZ_REQUIRED[:-1], *_NPZ_OPTIONAL)
    }
    return Reconstruction(**tensors, metadata=json.loads(str(arrays["metadata"])))


def export_all(
    out_dir: str | os.PathLike,
    rec: Reconstruction,
    formats: Sequence[str] = EXPORT_FORMATS,
    stride: int = 1,
    min_confidence: float | None = None,
    timestamps: torch.Tensor | np.ndarray | None = None,
) -> dict[str, Path]:
    """Write ``rec`` in each of ``formats`` under ``out_dir``; return ``{format: written path}``.

    Files: ``reconstruction.npz``, ``points.ply``, ``scene.glb``, ``trajectory_tum.txt``, the ``colmap/`` folder,
    ``depth.mp4``, ``depth_sheet.png``, ``depth/`` (16-bit PNGs and ``depth_scale.json``) and ``intrinsics.txt``.
    ``stride`` / ``min_confidence`` apply to the point clouds (the COLMAP model uses a 4x coarser grid than the
    clouds); ``timestamps`` (default ``rec.timestamps``) to the TUM file.
    """
    timestamps = rec.timestamps if timestamps is None else timestamps
    unknown = sorted(set(formats) - set(EXPORT_FORMATS))
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}; choose from {list(EXPORT_FORMATS)}")
    out_dir = Path(out_dir)
    writers = {
        "npz": lambda: write_npz(out_dir / "reconstruction.npz", rec),
        "ply": lambda: write_ply(out_dir / "points.ply", rec, stride, min_confidence),
        "glb": lambda: write_glb(out_dir / "scene.glb", rec, stride, min_confidence),
        "tum": lambda: write_tum(out_dir / "trajectory_tum.txt", rec.c2w, timestamps),
        "colmap": lambda: write_colmap_text(out_dir / "colmap", rec, stride=4 * stride, min_confidence=min_confidence),
        "depth_video": lambda: write_depth_video(out_dir / "depth.mp4", rec),
        "depth_sheet": lambda: write_depth_sheet(out_dir / "depth_sheet.png", rec),
        "depth_png": lambda: write_depth_png(out_dir / "depth", rec),
        "intrinsics": lambda: write_intrinsics(out_dir / "intrinsics.txt", rec),
    }
    return {name: writers[name]() for name in formats}
