"""Pose and depth metrics: evo's published figures, invariances, known perturbations, aggregation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from shared_data import EVO_DATA
from sora3r.data.synthetic import SyntheticConfig, render_clip, split_seed
from sora3r.data.video import resize_and_crop
from sora3r.eval.depth import aggregate_depth, depth_metrics, depth_on_gt_grid
from sora3r.eval.pose import aggregate_pose, evaluate_trajectory_files, pose_metrics
from sora3r.eval.quick import centre_ate, drift_sources, motion_scale
from sora3r.geometry import to_first_frame
from sora3r.geometry.transforms import apply_sim3


# The table of ../shared/data/README.md (evo 1.38.1, max_diff 0.01, RPE delta 1 frame, all_pairs=False).
EVO_TABLE = [
    ("fr2_desk_ORB.txt", "fr2_desk_groundtruth.txt", "se3", 2174, 0.008119, 0.003490, 0.280519),
    ("fr2_desk_ORB.txt", "fr2_desk_groundtruth.txt", "sim3", 2174, 0.006123, 0.003485, 0.280519),
    ("freiburg1_xyz-rgbdslam.txt", "freiburg1_xyz-groundtruth.txt", "se3", 785, 0.013470, 0.005764, 0.353613),
    ("freiburg1_xyz-rgbdslam.txt", "freiburg1_xyz-groundtruth.txt", "sim3", 785, 0.013389, 0.005806, 0.353613),
    ("KITTI_00_ORB.txt", "KITTI_00_gt.txt", "se3", 4541, 1.303450, 0.028120, 0.114974),
    ("KITTI_00_ORB.txt", "KITTI_00_gt.txt", "sim3", 4541, 0.937709, 0.027822, 0.114974),
]


@pytest.mark.parametrize("est, gt, align, poses, ate, rpe_trans, rpe_rot", EVO_TABLE)
def test_reproduces_evo_published_table(est, gt, align, poses, ate, rpe_trans, rpe_rot):
    result = evaluate_trajectory_files(EVO_DATA / est, EVO_DATA / gt, align=align, all_pairs=False)
    assert result["num_poses"] == poses
    # The table is printed to 6 decimals: agreement within rounding, i.e. 5e-7 (< 1e-6).
    assert result["ate"] == pytest.approx(ate, abs=5e-7)
    assert result["rpe_trans"] == pytest.approx(rpe_trans, abs=5e-7)
    assert result["rpe_rot"] == pytest.approx(rpe_rot, abs=5e-7)


def test_all_pairs_is_the_same_as_evo_default_for_delta_one_frame():
    # With delta = 1 frame evo's default (non-overlapping) pairs are already every consecutive pair.
    files = (EVO_DATA / "freiburg1_xyz-rgbdslam.txt", EVO_DATA / "freiburg1_xyz-groundtruth.txt")
    assert evaluate_trajectory_files(*files, all_pairs=True) == evaluate_trajectory_files(*files, all_pairs=False)


def _random_trajectory(num: int, seed: int) -> torch.Tensor:
    """A smooth, non-degenerate camera path (T, 4, 4) in float64."""
    rng = np.random.default_rng(seed)
    c2w = np.tile(np.eye(4), (num, 1, 1))
    steps = rng.normal(size=(num, 3)) * 0.1 + np.array([0.2, 0.05, 0.1])
    c2w[:, :3, 3] = np.cumsum(steps, axis=0)
    c2w[:, :3, :3] = Rotation.from_rotvec(np.cumsum(rng.normal(size=(num, 3)) * 0.05, axis=0)).as_matrix()
    return torch.from_numpy(c2w)


def _noisy(c2w: torch.Tensor, seed: int, sigma: float = 0.02) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    out = c2w.clone().numpy()
    out[:, :3, 3] += rng.normal(size=(len(out), 3)) * sigma
    out[:, :3, :3] = Rotation.from_rotvec(rng.normal(size=(len(out), 3)) * sigma).as_matrix() @ out[:, :3, :3]
    return torch.from_numpy(out)


def test_pose_metrics_are_zero_for_exact_poses_and_positive_for_noise():
    gt = _random_trajectory(30, seed=0)
    exact = pose_metrics(gt, gt)
    assert exact["num_poses"] == 30
    assert exact["ate"] < 1e-9 and exact["rpe_trans"] < 1e-9 and exact["rpe_rot"] < 1e-6
    noisy = pose_metrics(_noisy(gt, seed=1), gt)
    assert 0.005 < noisy["ate"] < 0.05 and noisy["rpe_rot"] > 0.5


def test_pose_metrics_invariant_to_sim3_transform_of_estimate():
    gt = _random_trajectory(40, seed=2)
    est = _noisy(gt, seed=3)
    sim3 = np.eye(4)
    sim3[:3, :3] = 3.7 * Rotation.from_rotvec([0.3, -1.2, 0.5]).as_matrix()
    sim3[:3, 3] = [5.0, -2.0, 11.0]
    moved = est.clone().numpy()
    moved = sim3 @ moved
    moved[:, :3, :3] /= 3.7  # rotations stay rotations; positions carry the scale
    reference = pose_metrics(est, gt)
    transformed = pose_metrics(torch.from_numpy(moved), gt)
    for key in ("ate", "rpe_trans", "rpe_rot"):
        assert transformed[key] == pytest.approx(reference[key], rel=1e-6, abs=1e-9)
    # Without the scale correction the scaled estimate is much worse.
    assert pose_metrics(torch.from_numpy(moved), gt, align="se3")["ate"] > 10 * reference["ate"]


def test_static_estimate_scores_the_spread_of_ground_truth():
    gt = _random_trajectory(20, seed=4)
    static = torch.eye(4, dtype=torch.float64).expand(20, 4, 4)
    result = pose_metrics(static, gt)
    positions = gt[:, :3, 3].numpy()
    spread = np.sqrt(((positions - positions.mean(0)) ** 2).sum(1).mean())
    assert result["ate"] == pytest.approx(spread, rel=1e-9)
    steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    assert result["rpe_trans"] == pytest.approx(np.sqrt((steps**2).mean()), rel=1e-6)


def test_pose_metrics_reject_bad_input():
    gt = _random_trajectory(5, seed=5)
    with pytest.raises(ValueError, match="differ in length"):
        pose_metrics(gt[:4], gt)
    with pytest.raises(ValueError, match="shape"):
        pose_metrics(gt[:, :3], gt)
    with pytest.raises(ValueError, match="align"):
        pose_metrics(gt, gt, align="sim2")
    bad = gt.clone()
    bad[2, 0, 3] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        pose_metrics(bad, gt)
    with pytest.raises(FileNotFoundError):
        evaluate_trajectory_files(EVO_DATA / "missing.txt", EVO_DATA / "KITTI_00_gt.txt")


def _depth_scene(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    gt = torch.from_numpy(rng.uniform(1.0, 20.0, size=(4, 12, 16)))
    gt[:, :2] = 0.0  # unknown rows
    return gt, gt > 0


def test_depth_metrics_recover_known_scale_and_shift():
    gt, valid = _depth_scene()
    scaled = gt * 0.25
    assert depth_metrics(scaled, gt, align="scale")["abs_rel"] < 1e-6
    # The protocol's scale&shift fit is Adam with lr 1e-4 for at most 1000 steps: it can move the shift
    # by about 0.1, so the known shift here is small.
    affine = gt * 0.5 + 0.05
    result = depth_metrics(affine, gt, align="scale&shift")
    assert result["abs_rel"] < 1e-4 and result["delta_1.25"] == 1.0
    assert result["num_valid"] == int(valid.sum())
    # A pure scale cannot undo the shift.
    assert depth_metrics(affine, gt, align="scale")["abs_rel"] > 0.005


def test_depth_metrics_values_for_a_known_perturbation():
    gt, valid = _depth_scene()
    pred = gt.clone()
    pred[..., ::2] *= 1.5  # half of the pixels 50 % too far: abs_rel = 0.25, delta_1.25 = 0.5
    result = depth_metrics(pred, gt, align="none")
    assert result["abs_rel"] == pytest.approx(0.25)
    assert result["delta_1.25"] == pytest.approx(0.5)
    g, d = gt[valid], (pred - gt)[valid]
    assert result["sq_rel"] == pytest.approx(float((d**2 / g).mean()))
    assert result["rmse"] == pytest.approx(float(d.square().mean().sqrt()))
    assert result["log_rmse"] == pytest.approx(math.log(1.5) / math.sqrt(2))


def test_depth_cap_masks_far_ground_truth_and_clips_prediction():
    gt = torch.full((2, 4, 4), 10.0)
    gt[:, 0] = 100.0  # beyond the cap: ignored
    pred = gt.clone()
    pred[:, 1] = 90.0  # clipped to 70 -> abs_rel of those pixels = 6
    result = depth_metrics(pred, gt, align="none", max_depth=70.0)
    assert result["num_valid"] == 24
    assert result["abs_rel"] == pytest.approx(6.0 * 8 / 24)
    assert depth_metrics(pred, gt, align="none")["num_valid"] == 32


def test_depth_metrics_ignore_invalid_and_nonfinite_pixels():
    gt, valid = _depth_scene()
    pred = gt.clone()
    pred[0, 5, 5] = float("nan")
    mask = valid.clone()
    mask[1] = False
    result = depth_metrics(pred, gt, mask, align="none")
    assert result["num_valid"] == int(mask.sum()) - 1 and result["abs_rel"] == 0.0
    empty = depth_metrics(pred, torch.zeros_like(gt), align="none")
    assert empty["num_valid"] == 0 and empty["abs_rel"] is None  # undefined, not NaN
    with pytest.raises(ValueError, match="differ in shape"):
        depth_metrics(pred[:, :5], gt)


def _smooth_depth(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return 3.0 + 0.02 * u + 0.01 * v + 0.3 * torch.sin(u / 9.0)


def test_depth_on_gt_grid_undoes_resize_and_centre_crop():
    height, width, frames = 48, 64, 2
    _, affine = resize_and_crop(torch.zeros(frames, height, width, 3, dtype=torch.uint8), 24, 24)
    # The prediction's pixel (u', v') sees ground-truth pixel A^-1 (u', v').
    v_pred, u_pred = torch.meshgrid(torch.arange(24.0), torch.arange(24.0), indexing="ij")
    source = torch.stack([u_pred, v_pred, torch.ones_like(u_pred)], -1).double() @ torch.linalg.inv(affine).T
    pred = _smooth_depth(source[..., 0], source[..., 1]).expand(frames, 24, 24)
    v, u = torch.meshgrid(torch.arange(float(height)), torch.arange(float(width)), indexing="ij")
    gt = _smooth_depth(u, v).double().expand(frames, height, width)

    on_gt = depth_on_gt_grid(pred, (height, width), affine)
    covered = on_gt[0].isfinite()
    assert covered[:, 8:56].all() and not covered[:, :7].any() and not covered[:, 57:].any()  # 48x48 centre crop
    result = depth_metrics(on_gt, gt, align="none")
    assert result["num_valid"] == int(covered.sum()) * frames
    assert result["abs_rel"] < 2e-3
    # Without a crop, a plain resize back to the ground-truth size.
    assert depth_on_gt_grid(gt[:, ::2, ::2], (height, width)).shape == (frames, height, width)
    assert depth_metrics(depth_on_gt_grid(gt[:, ::2, ::2], (height, width)), gt, align="none")["abs_rel"] < 5e-3


def test_aggregate_depth_weights_by_valid_pixels():
    per_sequence = [
        {"abs_rel": 0.1, "sq_rel": 1.0, "rmse": 1.0, "log_rmse": 0.1, "delta_1.25": 0.9, "num_valid": 300},
        {"abs_rel": 0.5, "sq_rel": 2.0, "rmse": 3.0, "log_rmse": 0.5, "delta_1.25": 0.5, "num_valid": 100},
        {"abs_rel": None, "sq_rel": None, "rmse": None, "log_rmse": None, "delta_1.25": None, "num_valid": 0},
    ]
    summary = aggregate_depth(per_sequence)
    assert summary["abs_rel"] == pytest.approx(0.2)
    assert summary["delta_1.25"] == pytest.approx(0.8)
    assert summary["num_valid"] == 400 and summary["num_sequences"] == 2


def test_aggregate_pose_is_plain_mean_and_counts_failures():
    summary = aggregate_pose([{"ate": 1.0, "rpe_trans": 0.1, "rpe_rot": 1.0}, None,
                              {"ate": 3.0, "rpe_trans": 0.3, "rpe_rot": 2.0}])
    assert summary["ate"] == pytest.approx(2.0) and summary["rpe_rot"] == pytest.approx(1.5)
    assert summary["num_sequences"] == 2 and summary["num_failed"] == 1
    assert summary["ate_sequences"] == summary["rpe_rot_sequences"] == 2
    assert aggregate_pose([None])["ate"] is None and aggregate_depth([])["abs_rel"] is None  # never NaN


def test_aggregate_pose_counts_the_sequences_each_mean_covers():
    undefined = {"ate": None, "rpe_trans": None, "rpe_rot": 4.0}
    summary = aggregate_pose([{"ate": 1.0, "rpe_trans": 0.1, "rpe_rot": 1.0}, undefined, None])
    assert summary["ate"] == 1.0 and summary["ate_sequences"] == 1 and summary["rpe_trans_sequences"] == 1
    assert summary["rpe_rot"] == pytest.approx(2.5) and summary["rpe_rot_sequences"] == 2
    assert summary["num_sequences"] == 2 and summary["num_failed"] == 1


def _pure_rotation(num: int, seed: int) -> torch.Tensor:
    """Cameras turning about one fixed centre (a pan): c2w (num, 4, 4)."""
    rng = np.random.default_rng(seed)
    c2w = np.tile(np.eye(4), (num, 1, 1))
    c2w[:, :3, :3] = Rotation.from_rotvec(np.cumsum(rng.normal(scale=0.05, size=(num, 3)), axis=0)).as_matrix()
    c2w[:, :3, 3] = [1.5, -0.2, 3.0]
    return torch.from_numpy(c2w)


def test_pure_rotation_ground_truth_reports_rpe_rot_and_leaves_translation_metrics_undefined():
    gt = _pure_rotation(17, seed=0)
    exact = pose_metrics(gt, gt)
    assert exact["rpe_rot"] < 1e-6 and exact["ate"] is None and exact["rpe_trans"] is None
    assert "coincide" in exact["undefined"]
    # The centres may be stored in float32 (a reader's poses): rounding does not make them a trajectory.
    assert pose_metrics(gt, gt.float())["ate"] is None
    # RPE-rot needs no alignment: a method with rotation noise gets the same value as unaligned relative rotations.
    noisy = _noisy(gt, seed=1, sigma=0.01)
    relative = np.linalg.inv(noisy[:-1].numpy()) @ noisy[1:].numpy()
    relative_gt = np.linalg.inv(gt[:-1].numpy()) @ gt[1:].numpy()
    angles = Rotation.from_matrix(np.linalg.inv(relative_gt[:, :3, :3]) @ relative[:, :3, :3]).magnitude()
    assert pose_metrics(noisy, gt)["rpe_rot"] == pytest.approx(np.degrees(np.sqrt((angles**2).mean())), rel=1e-6)
    # Without the Sim(3) scale, ATE is defined: the spread of the estimate's centres about the fixed point.
    assert pose_metrics(noisy, gt, align="se3")["ate"] > 0


def test_collinear_ground_truth_is_aligned_where_evo_refuses():
    """evo's Umeyama refuses a rank-1 position covariance (a straight track); the optimum is still defined."""
    gt = _random_trajectory(20, seed=6).numpy()
    gt[:, :3, 3] = np.linspace(0, 1, 20)[:, None] * np.array([0.3, 0.0, 2.0])
    similarity = np.eye(4)
    similarity[:3, :3] = Rotation.from_rotvec([0.2, 1.0, -0.4]).as_matrix()
    similarity[:3, 3] = [1.0, 2.0, 3.0]
    est = similarity @ gt
    est[:, :3, 3] *= 0.5
    result = pose_metrics(torch.from_numpy(est), torch.from_numpy(gt))
    assert result["ate"] < 1e-9 and result["rpe_trans"] < 1e-9 and result["rpe_rot"] < 1e-6
    # A wrong estimate on a line still scores a positive error.
    est[5:, :3, 3] += 0.1
    assert pose_metrics(torch.from_numpy(est), torch.from_numpy(gt))["ate"] > 1e-3


