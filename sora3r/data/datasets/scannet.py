"""ScanNet (v2) reader for pose evaluation, on the folders MonST3R prepares.

Layout (MonST3R ``data/download_scannetv2.sh`` exports each ``.sens`` with ``scannet_sens_reader.py`` into
``<root>/<scene>/{color,depth,pose,intrinsic}``; ``datasets_preprocess/prepare_scannet.py`` then copies the first
270 frames at stride 3, i.e. ``[:90*3:3]`` of the numerically sorted exports):
- ``<scene>/color_90/frame_%04d.jpg``: colour, 1296x968;
- ``<scene>/depth_90/frame_%04d.png``: 16-bit depth in millimetres (ScanNet depth shift 1000), 640x480;
- ``<scene>/pose_90.txt``: one camera-to-world 4x4 per line, 16 numbers row-major (MonST3R reads it with
  ``load_replica_traj``); ScanNet marks frames without tracking with ``-inf`` poses;
- ``<scene>/intrinsic/intrinsic_depth.txt``: 4x4 depth intrinsics (from the ``.sens`` header).

Colour and depth are registered but of different sizes. We return both at the depth resolution (colour
resized, as ScanNet RGB-D pipelines such as NICE-SLAM do) with K = the depth intrinsics.
Scenes: scene0707_00 .. scene0806_00 (MonST3R's download loop). MonST3R keeps every frame; so do we, and a
frame with a non-finite pose gets a NaN pose plus a logged warning, for the evaluator to count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sora3r.data.datasets._io import (make_sequence, read_depth_png, read_matrix_rows, read_rgb,
                                       require_dir, require_file)
from sora3r.data.images import frame_files
from sora3r.types import VideoSequence

log = logging.getLogger(__name__)

SCANNET_SCENES = tuple(f"scene{i:04d}_00" for i in range(707, 807))
SCANNET_STRIDE = 3  # the frames in color_90 are original frames 0, 3, ..., 267
SCANNET_DEPTH_UNITS_PER_METRE = 1000.0


def iter_scannet(root: Path, scenes: list[str] | None = None) -> Iterator[VideoSequence]:
    """ScanNet scenes prepared as MonST3R does (90 frames each).

    Args:
        root: folder of scene folders (MonST3R's ``data/scannetv2``).
        scenes: scene names; default the protocol scenes scene0707_00..scene0806_00 found under ``root``
            (a warning says how many are missing; none at all is an error).
    """
    root = require_dir(root, "scannet")
    if scenes is None:
        scenes = [s for s in SCANNET_SCENES if (root / s).is_dir()]
        if not scenes:
            raise FileNotFoundError(f"scannet: none of scene0707_00..scene0806_00 in {root}")
        if len(scenes) < len(SCANNET_SCENES):
            log.warning("scannet: %d of %d protocol scenes are under %s", len(scenes), len(SCANNET_SCENES), root)
    for scene in scenes:
        require_file(require_dir(root / scene, "scannet") / "pose_90.txt")
    return (_load_scannet_scene(root / scene) for scene in scenes)


def _load_scannet_scene(scene_dir: Path) -> VideoSequence:
    pose_file = scene_dir / "pose_90.txt"
    c2w = read_matrix_rows(pose_file, 16).reshape(-1, 4, 4)
    images = frame_files(scene_dir / "color_90", "frame_*.jpg")
    depths = frame_files(scene_dir / "depth_90", "frame_*.png")
    if not (len(images) == len(depths) == len(c2w)):
        raise ValueError(
            f"{scene_dir}: {len(images)} colour, {len(depths)} depth frames and {len(c2w)} poses in {pose_file.name}"
        )
    lost = ~np.isfinite(c2w).all(axis=(1, 2))
    if lost.any():
        log.warning("scannet %s: %d frames without a valid pose (kept, pose NaN)", scene_dir.name, lost.sum())
        c2w[lost] = np.nan
    K = read_matrix_rows(scene_dir / "intrinsic" / "intrinsic_depth.txt", 4)[:3, :3]
    depth = [read_depth_png(p, SCANNET_DEPTH_UNITS_PER_METRE) for p in depths]
    height, width = depth[0].shape
    return make_sequence(
        scene_dir.name,
        rgb=[read_rgb(p, size=(width, height)) for p in images],
        depth=depth,
        K=K,
        c2w=c2w,
        timestamps=np.arange(len(images), dtype=np.float64) * SCANNET_STRIDE,
        depth_max=None,
    )
