"""Assemble the pipeline's model folder (`Sora3RPipeline.save_pretrained`) from the ``model/`` folders of three runs
(or of several stage-2 runs, their transformers' weights averaged).

The folder is written atomically, with safetensors shards under 15 MB (small enough to carry between machines) and
the weights cast to bf16 by default; `sora3r.pipeline` documents its layout.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.utils import logging as diffusers_logging

from sora3r.diffusion.sampler import DEFAULT_NUM_STEPS
from sora3r.fs import atomic_output_dir, check_output_dir
from sora3r.models.transformer import JointLatentTransformer
from sora3r.models.vae import build_vae
from sora3r.pipeline import Sora3RPipeline
from sora3r.train.loop import MAX_SHARD, TRAINING_RECORD


def save_model_folder(output: str | Path, pipeline: Sora3RPipeline, dtype: torch.dtype = torch.bfloat16) -> Path:
    """Write ``pipeline`` (cast to ``dtype``) to ``output`` with `save_pretrained`: atomically (a failed write leaves
    no folder), replacing an earlier sora3r output there (`sora3r.fs`), in shards under 15 MB."""
    # diffusers warns on every model's .to(dtype) that its modules to keep in float32 (none here: "[]") are cast.
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        pipeline.to(dtype=dtype)
    finally:
        diffusers_logging.set_verbosity(verbosity)
    with atomic_output_dir(output, overwrite=True, what="sora3r model") as staging:
        pipeline.save_pretrained(staging, max_shard_size=MAX_SHARD, safe_serialization=True)
    return Path(output)


def average_weights(models: Sequence[torch.nn.Module]) -> torch.nn.Module:
    """The first of ``models`` with every floating-point parameter and buffer replaced by its mean over all of them,
    computed in float32 and stored in the first model's dtypes (integer buffers stay the first model's): a uniform
    "model soup" (Wortsman et al. 2022, "Model soups: averaging weights of multiple fine-tuned models improves
    accuracy without increasing inference time"), which holds for models fine-tuned from one another or from one
    start, as consecutive training cycles of the bundle are.

    Raises:
        ValueError: no models, or models whose parameter names or shapes differ.
    """
    if not models:
        raise ValueError("average_weights: no models to average")
    states = [model.state_dict() for model in models]
    first = states[0]
    for index, state in enumerate(states[1:], start=1):
        if state.keys() != first.keys() or any(state[name].shape != first[name].shape for name in first):
            raise ValueError(f"average_weights: model {index} has other parameters than model 0 (another "
                             "architecture); only models of one architecture can be averaged")
    with torch.no_grad():
        for name, value in first.items():
            if value.is_floating_point():
                mean = sum(state[name].float() for state in states) / len(states)
                value.copy_(mean.to(value.dtype))
    return models[0]


def _folders(folder: str | Path | Sequence[str | Path]) -> list[str | Path]:
    """One folder or several, as a list."""
    return [folder] if isinstance(folder, (str, Path)) else list(folder)


def pipeline_from_runs(video_vae: str | Path, pointmap_vae: str | Path,
                       transformer: str | Path | Sequence[str | Path],
                       sampler_steps: int = DEFAULT_NUM_STEPS) -> Sora3RPipeline:
    """The pipeline of a stage-2 run's ``model/`` folder and its two VAE folders.

    ``transformer`` may name several folders of one transformer architecture (e.g. the ``model/`` folders of
    consecutive training cycles, or a run's and a model folder's ``transformer/``): their weights are averaged
    (`average_weights`). The clip shape comes from the first one's training record, squash from the pointmap VAE's
    record (or, for VAEs taken from an exported model folder, from the stage-2 record, which then names it). Sampling
    uses diffusers' ``FlowMatchEulerDiscreteScheduler`` with shift 1 (uniform flow times, as the models were trained).

    Raises:
        FileNotFoundError: a folder or the first transformer's training record is missing.
        ValueError: no record names the squash setting, or the transformers differ in architecture.
    """
    transformers = _folders(transformer)
    record = Path(transformers[0]) / TRAINING_RECORD
    if not record.exists():
        raise FileNotFoundError(f"{record}: missing; is {transformers[0]} the model/ folder of a training run?")
    run = json.loads(record.read_text())
    vae_record = Path(pointmap_vae) / TRAINING_RECORD
    squash = json.loads(vae_record.read_text())["squash"] if vae_record.exists() else run.get("squash")
    if squash is None:
        raise ValueError(f"{vae_record}: missing, and {record} does not name squash; train stage 2 with --squash or "
                         "--no-squash")
    return Sora3RPipeline(
        video_vae=build_vae(video_vae), pointmap_vae=build_vae(pointmap_vae),
        transformer=average_weights([JointLatentTransformer.from_pretrained(path) for path in transformers]),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0),
        num_frames=run["num_frames"], height=run["height"], width=run["width"], squash=squash,
        sampler_steps=sampler_steps,
    )


def export_from_runs(output: str | Path, video_vae: str | Path, pointmap_vae: str | Path,
                     transformer: str | Path | Sequence[str | Path], sampler_steps: int = DEFAULT_NUM_STEPS,
                     dtype: torch.dtype = torch.bfloat16) -> dict:
    """`sora3r train export`: :func:`pipeline_from_runs` written to ``output`` by :func:`save_model_folder`; returns
    the pipeline's settings (clip shape, squash, sampler steps).

    Raises:
        FileExistsError: ``output`` may not be replaced (`sora3r.fs.check_output_dir`: not an earlier sora3r output,
            or one of the run folders lies in it); checked before anything is loaded.
    """
    check_output_dir(output, overwrite=True, inputs=(video_vae, pointmap_vae, *_folders(transformer)))
    pipeline = pipeline_from_runs(video_vae, pointmap_vae, transformer, sampler_steps)
    save_model_folder(output, pipeline, dtype)
    return {key: pipeline.config[key] for key in ("num_frames", "height", "width", "squash", "sampler_steps")}
