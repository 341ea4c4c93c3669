"""Static plots of camera trajectories (matplotlib, Agg backend, no global pyplot state)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sora3r.fs import atomic_output_path

__all__ = ["plot_trajectories"]


def _camera_centres(c2w: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    c2w = c2w.detach().cpu().numpy() if isinstance(c2w, torch.Tensor) else np.asarray(c2w)
    if c2w.ndim != 3 or c2w.shape[1:] != (4, 4):
        raise ValueError(f"{name} must have shape (T, 4, 4), got {tuple(c2w.shape)}")
    if not np.isfinite(c2w).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return c2w[:, :3, 3]


def plot_trajectories(
    path_png: str | os.PathLike,
    est_c2w: torch.Tensor | np.ndarray,
    gt_c2w: torch.Tensor | np.ndarray | None = None,
    title: str = "",
) -> Path:
    """Save a PNG with a top-down (x-z) and a side (z vs. up = -y) view of the camera centres.

    Poses are camera-to-world ``(T, 4, 4)`` in OpenCV world axes (y down), so "up" in the side view is
    -y. ``gt_c2w`` is drawn as given: align the estimate to it first (e.g. Sim(3)) if needed.
    """
    curves = [("estimate", _camera_centres(est_c2w, "est_c2w"), "tab:blue")]
    if gt_c2w is not None:
        curves.insert(0, ("ground truth", _camera_centres(gt_c2w, "gt_c2w"), "tab:gray"))

    figure = Figure(figsize=(10, 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    top, side = figure.subplots(1, 2)
    for label, centres, colour in curves:
        x, up, z = centres[:, 0], -centres[:, 1], centres[:, 2]
        for axes, horizontal, vertical in ((top, x, z), (side, z, up)):
            axes.plot(horizontal, vertical, "-", color=colour, label=label, linewidth=1.5)
            axes.plot(horizontal[0], vertical[0], "o", color=colour, markersize=5)  # first frame
    top.set(xlabel="x", ylabel="z (forward)", title="top-down")
    side.set(xlabel="z (forward)", ylabel="-y (up)", title="side")
    for axes in (top, side):
        axes.set_aspect("equal", adjustable="datalim")
        axes.grid(True, alpha=0.3)
    top.legend(loc="best", fontsize="small")
    if title:
        figure.suptitle(title)
    with atomic_output_path(path_png) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return Path(path_png)
