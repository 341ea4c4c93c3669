"""Static plots of camera trajectories (matplotlib, Agg backend, no global pyplot state)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sora3r.fs import atomic_output_path
from sora3r.geometry.transforms import pose_array

__all__ = ["plot_pose_alignment", "plot_trajectories"]

_ALIGNMENT_NAMES = {"sim3": "Sim(3)", "se3": "SE(3)"}


def plot_trajectories(
    path_png: str | os.PathLike,
    est_c2w: torch.Tensor | np.ndarray,
    gt_c2w: torch.Tensor | np.ndarray | None = None,
    title: str = "",
    est_label: str = "estimate",
) -> Path:
    """Save a PNG with a top-down (x-z) and a side (z vs. up = -y) view of the camera centres.

    Poses are camera-to-world ``(T, 4, 4)`` in OpenCV world axes (y down), so "up" in the side view is
    -y. ``gt_c2w`` is drawn as given: align the estimate to it first (`plot_pose_alignment` does) if needed.
    """
    curves = [(est_label, pose_array(est_c2w, "est_c2w")[:, :3, 3], "tab:blue")]
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
    figure.legend(*top.get_legend_handles_labels(), loc="outside lower center", ncols=len(curves), fontsize="small")
    if title:
        figure.suptitle(title)
    with atomic_output_path(path_png) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return Path(path_png)


def plot_pose_alignment(
    path_png: str | os.PathLike,
    est_c2w: torch.Tensor | np.ndarray,
    gt_c2w: torch.Tensor | np.ndarray,
    align: str = "sim3",
    title: str = "",
) -> Path:
    """Plot what the pose metrics measure: the estimate moved onto the ground truth by the alignment ATE uses
    (``align``: evo's Umeyama, `sora3r.eval.pose.aligned_c2w`), next to the ground truth, the legend naming it.

    Where that alignment is undefined (Sim(3) onto ground-truth camera centres at one point, a pure rotation), the
    estimate keeps its own scale and is moved rigidly so that its first camera is the ground truth's; the legend
    says so. Poses are camera-to-world ``(T, 4, 4)``.
    """
    from sora3r.eval.pose import aligned_c2w, centres_coincide

    gt_poses = pose_array(gt_c2w, "gt_c2w")
    if align == "sim3" and centres_coincide(gt_poses[:, :3, 3]):
        est = pose_array(est_c2w, "est_c2w")
        estimate = gt_poses[0] @ np.linalg.inv(est[0]) @ est
        label = "estimate, first camera on ground truth's (no Sim(3): ground-truth centres coincide)"
    elif align == "none":
        estimate, label = est_c2w, "estimate (unaligned)"
    else:
        estimate = aligned_c2w(est_c2w, gt_c2w, align)
        label = f"estimate, {_ALIGNMENT_NAMES[align]}-aligned to ground truth (as for ATE)"
    return plot_trajectories(path_png, estimate, gt_poses, title=title, est_label=label)
