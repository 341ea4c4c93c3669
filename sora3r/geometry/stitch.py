"""Stitching the windows of a long video: place each window's pointmaps in the first window's world by a robust
Sim(3) fit on all the frames it shares with the windows already placed, then blend the shared frames. Before that,
the pipeline samples each window conditioned on those shared frames (`shared_in_window_frame` gives them in the frame
the model predicts a window in), so that the two windows agree on them in the first place.

Why robust and relative: the model's pointmaps of two windows disagree most at depth discontinuities, on moving
objects and far away (the squashed target compresses far points, so their absolute error is large). A plain
least-squares fit on the shared frames is pulled by those points; here each correspondence's residual is measured
relative to the point's distance from the window's first camera (the origin of the window's own world), and IRLS with a
Cauchy weight (scale from the median residual) suppresses outliers.
"""

from __future__ import annotations

import torch

from sora3r.geometry.cameras import recover_cameras
from sora3r.geometry.target import PointmapTarget
from sora3r.geometry.transforms import apply_sim3, umeyama

# Share of a window that consecutive windows share by default: 11 of the bundled model's 17 frames. Measured with the
# bundle of 2026-12-02 against 5 (README, docs/recipe_study.md fourteenth session): on the ICL room over three sampling
# seeds mean ATE 0.226 -> 0.204, Abs Rel 0.130 -> 0.124; on the 257-frame synthetic walk of bench_stitching.py the
# largest boundary jump 3.7x -> 2.2x the median in-window step; for 2-2.5x the windows and the time.
DEFAULT_OVERLAP_FRACTION = 2 / 3
CAUCHY_MEDIAN_FACTOR = 2.0  # Cauchy width = this times the median relative residual (robust to ~50 % outliers)
OUTLIER_WIDTHS = 3.0  # the final scale uses the points within this many Cauchy widths
MIN_DISTANCE = 1e-3  # floor of a point's distance to its window's origin (a point at the camera centre)


