"""Models: the video / pointmap VAEs and the joint-latent diffusion transformer."""

from sora3r.models.transformer import TRANSFORMER_PRESETS, JointLatentTransformer
from sora3r.models.vae import (
    VAE_PRESETS,
    build_video_vae,
    check_num_frames,
    decode_latents,
    encode_latents,
    estimate_scaling_factor,
    pointmap_vae_from_video_vae,
    video_vae_config,
)

__all__ = [
    "JointLatentTransformer",
    "TRANSFORMER_PRESETS",
    "VAE_PRESETS",
    "build_video_vae",
    "check_num_frames",
    "decode_latents",
    "encode_latents",
    "estimate_scaling_factor",
    "pointmap_vae_from_video_vae",
    "video_vae_config",
]
