"""Test helper: a sampled synthetic scene at one frame as a triangle mesh, so that an independent ray caster
(trimesh / embree) can check the analytic one."""

from __future__ import annotations

import numpy as np
import trimesh

from sora3r.data.synthetic.scene import SyntheticConfig, SyntheticScene, sample_scene

_SPHERE_SUBDIVISIONS = 4
_CYLINDER_SECTIONS = 96


def _unit_primitive(kind: str) -> trimesh.Trimesh:
    if kind == "box":
        return trimesh.creation.box(extents=(2.0, 2.0, 2.0))
    if kind == "sphere":
        return trimesh.creation.icosphere(subdivisions=_SPHERE_SUBDIVISIONS, radius=1.0)
    return trimesh.creation.cylinder(radius=1.0, height=2.0, sections=_CYLINDER_SECTIONS)


def scene_mesh_at(scene: SyntheticScene, frame: int) -> trimesh.Trimesh:
    """One world-frame mesh of ``scene`` at ``frame`` (environment, moving objects, static boxes).

    ``mesh.metadata["face_curved"]`` (bool per face) marks tessellated curved surfaces (spheres,
    cylinders, the backdrop dome), whose mesh departs from the analytic surface the renderer hits.
    """
    num_frames = scene.c2w.shape[0]
    if not 0 <= frame < num_frames:
        raise ValueError(f"frame {frame} out of range for a clip of {num_frames} frames")
    parts, curved = [], []
    if scene.environment == "room":
        hx, hy, height = scene.room.tolist()
        room = trimesh.creation.box(extents=(2 * hx, 2 * hy, height))
        room.apply_translation((0.0, 0.0, height / 2))
        room.invert()  # seen from inside
        parts.append(room)
        curved.append(False)
    else:
        radius = scene.dome_radius
        ground = trimesh.Trimesh(vertices=[[-radius, -radius, 0], [radius, -radius, 0], [radius, radius, 0],
                                           [-radius, radius, 0]], faces=[[0, 1, 2], [0, 2, 3]])
        dome = trimesh.creation.icosphere(subdivisions=_SPHERE_SUBDIVISIONS, radius=radius)
        dome.invert()
        parts += [ground, dome]
        curved += [False, True]
    for i, kind in enumerate(scene.object_kind):
        part = _unit_primitive(kind)
        transform = np.eye(4)
        transform[:3, :3] = scene.object_rotation[frame, i].numpy() * scene.object_scale[i].numpy()[None]
        transform[:3, 3] = scene.object_position[frame, i].numpy()
        part.apply_transform(transform)
        parts.append(part)
        curved.append(kind != "box")
    for lo, hi in zip(scene.box_lo[frame].numpy(), scene.box_hi[frame].numpy()):
        parts.append(trimesh.creation.box(bounds=np.stack([lo, hi])))
        curved.append(False)
    mesh = trimesh.util.concatenate(parts)
    mesh.metadata["face_curved"] = np.concatenate([np.full(len(p.faces), c) for p, c in zip(parts, curved)])
    return mesh


def scene_meshes(seed: int, config: SyntheticConfig, frame: int) -> trimesh.Trimesh:
    """The scene of ``seed`` at ``frame`` as one world-frame triangle mesh (see `scene_mesh_at`)."""
    return scene_mesh_at(sample_scene(seed, config), frame)
