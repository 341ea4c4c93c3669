"""Visualization: trajectory plots (`plot_trajectories`, `plot_pose_alignment`) and the viser 4D viewer (`serve`)."""

from sora3r.viz.plots import plot_pose_alignment, plot_trajectories
from sora3r.viz.viewer import serve

__all__ = ["plot_pose_alignment", "plot_trajectories", "serve"]
