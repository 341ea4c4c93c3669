"""Pinhole projection: intrinsics from their parameters, the default principal point, and unprojection of depth.

Pixel convention (OpenCV, every module of the package): pixel ``(u, v)`` is column ``u``, row ``v`` and its centre sits
at the integer coordinates ``(u, v)``, so the image centre of a ``(H, W)`` grid is ``((W - 1) / 2, (H - 1) / 2)``.
Cameras look along +z (x right, y down); ``K`` is in pixels of the array it describes.
"""

from __future__ import annotations

import math

import torch


def image_centre(height: int, width: int) -> tuple[float, float]:
    """``(cx, cy)`` of the centre of an ``height x width`` pixel grid (the default principal point)."""
    return (width - 1) / 2, (height - 1) / 2


def focal_from_fov(width: int, fov_deg: float) -> float:
    """Focal length in pixels of a pinhole camera ``width`` pixels wide with horizontal field of view ``fov_deg``
    degrees: ``(W / 2) / tan(fov / 2)``."""
    return (width / 2) / math.tan(math.radians(fov_deg) / 2)


def pixel_affine(scale_x: float, scale_y: float, left: float = 0.0, top: float = 0.0) -> torch.Tensor:
    """``float64 (3, 3)`` map of pixel coordinates through a resize by ``(scale_x, scale_y)`` then a crop whose
    top-left corner is ``(left, top)`` in the resized image: ``u' = scale_x (u + 0.5) - 0.5 - left`` (pixel centres at
    integers, as ``align_corners=False`` resampling places them). Intrinsics follow as ``K' = A K``."""
    return torch.tensor([[scale_x, 0.0, 0.5 * scale_x - 0.5 - left], [0.0, scale_y, 0.5 * scale_y - 0.5 - top],
                         [0.0, 0.0, 1.0]], dtype=torch.float64)


def intrinsics_matrix(
    fx: float | torch.Tensor,
    fy: float | torch.Tensor,
    cx: float | torch.Tensor,
    cy: float | torch.Tensor,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """The pinhole matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``: the one place K is built from its parameters.

    Args:
        fx, fy: focal lengths in pixels; cx, cy: principal point in pixels. Numbers or tensors of one
            (broadcastable) shape ``(...)``.
        dtype: of the result; default the tensors' dtype, float64 for plain numbers.
    Returns:
        ``K`` of shape ``(..., 3, 3)`` (on the tensors' device).
    """
    like = next((v for v in (fx, fy, cx, cy) if isinstance(v, torch.Tensor)), None)
    dtype = dtype or (like.dtype if like is not None else torch.float64)
    device = like.device if like is not None else None
    values = (torch.as_tensor(v, dtype=dtype, device=device) for v in (fx, fy, cx, cy))
    fx, fy, cx, cy = torch.broadcast_tensors(*values)
    zero, one = torch.zeros_like(fx), torch.ones_like(fx)
    return torch.stack([fx, zero, cx, zero, fy, cy, zero, zero, one], dim=-1).reshape(*fx.shape, 3, 3)


def unproject_depth(depth: torch.Tensor, K: torch.Tensor, c2w: torch.Tensor) -> torch.Tensor:
    """World points of every pixel: ``c2w @ (depth * K^-1 [u, v, 1])`` (computed in float64).

    Args:
        depth: ``(T, H, W)`` z-depth, 0 where unknown.
        K: ``(3, 3)`` shared or ``(T, 3, 3)`` per-frame intrinsics in pixels of ``depth`` (OpenCV).
        c2w: ``(T, 4, 4)`` camera-to-world poses (OpenCV camera axes).
    Returns:
        ``float32 (T, H, W, 3)`` world points; 0 where depth is 0.
    """
    num_frames, height, width = depth.shape
    K = K.to(torch.float64).expand(num_frames, 3, 3)
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                          indexing="ij")
    pixels = torch.stack([u, v, torch.ones_like(u)], dim=-1)  # (H, W, 3)
    rays = torch.einsum("tij,hwj->thwi", torch.linalg.inv(K), pixels)
    camera_points = rays * depth.to(torch.float64)[..., None]
    c2w = c2w.to(torch.float64)
    world = torch.einsum("tij,thwj->thwi", c2w[:, :3, :3], camera_points) + c2w[:, None, None, :3, 3]
    return torch.where(depth[..., None] > 0, world, 0.0).to(torch.float32)
