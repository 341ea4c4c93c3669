"""Quick scores without evo, for training checks, benchmarks and tests (the protocol's tables come from
`sora3r.eval.pose` and `sora3r.eval.depth` through `sora3r eval`).

- Centre ATE: RMSE of the camera centres after a Sim(3) Umeyama fit (evo's APE on translations with Sim(3) alignment
  computes the same quantity; this one runs in torch and accepts coincident estimated centres).
- Point error: Sim(3)-aligned mean point distance over the mean true point distance.
- Motion scale: how far the cameras move against the size of the scene, predicted over true (the error a window's
  own ATE hides, since its Sim(3) fit rescales the camera path alone; the one that makes stitched windows drift).
- Stitching scores: how a long reconstruction's cameras behave at window boundaries and against its windows alone.
- Drift sources: which part of the relative camera motion (rotation, step length, step direction) makes a long
  trajectory's ATE.
"""

from __future__ import annotations

import torch

from sora3r.geometry.transforms import apply_sim3, umeyama

COINCIDENT = 1e-9  # centres closer than this to their mean count as one point
MIN_MOTION = 0.01  # `motion_scale` needs true centres spread over at least this share of the mean true point distance


def coincident_centres(centres: torch.Tensor) -> bool:
    """Whether all ``(T, 3)`` centres lie within `COINCIDENT` of their mean (a camera that stands still)."""
    return bool((centres - centres.mean(0)).norm(dim=-1).max() < COINCIDENT)


def centre_ate(c2w: torch.Tensor, gt_c2w: torch.Tensor) -> float:
    """RMSE of the Sim(3)-aligned camera centres of ``c2w (T, 4, 4)`` against ``gt_c2w (T, 4, 4)``, in the units of
    ``gt_c2w``. Estimated centres that coincide (a static camera) are placed at the true centroid, their best fit."""
    est, gt = c2w[:, :3, 3].double(), gt_c2w[:, :3, 3].double()
    if coincident_centres(est):
        aligned = gt.mean(0).expand_as(gt)
    else:
        aligned = apply_sim3(*umeyama(est, gt), est)
    return float((aligned - gt).square().sum(-1).mean().sqrt())


def point_error(points: torch.Tensor, gt_points: torch.Tensor, valid: torch.Tensor) -> float:
    """Mean distance of the Sim(3)-aligned ``points (..., 3)`` to ``gt_points`` over the ``valid`` ones, divided by the
    mean distance of those true points to the origin (a scale-free error; 0 is perfect)."""
    est, gt = points[valid].double(), gt_points[valid].double()
    aligned = apply_sim3(*umeyama(est, gt), est)
    return float((aligned - gt).norm(dim=-1).mean() / gt.norm(dim=-1).mean())


def motion_scale(points: torch.Tensor, c2w: torch.Tensor, gt_points: torch.Tensor, gt_c2w: torch.Tensor,
                 valid: torch.Tensor) -> float:
    """Log of how far the predicted cameras move, in the scale of the predicted scene, over how far the true ones do.

    With ``s_points`` the Umeyama scale that maps the ``valid`` predicted points ``(T, H, W, 3)`` onto the true ones
    and ``s_centres`` the one that maps the predicted camera centres of ``c2w (T, 4, 4)`` onto the true ones, the
    score is ``log(s_points / s_centres)``: 0 when the camera path and the scene agree in scale, negative when the
    cameras move too little for the scene (``-0.2``: 18 % too little). A window's centre ATE cannot see this error
    (its Sim(3) rescales the path on its own); windows stitched on their shared points inherit it, one window's
    worth of motion at a time. Points and cameras must share one world (e.g. both in the first camera's frame).

    Returns:
        The log ratio, or NaN when the true centres spread less than `MIN_MOTION` of the mean true point distance
        (no motion to measure) or the predicted centres coincide.
    """
    est, gt = points[valid].double(), gt_points[valid].double()
    est_centres, gt_centres = c2w[:, :3, 3].double(), gt_c2w[:, :3, 3].double()
    spread = (gt_centres - gt_centres.mean(0)).norm(dim=-1).max()
    if spread < MIN_MOTION * gt.norm(dim=-1).mean() or coincident_centres(est_centres):
        return float("nan")
    return float((umeyama(est, gt)[0] / umeyama(est_centres, gt_centres)[0]).log())


def stitching_scores(c2w: torch.Tensor, gt_c2w: torch.Tensor, starts: list[int], window: int,
                     window_ates: dict[int, float]) -> dict[str, float]:
    """Scores of a long reconstruction made of windows starting at ``starts``, each ``window`` frames long.

    Returns:
        ``jump_ratio``: the largest camera step into the first frame a window adds, over the median of the other steps
        (a jump at a boundary shows as a large ratio); ``ate``: centre ATE of the whole sequence; ``ate_window``: the
        mean of ``window_ates`` (``{start: centre ATE of that window reconstructed alone}``); ``ate_ratio``: their
        ratio (drift between windows shows as a large ratio).
    """
    centres = c2w[:, :3, 3]
    steps = (centres[1:] - centres[:-1]).norm(dim=-1)  # steps[i]: frame i -> i + 1
    boundary = torch.zeros_like(steps, dtype=torch.bool)
    end = window
    for start in starts[1:]:
        boundary[end - 1] = True  # the step into frame `end`, the first frame this window adds
        end = start + window
    jump = float(steps[boundary].max() / steps[~boundary].median()) if boundary.any() else 1.0
    whole = centre_ate(c2w, gt_c2w)
    mean_window = sum(window_ates[start] for start in starts) / len(starts)
    return {"jump_ratio": jump, "ate": whole, "ate_window": mean_window, "ate_ratio": whole / mean_window}


