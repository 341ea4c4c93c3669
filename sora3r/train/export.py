"""Assemble and load the model folder the pipeline reads.

Layout: ``<dir>/video_vae/``, ``<dir>/pointmap_vae/``, ``<dir>/transformer/`` (diffusers ``save_pretrained``,
safetensors shards < 15 MB) and ``<dir>/sora3r.json`` with ``num_frames``, ``height``, ``width``, ``squash``,
``sampler_steps`` and both VAEs' latent ``scaling_factor``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKLCogVideoX

from sora3r.fs import atomic_output_dir, check_output_dir
from sora3r.diffusion.sampler import DEFAULT_NUM_STEPS, euler_sample
from sora3r.models.transformer import JointLatentTransformer
from sora3r.models.vae import build_video_vae
from sora3r.train.loop import MAX_SHARD, TRAINING_RECORD

MODEL_CONFIG = "sora3r.json"
PARTS = ("video_vae", "pointmap_vae", "transformer")


def export_model_folder(output: str | Path, video_vae: AutoencoderKLCogVideoX, pointmap_vae: AutoencoderKLCogVideoX,
                        transformer: JointLatentTransformer, num_frames: int, height: int, width: int, squash: bool,
                        sampler_steps: int = DEFAULT_NUM_STEPS, dtype: torch.dtype = torch.bfloat16) -> dict:
    """Write the three models (cast to ``dtype``) and ``sora3r.json`` to ``output`` atomically; returns the config."""
    config = {
        "num_frames": num_frames, "height": height, "width": width, "squash": squash, "sampler_steps": sampler_steps,
        "video_scaling_factor": video_vae.config.scaling_factor,
        "pointmap_scaling_factor": pointmap_vae.config.scaling_factor,
    }
    with atomic_output_dir(output, overwrite=True, what="sora3r model") as staging:
        for name, model in zip(PARTS, (video_vae, pointmap_vae, transformer)):
            model.to(dtype).save_pretrained(staging / name, max_shard_size=MAX_SHARD, safe_serialization=True)
        (staging / MODEL_CONFIG).write_text(json.dumps(config, indent=2))
    return config


def export_from_runs(output: str | Path, video_vae: str | Path, pointmap_vae: str | Path, transformer: str | Path,
                     sampler_steps: int = DEFAULT_NUM_STEPS, dtype: torch.dtype = torch.bfloat16) -> dict:
    """Export from the ``model/`` folder of a stage-2 run and its two VAE folders; clip size from the transformer's
    training record, squash from the pointmap VAE's record (or, for VAEs taken from an exported model folder, from
    the stage-2 record, which then names it)."""
    check_output_dir(output, overwrite=True, inputs=(video_vae, pointmap_vae, transformer))
    record = Path(transformer) / TRAINING_RECORD
    if not record.exists():
        raise FileNotFoundError(f"{record}: missing; is {transformer} the model/ folder of a training run?")
    run = json.loads(record.read_text())
    vae_record = Path(pointmap_vae) / TRAINING_RECORD
    squash = json.loads(vae_record.read_text())["squash"] if vae_record.exists() else run.get("squash")
    if squash is None:
        raise ValueError(f"{vae_record}: missing, and {record} does not name squash; train stage 2 with --squash or "
                         "--no-squash")
    return export_model_folder(
        output, build_video_vae(video_vae), build_video_vae(pointmap_vae),
        JointLatentTransformer.from_pretrained(transformer), run["num_frames"], run["height"], run["width"],
        squash, sampler_steps, dtype,
    )


def load_model_folder(path: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    """``(video_vae, pointmap_vae, transformer, config)`` from a folder written by :func:`export_model_folder`,
    in eval mode on ``device`` / ``dtype``."""
    path = Path(path)
    missing = [p for p in (MODEL_CONFIG, *(f"{name}/config.json" for name in PARTS)) if not (path / p).is_file()]
    if missing:
        raise ValueError(f"{path}: not a sora3r model folder (missing {', '.join(missing)})")
    config = json.loads((path / MODEL_CONFIG).read_text())
    video_vae = AutoencoderKLCogVideoX.from_pretrained(path / "video_vae", torch_dtype=dtype)
    pointmap_vae = AutoencoderKLCogVideoX.from_pretrained(path / "pointmap_vae", torch_dtype=dtype)
    transformer = JointLatentTransformer.from_pretrained(path / "transformer", torch_dtype=dtype)
    models = [m.to(device).eval() for m in (video_vae, pointmap_vae, transformer)]
    return (*models, config)


def sample_pointmap_latent(transformer: JointLatentTransformer, video_latent: torch.Tensor,
                           num_steps: int = DEFAULT_NUM_STEPS, generator: torch.Generator | None = None) -> torch.Tensor:
    """Scaled pointmap latent ``(B, C, t, h, w)`` for a scaled video latent, by Euler sampling (no host syncs)."""
    return euler_sample(transformer, video_latent.to(transformer.dtype), num_steps, generator)
