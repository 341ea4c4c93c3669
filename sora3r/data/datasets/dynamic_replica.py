"""Dynamic Replica reader (training data of Sora3R): ``<root>/<split>/{frame_annotations_<split>.jgz, <seq>/...}``.

Format facts, each checked against facebookresearch/dynamic_stereo (``datasets/dynamic_stereo_datasets.py``) and the
PyTorch3D / CO3D code it builds on:
- ``frame_annotations_<split>.jgz`` is a gzipped JSON list of frame annotations (CO3D ``FrameAnnotation`` fields plus
  ``camera_name`` "left" / "right"): ``sequence_name``, ``frame_number``, ``frame_timestamp``,
  ``image {path, size = [H, W]}``, ``depth {path, scale_adjustment, mask_path}``,
  ``viewpoint {R, T, focal_length, principal_point, intrinsics_format}``. Paths are relative to ``<root>/<split>``.
- Depth ``*.geometric.png`` stores float16 depth bit patterns in a 16-bit PNG: read as uint16, reinterpret as float16
  (``np.frombuffer(..., np.float16)``), multiply by ``scale_adjustment``; non-finite values are invalid (CO3D's
  ``_load_depth`` zeroes them). It is z-depth (dynamic_stereo turns it into disparity as focal x baseline / depth).
- Cameras are PyTorch3D ``PerspectiveCameras``: row-vector world-to-view ``X_cam = X_world @ R + T`` with camera axes
  x left, y up, z forward. Intrinsics are NDC: with half-size ``(W/2, H/2)`` and ``s`` = that half-size per axis for
  ``ndc_norm_image_bounds`` (CO3D's default) or its minimum for ``ndc_isotropic``: ``f_px = f * s`` and
  ``c_px = half_size - p * s``.
- OpenCV from PyTorch3D is PyTorch3D's own ``opencv_from_cameras_projection``: ``R_cv = diag(-1, -1, 1) R^T``,
  ``t_cv = diag(-1, -1, 1) T`` (world-to-camera), principal point ``W/2 - p s`` without a half-pixel shift. We follow it
  exactly (dynamic_stereo uses it for its own stereo geometry): ``c2w = inv([R_cv | t_cv])``, then re-based onto
  the first camera like every reader.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from sora3r.data.datasets._io import make_sequence, read_rgb, require_file
from sora3r.geometry.projection import intrinsics_matrix, unproject_depth
from sora3r.types import VideoSequence

PYTORCH3D_TO_OPENCV_AXES = np.diag([-1.0, -1.0, 1.0])


def pytorch3d_camera_to_opencv(viewpoint: dict, image_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A Dynamic Replica / CO3D ``viewpoint`` -> (``K (3, 3)`` in pixels, ``c2w (4, 4)`` OpenCV axes)."""
    height, width = image_hw
    half_size = np.array([width, height], dtype=np.float64) / 2.0
    intrinsics_format = viewpoint.get("intrinsics_format", "ndc_norm_image_bounds").lower()
    if intrinsics_format == "ndc_norm_image_bounds":
        ndc_scale = half_size
    elif intrinsics_format == "ndc_isotropic":
        ndc_scale = half_size.min()
    else:
        raise ValueError(f"unknown intrinsics_format {intrinsics_format!r}")
    focal_px = np.asarray(viewpoint["focal_length"], dtype=np.float64) * ndc_scale
    principal_px = half_size - np.asarray(viewpoint["principal_point"], dtype=np.float64) * ndc_scale
    K = intrinsics_matrix(*focal_px, *principal_px).numpy()
    w2c = np.eye(4)
    w2c[:3, :3] = PYTORCH3D_TO_OPENCV_AXES @ np.asarray(viewpoint["R"], dtype=np.float64).T
    w2c[:3, 3] = PYTORCH3D_TO_OPENCV_AXES @ np.asarray(viewpoint["T"], dtype=np.float64)
    return K, np.linalg.inv(w2c)


