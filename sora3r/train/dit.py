"""Stage 2: the joint-latent transformer, trained with rectified flow on latents of the two frozen VAEs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import torch
from annotated_types import Gt

from sora3r.diffusion.flow import TIMESTEP_SAMPLINGS, flow_loss, noisy_sample, sample_timesteps
from sora3r.geometry.target import PointmapTarget
from sora3r.models.transformer import TRANSFORMER_PRESETS, JointLatentTransformer
from sora3r.models.vae import build_video_vae, encode_latents
from sora3r.options import Count, NonNegative, check_model_folder
from sora3r.train.data import DataSource, pointmap_to_model, rgb_to_model
from sora3r.train.loop import TRAINING_RECORD, TrainConfig, run_stage

TransformerPreset = Literal[tuple(TRANSFORMER_PRESETS)]  # the transformer sizes of sora3r.models.transformer


@dataclass
class DiTConfig(TrainConfig):
    """Stage 2: the joint-latent diffusion transformer, trained with rectified flow on the latents of the two frozen
    VAEs."""

    output: str = "runs/dit"  # run folder (state/, light/, model/, loss.jsonl, config.json)
    preset: TransformerPreset = "tiny"  # transformer size when --init-transformer is unset
    video_vae: str = "runs/video_vae/model"  # frozen video VAE folder (stage 0 model/ or a model folder's video_vae/)
    pointmap_vae: str = "runs/pointmap_vae/model"  # frozen pointmap VAE folder (stage 1 model/ or pointmap_vae/)
    init_transformer: str | None = None  # transformer to continue, or CogVideoX one to widen (unset: fresh --preset)
    squash: bool | None = None  # radially squashed target (unset: as the pointmap VAE's training record says)
    timestep_sampling: Literal[TIMESTEP_SAMPLINGS] = "logit_normal"  # distribution of the training flow times
    logit_mean: float = 0.0  # mean of the logit-normal flow-time distribution
    logit_std: Annotated[float, Gt(0)] = 1.0  # standard deviation of the logit-normal flow-time distribution
    replay_clips: NonNegative = 0
    """latent replay pool size in clips (0: train on each fresh batch once). The latents of the last N rendered clips
    stay in a pool on the device; each step adds --batch-size fresh clips and trains on --replay-batch-size clips
    drawn from it, so each rendered and encoded clip is used about replay-batch-size / batch-size times (rendering
    and encoding, not the transformer, bound the step)"""
    replay_batch_size: Count = 64  # clips drawn from the replay pool per step

    def check_inputs(self) -> None:
        super().check_inputs()
        for name in ("video_vae", "pointmap_vae", "init_transformer"):
            if getattr(self, name) is not None:
                check_model_folder(name, getattr(self, name))


def pointmap_vae_squash(pointmap_vae_dir: str | Path, requested: bool | None) -> bool:
    """The squash setting the pointmap VAE was trained with; a conflicting ``requested`` value is an error."""
    record = Path(pointmap_vae_dir) / TRAINING_RECORD
    trained = json.loads(record.read_text()).get("squash") if record.exists() else None
    if requested is not None and trained is not None and requested != trained:
        raise ValueError(f"{record}: pointmap VAE was trained with squash={trained}, but squash={requested} was asked")
    if trained is None and requested is None:
        raise ValueError(f"{record}: no training record; pass --squash or --no-squash")
    return trained if trained is not None else requested


def initial_transformer(path: str | Path) -> JointLatentTransformer:
    """The starting point of stage 2 read from ``path``: a joint-latent transformer folder (e.g. the bundled
    model's ``transformer/``, to train it further; weights are loaded in float32) continues as it is; a pretrained
    CogVideoX video transformer folder is widened to the joint input (`JointLatentTransformer.from_video_transformer`)."""
    config_file = Path(path) / "config.json"
    if config_file.is_file() and json.loads(config_file.read_text()).get("_class_name") == JointLatentTransformer.__name__:
        return JointLatentTransformer.from_pretrained(path, torch_dtype=torch.float32)
    return JointLatentTransformer.from_video_transformer(path)


class LatentReplay:
    """Ring buffer of ``(video latent, pointmap latent)`` pairs, each ``(C, t, h, w)``, on the training device.

    Its content depends only on the clips added, in order, so a resumed run that re-adds the clips of the steps
    before its checkpoint (see :meth:`DiTStage.resume`) continues exactly like an uninterrupted one.
    """

    def __init__(self, capacity: int):
        self.capacity, self.added = capacity, 0
        self.video = self.pointmap = None

    def add(self, video: torch.Tensor, pointmap: torch.Tensor) -> None:
        if self.video is None:
            self.video = video.new_empty((self.capacity, *video.shape[1:]))
            self.pointmap = pointmap.new_empty((self.capacity, *pointmap.shape[1:]))
        slots = torch.arange(self.added, self.added + video.shape[0], device=video.device) % self.capacity
        self.video[slots], self.pointmap[slots] = video, pointmap
        self.added += video.shape[0]

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(min(self.added, self.capacity), (batch_size,), generator=generator,
                              device=generator.device)
        return self.video[index], self.pointmap[index]


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
            self.model = initial_transformer(config.init_transformer)
        else:
            self.model = JointLatentTransformer.from_preset(config.preset, latent_channels=channels)
        self.trainable = self.model
        self.replay = LatentReplay(config.replay_clips) if config.replay_clips > 0 else None

    def resume(self, data_source: DataSource, step: int, batch_size: int) -> None:
        """Refill the replay pool with the clips of the steps just before ``step`` (a no-op without a pool)."""
        if self.replay is None:
            return
        first = max(0, step - -(-self.replay.capacity // batch_size))
        self.replay.added = first * batch_size  # the ring positions the uninterrupted run used
        for previous in range(first, step):
            self.replay.add(*self.latents(data_source(previous, batch_size)))

    @torch.no_grad()
    def latents(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled ``(video latent, pointmap latent)``, each ``(B, C, t, h, w)`` float32."""
        video = encode_latents(self.video_vae, rgb_to_model(batch["rgb"]))
        pointmap = encode_latents(self.pointmap_vae, pointmap_to_model(batch, self.target)[0])
        return video.float(), pointmap.float()

    def loss(self, trainable, batch: dict, generator: torch.Generator) -> torch.Tensor:
        video, x0 = self.latents(batch)
        if self.replay is not None:
            self.replay.add(video, x0)
            video, x0 = self.replay.sample(self.config.replay_batch_size, generator)
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
