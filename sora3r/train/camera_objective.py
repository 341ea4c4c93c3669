"""A training loss on the camera motion that pointmaps imply, for stage 1 (pointmap VAE) and stage 2 (DiT)."""

from __future__ import annotations

import torch

from sora3r.geometry.projection import pixel_directions, ray_centres
from sora3r.geometry.target import PointmapTarget
from sora3r.types import ClipBatch

MIN_RAY_DISTANCE = 0.01  # floor of a point's distance to its camera in the camera loss's 1/distance^2 weights


def camera_motion_loss(decoded: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, rays: torch.Tensor,
                       point_target: PointmapTarget) -> torch.Tensor:
    """Mean distance between the camera centres implied by decoded and by target pointmaps.

    What camera recovery reads as a frame's position is where the frame's pixel rays converge on its points; a model
    whose frames are each close to the target can still place that convergence too near or too far, so that its
    cameras move too little or too much for the scene it draws (`sora3r.eval.quick.motion_scale`). Each frame's centre
    is the least-squares meeting point of its rays through its points (`sora3r.geometry.projection.ray_centres`)
    with the true ray directions, each valid pixel weighted by ``1 / distance^2`` to the true centre (angular
    residuals, so far points do not dominate); the target's centres are the true ones.

    Args:
        decoded, target: ``(B, 3, T, H, W)`` pointmaps in the target space of ``point_target`` (squashed or not).
        valid: ``bool (B, 1, T, H, W)`` pixels with a target point.
        rays: ``(B, T, 3, 3)`` ``R K^-1``: pixel ``[u, v, 1]`` to its ray direction in the frame-0 camera frame.
        point_target: how to read the pointmaps back into scale-free frame-0 points.
    Returns:
        Scalar float32: mean over clips and frames of ``|c_decoded - c_target|`` (normalised units: the clip's mean
        point distance is 1).
    """
    height, width = decoded.shape[-2:]
    to_points = lambda x: point_target.decode(x.float().permute(0, 2, 3, 4, 1)).flatten(2, 3)  # (B, T, N, 3)
    predicted, true = to_points(decoded), to_points(target)
    directions = pixel_directions(rays.float(), height, width).flatten(2, 3)
    weight = valid[:, 0].flatten(2).float()
    with torch.no_grad():
        centre = ray_centres(true, directions, weight)
        distance = torch.linalg.vector_norm(true - centre[..., None, :], dim=-1).clamp_min(MIN_RAY_DISTANCE)
        weight = weight / distance.square()
        centre = ray_centres(true, directions, weight)
    return torch.linalg.vector_norm(ray_centres(predicted, directions, weight) - centre, dim=-1).mean()


def frame_rays(batch: ClipBatch) -> torch.Tensor:
    """``float32 (B, T, 3, 3)`` ``R_t K^-1`` of each clip's frames, ``R_t`` the rotation of frame t in frame 0's camera
    frame (the frame of the pointmap target): pixel ``[u, v, 1]`` to its ray direction there.

    Raises:
        ValueError: the batch has no intrinsics ``K`` (the synthetic sources have them).
    """
    if batch.K is None:
        raise ValueError("camera_loss_weight: the training data has no intrinsics K (use a synthetic source)")
    c2w = batch.c2w.float()
    rotation = torch.linalg.inv_ex(c2w[:, :1, :3, :3]).inverse @ c2w[..., :3, :3]  # as to_first_frame's
    return rotation @ torch.linalg.inv(batch.K.float())[:, None]
