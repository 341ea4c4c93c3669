"""Models: the video / pointmap VAEs, the joint-latent diffusion transformer, tensor conversions for their inputs."""

from sora3r.models.inputs import pointmap_to_model, rgb_to_model
from sora3r.models.transformer import TRANSFORMER_PRESETS, JointLatentTransformer
from sora3r.models.vae import (
    VAE_PRESETS,
    build_vae,
    check_num_frames,
    decode_latents,
    encode_latents,
    estimate_scaling_factor,
    pointmap_vae_from_video_vae,
    vae_config,
)

__all__ = [
    "JointLatentTransformer",
    "TRANSFORMER_PRESETS",
    "VAE_PRESETS",
    "build_vae",
    "check_num_frames",
    "decode_latents",
    "encode_latents",
    "estimate_scaling_factor",
    "pointmap_to_model",
    "pointmap_vae_from_video_vae",
    "rgb_to_model",
    "vae_config",
]
