"""Video and pointmap VAEs: diffusers ``AutoencoderKLCogVideoX`` (8x spatial, 4x temporal, T = 4k+1).

Both VAEs take ``float (B, 3, T, H, W)`` and give latents ``(B, C, (T-1)/4+1, H/8, W/8)``. T must be 8k+1
(9, 17, 25, ...): with an even number of latent frames the decoder returns the wrong frame count (5 -> 8). RGB enters in
[-1, 1]; pointmaps enter as the normalised target of ``sora3r.geometry.target.PointmapTarget`` without
any extra fixed scaling (mean point distance 1, squashed radius ~0.7 on average: the same order as RGB).
Latents handed to the diffusion model are multiplied by the VAE's ``config.scaling_factor``, which
:func:`estimate_scaling_factor` sets so that they have about unit variance.
"""

from __future__ import annotations

import os

import torch
from diffusers import AutoencoderKLCogVideoX

VAE_PRESETS: dict[str, dict] = {
    # ~2.8 M parameters: the bundled model.
    "tiny": dict(block_out_channels=(32, 32, 64, 64), layers_per_block=1, norm_num_groups=8, latent_channels=16),
    # ~6.3 M parameters: twice tiny's width past the first block, the largest whose bf16 weights (12.6 MB) cross the
    # lent GPU's 16 MiB file limit unsharded. Same 16 latent channels and compression as tiny, so a DiT trained on
    # tiny's latent shapes continues on it.
    "mini": dict(block_out_channels=(32, 64, 96, 96), layers_per_block=1, norm_num_groups=16, latent_channels=16),
    # ~10 M parameters.
    "small": dict(block_out_channels=(32, 64, 128, 128), layers_per_block=1, norm_num_groups=16, latent_channels=16),
    # The library's default = CogVideoX's VAE (~216 M parameters).
    "paper": dict(),
    # A lighter pointmap VAE for paper-size clips: half the paper's widths, one layer a block (~32 M parameters, 19.9 M
    # in the decoder against 123.4 M; the decode 0.30x the paper decoder's time, benchmarks/bench_decoder_width.py).
    # Same 16 latent channels and 4x8x8 compression, so it pairs with the paper video VAE and transformer; it cannot
    # start from the video VAE's weights.
    "paper-light": dict(block_out_channels=(64, 128, 128, 256), layers_per_block=1),
}


def vae_config(preset: str) -> dict:
    """Constructor kwargs of ``AutoencoderKLCogVideoX`` (either VAE) for ``preset`` ("tiny" | "mini" | "small" |
    "paper" | "paper-light")."""
    if preset not in VAE_PRESETS:
        raise ValueError(f"unknown VAE preset {preset!r}; choose one of {sorted(VAE_PRESETS)}")
    config = dict(VAE_PRESETS[preset])
    if not preset.startswith("paper"):
        # sample_height / width set only the tile size of tiled decoding (half of each); scaling_factor stays 1
        # until `estimate_scaling_factor` measures it at the end of training.
        config.update(sample_height=64, sample_width=64, scaling_factor=1.0)
    return config


def build_vae(preset_or_path: str | os.PathLike) -> AutoencoderKLCogVideoX:
    """A VAE (video or pointmap: both have this architecture): a fresh one for a preset name, or the one saved in a
    local diffusers folder.

    Raises:
        FileNotFoundError: neither a preset nor a folder with ``config.json``.
    """
    name = str(preset_or_path)
    if name in VAE_PRESETS:
        return AutoencoderKLCogVideoX(**vae_config(name))
    if not os.path.isfile(os.path.join(name, "config.json")):
        raise FileNotFoundError(f"{name}: neither a VAE preset {sorted(VAE_PRESETS)} nor a diffusers folder with config.json")
    return AutoencoderKLCogVideoX.from_pretrained(name)


def pointmap_vae_from_video_vae(video_vae: AutoencoderKLCogVideoX) -> AutoencoderKLCogVideoX:
    """The pointmap VAE of the paper: same class and config, weights copied from the video VAE.

    XYZ takes the place of RGB channel for channel, so every tensor copies 1:1.
    """
    pointmap_vae = AutoencoderKLCogVideoX.from_config(video_vae.config)
    pointmap_vae.load_state_dict(video_vae.state_dict())
    return pointmap_vae.to(device=video_vae.device, dtype=video_vae.dtype)


def check_num_frames(num_frames: int) -> None:
    """Raise ValueError unless the clip length round-trips through the VAE (T = 8k + 1)."""
    if num_frames < 1 or num_frames % 8 != 1:
        raise ValueError(f"clip length {num_frames} does not round-trip the CogVideoX VAE; use 8k+1 frames (9, 17, 25, ...)")


def encode_latents(vae: AutoencoderKLCogVideoX, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Scaled latent ``(B, C, t, h, w)`` of ``x (B, 3, T, H, W)``: posterior mean, or a sample given ``generator``."""
    check_num_frames(x.shape[2])
    return _scaled_latent(vae, x, generator)


def _scaled_latent(vae: AutoencoderKLCogVideoX, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """The encoder's posterior mean (or a sample given ``generator``) times the scaling factor, any frame count."""
    posterior = vae.encode(x.to(vae.dtype)).latent_dist
    latent = posterior.mean if generator is None else posterior.sample(generator)
    return latent * vae.config.scaling_factor


def encode_leading_latents(vae: AutoencoderKLCogVideoX, x: torch.Tensor) -> torch.Tensor:
    """Scaled posterior-mean latent ``(B, C, L, h, w)`` of the first ``4L - 3`` frames ``x (B, 3, 4L - 3, H, W)`` of a
    longer clip: the first L latent frames that clip would get (the first frame alone, then groups of 4).

    The CogVideoX encoder is causal in time (its 3D convolutions pad only the past; the time downsampling keeps the
    first frame apart) except for group-norm statistics taken over all frames, so these are close to, not equal to, the
    longer clip's: on the bundled pointmap VAE, 5 frames encoded alone give latents within ~5 % of the mean latent
    magnitude of those of the 17-frame clip they start (9 frames alone, exactly those of 17: one frame batch).

    Raises:
        ValueError: ``x`` has a frame count that is not ``4L - 3`` for some ``L >= 1``.
    """
    if (x.shape[2] - 1) % vae.config.temporal_compression_ratio:
        raise ValueError(f"encode_leading_latents: need 1 + {vae.config.temporal_compression_ratio}k frames, "
                         f"got {x.shape[2]}")
    return _scaled_latent(vae, x, None)


def decode_latents(vae: AutoencoderKLCogVideoX, latent: torch.Tensor) -> torch.Tensor:
    """``(B, 3, T, H, W)`` decoded from a scaled latent made by :func:`encode_latents`."""
    return vae.decode(latent.to(vae.dtype) / vae.config.scaling_factor).sample


@torch.no_grad()
def estimate_scaling_factor(vae: AutoencoderKLCogVideoX, inputs: list[torch.Tensor]) -> float:
    """``1 / std`` of the unscaled posterior means of ``inputs`` (each ``(B, 3, T, H, W)``); stores it in the config."""
    means = [vae.encode(x.to(device=vae.device, dtype=vae.dtype)).latent_dist.mean.float() for x in inputs]
    factor = float(1.0 / torch.cat([m.flatten() for m in means]).std().clamp_min(1e-6))  # (a constant input)
    vae.register_to_config(scaling_factor=factor)
    return factor
