"""What the app shows besides the exports: a colourised depth video next to the input and a confidence-map figure.

Matplotlib (Agg, no pyplot state) and `sora3r.data.video.write_video`; no Gradio here, so these are plain functions.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sora3r.data.video import write_video

DEPTH_COLORMAP = "turbo"  # near = red, far = blue (on inverse depth)
CONFIDENCE_COLORMAP = "viridis"


def colourise_depth(depth: torch.Tensor, valid: torch.Tensor | None = None,
                    percentiles: tuple[float, float] = (2.0, 98.0)) -> np.ndarray:
    """Depth maps as colour pictures with one colour scale for the whole clip.

    Args:
        depth: ``float (T, H, W)`` z-depth (any unit).
        valid: ``bool (T, H, W)`` pixels to colour (default: finite, positive depth); the others are black.
        percentiles: inverse depth at these percentiles of the valid pixels maps to the ends of the colour map,
            so a few far or near outliers do not flatten the picture.
    Returns:
        ``uint8 (T, H, W, 3)``: `DEPTH_COLORMAP` of inverse depth, near red, far blue.
    """
    depth = depth.detach().cpu().double().numpy()
    good = np.isfinite(depth) & (depth > 0)
    if valid is not None:
        good &= valid.detach().cpu().numpy()
    inverse = np.zeros_like(depth)
    inverse[good] = 1.0 / depth[good]
    if good.any():
        low, high = np.percentile(inverse[good], percentiles)
    else:
        low, high = 0.0, 1.0
    scaled = np.clip((inverse - low) / max(high - low, 1e-12), 0.0, 1.0)
    colours = matplotlib.colormaps[DEPTH_COLORMAP](scaled)[..., :3]
    colours[~good] = 0.0
    return np.round(colours * 255).astype(np.uint8)


def write_depth_video(path: str | Path, rgb: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor | None,
                      fps: float, zoom: int = 4) -> Path:
    """Write an H.264 mp4 of the input frames (left) next to their colourised depth (right, `colourise_depth`).

    Args:
        rgb: ``uint8 (T, H, W, 3)`` frames the depth belongs to; depth ``float (T, H, W)``; valid ``bool (T, H, W)``.
        zoom: each pixel becomes ``zoom x zoom`` pixels (nearest), so a 64x96 model output is not blurred by the
            browser's scaling.
    """
    frames = np.concatenate([rgb.detach().cpu().numpy(), colourise_depth(depth, valid)], axis=2)
    frames = frames.repeat(zoom, axis=1).repeat(zoom, axis=2)
    return write_video(path, frames, fps=fps)


def write_confidence_figure(path: str | Path, confidence: torch.Tensor, num_shown: int = 4) -> Path:
    """Save a PNG of the per-pixel confidence ``float (T, H, W)`` in [0, 1] of ``num_shown`` evenly spaced frames
    (`CONFIDENCE_COLORMAP`, one shared colour bar)."""
    values = confidence.detach().cpu().float().numpy()
    shown = np.unique(np.linspace(0, len(values) - 1, min(num_shown, len(values))).round().astype(int))
    figure = Figure(figsize=(2.6 * len(shown) + 1.0, 2.4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = np.atleast_1d(figure.subplots(1, len(shown)))
    for ax, index in zip(axes, shown):
        image = ax.imshow(values[index], cmap=CONFIDENCE_COLORMAP, vmin=0.0, vmax=1.0)
        ax.set_title(f"frame {index}", fontsize="small")
        ax.set_axis_off()
    figure.colorbar(image, ax=list(axes), shrink=0.9, label="confidence")
    figure.savefig(path, format="png", dpi=100)
    return Path(path)
