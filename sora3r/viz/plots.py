"""Static plots of camera trajectories (matplotlib, Agg backend, no global pyplot state)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sora3r.data.video import atomic_output_path
from sora3r.geometry.transforms import pose_array

__all__ = ["plot_trajectories"]


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
    curves = [("estimate", pose_array(est_c2w, "est_c2w")[:, :3, 3], "tab:blue")]
    if gt_c2w is not None:
        curves.insert(0, ("ground truth", pose_array(gt_c2w, "gt_c2w")[:, :3, 3], "tab:gray"))

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
