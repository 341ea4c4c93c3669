"""Evaluation under the MonST3R protocol: pose metrics (evo), video-depth metrics, methods, benchmark runner."""
