"""Tensor conversions from the package's arrays to what the models take: ``float (B, 3, T, H, W)`` in the VAE's range.

RGB frames enter the video VAE in [-1, 1]; pointmaps enter the pointmap VAE as the normalised target of
`sora3r.geometry.target.PointmapTarget` (frame-0 world, mean point distance 1, about 0.7 when squashed: the range of
RGB input), with no further fixed scaling.
"""

from __future__ import annotations

import torch

from sora3r.geometry.target import PointmapTarget


def rgb_to_model(rgb: torch.Tensor) -> torch.Tensor:
    """``uint8 (B, T, H, W, 3)`` frames -> ``float32 (B, 3, T, H, W)`` in [-1, 1]."""
    return rgb.permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)


def pointmap_to_model(points: torch.Tensor, c2w: torch.Tensor, valid: torch.Tensor,
                      target: PointmapTarget) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised pointmap target as VAE input, and where it is defined.

    Args:
        points: ``float (B, T, H, W, 3)`` world-frame pointmaps; c2w: ``(B, T, 4, 4)`` camera-to-world poses in that
            world; valid: ``bool (B, T, H, W)`` ground-truth pixels.
        target: the normalisation (and optional squash) the pointmap VAE is trained on.
    Returns:
        ``(x float32 (B, 3, T, H, W)`` (0 where invalid), ``valid bool (B, 1, T, H, W))``.
    """
    valid = valid.bool()
    normalised, _ = target.encode(points.float(), c2w.float(), valid)
    normalised = torch.where(valid[..., None], normalised, 0.0)
    return normalised.permute(0, 4, 1, 2, 3), valid[:, None]
