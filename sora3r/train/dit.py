"""Stage 2: the joint-latent transformer, trained with rectified flow on latents of the two frozen VAEs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from sora3r.diffusion.flow import flow_loss, noisy_sample, sample_timesteps
from sora3r.geometry.target import PointmapTarget
from sora3r.models.transformer import JointLatentTransformer
from sora3r.models.vae import build_video_vae, encode_latents
from sora3r.train.data import DataSource, pointmap_to_model, rgb_to_model
from sora3r.train.loop import TRAINING_RECORD, TrainConfig, run_stage


@dataclass
class DiTConfig(TrainConfig):
    """Stage 2 settings.

    ``video_vae`` / ``pointmap_vae``: the VAE folders (stage 0 / 1 ``model/``). ``init_transformer``: a
    pretrained CogVideoX transformer folder to widen (default: a fresh ``preset``). ``squash``: ``None``
    takes it from the pointmap VAE's training record.
    """

    output: str = "runs/dit"
    video_vae: str = "runs/video_vae/model"
    pointmap_vae: str = "runs/pointmap_vae/model"
    init_transformer: str | None = None
    squash: bool | None = None
    timestep_sampling: str = "logit_normal"
    logit_mean: float = 0.0
    logit_std: float = 1.0


def pointmap_vae_squash(pointmap_vae_dir: str | Path, requested: bool | None) -> bool:
    """The squash setting the pointmap VAE was trained with; a conflicting ``requested`` value is an error."""
    record = Path(pointmap_vae_dir) / TRAINING_RECORD
    trained = json.loads(record.read_text()).get("squash") if record.exists() else None
    if requested is not None and trained is not None and requested != trained:
        raise ValueError(f"{record}: pointmap VAE was trained with squash={trained}, but squash={requested} was asked")
    if trained is None and requested is None:
        raise ValueError(f"{record}: no training record; pass --squash or --no-squash")
    return trained if trained is not None else requested


class DiTStage:
    """Velocity regression on ``[noisy pointmap latent, video latent]``; both VAEs frozen (eval, no grad, bf16 on CUDA)."""

    def __init__(self, config: DiTConfig, device: torch.device):
        self.config = config
        self.target = PointmapTarget(squash=pointmap_vae_squash(config.pointmap_vae, config.squash))
        vae_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        self.video_vae = build_video_vae(config.video_vae).to(device, vae_dtype).eval().requires_grad_(False)
        self.pointmap_vae = build_video_vae(config.pointmap_vae).to(device, vae_dtype).eval().requires_grad_(False)
        channels = self.video_vae.config.latent_channels
        if self.pointmap_vae.config.latent_channels != channels:
            raise ValueError(f"{config.pointmap_vae}: latent channels differ from the video VAE's ({channels})")
        if config.init_transformer:
            self.model = JointLatentTransformer.from_video_transformer(config.init_transformer)
        else:
            self.model = JointLatentTransformer.from_preset(config.preset, latent_channels=channels)
        self.trainable = self.model

    @torch.no_grad()
    def latents(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled ``(video latent, pointmap latent)``, each ``(B, C, t, h, w)`` float32."""
        video = encode_latents(self.video_vae, rgb_to_model(batch["rgb"]))
        pointmap = encode_latents(self.pointmap_vae, pointmap_to_model(batch, self.target)[0])
        return video.float(), pointmap.float()

    def loss(self, trainable, batch: dict, generator: torch.Generator) -> torch.Tensor:
        video, x0 = self.latents(batch)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device)
        t = sample_timesteps(x0.shape[0], generator, x0.device, self.config.timestep_sampling,
                             self.config.logit_mean, self.config.logit_std)
        prediction = trainable(noisy_sample(x0, noise, t), video, t)
        return flow_loss(prediction, x0, noise)

    def finalize(self, data_source: DataSource, batch_size: int) -> None:
        """Nothing to adjust after training."""


def train_dit(config: DiTConfig, data_source: DataSource | None = None) -> dict:
    """Run stage 2 (see ``sora3r.train.loop.train`` for the run folder layout)."""
    return run_stage(DiTStage, config, data_source)
