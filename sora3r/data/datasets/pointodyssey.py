"""PointOdyssey reader (training data of Sora3R): ``<root>/<split>/<seq>/{rgbs, depths, anno.npz}``.

Format facts, each checked against the dataset's own loaders:
- ``rgbs/rgb_XXXXX.jpg`` and ``depths/depth_XXXXX.png``, five-digit frame numbers from 0 (layout used by the official
  PointOdyssey / PIPs++ dataset classes and MonST3R's / CUT3R's ``pointodyssey.py``).
- Depth PNGs are uint16 with ``metres = value / 65535 * 1000`` (every loader of the released data, e.g. CUT3R / MonST3R
  ``depth16.astype(np.float32) / 65535.0 * 1000.0``). The depth is Blender's Z pass, i.e. z-depth along the optical
  axis, not ray length (the exporter's ``process_z`` keeps "distance to camera plane"). A saturated value (65535,
  1000 m) is background that the renderer clipped; MotionCrafter's PointOdyssey loader also masks ``> 65500``.
- ``anno.npz`` holds ``intrinsics (T, 3, 3)`` in pixels and ``extrinsics (T, 4, 4)`` world-to-camera in OpenCV axes:
  the official loader projects tracks as ``trajs_cam = apply_4x4(cams_T_world, trajs_world)`` then
  ``apply_pix_T_cam(pix_T_cams, trajs_cam)`` (visible points have z > 0), and MonST3R's preprocessing inverts the
  extrinsics to get camera poses. Other keys (``trajs_2d``, ``trajs_3d``, ``valids``, ``visibs``) are not needed here;
  ``np.load`` reads npz members lazily, so they are never loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from sora3r.data.datasets._io import make_sequence, read_depth_png, read_rgb, require_dir, require_file
from sora3r.data.images import frame_files
from sora3r.geometry.projection import unproject_depth
from sora3r.types import VideoSequence

DEPTH_PNG_UNITS_PER_METRE = 65535.0 / 1000.0
SATURATED_DEPTH_METRES = 1000.0  # the PNG's largest value, 65535


def list_sequences(root: Path, split: str = "train") -> list[Path]:
    """Sequence folders of ``split`` (those holding an ``anno.npz``), sorted by name."""
    split_dir = require_dir(Path(root) / split, "PointOdyssey split")
    return sorted(p.parent for p in split_dir.glob("*/anno.npz"))


def _read_depth(path: Path) -> np.ndarray:
    """``float32 (H, W)`` metres, 0 where the PNG is 0 or saturated (background clipped by the renderer)."""
    depth = read_depth_png(path, DEPTH_PNG_UNITS_PER_METRE)
    depth[depth >= SATURATED_DEPTH_METRES] = 0.0
    return depth


def read_sequence(seq_dir: Path, max_frames: int | None = None, with_points: bool = False,
                  name: str | None = None) -> VideoSequence:
    """One PointOdyssey sequence (its first ``max_frames`` frames) in package conventions.

    K is per frame ``(T, 3, 3)``; c2w ``(T, 4, 4)`` = inverse of the stored world-to-camera extrinsics, re-based so
    that the first frame's camera is the world (as every reader does).
    """
    seq_dir = Path(seq_dir)
    anno_path = require_file(seq_dir / "anno.npz")
    with np.load(anno_path) as anno:
        if "intrinsics" not in anno or "extrinsics" not in anno:
            raise ValueError(f"{anno_path}: needs 'intrinsics' and 'extrinsics', has {sorted(anno.files)}")
        intrinsics = anno["intrinsics"].astype(np.float64)
        extrinsics = anno["extrinsics"].astype(np.float64)
    rgb_paths = frame_files(seq_dir / "rgbs", "rgb_*.jpg")
    num_frames = len(rgb_paths)
    if num_frames == 0:
        raise FileNotFoundError(f"{seq_dir / 'rgbs'}: no rgb_XXXXX.jpg frames")
    if intrinsics.shape != (num_frames, 3, 3) or extrinsics.shape != (num_frames, 4, 4):
        raise ValueError(f"{anno_path}: intrinsics {intrinsics.shape} / extrinsics {extrinsics.shape} do not match "
                         f"{num_frames} frames")
    rgb_paths = rgb_paths[:max_frames]
    num_frames = len(rgb_paths)
    depth_paths = [seq_dir / "depths" / p.name.replace("rgb_", "depth_").replace(".jpg", ".png") for p in rgb_paths]
    seq = make_sequence(
        name=name or seq_dir.name,
        rgb=[read_rgb(p) for p in rgb_paths],
        depth=[_read_depth(p) for p in depth_paths],
        K=intrinsics[:num_frames],
        c2w=np.linalg.inv(extrinsics[:num_frames]),
        timestamps=np.arange(num_frames, dtype=np.float64),
        depth_max=None,
    )
    return replace(seq, points=unproject_depth(seq.depth, seq.K, seq.c2w)) if with_points else seq


def iter_pointodyssey(root: Path, split: str = "train", max_frames: int | None = None, with_points: bool = False,
                   shard: tuple[int, int] = (0, 1)) -> Iterator[VideoSequence]:
    """Yield the sequences of ``<root>/<split>`` one at a time (named ``<split>/<seq>``).

    Args:
        max_frames: read at most this many frames of each sequence (full PointOdyssey sequences are 1-2 k frames).
        with_points: also fill ``points`` (first-camera world frame); clip sampling computes its own.
        shard: ``(index, count)``: only every ``count``-th sequence from ``index`` (for DataLoader workers).
    """
    index, count = shard
    for seq_dir in list_sequences(root, split)[index::count]:
        yield read_sequence(seq_dir, max_frames=max_frames, with_points=with_points, name=f"{split}/{seq_dir.name}")
