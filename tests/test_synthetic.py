"""Tests of the synthetic 4D scene generator (small clips: the whole file runs in well under a minute)."""

import math
from dataclasses import asdict

import numpy as np
import pytest
import torch

from sora3r.data.synthetic import (
    ENVIRONMENTS, PATH_KINDS, SPLIT_SEEDS, SyntheticConfig, render_batch, render_clip, sample_scene, split_seed,
)
from synthetic_meshes import scene_meshes

SMALL = SyntheticConfig(num_frames=5, height=24, width=32)


@pytest.fixture(scope="module")
def clips():
    return asdict(render_batch([0, 1, 2, 3], SMALL))  # field name -> tensor


def test_shapes_dtypes_and_ranges(clips):
    B, T, H, W = 4, SMALL.num_frames, SMALL.height, SMALL.width
    expected = {"rgb": ((B, T, H, W, 3), torch.uint8), "depth": ((B, T, H, W), torch.float32),
                "points": ((B, T, H, W, 3), torch.float32), "c2w": ((B, T, 4, 4), torch.float32),
                "K": ((B, 3, 3), torch.float32), "valid": ((B, T, H, W), torch.bool),
                "dynamic": ((B, T, H, W), torch.bool)}
    assert set(clips) == set(expected)
    for key, (shape, dtype) in expected.items():
        assert clips[key].shape == shape and clips[key].dtype == dtype, key
    assert clips["valid"].all()
    assert torch.isfinite(clips["depth"]).all() and (clips["depth"] > 0.05).all()
    assert torch.isfinite(clips["points"]).all()
    K = clips["K"]
    assert torch.allclose(K[:, 0, 2], torch.full((B,), (W - 1) / 2))
    assert torch.allclose(K[:, 1, 2], torch.full((B,), (H - 1) / 2))
    assert torch.equal(K[:, 0, 0], K[:, 1, 1])
    R = clips["c2w"][..., :3, :3]
    assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3).expand_as(R), atol=1e-5)
    assert torch.allclose(torch.linalg.det(R), torch.ones(B, T), atol=1e-5)
    assert torch.equal(clips["c2w"][..., 3, :], torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(B, T, 4))
    assert clips["rgb"].float().std() > 20  # textured, not flat


def test_deterministic_and_independent_of_batch(clips):
    again = asdict(render_batch([2], SMALL))
    chunked = asdict(render_batch([3, 1], SyntheticConfig(num_frames=5, height=24, width=32, chunk_rays=1)))
    for key in clips:
        assert torch.equal(again[key][0], clips[key][2]), key
        assert torch.equal(chunked[key][0], clips[key][3]), key
        assert torch.equal(chunked[key][1], clips[key][1]), key
    assert not torch.equal(clips["rgb"][0], clips["rgb"][1])


def test_splits_are_disjoint_and_checked():
    names = sorted(SPLIT_SEEDS)
    assert names == ["test", "train", "val"]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ra, rb = SPLIT_SEEDS[a], SPLIT_SEEDS[b]
            assert ra.stop <= rb.start or rb.stop <= ra.start, (a, b)
    assert split_seed("test", 0) == 0 and split_seed("val", 5) == SPLIT_SEEDS["val"][5]
    assert split_seed("train", len(SPLIT_SEEDS["train"]) - 1) == SPLIT_SEEDS["train"][-1]
    with pytest.raises(ValueError, match="split"):
        split_seed("holdout", 0)
    with pytest.raises(ValueError, match="out of range"):
        split_seed("test", len(SPLIT_SEEDS["test"]))
    with pytest.raises(ValueError, match="out of range"):
        split_seed("val", -1)


def test_bad_config_and_frame_are_rejected():
    with pytest.raises(ValueError, match="fov_deg"):
        SyntheticConfig(fov_deg=(100.0, 40.0))
    with pytest.raises(ValueError, match="frame"):
        scene_meshes(0, SMALL, SMALL.num_frames)


