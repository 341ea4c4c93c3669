"""Stage 0: train the video VAE on RGB clips (L1 + image-gradient L1 + small KL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from annotated_types import Ge

from sora3r.models.inputs import rgb_to_model
from sora3r.models.vae import build_vae, estimate_scaling_factor
from sora3r.train.data import DataSource
from sora3r.train.loop import RunFolder, TrainConfig, VAEPreset, run_stage
from sora3r.train.vae_objective import SCALING_BATCHES, VAEReconstruction, spatial_gradient_l1
from sora3r.types import ClipBatch


@dataclass
class VideoVAEConfig(TrainConfig):
    """Stage 0: the video VAE on RGB clips (L1 + image-gradient L1 + small KL)."""

    output: RunFolder = "runs/video_vae"  # run folder (state/, light/, model/, loss.jsonl, config.json)
    preset: VAEPreset = "tiny"  # VAE size of a fresh run
    init: str | None = None  # a diffusers VAE folder to continue from (unset: a fresh --preset)
    gradient_weight: Annotated[float, Ge(0)] = 0.5  # weight of the L1 loss on image gradients (sharper edges)
    kl_weight: Annotated[float, Ge(0)] = 1e-4  # weight of the KL term (latents near N(0, I))

    input_folders = ("init",)


class VideoVAEStage:
    """Reconstruct RGB clips ``[-1, 1] (B, 3, T, H, W)`` through the VAE."""

    def __init__(self, config: VideoVAEConfig, device: torch.device):
        self.config = config
        self.model = build_vae(config.init or config.preset)
        self.trainable = VAEReconstruction(self.model)

    def loss(self, trainable, batch: ClipBatch, generator: torch.Generator) -> torch.Tensor:
        x = rgb_to_model(batch.rgb)
        reconstruction, kl = trainable(x, generator)
        reconstruction = reconstruction.float()
        loss = F.l1_loss(reconstruction, x) + self.config.kl_weight * kl
        if self.config.gradient_weight > 0:
            loss = loss + self.config.gradient_weight * spatial_gradient_l1(reconstruction, x)
        return loss

    def finalize(self, data_source: DataSource, batch_size: int) -> None:
        inputs = [rgb_to_model(data_source(i, batch_size).rgb) for i in range(SCALING_BATCHES)]
        estimate_scaling_factor(self.model, inputs)


def train_video_vae(config: VideoVAEConfig, data_source: DataSource | None = None) -> dict:
    """Run stage 0 (see ``sora3r.train.loop.train`` for the run folder layout)."""
    return run_stage(VideoVAEStage, config, data_source)
