"""Stage 2: the joint-latent transformer, trained with rectified flow on latents of the two frozen VAEs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import torch
from annotated_types import Ge, Gt, Le

from sora3r.diffusion.flow import TIMESTEP_SAMPLINGS, clean_from_velocity, flow_loss, noisy_sample, sample_timesteps
from sora3r.geometry.target import PointmapTarget
from sora3r.models.inputs import pointmap_to_model, rgb_to_model
from sora3r.models.transformer import PREDICTION_TYPES, TRANSFORMER_PRESETS, JointLatentTransformer
from sora3r.models.vae import build_vae, decode_latents, encode_latents, encode_leading_latents
from sora3r.options import Count, NonNegative, invalid
from sora3r.train.camera_objective import camera_motion_loss, frame_rays
from sora3r.train.data import DataSource
from sora3r.train.loop import TRAINING_RECORD, RunFolder, TrainConfig, run_stage
from sora3r.train.pointmap_vae import masked_huber
from sora3r.types import ClipBatch

TransformerPreset = Literal[tuple(TRANSFORMER_PRESETS)]  # the transformer sizes of sora3r.models.transformer


@dataclass
class DiTConfig(TrainConfig):
    """Stage 2: the joint-latent diffusion transformer, trained with rectified flow on the latents of the two frozen
    VAEs."""

    output: RunFolder = "runs/dit"  # run folder (state/, light/, model/, loss.jsonl, config.json)
    preset: TransformerPreset = "tiny"  # transformer size when --init-transformer is unset
    video_vae: str = "runs/video_vae/model"  # frozen video VAE folder (stage 0 model/ or a model folder's video_vae/)
    pointmap_vae: str = "runs/pointmap_vae/model"  # frozen pointmap VAE folder (stage 1 model/ or pointmap_vae/)
    init_transformer: str | None = None  # transformer to continue, or CogVideoX one to widen (unset: fresh --preset)
    grow_layers: Count | None = None
    """deepen --init-transformer to this many blocks before training, each new block a copy of the one before it
    with its residual gates at zero, so training starts from the same predictions (`JointLatentTransformer.deepened`)"""
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
    prediction: Literal[PREDICTION_TYPES] = "velocity"
    """what a fresh transformer's network outputs: the flow velocity, or the clean latent (x-prediction; Li & He,
    "Back to Basics: Let Denoising Generative Models Denoise", 2025)"""
    loss: Literal[PREDICTION_TYPES] = "velocity"
    """the mean squared error on the flow velocity (for an x-prediction network (x_t - x0)/t, t floored at 0.05) or on
    the clean latent (which weights flow times by t^2 relative to the velocity loss, i.e. towards pure noise)"""
    patch_size: Count | None = None  # spatial patch size of a fresh transformer (unset: the preset's)
    known_frames_prob: Annotated[float, Ge(0), Le(1)] = 0.0
    """probability that a training clip is conditioned on the clean pointmap latent of its first 1 to t - 1 latent
    frames, normalised on those frames alone, as the window stitching gives them (the transformer gets known-frame
    inputs; a transformer without them is widened, `JointLatentTransformer.with_known_frame_inputs`); 0: never"""
    pointmap_loss_weight: Annotated[float, Ge(0)] = 0.0
    """weight of a Huber loss between the pointmaps decoded (frozen pointmap VAE decoder) from the predicted clean
    latent and the target pointmaps, on valid pixels (0: the latent loss only)"""
    camera_loss_weight: Annotated[float, Ge(0)] = 0.0
    """weight of a loss on the camera motion the decoded pointmaps imply: each frame's camera centre, where its pixel
    rays (true rotation and intrinsics) best meet its decoded points, against the same from the target pointmaps
    (`sora3r.train.camera_objective`; 0: off). Needs a data source with intrinsics K (the synthetic ones)"""
    decoded_loss_clips: Count = 32  # clips of each (replay) batch that the decoded-pointmap and camera losses decode

    input_folders = ("video_vae", "pointmap_vae", "init_transformer")

    def __post_init__(self):
        super().__post_init__()
        if self.grow_layers is not None and self.init_transformer is None:
            raise invalid("grow_layers", self.grow_layers, "needs --init-transformer (the trained transformer to deepen)")
        if self.known_frames_prob > 0 and self.num_frames < 5:
            raise invalid("known_frames_prob", self.known_frames_prob,
                          f"needs clips of at least 5 frames (2 latent frames), not --num-frames {self.num_frames}")


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


# Floor of t where an x-prediction's velocity loss divides by t (larger weights would come from the last few percent of
# flow time, where the latent is nearly clean and the division only amplifies noise).
VELOCITY_LOSS_MIN_T = 0.05
POINTMAP_HUBER_DELTA = 0.05  # Huber threshold of the decoded-pointmap loss (normalised target units, as stage 1's)


class LatentReplay:
    """Ring buffer of per-clip training tensors (latents ``(C, t, h, w)``, optionally target pointmaps and masks) on
    the training device.

    Its content depends only on the clips added, in order, so a resumed run that re-adds the clips of the steps
    before its checkpoint (see :meth:`DiTStage.resume`) continues exactly like an uninterrupted one.
    """

    def __init__(self, capacity: int):
        self.capacity, self.added = capacity, 0
        self.slots: list[torch.Tensor] | None = None

    def add(self, *tensors: torch.Tensor) -> None:
        """Add a batch: tensors ``(B, ...)`` with one leading batch dimension each (always the same kinds)."""
        if self.slots is None:
            self.slots = [t.new_empty((self.capacity, *t.shape[1:])) for t in tensors]
        index = torch.arange(self.added, self.added + tensors[0].shape[0], device=tensors[0].device) % self.capacity
        for slot, tensor in zip(self.slots, tensors):
            slot[index] = tensor
        self.added += tensors[0].shape[0]

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        index = torch.randint(min(self.added, self.capacity), (batch_size,), generator=generator,
                              device=generator.device)
        return tuple(slot[index] for slot in self.slots)


class DiTStage:
    """Velocity regression on ``[noisy pointmap latent, video latent]``; both VAEs frozen (eval, no grad, bf16 on CUDA)."""

    def __init__(self, config: DiTConfig, device: torch.device):
        self.config = config
        self.target = PointmapTarget(squash=pointmap_vae_squash(config.pointmap_vae, config.squash))
        vae_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        self.video_vae = build_vae(config.video_vae).to(device, vae_dtype).eval().requires_grad_(False)
        self.pointmap_vae = build_vae(config.pointmap_vae).to(device, vae_dtype).eval().requires_grad_(False)
        channels = self.video_vae.config.latent_channels
        if self.pointmap_vae.config.latent_channels != channels:
            raise ValueError(f"{config.pointmap_vae}: latent channels differ from the video VAE's ({channels})")
        if config.init_transformer:
            self.model = initial_transformer(config.init_transformer)
            if self.model.config.prediction_type != config.prediction:
                raise ValueError(f"{config.init_transformer}: the transformer predicts {self.model.config.prediction_type}"
                                 f", not {config.prediction} (--prediction)")
            if config.grow_layers is not None:
                self.model = self.model.deepened(config.grow_layers)
            if config.known_frames_prob > 0 and not self.model.config.known_frame_inputs:
                self.model = self.model.with_known_frame_inputs()
        else:
            self.model = JointLatentTransformer.from_preset(config.preset, latent_channels=channels,
                                                            prediction_type=config.prediction,
                                                            patch_size=config.patch_size,
                                                            known_frame_inputs=config.known_frames_prob > 0)
        self.known_frames = bool(self.model.config.known_frame_inputs)
        self.trainable = self.model
        self.replay = LatentReplay(config.replay_clips) if config.replay_clips > 0 else None
        self.decoded_losses = config.pointmap_loss_weight > 0 or config.camera_loss_weight > 0

    def resume(self, data_source: DataSource, step: int, batch_size: int) -> None:
        """Refill the replay pool with the clips of the steps just before ``step`` (a no-op without a pool)."""
        if self.replay is None:
            return
        first = max(0, step - -(-self.replay.capacity // batch_size))
        self.replay.added = first * batch_size  # the ring positions the uninterrupted run used
        for previous in range(first, step):
            self.replay.add(*self.training_tensors(data_source(previous, batch_size)))

    @torch.no_grad()
    def training_tensors(self, batch: ClipBatch) -> tuple[torch.Tensor, ...]:
        """Scaled ``(video latent, pointmap latent)``, each ``(B, C, t, h, w)`` float32; then, for a transformer with
        known-frame inputs, `known_latents`; then, when a decoded loss is on, the target pointmaps
        ``bf16 (B, 3, T, H, W)`` and ``valid bool (B, 1, T, H, W)``; then, with the camera loss, the frames' ray
        matrices ``R K^-1`` ``float32 (B, T, 3, 3)`` (frame-0 camera frame)."""
        video = encode_latents(self.video_vae, rgb_to_model(batch.rgb))
        target, valid = pointmap_to_model(batch.points, batch.c2w, batch.valid, self.target)
        pointmap = encode_latents(self.pointmap_vae, target)
        tensors = [video.float(), pointmap.float()]
        if self.known_frames:
            tensors += self.known_latents(batch, pointmap.shape[2])
        if self.decoded_losses:
            tensors += [target.to(torch.bfloat16), valid]
        if self.config.camera_loss_weight > 0:
            tensors.append(frame_rays(batch))
        return tuple(tensors)

    def known_latents(self, batch: ClipBatch, latent_frames: int) -> list[torch.Tensor]:
        """``[known float32 (B, C, t, h, w), count long (B,)]``: clip j's first ``L = 1 + j mod (t - 1)`` latent
        frames (frames ``0 .. 4L - 4``) encoded on their own, normalised on those frames alone (what
        `sora3r.geometry.stitch.shared_in_window_frame` gives at inference), zeros after them; ``count`` is L."""
        group = int(self.pointmap_vae.config.temporal_compression_ratio)
        count = 1 + torch.arange(batch.rgb.shape[0], device=batch.rgb.device) % (latent_frames - 1)
        known = None
        for frames in count.unique().tolist():
            clips = (count == frames).nonzero()[:, 0]
            pixels = 1 + group * (frames - 1)
            target, _ = pointmap_to_model(batch.points[clips, :pixels], batch.c2w[clips, :pixels],
                                          batch.valid[clips, :pixels], self.target)
            latent = encode_leading_latents(self.pointmap_vae, target).float()
            if known is None:
                known = latent.new_zeros(batch.rgb.shape[0], latent.shape[1], latent_frames, *latent.shape[3:])
            known[clips, :, :frames] = latent
        return [known, count]

    def loss(self, trainable, batch: ClipBatch, generator: torch.Generator) -> torch.Tensor:
        tensors = self.training_tensors(batch)
        if self.replay is not None:
            self.replay.add(*tensors)
            tensors = self.replay.sample(self.config.replay_batch_size, generator)
        (video, x0), tensors = tensors[:2], tensors[2:]
        noise = torch.randn(x0.shape, generator=generator, device=x0.device)
        t = sample_timesteps(x0.shape[0], generator, x0.device, self.config.timestep_sampling,
                             self.config.logit_mean, self.config.logit_std)
        x_t = noisy_sample(x0, noise, t)
        known = {}
        if self.known_frames:
            (latent, count), tensors = tensors[:2], tensors[2:]
            used = torch.rand(count.shape, generator=generator, device=count.device) < self.config.known_frames_prob
            known = dict(known=latent, known_frames=torch.where(used, count, 0))
        prediction = trainable(x_t, video, t, output=self.config.prediction, **known)  # the network's own output
        clean = prediction if self.config.prediction == "sample" else clean_from_velocity(x_t, prediction, t)
        if self.config.loss == "velocity" and self.config.prediction == "velocity":
            loss = flow_loss(prediction, x0, noise)
        elif self.config.loss == "velocity":  # (x_t - x0_hat)/t - (x_t - x0)/t = (x0 - x0_hat)/t
            weight = 1.0 / t.clamp_min(VELOCITY_LOSS_MIN_T).reshape(-1, 1, 1, 1, 1)
            loss = ((clean.float() - x0) * weight).square().mean()
        else:
            loss = torch.nn.functional.mse_loss(clean.float(), x0)
        if self.decoded_losses:
            count = self.config.decoded_loss_clips
            target, valid, *rays = (tensor[:count] for tensor in tensors)
            decoded = decode_latents(self.pointmap_vae, clean[:count])
            if self.config.pointmap_loss_weight > 0:
                huber = masked_huber(decoded, target.float(), valid, POINTMAP_HUBER_DELTA)
                loss = loss + self.config.pointmap_loss_weight * huber
            if self.config.camera_loss_weight > 0:
                camera = camera_motion_loss(decoded, target, valid, rays[0], self.target)
                loss = loss + self.config.camera_loss_weight * camera
        return loss

    def finalize(self, data_source: DataSource, batch_size: int) -> None:
        """Nothing to adjust after training."""


def train_dit(config: DiTConfig, data_source: DataSource | None = None) -> dict:
    """Run stage 2 (see ``sora3r.train.loop.train`` for the run folder layout)."""
    return run_stage(DiTStage, config, data_source)
