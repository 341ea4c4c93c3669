"""Reader for an ICL-NUIM living-room sample in Open3D's layout (e.g. the ``icl_livingroom_micro`` test data).

Layout (Open3D file formats): ``image/%05d.jpg``, ``depth/%05d.png`` (uint16 millimetres);
``trajectory.log`` in Open3D's log format, one block per frame: a header line ``i i+1 N`` (metadata), then
the 4 rows of the camera-to-world pose; ``intrinsics.json`` is an Open3D ``PinholeCameraIntrinsic`` whose
``intrinsic_matrix`` lists the 3x3 matrix column-major. One clip is selected: frames
``start, start + stride, ...`` (``num_frames`` of them). The scene is static and rendered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sora3r.data.datasets._io import (make_sequence, parse_floats, read_depth_png, read_rgb,
                                       read_rows, require_dir, require_file)
from sora3r.types import VideoSequence

ICL_DEPTH_UNITS_PER_METRE = 1000.0


def read_open3d_trajectory(path: Path) -> np.ndarray:
    """An Open3D ``.log`` trajectory as ``float64 (N, 4, 4)`` camera-to-world poses."""
    rows = read_rows(path)
    if len(rows) % 5:
        raise ValueError(f"{path}: {len(rows)} lines is not a whole number of 5-line blocks")
    poses = np.empty((len(rows) // 5, 4, 4))
    for n in range(len(poses)):
        number, header = rows[5 * n]
        if len(header) != 3:
            raise ValueError(f"{path}:{number}: expected a 3-number block header, got {' '.join(header)!r}")
        for r in range(4):
            number, tokens = rows[5 * n + 1 + r]
            if len(tokens) != 4:
                raise ValueError(f"{path}:{number}: expected 4 numbers, got {len(tokens)}")
            poses[n, r] = parse_floats(path, number, tokens)
    return poses


def read_open3d_intrinsics(path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    """An Open3D ``PinholeCameraIntrinsic`` JSON as (``float64 (3, 3)`` K, ``(height, width)``)."""
    try:
        spec = json.loads(require_file(path).read_text(encoding="utf-8"))
        K = np.array(spec["intrinsic_matrix"], dtype=np.float64).reshape(3, 3).T  # stored column-major
        size = int(spec["height"]), int(spec["width"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: not an Open3D pinhole intrinsic ({error})") from None
    return K, size


def iter_icl(root: Path, num_frames: int = 17, stride: int = 3, start: int = 0) -> Iterator[VideoSequence]:
    """One clip of ``num_frames`` frames, every ``stride``-th frame from ``start``."""
    root = require_dir(root, "icl-micro")
    c2w = read_open3d_trajectory(root / "trajectory.log")
    K, (height, width) = read_open3d_intrinsics(root / "intrinsics.json")
    index = np.arange(num_frames) * stride + start
    if num_frames < 1 or stride < 1 or start < 0 or index[-1] >= len(c2w):
        raise ValueError(
            f"icl-micro: frames {start}:{stride}x{num_frames} do not fit the {len(c2w)} poses in {root}"
        )
    name = f"{root.name}_{start}_{stride}x{num_frames}"
    return (_load_icl_clip(root, name, K, (height, width), c2w, clip) for clip in [index])


def _load_icl_clip(
    root: Path, name: str, K: np.ndarray, size: tuple[int, int], c2w: np.ndarray, index: np.ndarray
) -> VideoSequence:
    rgb = [read_rgb(root / "image" / f"{i:05d}.jpg") for i in index]
    if rgb[0].shape[:2] != size:
        raise ValueError(f"{root / 'intrinsics.json'}: says {size[1]}x{size[0]}, images are {rgb[0].shape[1::-1]}")
    return make_sequence(
        name,
        rgb=rgb,
        depth=[read_depth_png(root / "depth" / f"{i:05d}.png", ICL_DEPTH_UNITS_PER_METRE) for i in index],
        K=K,
        c2w=c2w[index],
        timestamps=index.astype(np.float64),
        depth_max=None,
    )
