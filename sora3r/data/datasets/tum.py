"""Readers for the TUM RGB-D folder layout: TUM-dynamics (pose protocol) and Bonn RGB-D Dynamic (video depth).

Format facts, from the TUM RGB-D "File Formats" page (cvg.cit.tum.de/data/datasets/rgbd-dataset/file_formats):
- ``rgb.txt`` / ``depth.txt``: ``timestamp filename`` per line; ``groundtruth.txt``: ``timestamp tx ty tz qx qy
  qz qw``, the optical centre of the colour camera in the motion-capture world, unit quaternion scalar-last.
  Lines starting with ``#`` are comments.
- Depth PNGs are 16 bit with 5000 units per metre, 0 = no data, registered 1:1 to the colour image.
- Colour intrinsics (fx fy cx cy): fr1 517.3 516.5 318.6 255.3, fr2 520.9 521.0 325.1 249.7 (both with lens
  distortion the images still carry), fr3 535.4 539.2 320.1 247.6 (zero distortion).
- Association (TUM's ``associate.py``; MonST3R ``datasets_preprocess/prepare_tum.py`` uses the same rule): all
  pairs with ``|t_a - t_b| < 0.02`` s, taken greedily from the smallest difference, each stamp used once.

Protocols (MonST3R):
- TUM-dynamics (``prepare_tum.py``): associate rgb to groundtruth, then keep ``[::3][:90]`` of the *associated*
  list (subsampling happens after association). Depth is associated to those rgb frames the same way.
- Bonn (``prepare_bonn.py``, ``dust3r/eval_metadata.py``): sequences ``rgbd_bonn_{balloon2, crowd2, crowd3,
  person_tracking2, synchronous}``, frames ``sorted(rgb/*.png)[30:140]`` (110 frames), depth png / 5000.
  Bonn page (ipb.uni-bonn.de/data/rgbd-dynamic-dataset): intrinsics 542.822841 542.576870 315.593520
  237.756098; its groundtruth poses are of the mocap marker body, the camera pose is
  ``T_ros^-1 @ T_gt @ T_ros @ T_m`` with the published ``T_ros`` and ``T_m`` (``T_m``'s 3x3 block is a rotation
  scaled by ~1.06 in the published numbers; we use its nearest rotation).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.spatial.transform import Rotation

from sora3r.data.datasets._io import (make_sequence, parse_floats, read_depth_png, read_rgb,
                                       read_rows, require_dir, require_file)
from sora3r.geometry.projection import intrinsics_matrix
from sora3r.types import VideoSequence

log = logging.getLogger(__name__)

TUM_DEPTH_UNITS_PER_METRE = 5000.0
MAX_TIME_DIFFERENCE = 0.02  # seconds

TUM_INTRINSICS = {  # fx, fy, cx, cy of the colour camera, by recording rig
    "freiburg1": (517.3, 516.5, 318.6, 255.3),
    "freiburg2": (520.9, 521.0, 325.1, 249.7),
    "freiburg3": (535.4, 539.2, 320.1, 247.6),
}
TUM_DYNAMIC_SEQUENCES = tuple(
    f"rgbd_dataset_freiburg3_{motion}_{path}"
    for motion in ("sitting", "walking")
    for path in ("halfsphere", "rpy", "static", "xyz")
)
TUM_FRAMES = slice(0, 270, 3)  # == [::3][:90]

BONN_INTRINSICS = (542.822841, 542.576870, 315.593520, 237.756098)
BONN_SEQUENCES = ("balloon2", "crowd2", "crowd3", "person_tracking2", "synchronous")
BONN_FRAMES = slice(30, 140)
BONN_DEPTH_MAX = 70.0
_BONN_T_ROS = np.array([[-1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.float64)
_BONN_T_M = np.eye(4)
_BONN_T_M[:3, :3] = Rotation.from_matrix(
    [[1.0157, 0.1828, -0.2389], [0.0009, -0.8431, -0.6413], [-0.3009, 0.6147, -0.8085]]
).as_matrix()
_BONN_T_M[:3, 3] = (0.0113, -0.0098, 0.0111)


@dataclass
class TumFrame:
    """One colour frame of a TUM-layout folder with what could be associated to it."""

    time: float
    rgb: Path
    depth: Path | None
    c2w: np.ndarray | None  # (4, 4) float64, in the file's world frame


def read_timed_list(path: Path, num_values: int) -> tuple[np.ndarray, list[list[str]]]:
    """A TUM ``timestamp v1 v2 ...`` file as (``float64 (N,)`` times, per-line value tokens)."""
    rows = read_rows(path, num_values + 1)
    times = np.array([parse_floats(path, number, tokens[:1])[0] for number, tokens in rows])
    return times, [tokens[1:] for _, tokens in rows]


def associate(first: np.ndarray, second: np.ndarray, max_difference: float = MAX_TIME_DIFFERENCE) -> dict[int, int]:
    """Index pairs ``first[i] <-> second[j]`` matched as TUM's associate.py does (greedy, one-to-one).

    Every pair closer than ``max_difference`` is a candidate; candidates are taken from the smallest
    difference up, skipping stamps already used.
    """
    order = np.argsort(second, kind="stable")
    ordered = second[order]
    lo = np.searchsorted(ordered, first - max_difference, side="right")
    hi = np.searchsorted(ordered, first + max_difference, side="left")
    candidates = sorted(
        (abs(first[i] - ordered[k]), i, int(order[k]))
        for i in range(len(first))
        for k in range(lo[i], hi[i])
        if abs(first[i] - ordered[k]) < max_difference
    )
    matches: dict[int, int] = {}
    used_second: set[int] = set()
    for _, i, j in candidates:
        if i not in matches and j not in used_second:
            matches[i] = j
            used_second.add(j)
    return matches


def read_tum_poses(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``groundtruth.txt`` as (``float64 (N,)`` times, ``float64 (N, 4, 4)`` camera-to-world)."""
    rows = read_rows(path, 8)
    times, poses = np.empty(len(rows)), np.tile(np.eye(4), (len(rows), 1, 1))
    for n, (number, tokens) in enumerate(rows):
        values = parse_floats(path, number, tokens)
        if not np.linalg.norm(values[4:8]) > 0:
            raise ValueError(f"{path}:{number}: zero quaternion")
        times[n] = values[0]
        poses[n, :3, :3] = Rotation.from_quat(values[4:8]).as_matrix()  # scipy: (x, y, z, w)
        poses[n, :3, 3] = values[1:4]
    return times, poses


