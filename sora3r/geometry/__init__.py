"""Geometry core: rigid / Sim(3) transforms, projection, the pointmap training target, camera recovery from
pointmaps, and depth alignment."""

from sora3r.geometry.align import DEPTH_ALIGN_MODES, align_depth
from sora3r.geometry.cameras import (CameraEstimate, first_camera_world, linear_cameras, recover_cameras,
                                     recover_cameras_streamed)
from sora3r.geometry.projection import image_centre, intrinsics_matrix, unproject_depth
from sora3r.geometry.target import PointmapTarget, normalize_scale, squash, unsquash
from sora3r.geometry.transforms import (
    apply_sim3,
    invert_rigid,
    pose_array,
    to_first_frame,
    transform_points,
    umeyama,
)

__all__ = [
    "DEPTH_ALIGN_MODES",
    "CameraEstimate",
    "PointmapTarget",
    "align_depth",
    "apply_sim3",
    "first_camera_world",
    "image_centre",
    "intrinsics_matrix",
    "invert_rigid",
    "linear_cameras",
    "normalize_scale",
    "pose_array",
    "recover_cameras",
    "recover_cameras_streamed",
    "squash",
    "to_first_frame",
    "transform_points",
    "umeyama",
    "unproject_depth",
    "unsquash",
]
