"""Static plots of camera trajectories (matplotlib, Agg backend, no global pyplot state)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sora3r.fs import atomic_output_path

__all__ = ["plot_pose_alignment", "plot_trajectories"]

_ALIGNMENT_NAMES = {"sim3": "Sim(3)", "se3": "SE(3)"}


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
    est_label: str = "estimate",
) -> Path:
    """Save a PNG with a top-down (x-z) and a side (z vs. up = -y) view of the camera centres.

    Poses are camera-to-world ``(T, 4, 4)`` in OpenCV world axes (y down), so "up" in the side view is
    -y. ``gt_c2w`` is drawn as given: align the estimate to it first (`plot_pose_alignment` does) if needed.
    """
    curves = [(est_label, _camera_centres(est_c2w, "est_c2w"), "tab:blue")]
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

    gt = _camera_centres(gt_c2w, "gt_c2w")  # validates the shape
    gt_poses = gt_c2w.detach().cpu().double().numpy() if isinstance(gt_c2w, torch.Tensor) else np.asarray(gt_c2w)
    if align == "sim3" and centres_coincide(gt.astype(np.float64)):
        est = est_c2w.detach().cpu().double().numpy() if isinstance(est_c2w, torch.Tensor) else np.asarray(est_c2w)
        estimate = gt_poses[0] @ np.linalg.inv(est[0]) @ est
        label = "estimate, first camera on ground truth's (no Sim(3): ground-truth centres coincide)"
    elif align == "none":
        estimate, label = est_c2w, "estimate (unaligned)"
    else:
        estimate = aligned_c2w(est_c2w, gt_c2w, align)
        label = f"estimate, {_ALIGNMENT_NAMES[align]}-aligned to ground truth (as for ATE)"
    return plot_trajectories(path_png, estimate, gt_poses, title=title, est_label=label)