def read_tum_frames(seq_dir: Path) -> list[TumFrame]:
    """Every colour frame of a TUM-layout folder in time order, with associated depth and pose."""
    rgb_times, rgb_names = read_timed_list(seq_dir / "rgb.txt", 1)
    depth_times, depth_names = read_timed_list(seq_dir / "depth.txt", 1)
    pose_times, poses = read_tum_poses(seq_dir / "groundtruth.txt")
    to_depth = associate(rgb_times, depth_times)
    to_pose = associate(rgb_times, pose_times)
    frames = [
        TumFrame(
            time=float(rgb_times[i]),
            rgb=seq_dir / rgb_names[i][0],
            depth=seq_dir / depth_names[to_depth[i]][0] if i in to_depth else None,
            c2w=poses[to_pose[i]] if i in to_pose else None,
        )
        for i in range(len(rgb_times))
    ]
    return sorted(frames, key=lambda frame: frame.time)


def load_tum_frames(
    name: str,
    frames: list[TumFrame],
    K: np.ndarray,
    depth_max: float | None,
    camera_pose: Callable[[np.ndarray], np.ndarray] = lambda c2w: c2w,
) -> VideoSequence:
    """Read the images of ``frames`` into a `VideoSequence`; ``camera_pose`` maps a file pose to the camera's."""
    if not frames:
        raise ValueError(f"{name}: no frames left after the protocol's selection")
    rgb = [read_rgb(frame.rgb) for frame in frames]
    depth = [
        read_depth_png(frame.depth, TUM_DEPTH_UNITS_PER_METRE)
        if frame.depth is not None
        else np.zeros(image.shape[:2], np.float32)
        for frame, image in zip(frames, rgb)
    ]
    c2w = np.stack([camera_pose(f.c2w) if f.c2w is not None else np.full((4, 4), np.nan) for f in frames])
    unmatched = sum(f.depth is None for f in frames), sum(f.c2w is None for f in frames)
    if any(unmatched):
        log.warning("%s: %d frames without depth, %d without pose (left 0 / NaN)", name, *unmatched)
    return make_sequence(name, rgb, depth, K, c2w, np.array([f.time for f in frames]), depth_max)