@pytest.mark.parametrize("align", ["scale", "scale&shift", "none"])
def test_all_zero_depth_scores_abs_rel_one_and_delta_zero(align):
    result = depth_metrics(torch.zeros(1, 1, 1), torch.ones(1, 1, 1), align=align)
    assert result["abs_rel"] == 1.0 and result["delta_1.25"] == 0.0 and result["num_valid"] == 1
    gt, _ = _depth_scene()
    result = depth_metrics(torch.zeros_like(gt), gt, align=align)
    assert result["abs_rel"] == 1.0 and result["delta_1.25"] == 0.0
    assert all(math.isfinite(result[key]) for key in ("sq_rel", "rmse", "log_rmse"))


def test_depth_fit_without_a_usable_scale_is_an_error_not_nan():
    # Mean predicted depth 0 (signs cancel): the protocol's scale fit starts at infinity.
    with pytest.raises(ValueError, match="no usable scale"):
        depth_metrics(torch.tensor([[[1.0, -1.0]]]), torch.ones(1, 1, 2), align="scale")


def test_motion_scale_sees_the_camera_path_shrunk_against_the_scene_which_ate_cannot():
    seq = render_clip(split_seed("test", 3), SyntheticConfig(num_frames=9, height=24, width=32))
    points, c2w = to_first_frame(seq.points, seq.c2w)
    # The whole prediction in another similarity frame: nothing to see.
    R = torch.from_numpy(Rotation.from_rotvec([0.2, -0.7, 0.4]).as_matrix()).float()
    moved_c2w = c2w.clone()
    moved_c2w[:, :3, :3] = R @ c2w[:, :3, :3]
    moved_c2w[:, :3, 3] = apply_sim3(torch.tensor(2.5), R, torch.tensor([1.0, -3.0, 0.5]), c2w[:, :3, 3])
    moved_points = apply_sim3(torch.tensor(2.5), R, torch.tensor([1.0, -3.0, 0.5]), points)
    assert motion_scale(moved_points, moved_c2w, points, c2w, seq.valid) == pytest.approx(0.0, abs=1e-5)
    # The cameras move 60 % as far in the same scene: log 0.6, while the path's own ATE stays exact.
    shrunk = c2w.clone()
    shrunk[:, :3, 3] = c2w[0, :3, 3] + 0.6 * (c2w[:, :3, 3] - c2w[0, :3, 3])
    assert motion_scale(points, shrunk, points, c2w, seq.valid) == pytest.approx(math.log(0.6), abs=1e-5)
    assert centre_ate(shrunk, c2w) < 1e-5
    # A camera that stands still has no motion to measure.
    still = c2w[:1].expand_as(c2w)
    assert math.isnan(motion_scale(points, still, points, still, seq.valid))


