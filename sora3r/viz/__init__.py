"""Visualization: trajectory plots (`plot_trajectories`) and the viser 4D viewer (`serve`)."""

from sora3r.viz.plots import plot_trajectories
from sora3r.viz.viewer import serve

__all__ = ["plot_trajectories", "serve"]