def iter_tum(root: Path, sequences: list[str] | None = None) -> Iterator[VideoSequence]:
    """TUM-dynamics sequences, ``frames[::3][:90]`` of the rgb frames associated to groundtruth.

    Args:
        root: folder of sequence folders (or one sequence folder, with ``rgb.txt``).
        sequences: folder names to read; default the 8 freiburg3 sitting/walking sequences present under
            ``root``, or, when none of them is, every TUM-layout folder under it.
    """
    root = require_dir(root, "tum")
    if sequences is not None:
        dirs = [require_dir(root / s, "tum") for s in sequences]
    elif (root / "rgb.txt").is_file():
        dirs = [root]
    else:
        dirs = [root / s for s in TUM_DYNAMIC_SEQUENCES if (root / s).is_dir()]
        if dirs and len(dirs) < len(TUM_DYNAMIC_SEQUENCES):
            log.warning("tum: only %d of the 8 protocol sequences are under %s", len(dirs), root)
        dirs = dirs or sorted(d for d in root.iterdir() if (d / "rgb.txt").is_file())
    if not dirs:
        raise FileNotFoundError(f"tum: no TUM-layout sequence folder (with rgb.txt) in {root}")
    return (_load_tum_sequence(d) for d in dirs)


def _load_tum_sequence(seq_dir: Path) -> VideoSequence:
    rig = next((r for r in TUM_INTRINSICS if r in seq_dir.name), "freiburg3")
    posed = [frame for frame in read_tum_frames(seq_dir) if frame.c2w is not None]
    return load_tum_frames(seq_dir.name, posed[TUM_FRAMES], intrinsics_matrix(*TUM_INTRINSICS[rig]).numpy(), None)


def iter_bonn(root: Path, sequences: list[str] | tuple[str, ...] = BONN_SEQUENCES) -> Iterator[VideoSequence]:
    """Bonn RGB-D Dynamic sequences ``rgbd_bonn_<name>``, rgb frames ``[30:140]``, depth capped at 70 m.

    Args:
        root: the ``rgbd_bonn_dataset`` folder holding the ``rgbd_bonn_*`` sequence folders.
        sequences: short names; default the 5 protocol sequences (each must be present).
    """
    root = require_dir(root, "bonn")
    dirs = [require_dir(root / f"rgbd_bonn_{s}", "bonn") for s in sequences]
    for d in dirs:
        require_file(d / "rgb.txt")
    return (_load_bonn_sequence(d) for d in dirs)


def bonn_camera_pose(marker_pose: np.ndarray) -> np.ndarray:
    """Camera-to-world pose from a Bonn groundtruth (marker) pose, per the dataset page."""
    return np.linalg.inv(_BONN_T_ROS) @ marker_pose @ _BONN_T_ROS @ _BONN_T_M


def _load_bonn_sequence(seq_dir: Path) -> VideoSequence:
    frames = read_tum_frames(seq_dir)[BONN_FRAMES]
    name = seq_dir.name.removeprefix("rgbd_bonn_")
    return load_tum_frames(name, frames, intrinsics_matrix(*BONN_INTRINSICS).numpy(), BONN_DEPTH_MAX, bonn_camera_pose)
