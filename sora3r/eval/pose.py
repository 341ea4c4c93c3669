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
Degenerate trajectories, where evo's Umeyama (and so MonST3R's evaluation) raises "degenerate covariance rank":
RPE-rot needs no alignment and is always scored; ground-truth camera centres at one point (a pure rotation) leave
the Sim(3) ATE and RPE-trans undefined (``None``); centres on a line, or an estimate at one point, are aligned by
their (non-unique) least-squares optimum (see ``_align``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from evo.core import metrics, sync
from evo.core.geometry import GeometryException
from evo.core.metrics import PoseRelation, StatisticsType, Unit
from evo.core.trajectory import PoseTrajectory3D
from evo.tools import file_interface

from sora3r.geometry.transforms import pose_array, umeyama

POSE_ALIGNMENTS = ("sim3", "se3", "none")
POSE_METRIC_KEYS = ("ate", "rpe_trans", "rpe_rot")
COINCIDENT_CENTRES = 1e-5  # relative spread under which camera centres count as one point (see centres_coincide)
UNDEFINED_PURE_ROTATION = "ground-truth camera centres coincide (pure rotation): no Sim(3) alignment for ATE, RPE-trans"


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


def centres_coincide(positions: np.ndarray) -> bool:
    """Whether camera centres ``(T, 3)`` (float64) sit at one point: spread at most ``COINCIDENT_CENTRES``
    (relative to the larger of 1 and their largest coordinate; 10 micrometres for positions in metres)."""
    return bool(np.ptp(positions, axis=0).max() <= COINCIDENT_CENTRES * max(1.0, float(np.abs(positions).max())))


def _align(est: PoseTrajectory3D, ref: PoseTrajectory3D, align: str) -> PoseTrajectory3D:
    """A copy of ``est`` aligned to ``ref`` by evo's Umeyama (``sim3``/``se3``) or left as is (``none``).

    evo refuses a rank-deficient position covariance ("degenerate covariance rank"): estimate or ground truth on
    one line, or an estimate whose cameras all sit at one point (the ``static`` baseline). The least-squares
    optimum is still defined there, only not unique: for centres on a line, the closed-form Umeyama through SVD
    (``sora3r.geometry.umeyama``) reaches it; for an estimate at one point, any rotation/scale maps it to one
    point and the best point is the centroid of the ground-truth positions. The rotation left undetermined changes
    none of ATE (positions only) or RPE (relative poses).
    """
    if align not in POSE_ALIGNMENTS:
        raise ValueError(f"align must be one of {POSE_ALIGNMENTS}, got {align!r}")
    aligned = copy.deepcopy(est)
    if align == "none":
        return aligned
    try:
        aligned.align(ref, correct_scale=(align == "sim3"))
        return aligned
    except GeometryException:
        aligned = copy.deepcopy(est)
    if centres_coincide(est.positions_xyz):
        shift = np.eye(4)
        shift[:3, 3] = ref.positions_xyz.mean(axis=0) - est.positions_xyz.mean(axis=0)
        aligned.transform(shift)
        return aligned
    scale, rotation, translation = (value.numpy() for value in umeyama(
        torch.from_numpy(est.positions_xyz), torch.from_numpy(ref.positions_xyz), with_scale=(align == "sim3")))
    aligned.scale(float(scale))
    transform = np.eye(4)
    transform[:3, :3], transform[:3, 3] = rotation, translation
    aligned.transform(transform)
    return aligned


def _rmse(metric, ref: PoseTrajectory3D, est: PoseTrajectory3D) -> float:
    metric.process_data((ref, est))
    return float(metric.get_statistic(StatisticsType.rmse))


def trajectory_metrics(
    est: PoseTrajectory3D, ref: PoseTrajectory3D, align: str = "sim3", all_pairs: bool = True
) -> dict:
    """ATE and RPE (delta 1 frame) RMSE of two already associated evo trajectories.

    Returns ``dict(ate, rpe_trans, rpe_rot, num_poses)``; ``rpe_rot`` is in degrees, the others in the
    reference's units. ``rpe_rot`` needs no alignment (relative rotations do not change under any Sim(3)) and is
    always reported. With ``align="sim3"`` and ground-truth camera centres at one point (a pure rotation), the
    Sim(3) fit is undefined (its scale collapses to 0): ``ate`` and ``rpe_trans`` are then ``None`` and
    ``undefined`` says why; this is a property of the ground truth, not a failure of the method.
    """
    if est.num_poses != ref.num_poses:
        raise ValueError(f"trajectories are not associated: {est.num_poses} vs {ref.num_poses} poses")
    if ref.num_poses < 2:
        raise ValueError(f"need at least 2 poses for pose metrics, got {ref.num_poses}")
    rpe = {relation: metrics.RPE(relation, delta=1, delta_unit=Unit.frames, all_pairs=all_pairs)
           for relation in (PoseRelation.translation_part, PoseRelation.rotation_angle_deg)}
    result = {"rpe_rot": _rmse(rpe[PoseRelation.rotation_angle_deg], ref, est), "num_poses": int(ref.num_poses)}
    if align == "sim3" and centres_coincide(ref.positions_xyz):
        result.update(ate=None, rpe_trans=None, undefined=UNDEFINED_PURE_ROTATION)
        return result
    aligned = _align(est, ref, align)
    result["ate"] = _rmse(metrics.APE(PoseRelation.translation_part), ref, aligned)
    result["rpe_trans"] = _rmse(rpe[PoseRelation.translation_part], ref, aligned)
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
        ``dict(ate, rpe_trans, rpe_rot, num_poses)``; defaults give the MonST3R protocol's values. ``ate`` and
        ``rpe_trans`` are ``None`` (with the reason under ``undefined``) where the ground truth's camera centres
        coincide (see :func:`trajectory_metrics`).
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
    (for plotting both in one frame). Rotations stay rotations; a Sim(3) scale acts on positions only.

    Raises:
        ValueError: shapes differ, or the alignment is undefined (``sim3`` onto ground-truth centres at one point).
    """
    est = _as_c2w_array(est_c2w, "estimated c2w")
    gt = _as_c2w_array(gt_c2w, "ground-truth c2w")
    if est.shape[0] != gt.shape[0]:
        raise ValueError(f"estimated and ground-truth poses differ in length: {est.shape[0]} vs {gt.shape[0]}")
    if align == "sim3" and centres_coincide(gt[:, :3, 3]):
        raise ValueError(UNDEFINED_PURE_ROTATION)
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
    """Dataset pose score: plain mean over sequences; ``None`` marks a failed sequence.

    Returns ``ate``, ``rpe_trans``, ``rpe_rot`` (each the mean over the sequences where it is defined, ``None`` when
    it is defined for none, never NaN), ``<key>_sequences`` (how many sequences each mean covers),
    ``num_sequences`` (succeeded) and ``num_failed``.
    """
    succeeded = [m for m in per_sequence if m is not None]
    summary = {}
    for key in POSE_METRIC_KEYS:
        values = [m[key] for m in succeeded if m.get(key) is not None]
        summary[key] = float(np.mean(values)) if values else None
        summary[f"{key}_sequences"] = len(values)
    summary["num_sequences"] = len(succeeded)
    summary["num_failed"] = len(per_sequence) - len(succeeded)
    return summary
