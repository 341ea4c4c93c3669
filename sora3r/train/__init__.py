"""Training: stage 0 (video VAE), stage 1 (pointmap VAE), stage 2 (joint-latent DiT) and the model export.

`TrainCommand` is ``sora3r train {video-vae, pointmap-vae, dit, export}`` (`sora3r.cli` makes its options from the
config dataclasses); it runs unchanged under ``accelerate launch -m sora3r.cli train ...`` and ``torchrun``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Literal, Union

import torch
import tyro

from sora3r.diffusion.sampler import DEFAULT_NUM_STEPS
from sora3r.options import Count, check_fields, check_model_folder
from sora3r.train.assemble import export_from_runs
from sora3r.train.dit import DiTConfig, train_dit
from sora3r.train.pointmap_vae import PointmapVAEConfig, train_pointmap_vae
from sora3r.train.video_vae import VideoVAEConfig, train_video_vae


@dataclass
class ExportConfig:
    """Assemble the pipeline's model folder from the model/ folders of the three stages."""

    output: Annotated[str, tyro.conf.arg(aliases=("-o",))]  # the model folder to write (an earlier sora3r model folder there is replaced)
    video_vae: str  # stage-0 model/ folder
    pointmap_vae: str  # stage-1 model/ folder
    transformer: tuple[str, ...]  # stage-2 model/ folder; several (of one architecture): their weights averaged
    sampler_steps: Count = DEFAULT_NUM_STEPS  # default sampling steps of the exported model
    dtype: Literal["bfloat16", "float32"] = "bfloat16"  # weight precision of the exported model

    def __post_init__(self):
        check_fields(self)

    def check_inputs(self) -> None:
        """Raise ``FileNotFoundError`` naming the first stage folder that is missing."""
        for name in ("video_vae", "pointmap_vae"):
            check_model_folder(name, getattr(self, name))
        for folder in self.transformer:
            check_model_folder("transformer", folder)


def _export(config: ExportConfig) -> dict:
    config.check_inputs()
    return export_from_runs(config.output, config.video_vae, config.pointmap_vae, config.transformer,
                            config.sampler_steps, getattr(torch, config.dtype))


# name -> (config class, what runs it); the command line's `sora3r train NAME` and its options come from here.
STAGES = {
    "video-vae": (VideoVAEConfig, train_video_vae),
    "pointmap-vae": (PointmapVAEConfig, train_pointmap_vae),
    "dit": (DiTConfig, train_dit),
    "export": (ExportConfig, _export),
}
StageConfig = Union[tuple(Annotated[config, tyro.conf.subcommand(name)] for name, (config, _) in STAGES.items())]


@dataclass
class TrainCommand:
    """Train a stage of the model or export the model folder (docs/training.md); resumable, one or many GPUs."""

    stage: StageConfig

    def run(self) -> int:
        """Run the chosen stage; prints its summary as JSON."""
        run = next(run for config, run in STAGES.values() if type(self.stage) is config)
        print(json.dumps(run(self.stage)))
        return 0


__all__ = ["DiTConfig", "ExportConfig", "PointmapVAEConfig", "STAGES", "TrainCommand", "VideoVAEConfig",
           "export_from_runs", "train_dit", "train_pointmap_vae", "train_video_vae"]
