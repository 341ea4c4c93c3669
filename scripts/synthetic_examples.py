"""A contact sheet of synthetic training clips: the default preset, the realistic preset before and after its
photometric augmentation, and the realistic clip's depth, for a few validation-split seeds.

Usage: python scripts/synthetic_examples.py [--output docs/synthetic_examples.png] [--first 3] [--clips 8]
[--height 128] [--width 192]    (validation seeds first .. first + clips - 1: rooms and open scenes)
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import matplotlib
import numpy as np
import torch
from PIL import Image, ImageDraw

from sora3r.data.synthetic import render_batch, split_seed, synthetic_config
from sora3r.fs import atomic_output_path

ROWS = ("default", "realistic, clean", "realistic, augmented", "realistic, depth")
_LABEL = 14  # pixels above each row for its title


def _depth_colours(depth: torch.Tensor) -> np.ndarray:
    """``(N, H, W)`` depth -> uint8 RGB, inverse depth through a perceptual colour map, per image."""
    inverse = 1.0 / depth.clamp(min=1e-3)
    low = inverse.flatten(1).quantile(0.02, dim=1)[:, None, None]
    high = inverse.flatten(1).quantile(0.98, dim=1)[:, None, None]
    scaled = ((inverse - low) / (high - low).clamp(min=1e-9)).clamp(0, 1).numpy()
    return (matplotlib.colormaps["magma"](scaled)[..., :3] * 255).astype(np.uint8)


def contact_sheet(seeds: list[int], height: int, width: int, frame: int = 8) -> Image.Image:
    """The sheet for ``seeds``: one column per clip (its frame ``frame`` of 17), one row per entry of `ROWS`."""
    default = synthetic_config("default", num_frames=17, height=height, width=width)
    realistic = synthetic_config("realistic", num_frames=17, height=height, width=width)
    clean = render_batch(seeds, dataclasses.replace(realistic, augment=False))
    tiles = [render_batch(seeds, default).rgb[:, frame].numpy(), clean.rgb[:, frame].numpy(),
             render_batch(seeds, realistic).rgb[:, frame].numpy(), _depth_colours(clean.depth[:, frame])]
    sheet = Image.new("RGB", (len(seeds) * width, len(ROWS) * (height + _LABEL)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (title, images) in enumerate(zip(ROWS, tiles)):
        top = row * (height + _LABEL)
        draw.text((4, top + 1), title, fill="black")
        for column, image in enumerate(images):
            sheet.paste(Image.fromarray(image), (column * width, top + _LABEL))
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("docs/synthetic_examples.png"))
    parser.add_argument("--first", type=int, default=3, help="first validation-split index")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=192)
    args = parser.parse_args()
    sheet = contact_sheet([split_seed("val", args.first + i) for i in range(args.clips)], args.height, args.width)
    with atomic_output_path(args.output) as path:
        sheet.save(path, format="PNG", optimize=True)
    print(f"wrote {args.output} ({sheet.width}x{sheet.height})")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
