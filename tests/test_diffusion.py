"""Rectified-flow target, timestep statistics, and the Euler sampler vs diffusers' scheduler."""

import math

import pytest
import torch

from diffusers import FlowMatchEulerDiscreteScheduler

from sora3r.diffusion import (
    DEFAULT_NUM_STEPS,
    euler_sample,
    flow_loss,
    flow_sigmas,
    noisy_sample,
    sample_timesteps,
    velocity_target,
)
from sora3r.diffusion.sampler import initial_noise
from sora3r.models import JointLatentTransformer


@torch.no_grad()
def scheduler_sample(velocity_model, video_latent, num_steps=DEFAULT_NUM_STEPS, generator=None, scheduler=None):
    """The same integration driven by ``scheduler.step`` of a diffusers ``FlowMatchEulerDiscreteScheduler`` (shift 1
    by default): the reference the package's Euler loop is checked against."""
    scheduler = scheduler or FlowMatchEulerDiscreteScheduler(shift=1.0)
    sigmas = torch.linspace(1.0, 0.0, num_steps + 1)[:-1].tolist()
    scheduler.set_timesteps(sigmas=sigmas, device=video_latent.device)
    sample = initial_noise(video_latent, generator)
    batch = video_latent.shape[0]
    num_train = scheduler.config.num_train_timesteps
    for timestep in scheduler.timesteps:
        t = (timestep / num_train).to(video_latent.dtype).expand(batch)
        velocity = velocity_model(sample, video_latent, t)
        sample = scheduler.step(velocity, timestep, sample, return_dict=False)[0]
    return sample


def test_flow_path_endpoints_and_velocity():
    x0, noise = torch.randn(3, 4, 2, 2, 2), torch.randn(3, 4, 2, 2, 2)
    torch.testing.assert_close(noisy_sample(x0, noise, torch.zeros(3)), x0)
    torch.testing.assert_close(noisy_sample(x0, noise, torch.ones(3)), noise)
    # the path is straight: its finite-difference derivative is the target everywhere
    t, dt = torch.rand(3) * 0.9, 1e-2
    derivative = (noisy_sample(x0, noise, t + dt) - noisy_sample(x0, noise, t)) / dt
    torch.testing.assert_close(derivative, velocity_target(x0, noise), rtol=1e-3, atol=1e-3)
    assert float(flow_loss(velocity_target(x0, noise), x0, noise)) == 0.0


def test_timestep_sampling_statistics():
    gen = torch.Generator().manual_seed(0)
    t = sample_timesteps(200_000, gen)
    logits = torch.logit(t)
    assert 0 < float(t.min()) and float(t.max()) < 1
    assert abs(float(logits.mean())) < 0.01 and abs(float(logits.std()) - 1) < 0.01
    shifted = sample_timesteps(200_000, gen, logit_mean=1.0, logit_std=0.5)
    assert abs(float(torch.logit(shifted).mean()) - 1.0) < 0.01
    uniform = sample_timesteps(200_000, gen, sampling="uniform")
    assert abs(float(uniform.mean()) - 0.5) < 0.005 and abs(float(uniform.var()) - 1 / 12) < 0.002
    with pytest.raises(ValueError, match="unknown timestep sampling"):
        sample_timesteps(2, gen, sampling="cosine")


def test_euler_is_exact_for_a_perfect_velocity():
    # for a single target x0 the true velocity is (x_t - x0) / t; Euler lands on x0 in one step
    x0 = torch.randn(2, 4, 3, 2, 2)
    perfect = lambda x, video, t: (x - x0) / t.reshape(-1, 1, 1, 1, 1)
    for steps in (1, 4):
        torch.testing.assert_close(euler_sample(perfect, x0, steps, torch.Generator().manual_seed(1)), x0)


def test_sampler_matches_diffusers_scheduler_and_is_seeded():
    torch.manual_seed(0)
    model = JointLatentTransformer.from_preset("tiny").eval()
    video = torch.randn(2, 16, 3, 4, 4)
    ours = euler_sample(model, video, 4, torch.Generator().manual_seed(7))
    theirs = scheduler_sample(model, video, 4, torch.Generator().manual_seed(7))
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    assert torch.equal(ours, euler_sample(model, video, 4, torch.Generator().manual_seed(7)))
    assert not torch.equal(ours, euler_sample(model, video, 4, torch.Generator().manual_seed(8)))
    assert math.isfinite(float(ours.abs().max()))


def test_flow_times_come_from_the_scheduler():
    """The sampler integrates over the scheduler's sigmas: uniform for shift 1, bent as diffusers bends them for
    another shift, and then still the same integration as stepping that scheduler."""
    torch.testing.assert_close(flow_sigmas(FlowMatchEulerDiscreteScheduler(shift=1.0), 4, "cpu"),
                               torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]), rtol=0, atol=0)
    uniform = torch.tensor([1.0, 0.75, 0.5, 0.25])
    shifted = flow_sigmas(FlowMatchEulerDiscreteScheduler(shift=3.0), 4, "cpu")
    torch.testing.assert_close(shifted, torch.cat([3 * uniform / (1 + 2 * uniform), torch.zeros(1)]))
    torch.manual_seed(0)
    model = JointLatentTransformer.from_preset("tiny").eval()
    video = torch.randn(1, 16, 3, 4, 4)
    ours = euler_sample(model, video, 4, torch.Generator().manual_seed(2), FlowMatchEulerDiscreteScheduler(shift=3.0))
    theirs = scheduler_sample(model, video, 4, torch.Generator().manual_seed(2),
                              FlowMatchEulerDiscreteScheduler(shift=3.0))
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(ours, euler_sample(model, video, 4, torch.Generator().manual_seed(2)))
    with pytest.raises(ValueError, match="num_steps"):
        flow_sigmas(FlowMatchEulerDiscreteScheduler(), 0, "cpu")


def test_known_frames_follow_their_noisy_path_and_only_the_rest_is_sampled():
    """With ``known``, every model call sees the first latent frames on the known latent's path at that flow time,
    ``(1 - t) known + t noise`` with the sample's own initial noise; the other frames are the plain Euler steps."""
    torch.manual_seed(0)
    video = torch.randn(2, 4, 5, 2, 2)
    known = torch.randn(1, 4, 2, 2, 2)
    target = torch.randn(2, 4, 5, 2, 2)
    seen = []

    def towards_target(x, video_latent, t):  # the exact velocity towards a fixed clean latent
        seen.append((x.clone(), float(t[0])))
        return (x - target) / t.reshape(-1, 1, 1, 1, 1)

    out = euler_sample(towards_target, video, 4, torch.Generator().manual_seed(3), known=known)
    noise = initial_noise(video, torch.Generator().manual_seed(3))
    assert [t for _, t in seen] == [1.0, 0.75, 0.5, 0.25]
    for x, t in seen:
        torch.testing.assert_close(x[:, :, :2], (1 - t) * known.expand(2, -1, -1, -1, -1) + t * noise[:, :, :2])
    torch.testing.assert_close(out, target)  # the last step lands on the model's prediction, known frames included
    torch.testing.assert_close(seen[1][0][:, :, 2:], 0.75 * noise[:, :, 2:] + 0.25 * target[:, :, 2:])  # one Euler step
    for bad in (torch.randn(1, 4, 5, 2, 2), torch.randn(1, 3, 2, 2, 2), torch.randn(1, 4, 2, 2, 3)):
        with pytest.raises(ValueError, match="known latent"):
            euler_sample(towards_target, video, 4, known=bad)
