"""Rectified-flow training target, timestep sampling and the Euler sampler."""

from sora3r.diffusion.flow import flow_loss, noisy_sample, sample_timesteps, velocity_target
from sora3r.diffusion.sampler import DEFAULT_NUM_STEPS, euler_sample, flow_sigmas

__all__ = [
    "DEFAULT_NUM_STEPS",
    "euler_sample",
    "flow_loss",
    "flow_sigmas",
    "noisy_sample",
    "sample_timesteps",
    "velocity_target",
]