def _chain(steps: torch.Tensor) -> torch.Tensor:
    poses = [torch.eye(4, dtype=torch.float64)]
    for step in steps:
        poses.append(poses[-1] @ step)
    return torch.stack(poses)


def _walk_steps(count: int, yaw_deg: float, length: torch.Tensor) -> torch.Tensor:
    """Relative poses of a walk: each step turns by ``yaw_deg`` about y and moves ``length`` along the camera's z."""
    steps = torch.eye(4, dtype=torch.float64).repeat(count, 1, 1)
    steps[:, :3, :3] = torch.from_numpy(Rotation.from_euler("y", yaw_deg, degrees=True).as_matrix())
    steps[:, 2, 3] = length
    return steps


def test_drift_sources_name_the_part_of_the_motion_that_drifts():
    count = 60
    truth_steps = _walk_steps(count, 3.0, torch.full((count,), 0.1, dtype=torch.float64))
    truth = _chain(truth_steps)
    # A Sim(3) of the truth: no drift of any kind.
    moved = truth.clone()
    moved[:, :3, 3] = apply_sim3(torch.tensor(2.5, dtype=torch.float64),
                                 torch.from_numpy(Rotation.from_euler("xz", [20, 40], degrees=True).as_matrix()),
                                 torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), truth[:, :3, 3])
    moved[:, :3, :3] = moved[:, :3, :3].new_tensor(Rotation.from_euler("xz", [20, 40], degrees=True).as_matrix()) \
        @ truth[:, :3, :3]
    exact = drift_sources(moved, truth)
    assert max(exact[key] for key in ("ate", "rotation", "length", "direction", "translation")) < 1e-9
    # Each step turns 1 degree too far: the rotation alone makes the whole drift, the translations none.
    turned = drift_sources(_chain(_walk_steps(count, 4.0, truth_steps[:, 2, 3])), truth)
    assert turned["ate"] > 0.1 and turned["rotation"] == pytest.approx(turned["ate"], rel=0.05)
    assert turned["length"] < 1e-9 and turned["direction"] < 1e-9
    assert turned["rotation_deg"] == pytest.approx(1.0)
    # Steps 1.5x as long for the first half of the walk and 0.5x for the second: the length alone drifts.
    uneven = truth_steps[:, 2, 3] * torch.tensor([1.5, 0.5], dtype=torch.float64).repeat_interleave(count // 2)
    stretched = drift_sources(_chain(_walk_steps(count, 3.0, uneven)), truth)
    assert stretched["ate"] > 0.05 and stretched["length"] == pytest.approx(stretched["ate"], rel=0.05)
    assert stretched["rotation"] < 1e-9 and stretched["direction"] < 1e-9
    assert stretched["log_length_std"] > 0.5 and stretched["direction_deg"] < 1e-6
    # The first half's steps head 15 degrees off to the side (the camera still turns as it should): the direction
    # alone drifts. (A constant offset on this constant-curvature walk would only turn the whole path.)
    sideways = truth_steps.clone()
    sideways[:count // 2, :3, 3] = truth_steps[:count // 2, :3, 3] @ sideways.new_tensor(
        Rotation.from_euler("y", 15, degrees=True).as_matrix()).T
    crabbed = drift_sources(_chain(sideways), truth)
    assert crabbed["ate"] > 0.05 and crabbed["direction"] == pytest.approx(crabbed["ate"], rel=0.05)
    assert crabbed["rotation"] < 1e-9 and crabbed["length"] < 1e-9
    assert crabbed["direction_deg"] == pytest.approx(7.5)
    assert crabbed["direction_bias_deg"] == pytest.approx(7.5, abs=0.1)  # every error the same way: all bias
    # Steps heading 15 degrees off to alternate sides: the same mean error, scattered about the truth (no bias).
    scattered = truth_steps.clone()
    for sign, part in ((1, slice(0, None, 2)), (-1, slice(1, None, 2))):
        scattered[part, :3, 3] = truth_steps[part, :3, 3] @ scattered.new_tensor(
            Rotation.from_euler("y", sign * 15, degrees=True).as_matrix()).T
    zigzag = drift_sources(_chain(scattered), truth)
    assert zigzag["direction_deg"] == pytest.approx(15.0) and zigzag["direction_bias_deg"] < 0.1
    with pytest.raises(ValueError, match="fewer than 2"):
        drift_sources(truth[:3], truth[:3], stride=5)
