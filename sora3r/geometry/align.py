"""Alignment of predicted depth to ground truth: one scale (and shift) per sequence, as the MonST3R protocol fits it.

Point-set alignment (Umeyama Sim(3)) lives in `sora3r.geometry.transforms`."""

from __future__ import annotations

import torch

DEPTH_ALIGN_MODES = ("scale", "scale&shift", "none")


def _l1_scale_irls(pred: torch.Tensor, gt: torch.Tensor, iterations: int = 10) -> torch.Tensor:
    """Scale ``s`` minimising ``sum |s pred - gt|`` by IRLS, started at the ratio of means (MonST3R "scale")."""
    scale = gt.mean() / pred.mean()
    for _ in range(iterations):
        weight = 1.0 / ((scale * pred - gt).abs() + 1e-8)
        scale = (weight * pred * gt).sum() / (weight * pred.square()).sum()
    return scale.clamp(min=1e-3)


def _l1_scale_shift_adam(
    pred: torch.Tensor, gt: torch.Tensor, lr: float = 1e-4, max_iters: int = 1000, tol: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(s, t)`` minimising ``sum |s pred + t - gt|`` with Adam from ``s = median ratio, t = 0`` (MonST3R "lad2").

    The loss check each step syncs with the host; this runs once per sequence at evaluation time only.
    """
    scale = (gt.median() / pred.median()).reshape(1).clone().requires_grad_(True)
    shift = torch.zeros(1, dtype=pred.dtype, device=pred.device, requires_grad=True)
    optimizer = torch.optim.Adam([scale, shift], lr=lr)
    previous = None
    with torch.enable_grad():
        for _ in range(max_iters):
            optimizer.zero_grad()
            loss = (scale * pred + shift - gt).abs().sum()
            loss.backward()
            optimizer.step()
            current = loss.item()
            if previous is not None and abs(previous - current) < tol:
                break
            previous = current
    return scale.detach()[0], shift.detach()[0]


def align_depth(
    pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, mode: str
) -> tuple[torch.Tensor, dict]:
    """Align a predicted depth video to ground truth with one scale (and shift) per sequence.

    Matches the MonST3R video-depth protocol (``depth_evaluation`` in its ``dust3r/depth_eval.py``): the fit
    pools the valid pixels of all frames;
    - ``"scale"``: start ``s = mean(gt) / mean(pred)``, 10 IRLS iterations of the L1 scale fit with weights
      ``1 / (|s pred - gt| + 1e-8)``, then ``s`` clamped to ``>= 1e-3``;
    - ``"scale&shift"``: L1 loss ``sum |s pred + t - gt|`` minimised by Adam (lr 1e-4, at most 1000 steps,
      stop when the loss changes by less than 1e-6) from ``s = median(gt) / median(pred)``, ``t = 0``;
    - ``"none"``: unchanged.
    Depth caps and post-alignment clipping (e.g. 70 for Sintel) are the caller's job: pass them in ``valid``
    and clip the returned depth.

    Args:
        pred, gt: ``(T, H, W)`` depth; valid: ``bool (T, H, W)``.
    Returns:
        ``(aligned (T, H, W), {"scale": float, "shift": float})``.
    """
    if mode not in DEPTH_ALIGN_MODES:
        raise ValueError(f"align_depth: unknown mode {mode!r}; expected one of {DEPTH_ALIGN_MODES}")
    if pred.shape != gt.shape or valid.shape != gt.shape:
        raise ValueError(
            f"align_depth: shapes differ: pred {tuple(pred.shape)}, gt {tuple(gt.shape)}, valid {tuple(valid.shape)}"
        )
    if not bool(valid.any()):
        raise ValueError("align_depth: no valid pixels")
    if mode == "none":
        return pred, {"scale": 1.0, "shift": 0.0}
    pred_valid, gt_valid = pred[valid], gt[valid]
    if mode == "scale":
        scale, shift = _l1_scale_irls(pred_valid, gt_valid), torch.zeros((), dtype=pred.dtype, device=pred.device)
    else:
        scale, shift = _l1_scale_shift_adam(pred_valid, gt_valid)
    return scale * pred + shift, {"scale": float(scale), "shift": float(shift)}
