"""The pointmap training target (frame-0 world, mean-distance scale, optional radius squash) and its inverse.

Shapes follow the package conventions with any leading batch dims ``...``: pointmaps ``(..., T, H, W, 3)``,
camera-to-world poses ``(..., T, 4, 4)``, validity masks ``(..., T, H, W)``. Everything is plain batched torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sora3r.geometry.transforms import to_first_frame


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
        return self.encode_scale_free(points), scale

    def encode_scale_free(self, points: torch.Tensor) -> torch.Tensor:
        """Scale-free frame-0-world points ``(..., T, H, W, 3)`` (what `decode` returns) -> target: the squash alone,
        the exact inverse of `decode`."""
        return squash(points) if self.squash else points

    def decode(self, target: torch.Tensor) -> torch.Tensor:
        """``target (..., T, H, W, 3)`` -> scale-free frame-0-world points ``(..., T, H, W, 3)``."""
        return unsquash(target) if self.squash else target
