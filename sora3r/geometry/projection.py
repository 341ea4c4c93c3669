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


def field_of_view(K, height: int, width: int) -> tuple[float, float]:
    """``(horizontal, vertical)`` field of view in degrees of a ``height x width`` pixel grid seen through ``K``
    (3x3, pixels): ``2 atan((W / 2) / fx)`` and ``2 atan((H / 2) / fy)``, the inverse of `focal_from_fov`."""
    fx, fy = float(K[0][0]), float(K[1][1])
    return math.degrees(2 * math.atan2(width / 2, fx)), math.degrees(2 * math.atan2(height / 2, fy))


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


def homogeneous_pixels(height: int, width: int, dtype: torch.dtype = torch.float64,
                       device: torch.device | str | None = None) -> torch.Tensor:
    """``(H, W, 3)`` homogeneous coordinates ``[u, v, 1]`` of every pixel centre (OpenCV: integer centres, ``u`` the
    column, ``v`` the row)."""
    v, u = torch.meshgrid(torch.arange(height, dtype=dtype, device=device),
                          torch.arange(width, dtype=dtype, device=device), indexing="ij")
    return torch.stack([u, v, torch.ones_like(u)], dim=-1)


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
    rays = torch.einsum("tij,hwj->thwi", torch.linalg.inv(K), homogeneous_pixels(height, width))
    camera_points = rays * depth.to(torch.float64)[..., None]
    c2w = c2w.to(torch.float64)
    world = torch.einsum("tij,thwj->thwi", c2w[:, :3, :3], camera_points) + c2w[:, None, None, :3, 3]
    return torch.where(depth[..., None] > 0, world, 0.0).to(torch.float32)


def pixel_directions(rays_from_pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Unit viewing directions of every pixel centre ``(u, v)`` (OpenCV, integer pixel centres:
    :func:`homogeneous_pixels`).

    Args:
        rays_from_pixels: ``(..., 3, 3)`` matrices taking ``[u, v, 1]`` to a ray direction in some frame, e.g.
            ``R K^-1`` with ``R`` a camera-to-world rotation.
        height, width: the image size in pixels.
    Returns:
        ``(..., H, W, 3)`` unit directions, in the dtype and device of ``rays_from_pixels``.
    """
    pixels = homogeneous_pixels(height, width, rays_from_pixels.dtype, rays_from_pixels.device)
    directions = torch.einsum("...ij,hwj->...hwi", rays_from_pixels, pixels)
    return directions / torch.linalg.vector_norm(directions, dim=-1, keepdim=True)


def ray_centres(points: torch.Tensor, directions: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Where lines of known directions through known points best meet: each frame's camera centre from its pointmap
    when the camera's rotation and intrinsics are known.

    The weighted least-squares point ``c`` minimising ``sum_j w_j |(I - d_j d_j^T)(X_j - c)|^2`` (the squared distance
    of ``c`` to the line through ``X_j`` along ``d_j``), in closed form ``c = (sum_j w_j A_j)^-1 sum_j w_j A_j X_j`` with
    ``A_j = I - d_j d_j^T``. Differentiable in ``points`` (`sora3r.train.camera_objective`'s loss uses it).

    Args:
        points: ``(..., N, 3)`` points ``X_j``.
        directions: ``(..., N, 3)`` unit directions ``d_j`` (e.g. from :func:`pixel_directions`).
        weights: ``(..., N)`` non-negative weights (0 drops a point).
    Returns:
        ``(..., 3)`` centres, float32 or the inputs' wider dtype. With fewer than two non-parallel weighted lines the
        system is singular; a ridge of ``1e-6`` times its trace keeps the solve finite (and the centre meaningless).
    """
    dtype = torch.promote_types(points.dtype, torch.float32)
    points, directions, weights = points.to(dtype), directions.to(dtype), weights.to(dtype)
    outer = directions[..., :, None] * directions[..., None, :]  # (..., N, 3, 3)
    projector = torch.eye(3, dtype=dtype, device=points.device) - outer
    lhs = torch.einsum("...n,...nij->...ij", weights, projector)
    rhs = torch.einsum("...n,...nij,...nj->...i", weights, projector, points)
    ridge = 1e-6 * lhs.diagonal(dim1=-2, dim2=-1).sum(-1).clamp_min(1e-12)
    lhs = lhs + ridge[..., None, None] * torch.eye(3, dtype=dtype, device=points.device)
    return torch.linalg.solve(lhs, rhs)