def load_frame_annotations(root: Path, split: str = "train", camera: str = "left") -> dict[str, list[dict]]:
    """``sequence_name -> [frame annotation, ...]`` of one camera, frames sorted by ``frame_number``."""
    path = require_file(Path(root) / split / f"frame_annotations_{split}.jgz")
    try:
        with gzip.open(path, "rt", encoding="utf8") as file:
            entries = json.load(file)
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a gzipped JSON list of frame annotations ({error})") from None
    sequences: dict[str, list[dict]] = defaultdict(list)
    for entry in entries:
        if entry.get("camera_name", camera) == camera:
            sequences[entry["sequence_name"]].append(entry)
    return {name: sorted(frames, key=lambda e: e["frame_number"]) for name, frames in sorted(sequences.items())}


def _read_depth(path: Path, scale_adjustment: float) -> np.ndarray:
    """``float32 (H, W)`` depth of a ``.geometric.png`` (float16 bits in a 16-bit PNG); non-finite stays for
    `make_sequence` to zero."""
    with Image.open(require_file(path)) as image:
        if image.mode not in ("I;16", "I;16B", "I"):
            raise ValueError(f"{path}: expected a 16-bit depth PNG, got mode {image.mode}")
        bits = np.array(image, dtype=np.uint16)
    return bits.view(np.float16).astype(np.float32) * np.float32(scale_adjustment)


def read_sequence(split_dir: Path, frames: list[dict], max_frames: int | None = None, with_points: bool = False,
                  name: str | None = None) -> VideoSequence:
    """One Dynamic Replica sequence from its frame annotations (paths relative to ``split_dir``).

    K is per frame ``(T, 3, 3)``; poses are re-based so that the first frame's camera is the world.
    """
    split_dir = Path(split_dir)
    frames = frames[:max_frames]
    rgb, depth, K, c2w = [], [], [], []
    for entry in frames:
        try:
            image_hw = tuple(entry["image"]["size"])
            frame_K, frame_c2w = pytorch3d_camera_to_opencv(entry["viewpoint"], image_hw)
            image_path, depth_entry = split_dir / entry["image"]["path"], entry["depth"]
            depth_path, scale_adjustment = split_dir / depth_entry["path"], depth_entry.get("scale_adjustment", 1.0)
        except (KeyError, TypeError) as error:
            raise ValueError(f"{split_dir}: frame annotation of {entry.get('sequence_name')!r} "
                             f"#{entry.get('frame_number')} lacks {error}") from None
        frame_rgb = read_rgb(image_path)
        if frame_rgb.shape[:2] != image_hw:
            raise ValueError(f"{image_path}: size {frame_rgb.shape[:2]} but the annotation says {image_hw}")
        rgb.append(frame_rgb)
        depth.append(_read_depth(depth_path, scale_adjustment))
        K.append(frame_K)
        c2w.append(frame_c2w)
    seq = make_sequence(
        name=name or frames[0]["sequence_name"],
        rgb=rgb,
        depth=depth,
        K=np.stack(K),
        c2w=np.stack(c2w),
        timestamps=np.array([float(e.get("frame_timestamp", e["frame_number"])) for e in frames]),
        depth_max=None,
    )
    return replace(seq, points=unproject_depth(seq.depth, seq.K, seq.c2w)) if with_points else seq


def iter_dynamic_replica(root: Path, split: str = "train", camera: str = "left", max_frames: int | None = None,
                   with_points: bool = False, shard: tuple[int, int] = (0, 1)) -> Iterator[VideoSequence]:
    """Yield the sequences of ``<root>/<split>`` seen by ``camera`` one at a time (named ``<split>/<sequence>``).

    Args:
        camera: "left" or "right" (Dynamic Replica is stereo; one camera makes a monocular video).
        max_frames: read at most this many frames of each sequence.
        with_points: also fill ``points`` (first-camera world frame); clip sampling computes its own.
        shard: ``(index, count)``: only every ``count``-th sequence from ``index`` (for DataLoader workers).
    """
    index, count = shard
    sequences = load_frame_annotations(root, split, camera)
    for seq_name in list(sequences)[index::count]:
        yield read_sequence(Path(root) / split, sequences[seq_name], max_frames=max_frames, with_points=with_points,
                            name=f"{split}/{seq_name}")