def drift_sources(c2w: torch.Tensor, gt_c2w: torch.Tensor, stride: int = 1) -> dict[str, float]:
    """Which errors of the relative camera motion make a long trajectory drift.

    The motion from each ``stride``-th frame to the next, ``inv(c2w[i]) @ c2w[i + stride]``, is split into its
    rotation, the length of its translation (in the true scale: times the Umeyama scale of the whole trajectory's
    centres) and the direction of its translation (in the earlier camera's frame). Starting from the first true pose,
    the true relative motions are chained with one of those parts taken from the prediction, and the centre ATE of
    each chain is reported: the part whose chain alone reproduces the full ATE is what drifts. (A diagnostic of this
    project, in the spirit of the odometry literature's split of drift into rotation and translation error, e.g. the
    KITTI odometry benchmark's per-length r_err / t_err.)

    Args:
        c2w, gt_c2w: ``(T, 4, 4)`` predicted and true camera-to-world poses, ``T > stride``.
        stride: frames between the chained poses (1: every frame; a window's step for windowed reconstructions).
    Returns:
        ``ate`` (the predicted poses' own centre ATE on the strided frames), ``rotation``, ``length``, ``direction``
        (the ATE of the true chain with only that part predicted), ``translation`` (length and direction both), and
        the mean errors per step: ``rotation_deg``, ``direction_deg`` (over steps whose true translation is not
        zero) and ``log_length_std`` (the spread of the log length ratio); and ``direction_bias_deg``, the angle
        between the mean predicted and the mean true direction (each in its step's earlier camera): near
        ``direction_deg`` when the steps head off the same way (a bias), near 0 when they scatter about the truth.
    Raises:
        ValueError: shapes differ, or fewer than 2 strided frames.
    """
    if c2w.shape != gt_c2w.shape or c2w.ndim != 3 or c2w.shape[-2:] != (4, 4):
        raise ValueError(f"drift_sources: need two (T, 4, 4) pose stacks, got {tuple(c2w.shape)} and "
                         f"{tuple(gt_c2w.shape)}")
    est, gt = c2w[::stride].double(), gt_c2w[::stride].double()
    if est.shape[0] < 2:
        raise ValueError(f"drift_sources: {c2w.shape[0]} poses give fewer than 2 at stride {stride}")
    scale = umeyama(est[:, :3, 3], gt[:, :3, 3])[0] if not coincident_centres(est[:, :3, 3]) else est.new_tensor(1.0)
    est_step, gt_step = torch.linalg.inv(est[:-1]) @ est[1:], torch.linalg.inv(gt[:-1]) @ gt[1:]
    est_t, gt_t = est_step[:, :3, 3] * scale, gt_step[:, :3, 3]
    est_length, gt_length = est_t.norm(dim=-1), gt_t.norm(dim=-1)
    moving = gt_length > COINCIDENT
    est_dir, gt_dir = est_t / est_length.clamp_min(COINCIDENT)[:, None], gt_t / gt_length.clamp_min(COINCIDENT)[:, None]

    def chain(rotation: torch.Tensor, translation: torch.Tensor) -> float:
        step = torch.eye(4, dtype=gt.dtype).repeat(rotation.shape[0], 1, 1)
        step[:, :3, :3], step[:, :3, 3] = rotation, translation
        poses = [gt[0]]
        for relative in step:
            poses.append(poses[-1] @ relative)
        return centre_ate(torch.stack(poses), gt)

    rotation_error = est_step[:, :3, :3].transpose(1, 2) @ gt_step[:, :3, :3]
    cosine = ((rotation_error.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)
    direction_cosine = (est_dir * gt_dir).sum(-1).clamp(-1, 1)[moving]
    mean_est, mean_gt = est_dir[moving].mean(0), gt_dir[moving].mean(0)
    bias_cosine = (mean_est @ mean_gt / (mean_est.norm() * mean_gt.norm()).clamp_min(COINCIDENT)).clamp(-1, 1)
    log_length = (est_length[moving].clamp_min(COINCIDENT) / gt_length[moving]).log()
    return {
        "ate": centre_ate(est, gt),
        "rotation": chain(est_step[:, :3, :3], gt_t),
        "length": chain(gt_step[:, :3, :3], gt_dir * est_length[:, None]),
        "direction": chain(gt_step[:, :3, :3], est_dir * gt_length[:, None]),
        "translation": chain(gt_step[:, :3, :3], est_t),
        "rotation_deg": float(torch.rad2deg(torch.arccos(cosine)).mean()),
        "direction_deg": float(torch.rad2deg(torch.arccos(direction_cosine)).mean()) if moving.any() else float("nan"),
        "direction_bias_deg": float(torch.rad2deg(torch.arccos(bias_cosine))) if moving.any() else float("nan"),
        "log_length_std": float(log_length.std()) if int(moving.sum()) > 1 else float("nan"),
    }
