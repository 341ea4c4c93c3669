"""Rigid and similarity (Sim(3)) transforms of poses and points, and the one check of a pose stack.

Poses are 4x4 camera-to-world matrices ``c2w`` with OpenCV camera axes (x right, y down, z forward); shapes follow
the package conventions with any leading dims ``...``. Everything but :func:`pose_array` is plain batched torch.
"""

from __future__ import annotations

import numpy as np
import torch


def invert_rigid(transform: torch.Tensor) -> torch.Tensor:
    """Inverse of rigid 4x4 transforms ``(..., 4, 4)`` via ``[R^T | -R^T t]`` (exact, no general inverse)."""
    rotation_t = transform[..., :3, :3].transpose(-1, -2)
    inverse = torch.zeros_like(transform)
    inverse[..., :3, :3] = rotation_t
    inverse[..., :3, 3] = -(rotation_t @ transform[..., :3, 3:4]).squeeze(-1)
    inverse[..., 3, 3] = 1.0
    return inverse


def transform_points(transform: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply 4x4 transforms ``(..., 4, 4)`` to point sets ``(..., N, 3)`` (same leading dims)."""
    return points @ transform[..., :3, :3].transpose(-1, -2) + transform[..., None, :3, 3]


def to_first_frame(points: torch.Tensor, c2w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-express world-frame pointmaps and poses so that frame 0's camera is the world.

    Args:
        points: ``(..., T, H, W, 3)`` world-frame pointmaps.
        c2w: ``(..., T, 4, 4)`` camera-to-world poses in the same world.
    Returns:
        ``(points, c2w)`` in the frame-0 camera frame; ``c2w[..., 0, :, :]`` is the identity.
    Raises:
        ValueError: the shapes do not follow that layout.
    """
    if points.shape[-1] != 3 or c2w.shape[-2:] != (4, 4) or points.shape[:-3] != c2w.shape[:-2]:
        raise ValueError(
            f"to_first_frame: need points (...,T,H,W,3) and c2w (...,T,4,4), got {tuple(points.shape)} and "
            f"{tuple(c2w.shape)}"
        )
    # A general inverse, so that frame 0 becomes the identity even when its rotation is only nearly orthonormal.
    world_to_first = torch.linalg.inv_ex(c2w[..., 0, :, :]).inverse  # (..., 4, 4); _ex: no host sync
    new_c2w = world_to_first.unsqueeze(-3) @ c2w
    new_points = transform_points(world_to_first, points.flatten(-4, -2)).reshape(points.shape)
    return new_points, new_c2w


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
    Raises:
        ValueError: shapes other than ``(N, 3)`` / ``(N,)``.
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


def apply_sim3(scale: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor,
               points: torch.Tensor) -> torch.Tensor:
    """``s R p + t`` for points ``(..., 3)`` (a similarity from :func:`umeyama`)."""
    return scale * points @ rotation.T + translation


def pose_array(c2w: torch.Tensor | np.ndarray, what: str) -> np.ndarray:
    """A pose stack as a ``float64 (T, 4, 4)`` numpy copy, checked: the one validator of ``c2w`` inputs.

    Args:
        c2w: ``(T, 4, 4)`` camera-to-world poses (tensor or array, any float dtype).
        what: how error messages name the input (e.g. ``"out/trajectory.txt: c2w"``).
    Raises:
        ValueError: a shape other than ``(T, 4, 4)``, or NaN / infinite entries (the message lists the frames).
    """
    array = c2w.detach().cpu().double().numpy() if isinstance(c2w, torch.Tensor) else np.array(c2w, np.float64)
    if array.ndim != 3 or array.shape[1:] != (4, 4):
        raise ValueError(f"{what} must have shape (T, 4, 4), got {tuple(array.shape)}")
    finite = np.isfinite(array).all(axis=(1, 2))
    if not finite.all():
        frames = np.flatnonzero(~finite).tolist()
        listed = ", ".join(map(str, frames[:5])) + (", ..." if len(frames) > 5 else "")
        raise ValueError(f"{what} contains NaN or infinite values ({len(frames)} non-finite pose(s): frame {listed})")
    return array
