"""What the app shows besides the exports: a colourised depth video next to the input and a confidence-map figure.

Depth takes the package's one colouring (`sora3r.viz.depth`); matplotlib (Agg, no pyplot state) draws the confidence
figure and `sora3r.data.video.write_video` writes the video; no Gradio here, so these are plain functions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sora3r.data.video import write_video
from sora3r.viz.depth import colorize_depth, depth_range

CONFIDENCE_COLORMAP = "viridis"


def depth_video_frames(rgb: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor | None, zoom: int = 4) -> np.ndarray:
    """The frames of the app's depth video: the input (left) next to its depth (right) coloured by
    `sora3r.viz.depth.colorize_depth` (inverse depth, ``inferno``: bright = near, dark = far, invalid black) over one
    near/far range for the whole clip (`sora3r.viz.depth.depth_range`), the colours of ``depth.mp4`` and the demo.

    Args:
        rgb: ``uint8 (T, H, W, 3)`` frames the depth belongs to; depth ``float (T, H, W)``; valid ``bool (T, H, W)``
            or ``None`` (finite, positive depth).
        zoom: each pixel becomes ``zoom x zoom`` pixels (nearest), so a 64x96 model output is not blurred by the
            browser's scaling.
    Returns:
        ``uint8 (T, zoom H, 2 zoom W, 3)``.
    Raises:
        ValueError: no pixel has a valid depth.
    """
    near, far = depth_range(depth, valid)
    frames = np.concatenate([rgb.detach().cpu().numpy(), colorize_depth(depth.detach().cpu(), near, far, valid)],
                            axis=2)
    return frames.repeat(zoom, axis=1).repeat(zoom, axis=2)


def write_depth_video(path: str | Path, rgb: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor | None,
                      fps: float, zoom: int = 4) -> Path:
    """Write an H.264 mp4 of `depth_video_frames` (input | colourised depth) at ``fps`` frames a second."""
    return write_video(path, depth_video_frames(rgb, depth, valid, zoom), fps=fps)


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
