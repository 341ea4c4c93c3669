"""KITTI video-depth reader: the first 110 ground-truth frames of each val drive of the KITTI depth benchmark.

Layout (what MonST3R's ``data/download_kitti.sh`` unpacks, plus the per-day raw calibration zip):
- ``<root>/val/<drive>/proj_depth/groundtruth/image_02/%010d.png`` (``data_depth_annotated.zip``);
- ``<root>/<date>/<drive>/image_02/data/%010d.png`` (raw ``<drive>.zip``, rectified left colour camera);
- ``<root>/<date>/calib_cam_to_cam.txt`` (raw ``<date>_calib.zip``), where ``<date>`` = ``drive[:10]``.

Facts: depth PNGs are uint16, depth in metres = value / 256, 0 = no ground truth (KITTI depth devkit
``readme.txt``); the colour images of the ``_sync`` drives are rectified, so their intrinsics are the left
3x3 of ``P_rect_02`` in ``calib_cam_to_cam.txt`` (raw devkit). Protocol (MonST3R
``datasets_preprocess/prepare_kitti.py``): ``sorted(groundtruth/image_02/*.png)[:110]`` per val drive, images
of the same frame number from the raw drive. No depth cap. Poses are not part of this set (``c2w`` is None).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sora3r.data.datasets._io import make_sequence, parse_floats, read_depth_png, read_rgb, read_rows, require_dir
from sora3r.data.images import frame_files
from sora3r.types import VideoSequence

KITTI_DEPTH_UNITS_PER_METRE = 256.0
KITTI_NUM_FRAMES = 110


def read_rectified_intrinsics(calib_file: Path, camera: str = "02") -> np.ndarray:
    """``float64 (3, 3)`` intrinsics of rectified camera ``camera`` from a raw ``calib_cam_to_cam.txt``."""
    key = f"P_rect_{camera}:"
    for number, tokens in read_rows(calib_file):
        if tokens[0] == key:
            if len(tokens) != 13:
                raise ValueError(f"{calib_file}:{number}: {key} needs 12 numbers, got {len(tokens) - 1}")
            return parse_floats(calib_file, number, tokens[1:]).reshape(3, 4)[:, :3]
    raise ValueError(f"{calib_file}: no {key} line")


def iter_kitti(root: Path, num_frames: int = KITTI_NUM_FRAMES) -> Iterator[VideoSequence]:
    """Every val drive under ``root/val``, its first ``num_frames`` ground-truth depth frames.

    Args:
        root: the KITTI folder holding ``val/`` and the raw ``<date>/`` folders.
    """
    val = require_dir(Path(root) / "val" if root is not None else None, "kitti")
    drives = sorted(d for d in val.iterdir() if (d / "proj_depth" / "groundtruth" / "image_02").is_dir())
    if not drives:
        raise FileNotFoundError(f"kitti: no <drive>/proj_depth/groundtruth/image_02 folder in {val}")
    for drive in drives:
        require_dir(val.parent / drive.name[:10] / drive.name / "image_02" / "data", "kitti")
    return (_load_kitti_drive(val.parent, drive, num_frames) for drive in drives)


def _load_kitti_drive(root: Path, drive: Path, num_frames: int) -> VideoSequence:
    depth_files = frame_files(drive / "proj_depth" / "groundtruth" / "image_02", "*.png")[:num_frames]
    raw_drive = root / drive.name[:10] / drive.name
    return make_sequence(
        drive.name,
        rgb=[read_rgb(raw_drive / "image_02" / "data" / p.name) for p in depth_files],
        depth=[read_depth_png(p, KITTI_DEPTH_UNITS_PER_METRE) for p in depth_files],
        K=read_rectified_intrinsics(root / drive.name[:10] / "calib_cam_to_cam.txt"),
        c2w=None,
        timestamps=np.array([int(p.stem) for p in depth_files], dtype=np.float64),
        depth_max=None,
    )
