"""Stage 1: the pointmap VAE, initialised from the video VAE, fine-tuned on normalised pointmaps (Huber + small KL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from annotated_types import Ge, Gt

from sora3r.geometry.target import PointmapTarget
from sora3r.models.inputs import pointmap_to_model, rgb_to_model
from sora3r.models.vae import (
    build_vae, decode_latents, encode_latents, estimate_scaling_factor, pointmap_vae_from_video_vae,
)
from sora3r.options import invalid
from sora3r.train.camera_objective import camera_motion_loss, frame_rays
from sora3r.train.data import DataSource
from sora3r.train.loop import RunFolder, TrainConfig, VAEPreset, run_stage
from sora3r.train.vae_objective import SCALING_BATCHES, VAEReconstruction
from sora3r.types import ClipBatch


@dataclass
class PointmapVAEConfig(TrainConfig):
    """Stage 1: the pointmap VAE, a copy of the video VAE fine-tuned on normalised pointmaps (Huber + small KL)."""

    output: RunFolder = "runs/pointmap_vae"  # run folder (state/, light/, model/, loss.jsonl, config.json)
    preset: VAEPreset = "tiny"  # VAE size when --init-video-vae is unset
    init_video_vae: str | None = None  # the stage-0 VAE folder to start from (unset: a fresh --preset, for ablations)
    init_pointmap_vae: str | None = None  # continue from a trained pointmap VAE folder instead (e.g. a bundle's)
    decoder_only: bool = False  # train the decoder alone: the encoder and the latent scaling factor stay as they are
    decode_samples_of: str | None = None  # with --decoder-only: decode the latents this model folder samples from each clip's video
    squash: bool = True  # radially squashed target p/|p| log1p|p| (--no-squash: the plain normalised target)
    huber_delta: Annotated[float, Gt(0)] = 0.05  # Huber loss threshold, in units of the normalised target
    kl_weight: Annotated[float, Ge(0)] = 1e-4  # weight of the KL term (latents near N(0, I))
    camera_loss_weight: Annotated[float, Ge(0)] = 0.0
    """weight of the camera-motion loss on the decoded pointmaps (each frame's camera centre where its rays meet its
    points, against the target's; `sora3r.train.camera_objective`; 0: off). Needs intrinsics K (synthetic data)"""

    input_folders = ("init_video_vae", "init_pointmap_vae", "decode_samples_of")

    def __post_init__(self):
        super().__post_init__()
        if self.init_video_vae is not None and self.init_pointmap_vae is not None:
            raise invalid("init_pointmap_vae", self.init_pointmap_vae,
                          "give --init-video-vae or --init-pointmap-vae, not both")
        if self.decoder_only and self.init_pointmap_vae is None:
            raise invalid("decoder_only", True, "needs --init-pointmap-vae (a trained encoder and its latent space)")
        if self.decode_samples_of is not None and not self.decoder_only:
            raise invalid("decode_samples_of", self.decode_samples_of,
                          "needs --decoder-only (the sampled latents live in the frozen encoder's latent space)")


def masked_huber(prediction: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, delta: float) -> torch.Tensor:
    """Huber loss of ``(B, 3, T, H, W)`` tensors averaged over the pixels where ``valid (B, 1, T, H, W)``."""
    per_pixel = F.huber_loss(prediction.float(), target, delta=delta, reduction="none").mean(1, keepdim=True)
    weight = valid.float()
    return (per_pixel * weight).sum() / weight.sum().clamp_min(1.0)


class PointmapVAEStage:
    """Reconstruct ``PointmapTarget(squash)`` pointmaps through a VAE that starts as a copy of the video VAE, or
    continues a trained pointmap VAE.

    With ``decoder_only`` the encoder is frozen and the scaling factor kept: the latents of every pointmap stay
    exactly what they were, so a transformer trained in that latent space stays valid and only the decoding of its
    latents improves (the round-trip floor of the geometry).

    With ``decode_samples_of`` the decoder learns on what it decodes at inference instead of on the encoder's
    latents: the latent that model's transformer samples (its default sampling steps, in the training generator's
    noise) from each clip's video, against the clip's true pointmap. The decoder then corrects the transformer's
    systematic errors, like a VAE decoder fine-tuned on a generator's outputs.
    """

    def __init__(self, config: PointmapVAEConfig, device: torch.device):
        self.config = config
        self.target = PointmapTarget(squash=config.squash)
        self.sampler = None
        if config.init_pointmap_vae is not None:
            self.model = build_vae(config.init_pointmap_vae)
        else:
            self.model = pointmap_vae_from_video_vae(build_vae(config.init_video_vae or config.preset))
        if config.decoder_only:
            for module in (self.model.encoder, self.model.quant_conv):
                if module is not None:
                    module.requires_grad_(False)
        self.trainable = VAEReconstruction(self.model)
        if config.decode_samples_of is not None:
            self.sampler = _frozen_sampler(config.decode_samples_of, self.model, config.squash, device)

    def loss(self, trainable, batch: ClipBatch, generator: torch.Generator) -> torch.Tensor:
        x, valid = pointmap_to_model(batch.points, batch.c2w, batch.valid, self.target)
        latent = None
        if self.sampler is not None:
            with torch.no_grad():
                video_latent = encode_latents(self.sampler.video_vae, rgb_to_model(batch.rgb))
                latent = self.sampler.sample_pointmap_latent(video_latent, generator=generator)
                latent = latent.float() / self.model.config.scaling_factor
        reconstruction, kl = trainable(x, generator, latent)
        loss = masked_huber(reconstruction, x, valid, self.config.huber_delta) + self.config.kl_weight * kl
        if self.config.camera_loss_weight > 0:
            loss = loss + self.config.camera_loss_weight * camera_motion_loss(reconstruction, x, valid,
                                                                              frame_rays(batch), self.target)
        return loss

    def finalize(self, data_source: DataSource, batch_size: int) -> None:
        if self.config.decoder_only:
            return  # the latent space, scaling included, is the one the model started with
        batches = [data_source(i, batch_size) for i in range(SCALING_BATCHES)]
        inputs = [pointmap_to_model(b.points, b.c2w, b.valid, self.target)[0] for b in batches]
        estimate_scaling_factor(self.model, inputs)


def _frozen_sampler(folder: str, vae, squash: bool, device: torch.device):
    """The model folder's pipeline on ``device``, frozen, after checking that its transformer samples in the latent
    space of ``vae`` (same scaling factor, same target squash).

    Raises:
        ValueError: naming --decode-samples-of, when the folder's latent space or target differs.
    """
    from sora3r.pipeline import Sora3RPipeline

    pipeline = Sora3RPipeline.from_pretrained(folder, device=device)
    if pipeline.pointmap_vae.config.scaling_factor != vae.config.scaling_factor or pipeline.target.squash != squash:
        raise invalid("decode_samples_of", folder, "its transformer samples in another latent space than the "
                      "--init-pointmap-vae's (scaling factor or --squash differ)")
    for module in (pipeline.video_vae, pipeline.transformer):
        module.requires_grad_(False).eval()
    return pipeline


@torch.no_grad()
def round_trip_error(vae, squash: bool, batches: list[ClipBatch]) -> float:
    """Mean distance between a pointmap VAE's round trip (encode, decode, undo the squash) and the plain normalised
    target, over the valid pixels of ``batches``: a score on the same scale for the plain and the squashed target
    (the normalised points have mean distance 1 to the origin)."""
    target, plain = PointmapTarget(squash=squash), PointmapTarget(squash=False)
    errors = []
    for batch in batches:
        x, valid = pointmap_to_model(batch.points, batch.c2w, batch.valid, target)
        x = x.to(device=vae.device, dtype=vae.dtype)
        decoded = decode_latents(vae, encode_latents(vae, x)).float().permute(0, 2, 3, 4, 1)
        truth, _ = plain.encode(batch.points.float(), batch.c2w.float(), batch.valid.bool())
        errors.append((target.decode(decoded) - truth.to(decoded.device)).norm(dim=-1)[valid[:, 0]].mean())
    return float(torch.stack(errors).mean())


def train_pointmap_vae(config: PointmapVAEConfig, data_source: DataSource | None = None) -> dict:
    """Run stage 1 (see ``sora3r.train.loop.train`` for the run folder layout)."""
    return run_stage(PointmapVAEStage, config, data_source)
