"""Depth as colours: one near/far range per video, inverse depth through a perceptual matplotlib colormap, and the
demo's depth picture (input | prediction | ground truth).

Colours encode inverse depth (disparity), near bright and far dark, the way MiDaS / Depth Anything / DepthCrafter
show depth; the range is fixed for the whole video (`depth_range`), so a colour means the same depth in every frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sora3r.fs import atomic_output_path

__all__ = ["DEPTH_COLORMAP", "colorize_depth", "depth_range", "plot_depth_comparison"]

DEPTH_COLORMAP = "inferno"  # perceptually uniform (matplotlib): dark = far, bright = near
RANGE_PERCENTILES = (2.0, 98.0)  # near / far = these percentiles of the valid depth of all frames


def _valid_depth(depth: torch.Tensor | np.ndarray, valid: torch.Tensor | np.ndarray | None) -> np.ndarray:
    """``bool`` mask of pixels with finite positive depth (and ``valid``, when given)."""
    depth = np.asarray(depth.cpu() if isinstance(depth, torch.Tensor) else depth)
    keep = np.isfinite(depth) & (depth > 0)
    if valid is not None:
        keep &= np.asarray(valid.cpu() if isinstance(valid, torch.Tensor) else valid, dtype=bool)
    return keep


def depth_range(depth: torch.Tensor | np.ndarray, valid: torch.Tensor | np.ndarray | None = None
                ) -> tuple[float, float]:
    """``(near, far)`` of a depth video ``(T, H, W)``: the 2nd and 98th percentiles of its valid depth over all
    frames (finite, > 0, and ``valid`` where given), so a few stray pixels do not wash out the colours.

    Raises:
        ValueError: no pixel has a valid depth.
    """
    keep = _valid_depth(depth, valid)
    if not keep.any():
        raise ValueError("depth has no valid pixel (finite and positive)")
    values = np.asarray(depth.cpu() if isinstance(depth, torch.Tensor) else depth)[keep]
    near, far = np.percentile(values, RANGE_PERCENTILES)
    return float(near), float(max(far, near * (1 + 1e-6)))


def colorize_depth(depth: torch.Tensor | np.ndarray, near: float, far: float,
                   valid: torch.Tensor | np.ndarray | None = None) -> np.ndarray:
    """Colour a depth map or video ``(..., H, W)`` -> ``uint8 (..., H, W, 3)``.

    Inverse depth is mapped linearly from ``1 / far`` (darkest) to ``1 / near`` (brightest) of `DEPTH_COLORMAP`;
    depth outside ``[near, far]`` takes the end colours; pixels without a valid depth (not finite, <= 0, or not
    ``valid``) are black.

    Raises:
        ValueError: not ``0 < near < far``.
    """
    if not 0 < near < far:
        raise ValueError(f"need 0 < near < far, got near {near}, far {far}")
    keep = _valid_depth(depth, valid)
    depth = np.asarray(depth.cpu() if isinstance(depth, torch.Tensor) else depth, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        level = (1.0 / depth - 1.0 / far) / (1.0 / near - 1.0 / far)
    level = np.clip(np.where(keep, level, 0.0), 0.0, 1.0)
    colours = colormaps[DEPTH_COLORMAP](level, bytes=True)[..., :3]
    colours[~keep] = 0
    return colours


def plot_depth_comparison(path_png: str | os.PathLike, rgb: torch.Tensor, prediction: torch.Tensor,
                          ground_truth: torch.Tensor | None = None, valid: torch.Tensor | None = None,
                          num_frames: int = 4, title: str = "") -> Path:
    """Save a PNG with a row of input frames, one of predicted depth and, when given, one of ground-truth depth, for
    ``num_frames`` frames spread over the clip.

    The depth rows share one range (`depth_range` of the ground truth, or of the prediction without it) and colours
    (`colorize_depth`), for the whole picture, so equal colours are equal depths: pass a prediction already aligned to
    the ground truth (e.g. `sora3r.geometry.align_depth`).

    Args:
        rgb: ``uint8 (T, H, W, 3)``; prediction, ground_truth: ``(T, H, W)`` depth; valid: ``bool (T, H, W)``, the
            pixels with ground truth (with it) or the prediction's valid pixels (without it); others are black.
    """
    frames = np.unique(np.linspace(0, rgb.shape[0] - 1, min(num_frames, rgb.shape[0])).round().astype(int))
    picked = None if valid is None else valid[frames]
    near, far = depth_range(prediction if ground_truth is None else ground_truth, valid)
    rows = {"input": rgb.cpu().numpy()[frames]}
    if ground_truth is None:
        rows["depth"] = colorize_depth(prediction[frames], near, far, picked)
    else:
        rows["prediction"] = colorize_depth(prediction[frames], near, far)
        rows["ground truth"] = colorize_depth(ground_truth[frames], near, far, picked)
    panel_w = 2.4  # inches per frame; panels keep the frames' aspect
    panel_h = panel_w * rgb.shape[1] / rgb.shape[2]
    figure = Figure(figsize=(panel_w * len(frames) + 0.4, (panel_h + 0.1) * len(rows) + 0.8), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(rows), len(frames), squeeze=False)
    for row, (label, images) in enumerate(rows.items()):
        for column, frame in enumerate(frames):
            axis = axes[row, column]
            axis.imshow(images[column])
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(f"frame {frame}")
            if column == 0:
                axis.set_ylabel(label)
    figure.suptitle(f"{title}\ndepth {near:.3g} (bright) .. {far:.3g} (dark), coloured by inverse depth "
                    f"({DEPTH_COLORMAP})".strip())
    path_png = Path(path_png)
    with atomic_output_path(path_png) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return path_png
