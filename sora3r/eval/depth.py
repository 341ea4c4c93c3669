"""Video-depth metrics and dataset aggregation, as the MonST3R protocol computes them.

Facts taken from MonST3R's ``depth_evaluation`` (``dust3r/depth_eval.py``) and its ``depth_metric`` notebook:
- valid pixels: ground truth ``> 0`` and ``< max_depth`` when a cap is set (70 for Sintel and Bonn);
- one alignment per sequence over all its frames' valid pixels ("scale": IRLS L1 scale, 10 iterations
  from the mean ratio; "scale&shift": L1 fit started from the median ratio) — here done by
  :func:`sora3r.geometry.align.align_depth`;
- after alignment the prediction is clipped at ``max_depth`` (``post_clip_max=70``);
- Abs Rel, Sq Rel and RMSE use the clipped prediction; log RMSE and delta < 1.25 use it clamped to
  at least 1e-5;
- the dataset score is the mean of the per-sequence metrics weighted by their valid-pixel counts.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from sora3r.geometry.align import DEPTH_ALIGN_MODES, align_depth
from sora3r.geometry.projection import homogeneous_pixels, pixel_affine

DEPTH_METRIC_KEYS = ("abs_rel", "sq_rel", "rmse", "log_rmse", "delta_1.25")
_MIN_DEPTH_FOR_LOG = 1e-5


def _as_depth(array: torch.Tensor | np.ndarray, what: str) -> torch.Tensor:
    depth = torch.as_tensor(array).detach().cpu().double()
    if depth.ndim != 3:
        raise ValueError(f"{what} must have shape (T, H, W), got {tuple(depth.shape)}")
    return depth


def depth_on_gt_grid(
    pred: torch.Tensor, size: tuple[int, int], affine: torch.Tensor | np.ndarray | list | None = None
) -> torch.Tensor:
    """A prediction ``(T, h, w)`` sampled at the pixels of the ground truth's ``(H, W)`` grid (bicubic, as
    MonST3R resizes predictions to ground truth with cv2 ``INTER_CUBIC``).

    ``affine`` is the ``(3, 3)`` map from ground-truth pixel coordinates to prediction pixel coordinates
    (pixel centres at integers), e.g. ``Reconstruction.metadata["crop_affine"]`` of a resize + centre crop;
    ``None`` means a plain resize of the whole frame. Ground-truth pixels that fall outside the prediction
    (cropped away) get NaN, which :func:`depth_metrics` leaves out.
    """
    pred = torch.as_tensor(pred).detach().cpu().double()
    num_frames, pred_h, pred_w = pred.shape
    height, width = int(size[0]), int(size[1])
    if affine is None:
        if (pred_h, pred_w) == (height, width):
            return pred
        affine = pixel_affine(pred_w / width, pred_h / height)
    affine = torch.as_tensor(affine, dtype=torch.float64)
    if affine.shape != (3, 3):
        raise ValueError(f"affine must be (3, 3), got {tuple(affine.shape)}")
    mapped = homogeneous_pixels(height, width) @ affine.T  # (H, W, 3) prediction pixel coords
    x, y = mapped[..., 0] / mapped[..., 2], mapped[..., 1] / mapped[..., 2]
    inside = (x >= -0.5) & (x <= pred_w - 0.5) & (y >= -0.5) & (y <= pred_h - 0.5)
    grid = torch.stack([(x + 0.5) / pred_w * 2 - 1, (y + 0.5) / pred_h * 2 - 1], dim=-1)
    sampled = F.grid_sample(pred[:, None], grid.expand(num_frames, height, width, 2), mode="bicubic",
                            padding_mode="border", align_corners=False)[:, 0]
    return torch.where(inside, sampled, torch.nan)


def _aligned(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor, align: str) -> torch.Tensor:
    """``pred`` after the protocol's alignment (``align_depth``) on the ``mask`` pixels.

    A prediction that is 0 at every valid pixel carries no depth and no scale to fit (the protocol's fits start
    from a ratio of means / medians and give NaN): it is scored as it is, i.e. Abs Rel 1 and delta 0, the worst
    depth a positive prediction can score, instead of a NaN that would poison the dataset mean. Any other fit that
    does not give a finite depth raises ValueError, which the runner reports as the sequence's failure.
    """
    if align == "none" or not bool(pred[mask].any()):
        return pred
    # The fit runs in float32 as MonST3R's does (and 2-3x faster than float64 on CPU); the metrics are
    # reduced in float64.
    aligned, fit = align_depth(pred.float(), gt.float(), mask, align)
    if not bool(torch.isfinite(aligned[mask]).all()):
        raise ValueError(f"depth alignment {align!r} failed (scale {fit['scale']:.3g}, shift {fit['shift']:.3g}): "
                         f"the prediction has no usable scale")
    return aligned.double()


def depth_metrics(
    pred: torch.Tensor | np.ndarray,
    gt: torch.Tensor | np.ndarray,
    valid: torch.Tensor | np.ndarray | None = None,
    align: str = "scale&shift",
    max_depth: float | None = None,
) -> dict:
    """Depth errors of one sequence after one per-sequence alignment.

    Args:
        pred: ``(T, H, W)`` predicted z-depth, same size as ``gt``.
        gt: ``(T, H, W)`` ground-truth z-depth, 0 where unknown.
        valid: optional ``bool (T, H, W)`` extra mask of trusted ground-truth pixels.
        align: ``"scale"``, ``"scale&shift"`` or ``"none"`` (metric prediction).
        max_depth: protocol cap (e.g. 70 for Sintel/Bonn): pixels with gt >= cap are ignored and the
            aligned prediction is clipped at it. ``None`` = no cap.

    Returns:
        ``dict(abs_rel, sq_rel, rmse, log_rmse, delta_1.25, num_valid)``; metrics are ``None`` (undefined) when no
        pixel is valid, and never NaN otherwise.
    Raises:
        ValueError: bad shapes or ``align``; an alignment that gives no finite depth (see ``_aligned``).
    """
    if align not in DEPTH_ALIGN_MODES:
        raise ValueError(f"align must be one of {DEPTH_ALIGN_MODES}, got {align!r}")
    pred_d = _as_depth(pred, "predicted depth")
    gt_d = _as_depth(gt, "ground-truth depth")
    if pred_d.shape != gt_d.shape:
        raise ValueError(f"predicted depth {tuple(pred_d.shape)} and ground truth {tuple(gt_d.shape)} differ in shape")
    mask = (gt_d > 0) & torch.isfinite(gt_d) & torch.isfinite(pred_d)
    if max_depth is not None:
        mask &= gt_d < max_depth
    if valid is not None:
        valid_t = torch.as_tensor(valid).cpu().bool()
        if valid_t.shape != gt_d.shape:
            raise ValueError(f"valid mask {tuple(valid_t.shape)} does not match depth {tuple(gt_d.shape)}")
        mask &= valid_t
    num_valid = int(mask.sum())
    if num_valid == 0:
        return {**{key: None for key in DEPTH_METRIC_KEYS}, "num_valid": 0}
    pred_d = _aligned(pred_d, gt_d, mask, align)
    p, g = pred_d[mask], gt_d[mask]
    if max_depth is not None:
        p = p.clamp(max=max_depth)
    diff = p - g
    p_log = p.clamp(min=_MIN_DEPTH_FOR_LOG)
    ratio = torch.maximum(p_log / g, g / p_log)
    return {
        "abs_rel": float((diff.abs() / g).mean()),
        "sq_rel": float((diff.square() / g).mean()),
        "rmse": float(diff.square().mean().sqrt()),
        "log_rmse": float((p_log.log() - g.log()).square().mean().sqrt()),
        "delta_1.25": float((ratio < 1.25).double().mean()),
        "num_valid": num_valid,
    }


def aggregate_depth(per_sequence: list[dict]) -> dict:
    """Dataset depth score: per-sequence metrics averaged with weights = their ``num_valid`` pixel counts.

    Returns the metric keys (``None`` when no sequence has valid pixels, never NaN) plus ``num_valid`` (total) and
    ``num_sequences`` (sequences with valid pixels).
    """
    counted = [m for m in per_sequence if m["num_valid"] > 0]
    weights = np.array([m["num_valid"] for m in counted], dtype=np.float64)
    summary = {
        key: float(np.average([m[key] for m in counted], weights=weights)) if counted else None
        for key in DEPTH_METRIC_KEYS
    }
    summary["num_valid"] = int(weights.sum())
    summary["num_sequences"] = len(counted)
    return summary

