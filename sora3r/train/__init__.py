"""Training: stage 0 (video VAE), stage 1 (pointmap VAE), stage 2 (joint-latent DiT) and the model export.

``main(argv)`` is the ``sora3r train`` command; it runs unchanged under ``accelerate launch``.
"""

from __future__ import annotations

import argparse
import json

import torch

from sora3r.train.assemble import export_from_runs
from sora3r.train.config import add_config_arguments, config_from_args
from sora3r.train.dit import DiTConfig, train_dit
from sora3r.train.pointmap_vae import PointmapVAEConfig, train_pointmap_vae
from sora3r.train.video_vae import VideoVAEConfig, train_video_vae

STAGES = {
    "video-vae": (VideoVAEConfig, train_video_vae, "stage 0: video VAE on RGB clips"),
    "pointmap-vae": (PointmapVAEConfig, train_pointmap_vae, "stage 1: pointmap VAE from the video VAE"),
    "dit": (DiTConfig, train_dit, "stage 2: joint-latent diffusion transformer"),
}

__all__ = ["DiTConfig", "PointmapVAEConfig", "VideoVAEConfig", "export_from_runs", "main", "train_dit",
           "train_pointmap_vae", "train_video_vae"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sora3r train", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (config_cls, _, help_text) in STAGES.items():
        add_config_arguments(commands.add_parser(name, help=help_text), config_cls)
    export = commands.add_parser("export", help="assemble the pipeline's model folder from three runs")
    export.add_argument("--output", required=True)
    export.add_argument("--video-vae", required=True, help="stage-0 model/ folder")
    export.add_argument("--pointmap-vae", required=True, help="stage-1 model/ folder")
    export.add_argument("--transformer", required=True, help="stage-2 model/ folder")
    export.add_argument("--sampler-steps", type=int, default=4)
    export.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
    return parser


def main(argv: list[str]) -> int:
    """``sora3r train {video-vae,pointmap-vae,dit,export} ...``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "export":
        result = export_from_runs(args.output, args.video_vae, args.pointmap_vae, args.transformer,
                                  args.sampler_steps, getattr(torch, args.dtype))
    else:
        config_cls, run, _ = STAGES[args.command]
        result = run(config_from_args(config_cls, args))
    print(json.dumps(result))
    return 0
