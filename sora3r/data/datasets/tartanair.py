"""TartanAir reader (training data of Sora3R): ``<env>/<Easy|Hard>/<Pxxx>/{image_left, depth_left, pose_left.txt}``.

Format facts, each checked against the dataset's own tools (castacks/tartanair_tools) and loaders built on them:
- ``image_left/XXXXXX_left.png`` (640x480 RGB) and ``depth_left/XXXXXX_left_depth.npy`` (float32 (480, 640), metres),
  six-digit frame numbers from 0. Depth is z-depth: the tools turn it into stereo disparity as ``80 / depth``
  (baseline 0.25 m x focal 320 px), which holds only for depth along the optical axis.
- Intrinsics for every frame: fx = fy = 320, cx = 320, cy = 240 at 640x480 (tartanair_tools README).
- ``pose_left.txt``: one line ``tx ty tz qx qy qz qw`` per frame, "the position / orientation of the optical centre
  of the camera with respect to the world frame", i.e. camera-to-world, with both camera body and world in NED axes
  (x forward, y right, z down).
- OpenCV camera axes are (x right, y down, z forward) = (NED y, NED z, NED x). The tools' ``ned2cam`` converts a NED
  pose P to camera axes as ``T @ P @ T^-1`` with T = [[0,1,0],[0,0,1],[1,0,0]] (rows pick y, z, x), which renames the
  axes of the body frame and of the world frame alike. We do the same, then re-base the poses onto the first camera
  like every reader.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from sora3r.data.datasets._io import make_sequence, read_matrix_rows, read_rgb, require_dir, require_file
from sora3r.data.images import frame_files
from sora3r.geometry.projection import unproject_depth
from sora3r.types import VideoSequence

NATIVE_K = ((320.0, 0.0, 320.0), (0.0, 320.0, 240.0), (0.0, 0.0, 1.0))
NATIVE_HW = (480, 640)
# Rows pick (y, z, x) of a NED vector: OpenCV coordinates of the same vector.
NED_TO_OPENCV = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


def ned_poses_to_opencv_c2w(poses: np.ndarray) -> np.ndarray:
    """``(T, 7)`` NED ``tx ty tz qx qy qz qw`` camera-to-world lines -> ``(T, 4, 4)`` c2w with OpenCV axes."""
    c2w_ned = np.tile(np.eye(4), (len(poses), 1, 1))
    c2w_ned[:, :3, :3] = Rotation.from_quat(poses[:, 3:7]).as_matrix()  # scipy takes (x, y, z, w), as stored
    c2w_ned[:, :3, 3] = poses[:, :3]
    change = np.eye(4)
    change[:3, :3] = NED_TO_OPENCV
    return change @ c2w_ned @ change.T  # change.T is its inverse (a permutation)


def list_trajectories(root: Path, difficulty: str | None = None) -> list[Path]:
    """Trajectory folders (those holding ``pose_left.txt``) under ``root``, sorted; ``difficulty`` "Easy" / "Hard"."""
    root = require_dir(root, "TartanAir")
    # rglob: the official zips unpack as <env>/<env>/<Easy|Hard>/<Pxxx>, copies often drop one <env> level.
    found = sorted(p.parent for p in root.rglob("pose_left.txt"))
    if difficulty is not None:
        found = [p for p in found if p.parent.name.lower() == difficulty.lower()]
    return found


def _read_depth(path: Path) -> np.ndarray:
    depth = np.load(require_file(path))
    if depth.shape != NATIVE_HW:
        raise ValueError(f"{path}: expected a (480, 640) depth array, got {depth.shape}")
    return depth.astype(np.float32)


def read_sequence(traj_dir: Path, max_frames: int | None = None, max_depth: float | None = None,
                    with_points: bool = False, name: str | None = None) -> VideoSequence:
    """One TartanAir trajectory (its first ``max_frames`` frames) in package conventions.

    Poses are re-based so that the first frame's camera is the world (as every reader does). ``max_depth``: depth
    beyond it (e.g. the sky, stored as very large values) is not ``valid``.
    """
    traj_dir = Path(traj_dir)
    poses = read_matrix_rows(traj_dir / "pose_left.txt", 7)
    frames = [p.name.removesuffix("_left.png") for p in frame_files(traj_dir / "image_left", "*_left.png")]
    if not frames:
        raise FileNotFoundError(f"{traj_dir / 'image_left'}: no XXXXXX_left.png frames")
    if len(frames) != len(poses):
        raise ValueError(f"{traj_dir / 'pose_left.txt'}: {len(poses)} poses for {len(frames)} images")
    frames = frames[:max_frames]
    rgb = [read_rgb(traj_dir / "image_left" / f"{frame}_left.png") for frame in frames]
    if any(image.shape[:2] != NATIVE_HW for image in rgb):
        raise ValueError(f"{traj_dir / 'image_left'}: TartanAir images must be 640x480")
    seq = make_sequence(
        name=name or traj_dir.name,
        rgb=rgb,
        depth=[_read_depth(traj_dir / "depth_left" / f"{frame}_left_depth.npy") for frame in frames],
        K=np.array(NATIVE_K),
        c2w=ned_poses_to_opencv_c2w(poses[: len(frames)]),
        timestamps=np.array([float(frame) for frame in frames]),
        depth_max=max_depth,
    )
    return replace(seq, points=unproject_depth(seq.depth, seq.K, seq.c2w)) if with_points else seq


def iter_tartanair(root: Path, difficulty: str | None = None, max_frames: int | None = None,
                   max_depth: float | None = None, with_points: bool = False,
                   shard: tuple[int, int] = (0, 1)) -> Iterator[VideoSequence]:
    """Yield every trajectory under ``root`` one at a time (named ``<env>/<Easy|Hard>/<Pxxx>``).

    Args:
        difficulty: "Easy" or "Hard" to keep only those; None = both.
        max_frames: read at most this many frames of each trajectory.
        max_depth: metres at or beyond which depth is not ``valid`` (None keeps all finite positive depth).
        with_points: also fill ``points`` (first-camera world frame); clip sampling computes its own.
        shard: ``(index, count)``: only every ``count``-th trajectory from ``index`` (for DataLoader workers).
    """
    root = Path(root)
    index, count = shard
    for traj_dir in list_trajectories(root, difficulty)[index::count]:
        name = "/".join(traj_dir.relative_to(root).parts[-3:]) or traj_dir.name
        yield read_sequence(traj_dir, max_frames=max_frames, max_depth=max_depth, with_points=with_points,
                              name=name)
