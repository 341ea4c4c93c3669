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


def clean_from_velocity(x_t: torch.Tensor, velocity: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``x_0 = x_t - t v``: the clean sample a velocity points to, for ``t (B,)``."""
    return x_t - _broadcast(t, x_t) * velocity


def velocity_from_clean(x_t: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, min_t: float = 1e-3) -> torch.Tensor:
    """``v = (x_t - x_0) / t``: the velocity towards a predicted clean sample, for ``t (B,)``; ``t`` is floored at
    ``min_t`` (sampling never evaluates below ``1 / steps``; the floor only guards a call at t = 0)."""
    return (x_t - x0) / _broadcast(t, x_t).clamp_min(min_t)


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
