"""Diffusers folders shaped like the pretrained CogVideoX ones, with random weights, for paper-scale training runs.

    python scripts/paper_folders.py OUT [--size paper|reduced] [--positional rotary|learned]
                                        [--dtype bfloat16|float32] [--device cpu|cuda] [--seed 0] [--overwrite]

Writes ``OUT/vae/`` (diffusers ``AutoencoderKLCogVideoX`` with CogVideoX's VAE config: 216 M parameters, 16 latent
channels, 8x spatial / 4x temporal) and ``OUT/transformer/`` (diffusers ``CogVideoXTransformer3DModel`` in the
CogVideoX-2B layout: 30 layers, 30 heads x 64, 4096-wide text input of 226 tokens, 16 latent channels in and out;
1.69 B parameters), each by ``save_pretrained`` in ``--dtype`` (the released CogVideoX weights are stored in half
precision), i.e. the ``vae/`` and ``transformer/`` sub-folders of a CogVideoX pipeline folder. Training reads them
exactly as it reads converted pretrained weights::

    sora3r train pointmap-vae --init-video-vae OUT/vae ...                   # stage 1 starts from the video VAE
    sora3r train dit --video-vae OUT/vae --pointmap-vae OUT/vae --squash \\
                     --init-transformer OUT/transformer ...                 # stage 2 widens the transformer

(``--pointmap-vae OUT/vae``: a pointmap VAE before stage 1 is a copy of the video VAE.) Widened to the joint input
(``JointLatentTransformer.from_video_transformer``) the transformer is the ``paper`` preset of
``sora3r.models.transformer``. ``--positional rotary`` (default) gives that preset's rotary position embeddings (the
CogVideoX-5B / 1.5 kind); ``learned`` gives the sinusoidal table CogVideoX-2B ships with. ``--size reduced`` keeps
every other setting but makes both models tiny, for tests on a CPU. ``--device cuda`` draws the random weights on
the GPU (seconds instead of a minute on a CPU). The text encoder, tokenizer and scheduler of a CogVideoX folder are
not written: training never reads them.

Exit status 2 with one line on stderr when OUT exists and is not an earlier output of this script (without
``--overwrite``: when it exists and is not empty).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel
from diffusers.utils import logging as diffusers_logging

from sora3r.fs import atomic_output_dir
from sora3r.models.transformer import TRANSFORMER_PRESETS
from sora3r.models.vae import vae_config

LATENT_CHANNELS = 16  # CogVideoX's VAE latent = the transformer's input and output channels
# CogVideoX-2B's released transformer config beyond the `paper` preset (its latent grid at 49 x 480 x 720 pixels).
COGVIDEOX_2B = dict(in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS, sample_frames=49, sample_height=60,
                    sample_width=90, patch_size=2)
# --size reduced: the same layouts, a few thousand times smaller.
REDUCED_TRANSFORMER = dict(num_layers=2, num_attention_heads=2, attention_head_dim=32, time_embed_dim=32,
                           text_embed_dim=32, max_text_seq_length=8)


def folder_configs(size: str = "paper", positional: str = "rotary") -> tuple[dict, dict]:
    """Constructor kwargs ``(vae, transformer)`` of ``AutoencoderKLCogVideoX`` and ``CogVideoXTransformer3DModel``.

    Args:
        size: "paper" (CogVideoX's VAE and the 1.69 B CogVideoX-2B transformer) or "reduced" (tiny, for tests).
        positional: "rotary" (the project's ``paper`` preset) or "learned" (CogVideoX-2B as released).

    Raises:
        ValueError: an unknown ``size`` or ``positional``.
    """
    if size not in ("paper", "reduced") or positional not in ("rotary", "learned"):
        raise ValueError(f"size must be paper|reduced and positional rotary|learned, got {size!r}, {positional!r}")
    vae = vae_config("paper" if size == "paper" else "tiny")
    transformer = {**TRANSFORMER_PRESETS["paper"], **COGVIDEOX_2B,
                   "use_rotary_positional_embeddings": positional == "rotary"}
    if size == "reduced":
        transformer.update(REDUCED_TRANSFORMER)
    return vae, transformer


def write_folders(out: Path, size: str, positional: str, dtype: torch.dtype, device: str, seed: int,
                  overwrite: bool = False) -> dict:
    """Write ``out/vae`` and ``out/transformer`` with random weights (see the module docstring); returns the
    parameter counts and seconds. ``out`` appears complete or not at all (``sora3r.fs.atomic_output_dir``).

    Raises:
        FileExistsError: ``out`` may not be written (see ``sora3r.fs.check_output_dir``).
    """
    started = time.monotonic()
    vae_kwargs, transformer_kwargs = folder_configs(size, positional)
    torch.manual_seed(seed)
    with atomic_output_dir(out, overwrite=overwrite, what=f"random CogVideoX-shaped folders ({size})") as staging:
        counts = {}
        for name, cls, kwargs in (("vae", AutoencoderKLCogVideoX, vae_kwargs),
                                  ("transformer", CogVideoXTransformer3DModel, transformer_kwargs)):
            with torch.device(device):
                model = cls(**kwargs)
            counts[name] = sum(p.numel() for p in model.parameters())
            model.to(dtype).save_pretrained(staging / name, safe_serialization=True)
            del model
    return {"parameters": counts, "seconds": round(time.monotonic() - started, 1)}


def _device(name: str) -> str:
    """An argparse type: a torch device this machine has."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"not a torch device: {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError("CUDA is not available on this machine")
    return name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write (vae/ and transformer/ inside)")
    parser.add_argument("--size", choices=("paper", "reduced"), default="paper")
    parser.add_argument("--positional", choices=("rotary", "learned"), default="rotary")
    parser.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16", help="weights as saved")
    parser.add_argument("--device", type=_device, default="cpu", help="where the random weights are drawn (cpu, cuda)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier output of this script")
    args = parser.parse_args(argv)
    diffusers_logging.set_verbosity_error()  # not its advice on casting with .to(): these weights are random
    try:
        summary = write_folders(args.out, args.size, args.positional, getattr(torch, args.dtype), args.device,
                                args.seed, args.overwrite)
    except FileExistsError as err:
        print(f"paper_folders.py: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
