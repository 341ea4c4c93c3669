"""Alignment of predictions to ground truth: Umeyama Sim(3) for point sets, per-sequence depth scale / shift."""

from __future__ import annotations

import torch

DEPTH_ALIGN_MODES = ("scale", "scale&shift", "none")


def umeyama(
    src: torch.Tensor, dst: torch.Tensor, with_scale: bool = True, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least-squares similarity (Umeyama 1991) with ``dst ~ s R src + t``.

    Written here in torch (closed form: weighted centroids, cross-covariance SVD, reflection fix) because
    evo's ``umeyama_alignment`` is numpy-only and unweighted, and we need weights and tensors on any device.

    Args:
        src, dst: ``(N, 3)`` corresponding points.
        with_scale: estimate ``s``; otherwise ``s = 1`` (rigid fit).
        weights: ``(N,)`` non-negative, or ``None`` for uniform.
    Returns:
        ``(s, R, t)``: scalar tensor, ``(3, 3)`` rotation (det +1), ``(3,)``.
    """
    if src.ndim != 2 or src.shape[-1] != 3 or src.shape != dst.shape:
        raise ValueError(f"umeyama: need src and dst of shape (N, 3), got {tuple(src.shape)} and {tuple(dst.shape)}")
    if weights is None:
        weights = torch.ones(src.shape[0], dtype=src.dtype, device=src.device)
    if weights.shape != src.shape[:1]:
        raise ValueError(f"umeyama: weights {tuple(weights.shape)} do not match {src.shape[0]} points")
    w = weights / weights.sum()
    src_mean = w @ src
    dst_mean = w @ dst
    src_c = src - src_mean
    dst_c = dst - dst_mean
    covariance = (dst_c * w[:, None]).T @ src_c  # (3, 3) = sum_i w_i d_i s_i^T
    u, singular, vh = torch.linalg.svd(covariance)
    sign = torch.ones(3, dtype=src.dtype, device=src.device)
    sign[2] = torch.sign(torch.linalg.det(u) * torch.linalg.det(vh))
    rotation = u @ torch.diag(sign) @ vh
    if with_scale:
        src_var = (w * src_c.square().sum(-1)).sum()
        scale = (singular * sign).sum() / src_var
    else:
        scale = torch.ones((), dtype=src.dtype, device=src.device)
    translation = dst_mean - scale * rotation @ src_mean
    return scale, rotation, translation


def apply_sim3(scale: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """``s R p + t`` for points ``(..., 3)``."""
    return scale * points @ rotation.T + translation


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

    Matches the MonST3R video-depth protocol (its ``depth_evaluation``, read via the code search): the fit
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
