"""Rectified flow (flow matching with straight paths) on latents.

Convention (the same as diffusers' ``FlowMatchEulerDiscreteScheduler``, where ``sigma`` = ``t``):
``x_t = (1 - t) * x_0 + t * eps`` with ``t`` in [0, 1], ``t = 0`` data and ``t = 1`` pure Gaussian
noise. The model predicts the velocity ``dx_t / dt = eps - x_0``; sampling integrates from t = 1 to 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

TIMESTEP_SAMPLINGS = ("logit_normal", "uniform")


def _broadcast(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)


def noisy_sample(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``x_t = (1 - t) x_0 + t eps`` for ``t (B,)`` and ``x0, noise (B, ...)``."""
    t = _broadcast(t, x0)
    return (1 - t) * x0 + t * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The regression target ``eps - x_0`` (constant along each straight path)."""
    return noise - x0


def sample_timesteps(
    batch_size: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    sampling: str = "logit_normal",
    logit_mean: float = 0.0,
    logit_std: float = 1.0,
) -> torch.Tensor:
    """Training times ``(B,)`` in (0, 1): ``sigmoid(N(logit_mean, logit_std))`` (default, SD3-style) or uniform."""
    if sampling == "logit_normal":
        normal = torch.randn(batch_size, generator=generator, device=device)
        return torch.sigmoid(logit_mean + logit_std * normal)
    if sampling == "uniform":
        return torch.rand(batch_size, generator=generator, device=device)
    raise ValueError(f"unknown timestep sampling {sampling!r}; choose one of {TIMESTEP_SAMPLINGS}")


def flow_loss(velocity_prediction: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the predicted velocity and ``eps - x_0`` (computed in fp32)."""
    return F.mse_loss(velocity_prediction.float(), velocity_target(x0, noise).float())