def _pixel_rays(K: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Camera-frame rays ``(H, W, 3)`` with z = 1 through pixel centres at integer coordinates."""
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    pix = torch.stack([u, v, torch.ones_like(u)], dim=-1)
    return pix @ torch.linalg.inv(K.double()).T


def test_points_are_unprojected_depth(clips):
    for b in range(4):
        rays = _pixel_rays(clips["K"][b], SMALL.height, SMALL.width)
        c2w = clips["c2w"][b].double()
        cam = clips["depth"][b].double()[..., None] * rays
        world = torch.einsum("tij,thwj->thwi", c2w[:, :3, :3], cam) + c2w[:, None, None, :3, 3]
        err = (world - clips["points"][b].double()).norm(dim=-1) / clips["depth"][b].double()
        assert err.max() < 1e-5


def test_dynamic_pixels_exist_and_static_points_agree_across_frames():
    config = SyntheticConfig(num_frames=5, height=48, width=64)
    seeds = [0, 3, 4, 10]  # track, walk, pan, orbit
    out = asdict(render_batch(seeds, config))
    assert out["dynamic"].any(dim=(1, 2, 3)).all()
    assert (~out["dynamic"]).any(dim=(1, 2, 3)).all()
    for b in range(len(seeds)):
        K, c2w = out["K"][b].double(), out["c2w"][b].double()
        agree, total = 0, 0
        for t in range(config.num_frames - 1):
            # static points of frame t, projected into frame t + 1, land on static pixels that see (nearly)
            # the same world point: within a few pixel footprints (nearest-pixel rounding, grazing surfaces)
            pts = out["points"][b, t][~out["dynamic"][b, t]].double()
            w2c = torch.linalg.inv(c2w[t + 1])
            cam = pts @ w2c[:3, :3].T + w2c[:3, 3]
            uv = (cam / cam[:, 2:]) @ K.T
            u, v = uv[:, 0].round().long(), uv[:, 1].round().long()
            inside = (cam[:, 2] > 0) & (u >= 0) & (u < config.width) & (v >= 0) & (v < config.height)
            u, v, cam, pts = u[inside], v[inside], cam[inside], pts[inside]
            static = ~out["dynamic"][b, t + 1, v, u]
            gap = (out["points"][b, t + 1, v, u].double() - pts).norm(dim=-1) / (cam[:, 2] / K[0, 0])
            agree += int((static & (gap < 4.0)).sum())
            total += len(pts)
        assert total > 0.3 * (config.num_frames - 1) * (~out["dynamic"][b]).sum() / config.num_frames
        assert agree > 0.9 * total  # the rest: occlusions


def _trimesh_depth(seed: int, config: SyntheticConfig, frame: int, K: torch.Tensor, c2w: torch.Tensor):
    """z-depth ``(H, W)`` of the first hit of an embree/trimesh ray cast and whether that face is curved."""
    mesh = scene_meshes(seed, config, frame)
    rays = _pixel_rays(K, config.height, config.width).reshape(-1, 3) @ c2w[:3, :3].double().T
    origins = c2w[:3, 3].double().expand_as(rays).numpy()
    directions = (rays / rays.norm(dim=-1, keepdim=True)).numpy()
    locations, ray_index, face_index = mesh.ray.intersects_location(origins, directions, multiple_hits=False)
    depth = np.zeros(len(rays))
    curved = np.zeros(len(rays), dtype=bool)
    forward = c2w[:3, 2].double().numpy()
    depth[ray_index] = (locations - origins[ray_index]) @ forward
    curved[ray_index] = mesh.metadata["face_curved"][face_index]
    hit = np.zeros(len(rays), dtype=bool)
    hit[ray_index] = True
    shape = (config.height, config.width)
    return tuple(torch.from_numpy(a.reshape(shape)) for a in (depth, curved, hit))


def test_depth_matches_independent_mesh_ray_cast():
    import embreex  # noqa: F401  trimesh's fast ray caster (the pure-numpy fallback needs rtree); a test dependency
    config = SyntheticConfig(num_frames=3, height=48, width=64)
    seeds = [1, 0, 7]  # a room and two open scenes
    assert {sample_scene(s, config).environment for s in seeds} == {"room", "open"}
    out = asdict(render_batch(seeds, config))
    flat_errors, curved_errors = [], []
    for b, seed in enumerate(seeds):
        for frame in (0, config.num_frames - 1):
            ref, curved, hit = _trimesh_depth(seed, config, frame, out["K"][b], out["c2w"][b, frame])
            assert hit.float().mean() > 0.999
            rel = ((out["depth"][b, frame].double() - ref).abs() / ref)[hit]
            flat_errors.append(rel[~curved[hit]])
            curved_errors.append(rel[curved[hit]])
    flat, curved = torch.cat(flat_errors), torch.cat(curved_errors)
    assert flat.numel() > 5000 and curved.numel() > 500
    assert flat.median() < 1e-6  # measured 5e-8 (float32 ray casting vs embree)
    assert (flat < 1e-5).float().mean() > 0.98  # the rest: silhouettes of tessellated curved objects
    assert curved.median() < 2e-3  # measured 1.3e-4 (icosphere / 96-gon tessellation)


def test_variety_over_seeds():
    config = SyntheticConfig(num_frames=3, height=16, width=16)
    seeds = list(range(32))
    scenes = [sample_scene(s, config) for s in seeds]
    assert set(s.environment for s in scenes) == set(ENVIRONMENTS)
    assert len(set(s.path_kind for s in scenes)) >= 3 and set(s.path_kind for s in scenes) <= set(PATH_KINDS)
    assert any(s.shake for s in scenes) and not all(s.shake for s in scenes)
    kinds = set(k for s in scenes for k in s.object_kind)
    assert kinds == {"box", "sphere", "cylinder"}
    fov = torch.tensor([math.degrees(2 * math.atan(config.width / 2 / float(s.K[0, 0]))) for s in scenes])
    assert fov.min() < 55 and fov.max() > 85
    assert all(s.object_dynamic.any() and not s.object_dynamic.all() for s in scenes)
    depth = render_batch(seeds, config).depth
    far = depth.flatten(1).amax(dim=1)
    assert far.min() < 8.0 and far.max() > 50.0  # small rooms and open scenes up to ~100 m


def test_render_clip_sequence():
    config = SyntheticConfig(num_frames=5, height=16, width=24)
    clip = render_clip(12, config)
    batch = render_batch([12], config)
    assert clip.name == "synthetic_000012"
    assert clip.num_frames == 5 and clip.hw == (16, 24)
    assert torch.equal(clip.points, batch.points[0]) and torch.equal(clip.rgb, batch.rgb[0])
    assert clip.timestamps.dtype == torch.float64
    assert torch.allclose(clip.timestamps, torch.arange(5, dtype=torch.float64) / config.fps)
    assert clip.depth_max is None and clip.K.shape == (3, 3)
