"""The VAE training forward shared by stage 0 (RGB) and stage 1 (pointmaps)."""

from __future__ import annotations

import torch
from diffusers import AutoencoderKLCogVideoX
from torch import nn

SCALING_BATCHES = 4  # batches whose latents set a trained VAE's scaling factor (`estimate_scaling_factor`)


class VAEReconstruction(nn.Module):
    """Encode, sample the posterior, decode: ``x (B, 3, T, H, W) -> (reconstruction, KL)``; or decode a given latent.

    A module of its own so that accelerate / DDP wrap one ``forward`` that runs encoder and decoder.
    The KL to N(0, I) is averaged over latent elements (not summed), so its weight does not depend on size.
    """

    def __init__(self, vae: AutoencoderKLCogVideoX):
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor, generator: torch.Generator,
                latent: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """With ``latent`` (unscaled, ``(B, C, t, h, w)``) the encoder is skipped: that latent is decoded, KL 0."""
        if latent is not None:
            return self.vae.decode(latent).sample, x.new_zeros((), dtype=torch.float32)
        posterior = self.vae.encode(x).latent_dist
        reconstruction = self.vae.decode(posterior.sample(generator)).sample
        kl = 0.5 * (posterior.mean.float().square() + posterior.var.float() - 1.0 - posterior.logvar.float()).mean()
        return reconstruction, kl


def spatial_gradient_l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the horizontal and vertical finite differences of ``(B, C, T, H, W)`` tensors (sharpens edges)."""
    loss = 0.0
    for dim in (-1, -2):
        loss = loss + (prediction.diff(dim=dim) - target.diff(dim=dim)).abs().mean()
    return loss