def robust_sim3(source: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None,
                iterations: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Similarity ``target ~ s R source + t`` robust to outliers and not dominated by far points.

    Each correspondence counts by its residual relative to ``|source|`` (the source points' distance from their own
    origin, i.e. their window's first camera): weights ``w / |source|^2`` in a weighted Umeyama fit, re-weighted
    ``iterations`` times by a Cauchy function of the relative residual. The final scale is Horn's symmetric one on
    the points within `OUTLIER_WIDTHS` Cauchy widths (see `_symmetric_scale`).

    Args:
        source: ``(N, 3)`` points of the window being placed, in its own world (frame-0 camera at the origin).
        target: ``(N, 3)`` the same pixels' points already placed (the first window's world).
        weights: ``(N,)`` non-negative prior weights (e.g. validity or confidence), or ``None``.
        iterations: IRLS re-weightings after the first fit.
    Returns:
        ``(s, R, t)``: scalar, ``(3, 3)``, ``(3,)`` in ``source``'s dtype.
    Raises:
        ValueError: shapes differ, or fewer than 3 points carry weight.
    """
    if source.shape != target.shape or source.ndim != 2 or source.shape[-1] != 3:
        raise ValueError(f"robust_sim3: need source and target (N, 3), got {tuple(source.shape)} and "
                         f"{tuple(target.shape)}")
    prior = torch.ones_like(source[:, 0]) if weights is None else weights.to(source.dtype)
    prior = torch.where(torch.isfinite(source).all(-1) & torch.isfinite(target).all(-1), prior, 0.0)
    if int((prior > 0).sum()) < 3:
        raise ValueError("robust_sim3: fewer than 3 points with weight; cannot fit a similarity")
    source, target = torch.nan_to_num(source), torch.nan_to_num(target)
    distance = source.norm(dim=-1).clamp_min(MIN_DISTANCE)
    base = prior / distance.square()
    weight = base
    for _ in range(iterations + 1):
        scale, rotation, translation = umeyama(source, target, weights=weight)
        residual = (apply_sim3(scale, rotation, translation, source) - target).norm(dim=-1) / (scale * distance)
        width = CAUCHY_MEDIAN_FACTOR * residual[prior > 0].median().clamp_min(1e-9)
        weight = base / (1.0 + (residual / width).square())
    inliers = base * (residual < OUTLIER_WIDTHS * width)  # a variance ratio needs outliers out, not down-weighted
    return _symmetric_scale(source, target, inliers, rotation)


def _symmetric_scale(source: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                     rotation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scale and translation for a fixed rotation by Horn's symmetric formula, ``s = sqrt(sum w |t - t_mean|^2 /
    sum w |s - s_mean|^2)`` (Horn 1987, "Closed-form solution of absolute orientation using unit quaternions",
    section 2.D).

    Why not Umeyama's ``s``: with noise in both point sets (two windows' predictions), the least-squares scale is biased
    low by about the noise variance over the point spread, the same way at every window, so the scale of a long video
    decays window after window. The symmetric formula gives the inverse scale for the swapped sets and has no such
    bias when both windows are equally noisy."""
    w = weight / weight.sum()
    source_mean, target_mean = w @ source, w @ target
    source_var = (w * (source - source_mean).square().sum(-1)).sum()
    target_var = (w * (target - target_mean).square().sum(-1)).sum()
    scale = (target_var / source_var.clamp_min(1e-30)).sqrt()
    return scale, rotation, target_mean - scale * rotation @ source_mean


def shared_in_window_frame(placed: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The placed pointmaps of the frames a window shares with the windows before it, re-expressed as the model
    predicts a window: in the first shared frame's camera (the window's world), divided by their mean distance.

    The shared frames' cameras come from the placed points themselves (`recover_cameras`, weighted by ``weights``).

    Args:
        placed: ``float (S, H, W, 3)`` pointmaps of the S shared frames in the first window's world.
        weights: ``(S, H, W)`` per-pixel confidence for the camera fit, or ``None``.
    Returns:
        ``float (S, H, W, 3)`` scale-free points, frame 0's camera at the origin.
    Raises:
        ValueError: as `recover_cameras` (e.g. no valid points).
    """
    cameras = recover_cameras(placed, weights=weights)
    return PointmapTarget(squash=False).encode(placed, cameras.c2w.to(placed.dtype), None)[0]


def blend_shared(placed: torch.Tensor, incoming: torch.Tensor) -> torch.Tensor:
    """Cross-fade ``(K, H, W, 3)`` pointmaps of K shared frames from the windows already placed to the incoming
    (already aligned) window: frame ``k`` takes weight ``(k + 1) / (K + 1)`` from ``incoming``, so neither window's
    last/first frame starts with a jump."""
    if placed.shape != incoming.shape:
        raise ValueError(f"blend_shared: shapes differ, {tuple(placed.shape)} vs {tuple(incoming.shape)}")
    count = placed.shape[0]
    alpha = torch.arange(1, count + 1, dtype=placed.dtype, device=placed.device) / (count + 1)
    return torch.lerp(placed, incoming, alpha.reshape(-1, 1, 1, 1))


def default_overlap(window: int) -> int:
    """Frames consecutive windows of a ``window``-frame model share by default: `DEFAULT_OVERLAP_FRACTION` of the
    window, rounded, in ``[1, window - 1]`` (11 for 17 frames, 6 for 9, 33 for 49)."""
    return max(1, min(window - 1, round(window * DEFAULT_OVERLAP_FRACTION)))


def window_starts(num_frames: int, window: int, overlap: int) -> list[int]:
    """First frame of each ``window``-frame window covering ``num_frames`` frames, consecutive windows sharing at least
    ``overlap`` frames (the last window is moved back to end at the last frame, sharing more).

    Raises:
        ValueError: fewer frames than one window, or ``overlap`` not in ``[1, window - 1]``.
    """
    if num_frames < window:
        raise ValueError(f"the video has {num_frames} frame{'s' if num_frames != 1 else ''}; the model needs at "
                         f"least {window}")
    if not 1 <= overlap < window:
        raise ValueError(f"window overlap must be in [1, {window - 1}] frames, got {overlap}")
    starts = list(range(0, num_frames - window + 1, window - overlap))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return starts
