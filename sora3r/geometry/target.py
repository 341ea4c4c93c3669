"""The pointmap training target (frame-0 world, mean-distance scale, optional radius squash) and its inverse.

Shapes follow the package conventions with any leading batch dims ``...``: pointmaps ``(..., T, H, W, 3)``,
camera-to-world poses ``(..., T, 4, 4)``, validity masks ``(..., T, H, W)``. Everything is plain batched torch.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def normalize_scale(points: torch.Tensor, valid: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Divide each clip by the mean distance of its valid points to the origin.

    Args:
        points: ``(..., T, H, W, 3)``.
        valid: ``bool (..., T, H, W)``; ``None`` = every finite point.
    Returns:
        ``(points / s, s)`` with ``s`` of shape ``(...)`` (one scale per clip).
    """
    if valid is None:
        valid = torch.isfinite(points).all(-1)
    if valid.shape != points.shape[:-1]:
        raise ValueError(f"normalize_scale: valid {tuple(valid.shape)} does not match points {tuple(points.shape)}")
    valid = valid.flatten(-3)
    count = valid.sum(-1)
    if bool((count == 0).any()):
        raise ValueError("normalize_scale: a clip has no valid points")
    distance = torch.linalg.vector_norm(points.flatten(-4, -2), dim=-1)
    scale = torch.where(valid, distance, 0.0).sum(-1) / count
    return points / scale[..., None, None, None, None], scale


def _radial_rescale(p: torch.Tensor, radial_map) -> torch.Tensor:
    """``p * radial_map(|p|) / |p|``, with the limit 1 of the factor at ``|p| = 0`` (finite gradients too)."""
    radius = torch.linalg.vector_norm(p, dim=-1, keepdim=True)
    nonzero = radius > 0
    safe_radius = torch.where(nonzero, radius, 1.0)
    factor = torch.where(nonzero, radial_map(safe_radius) / safe_radius, 1.0)
    return p * factor


def squash(p: torch.Tensor) -> torch.Tensor:
    """Compress the radius of points ``(..., 3)``: ``p -> p / |p| * log1p(|p|)`` (monotone in ``|p|``)."""
    return _radial_rescale(p, torch.log1p)


def unsquash(q: torch.Tensor) -> torch.Tensor:
    """Exact inverse of :func:`squash`: ``q -> q / |q| * expm1(|q|)``."""
    return _radial_rescale(q, torch.expm1)


@dataclass(frozen=True)
class PointmapTarget:
    """What the pointmap VAE / diffusion model learns to produce, and how to read it back.

    ``encode`` moves a clip into its frame-0 camera frame, divides by the mean distance of valid points to the
    origin and, if ``squash``, compresses radii with :func:`squash`. ``decode`` undoes only the squash: the
    model's output is scale-free (frame-0 world, unit mean distance).
    """

    squash: bool = False

    def encode(
        self, points: torch.Tensor, c2w: torch.Tensor, valid: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``points (..., T, H, W, 3)``, ``c2w (..., T, 4, 4)``, ``valid (..., T, H, W)`` ->
        ``(target (..., T, H, W, 3), scale (...))``."""
        points, _ = to_first_frame(points, c2w)
        points, scale = normalize_scale(points, valid)
        if self.squash:
            points = squash(points)
        return points, scale

    def decode(self, target: torch.Tensor) -> torch.Tensor:
        """``target (..., T, H, W, 3)`` -> scale-free frame-0-world points ``(..., T, H, W, 3)``."""
        return unsquash(target) if self.squash else target
