"""Camera-pose metrics (ATE, RPE) computed through evo, as the MonST3R protocol does.

Facts taken from MonST3R's evaluation (``dust3r/utils/vo_eval.py::eval_metrics``) and evo 1.38.1:
- the estimate gets the ground truth's timestamps when both have the same length, then
  ``evo.core.sync.associate_trajectories`` pairs them (default ``max_diff=0.01`` s);
- ATE = RMSE of evo's APE on the translation part after Umeyama alignment with scale
  (``align=True, correct_scale=True``, i.e. Sim(3));
- RPE-trans / RPE-rot = RMSE of evo's RPE (translation part / rotation angle in degrees), delta 1
  frame, ``all_pairs=True``, on the same Sim(3)-aligned estimate.
evo's own published figures (the reference table of the shared test data) use ``all_pairs=False`` instead;
both are exposed through ``all_pairs`` (with delta = 1 frame they select the same pairs, so the
values agree; they differ for larger deltas).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import torch
from evo.core import metrics, sync
from evo.core.geometry import GeometryException
from evo.core.metrics import PoseRelation, StatisticsType, Unit
from evo.core.trajectory import PoseTrajectory3D
from evo.tools import file_interface

from sora3r.geometry.transforms import pose_array

POSE_ALIGNMENTS = ("sim3", "se3", "none")
POSE_METRIC_KEYS = ("ate", "rpe_trans", "rpe_rot")


def _as_c2w_array(c2w: torch.Tensor | np.ndarray, what: str) -> np.ndarray:
    """``(T, 4, 4)`` float64 numpy copy of a pose stack (checked by `pose_array`) with each rotation projected onto
    SO(3).

    The projection (nearest rotation, by SVD) matters: evo refuses rotations that are orthonormal only to float32
    precision ("not a valid SO(3) group element"), which every float32 pose stack of a reader or a method is.
    """
    array = pose_array(c2w, what)
    u, _, vt = np.linalg.svd(array[:, :3, :3])
    flip = np.sign(np.linalg.det(u @ vt))[:, None]
    array[:, :3, :3] = (u * np.concatenate([np.ones_like(flip), np.ones_like(flip), flip], 1)[:, None, :]) @ vt
    return array


def _to_trajectory(c2w: np.ndarray, timestamps: np.ndarray) -> PoseTrajectory3D:
    return PoseTrajectory3D(poses_se3=list(c2w), timestamps=timestamps)


def _align(est: PoseTrajectory3D, ref: PoseTrajectory3D, align: str) -> PoseTrajectory3D:
    """A copy of ``est`` aligned to ``ref`` by evo's Umeyama (``sim3``/``se3``) or left as is (``none``).

    An estimate whose cameras all sit at one point (e.g. the ``static`` baseline) makes evo's
    Umeyama raise (degenerate covariance). Its least-squares optimum is still defined: any
    rotation/scale maps one point to one point, and the best single point is the centroid of the
    ground-truth positions. So that case is handled here by translating the estimate there; the
    rotation left undetermined changes none of ATE (positions only) or RPE (relative poses).
    """
    if align not in POSE_ALIGNMENTS:
        raise ValueError(f"align must be one of {POSE_ALIGNMENTS}, got {align!r}")
    aligned = copy.deepcopy(est)
    if align == "none":
        return aligned
    try:
        aligned.align(ref, correct_scale=(align == "sim3"))
    except GeometryException as error:
        positions = est.positions_xyz
        if np.ptp(positions, axis=0).max() > 1e-12 * max(1.0, np.abs(positions).max()):
            raise ValueError(f"{align} alignment of the trajectories is impossible: {error}") from error
        shift = np.eye(4)
        shift[:3, 3] = ref.positions_xyz.mean(axis=0) - positions[0]
        aligned.transform(shift)
    return aligned


def trajectory_metrics(
    est: PoseTrajectory3D, ref: PoseTrajectory3D, align: str = "sim3", all_pairs: bool = True
) -> dict:
    """ATE and RPE (delta 1 frame) RMSE of two already associated evo trajectories.

    Returns ``dict(ate, rpe_trans, rpe_rot, num_poses)``; ``rpe_rot`` is in degrees, the others in the
    reference's units.
    """
    if est.num_poses != ref.num_poses:
        raise ValueError(f"trajectories are not associated: {est.num_poses} vs {ref.num_poses} poses")
    if ref.num_poses < 2:
        raise ValueError(f"need at least 2 poses for pose metrics, got {ref.num_poses}")
    aligned = _align(est, ref, align)
    ape = metrics.APE(PoseRelation.translation_part)
    ape.process_data((ref, aligned))
    result = {"ate": float(ape.get_statistic(StatisticsType.rmse))}
    for key, relation in (("rpe_trans", PoseRelation.translation_part), ("rpe_rot", PoseRelation.rotation_angle_deg)):
        rpe = metrics.RPE(relation, delta=1, delta_unit=Unit.frames, all_pairs=all_pairs)
        rpe.process_data((ref, aligned))
        result[key] = float(rpe.get_statistic(StatisticsType.rmse))
    result["num_poses"] = int(ref.num_poses)
    return result


def pose_metrics(
    est_c2w: torch.Tensor | np.ndarray,
    gt_c2w: torch.Tensor | np.ndarray,
    timestamps: torch.Tensor | np.ndarray | None = None,
    align: str = "sim3",
    all_pairs: bool = True,
) -> dict:
    """Pose metrics of per-frame camera-to-world poses against ground truth (frame i pairs with frame i).

    Args:
        est_c2w: ``(T, 4, 4)`` estimated camera-to-world poses (any world frame, any scale for ``sim3``).
        gt_c2w: ``(T, 4, 4)`` ground-truth camera-to-world poses.
        timestamps: ``(T,)`` seconds of the frames; frame indices when ``None``.
        align: ``"sim3"`` (the protocol), ``"se3"`` or ``"none"``.
        all_pairs: RPE over all pairs ``(i, i+1)`` (the protocol) or evo's default non-overlapping pairs.

    Returns:
        ``dict(ate, rpe_trans, rpe_rot, num_poses)``; defaults give the MonST3R protocol's values.
    """
    est = _as_c2w_array(est_c2w, "estimated c2w")
    gt = _as_c2w_array(gt_c2w, "ground-truth c2w")
    if est.shape[0] != gt.shape[0]:
        raise ValueError(f"estimated and ground-truth poses differ in length: {est.shape[0]} vs {gt.shape[0]}")
    if timestamps is None:
        stamps = np.arange(gt.shape[0], dtype=np.float64)
    else:
        stamps = np.asarray(timestamps.cpu() if isinstance(timestamps, torch.Tensor) else timestamps, np.float64)
        if stamps.shape != (gt.shape[0],):
            raise ValueError(f"timestamps must have shape ({gt.shape[0]},), got {stamps.shape}")
    return trajectory_metrics(_to_trajectory(est, stamps), _to_trajectory(gt, stamps), align, all_pairs)


def aligned_c2w(
    est_c2w: torch.Tensor | np.ndarray, gt_c2w: torch.Tensor | np.ndarray, align: str = "sim3"
) -> np.ndarray:
    """The estimate ``(T, 4, 4)`` moved onto the ground truth by the alignment :func:`pose_metrics` uses
    (for plotting both in one frame). Rotations stay rotations; a Sim(3) scale acts on positions only."""
    est = _as_c2w_array(est_c2w, "estimated c2w")
    gt = _as_c2w_array(gt_c2w, "ground-truth c2w")
    if est.shape[0] != gt.shape[0]:
        raise ValueError(f"estimated and ground-truth poses differ in length: {est.shape[0]} vs {gt.shape[0]}")
    stamps = np.arange(gt.shape[0], dtype=np.float64)
    return np.stack(_align(_to_trajectory(est, stamps), _to_trajectory(gt, stamps), align).poses_se3)


def read_trajectory(path: str | Path) -> PoseTrajectory3D:
    """Read a TUM (``t tx ty tz qx qy qz qw``) or KITTI (12 numbers: a 3x4 row-major pose) file with evo.

    KITTI files have no timestamps: poses get their line index as timestamp.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trajectory file not found: {path}")
    first = next((line.split() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")), None)
    if first is None:
        raise ValueError(f"{path}: no poses in trajectory file")
    if len(first) == 8:
        return file_interface.read_tum_trajectory_file(path)
    if len(first) == 12:
        poses = file_interface.read_kitti_poses_file(path)
        return PoseTrajectory3D(poses_se3=poses.poses_se3, timestamps=np.arange(poses.num_poses, dtype=np.float64))
    raise ValueError(f"{path}: {len(first)} columns per line; expected 8 (TUM) or 12 (KITTI)")


def evaluate_trajectory_files(
    est_path: str | Path,
    gt_path: str | Path,
    align: str = "sim3",
    all_pairs: bool = True,
    max_diff: float = 0.01,
) -> dict:
    """Pose metrics of a trajectory file against a ground-truth file, associated by timestamp.

    Poses are paired with evo's ``sync.associate_trajectories(max_diff=...)`` (seconds; for KITTI
    files the timestamps are line indices). Returns the same dict as :func:`pose_metrics`.
    """
    ref, est = sync.associate_trajectories(read_trajectory(gt_path), read_trajectory(est_path), max_diff=max_diff)
    return trajectory_metrics(est, ref, align, all_pairs)


def aggregate_pose(per_sequence: list[dict | None]) -> dict:
    """Dataset pose score: plain mean over the sequences that succeeded; ``None`` marks a failed sequence.

    Returns ``ate``, ``rpe_trans``, ``rpe_rot`` (NaN when none succeeded), ``num_sequences`` (succeeded)
    and ``num_failed``.
    """
    succeeded = [m for m in per_sequence if m is not None]
    summary = {
        key: float(np.mean([m[key] for m in succeeded])) if succeeded else math.nan for key in POSE_METRIC_KEYS
    }
    summary["num_sequences"] = len(succeeded)
    summary["num_failed"] = len(per_sequence) - len(succeeded)
    return summary
