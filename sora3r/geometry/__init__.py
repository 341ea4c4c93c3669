"""Geometry core: the pointmap training target, camera recovery from pointmaps, and alignment."""

from sora3r.geometry.align import align_depth, apply_sim3, umeyama
from sora3r.geometry.cameras import CameraEstimate, first_camera_world, linear_cameras, recover_cameras
from sora3r.geometry.target import (
    PointmapTarget,
    invert_rigid,
    normalize_scale,
    squash,
    to_first_frame,
    transform_points,
    unsquash,
)

__all__ = [
    "CameraEstimate",
    "PointmapTarget",
    "align_depth",
    "apply_sim3",
    "first_camera_world",
    "invert_rigid",
    "linear_cameras",
    "normalize_scale",
    "recover_cameras",
    "squash",
    "to_first_frame",
    "transform_points",
    "umeyama",
    "unsquash",
]
