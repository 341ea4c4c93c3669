"""Rectified-flow training target, timestep sampling and the Euler sampler."""

from sora3r.diffusion.flow import flow_loss, noisy_sample, sample_timesteps, velocity_target
from sora3r.diffusion.sampler import DEFAULT_NUM_STEPS, euler_sample, scheduler_sample

__all__ = [
    "DEFAULT_NUM_STEPS",
    "euler_sample",
    "flow_loss",
    "noisy_sample",
    "sample_timesteps",
    "scheduler_sample",
    "velocity_target",
]
