"""Writers for a `Reconstruction`: coloured point clouds (PLY, GLB), TUM trajectories, COLMAP text
models and a lossless npz bundle (with its reader).

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
import trimesh
from PIL import Image
from scipy.spatial.transform import Rotation

from sora3r.fs import atomic_output_path
from sora3r.geometry.transforms import pose_array
from sora3r.types import Reconstruction

__all__ = [
    "EXPORT_FORMATS",
    "export_all",
    "read_npz",
    "write_colmap_text",
    "write_glb",
    "write_npz",
    "write_ply",
    "write_tum",
]

EXPORT_FORMATS = ("npz", "ply", "glb", "tum", "colmap")

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
    )


def write_ply(
    path: str | os.PathLike, rec: Reconstruction, stride: int = 1, min_confidence: float | None = None
) -> Path:
    """Write the valid points of all frames as one coloured binary PLY point cloud.

    ``stride`` subsamples the pixel grid of each frame; ``min_confidence`` drops pixels whose
    ``rec.confidence`` is below it. Coordinates are world (frame-0 camera, OpenCV axes).
    """
    selected = _select_points(rec, stride, min_confidence, Path(path))
    cloud = trimesh.PointCloud(selected.xyz, colors=selected.rgb)
    with atomic_output_path(path) as tmp:
        cloud.export(file_obj=str(tmp), file_type="ply")
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
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
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

    Files: ``reconstruction.npz``, ``points.ply``, ``scene.glb``, ``trajectory_tum.txt`` and the
    ``colmap/`` folder. ``stride`` / ``min_confidence`` apply to the point clouds (the COLMAP model
    uses a 4x coarser grid than the clouds); ``timestamps`` (default ``rec.timestamps``) to the TUM file.
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
    }
    return {name: writers[name]() for name in formats}
