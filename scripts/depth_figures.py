"""Depth pictures for the README: input frames above the model's depth (and the ground truth where there is one).

    python scripts/depth_figures.py OUT_DIR [--model DIR] [--device cpu]

Writes ``OUT_DIR/depth_lady_running.png`` (the handheld lady-running clip, all its frames: windows are stitched) and
``OUT_DIR/depth_icl.png`` (the ICL-NUIM living room, all 211 frames, with its ground-truth depth). Reads the public
test data from ``../shared/data`` beside the repository (or ``$SORA3R_SHARED_DATA``). Each depth row uses one colour
scale for the whole sequence (`sora3r.viz.depth`: 2nd-98th percentile of the valid depths, near = bright), so a model
that predicts the same gradient for every frame shows it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

SHARED = Path(os.environ.get("SORA3R_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
COLUMNS = 6


def depth_rows(depths: list[np.ndarray], valids: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Colour every depth sequence ``(N, H, W)`` on its own fixed range (`sora3r.viz.depth`, the colours of
    ``depth.mp4`` and the demo)."""
    from sora3r.viz.depth import colorize_depth, depth_range

    rows = []
    for depth, valid in zip(depths, valids):
        near, far = depth_range(depth, valid)
        rows.append(list(colorize_depth(depth, near, far, valid)))
    return rows


def save_grid(path: Path, rows: list[list[np.ndarray]], labels: list[str], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sora3r.fs import atomic_output_path

    height, width = rows[0][0].shape[:2]
    figure, axes = plt.subplots(len(rows), len(rows[0]), figsize=(1.9 * len(rows[0]), 1.9 * len(rows) * height / width
                                                                   + 0.4), squeeze=False)
    for r, (row, label) in enumerate(zip(rows, labels)):
        for c, image in enumerate(row):
            axes[r, c].imshow(image)
            axes[r, c].set_xticks([]), axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    with atomic_output_path(path) as tmp:
        figure.savefig(tmp, dpi=110, format="png")
    plt.close(figure)


def pick(count: int) -> np.ndarray:
    return np.linspace(0, count - 1, COLUMNS).round().astype(int)


def lady_running(out: Path, pipeline) -> None:
    from sora3r.data.video import load_video

    _, height, width = pipeline.clip_shape
    clip = load_video(SHARED / "lady_running" / "lady-running.mp4", size=(height, width))
    rec = pipeline.reconstruct(clip.rgb, progress=True)
    frames = pick(rec.num_frames)
    rgb = [rec.rgb[i].numpy() for i in frames]
    (row,) = depth_rows([rec.depth[frames].numpy()], [rec.valid[frames].numpy()])
    save_grid(out / "depth_lady_running.png", [rgb, row], ["input", "sora3r depth"],
              f"lady-running, {rec.num_frames} frames, windows {rec.metadata.get('windows')} (model grid "
              f"{height}x{width})")


def icl_room(out: Path, pipeline) -> None:
    from sora3r.data.datasets import iter_sequences
    from sora3r.eval.depth import depth_on_gt_grid

    seq = next(iter(iter_sequences("icl-micro", SHARED / "icl_livingroom_micro", num_frames=211, stride=1)))
    rec = pipeline.reconstruct(seq.rgb, progress=True)
    depth = depth_on_gt_grid(rec.depth, seq.depth.shape[-2:], rec.metadata["crop_affine"])
    covered = torch.isfinite(depth) & (depth > 0)
    frames = pick(seq.num_frames)
    rows = [[seq.rgb[i].numpy() for i in frames]]
    rows += depth_rows([torch.nan_to_num(depth)[frames].numpy(), seq.depth[frames].numpy()],
                       [covered[frames].numpy(), (seq.depth > 0)[frames].numpy()])
    save_grid(out / "depth_icl.png", rows, ["input", "sora3r depth", "ground truth"],
              f"ICL-NUIM living room, all {seq.num_frames} frames (each row on its own depth range)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--model", default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    from sora3r.pipeline import Sora3RPipeline

    torch.manual_seed(0)
    pipeline = Sora3RPipeline.from_pretrained(args.model, device=args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    lady_running(args.out, pipeline)
    icl_room(args.out, pipeline)


if __name__ == "__main__":
    main()
