"""Training-set readers (PointOdyssey, TartanAir, Dynamic Replica) and clip sampling.

Each reader test writes a tiny dataset in the real on-disk format from a known scene (cameras inside a box room,
depth ray-cast analytically) and checks that the reader returns the known K, OpenCV c2w and depth, plus a
convention-sensitive geometric check: pixels of frame i lifted with the returned depth / K / c2w and projected into
frame j land where the known scene says.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from sora3r.data.clips import ClipDataset, sample_training_clip
from sora3r.data.datasets import dynamic_replica, pointodyssey, tartanair
from sora3r.geometry.projection import unproject_depth
from sora3r.types import VideoSequence

ROOM = np.array([4.0, 3.0, 5.0])  # the box room spans [-ROOM, ROOM] on each world axis


# ----------------------------------------------------------------------------------------------------- known scene
def random_cameras(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """``(T, 4, 4)`` OpenCV camera-to-world poses near the room's centre, looking in varied directions."""
    c2w = np.tile(np.eye(4), (num_frames, 1, 1))
    c2w[:, :3, :3] = Rotation.from_rotvec(rng.normal(scale=0.25, size=(num_frames, 3))).as_matrix()
    c2w[:, :3, 3] = rng.uniform(-0.6, 0.6, size=(num_frames, 3))
    return c2w


def render_box_depth(K: np.ndarray, c2w: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(T, H, W)`` z-depth of the box room's walls seen from each OpenCV camera (ray-box exit distance)."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    rays_cam = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(K).T  # z = 1, so exit distance = z-depth
    depth = []
    for pose in c2w:
        rays = rays_cam @ pose[:3, :3].T
        origin = pose[:3, 3]
        with np.errstate(divide="ignore"):
            exits = np.where(rays > 0, (ROOM - origin) / rays, (-ROOM - origin) / rays)
        depth.append(np.min(np.where(np.abs(rays) > 1e-12, exits, np.inf), axis=-1))
    return np.stack(depth).astype(np.float32)


def project(points: np.ndarray, K: np.ndarray, c2w: np.ndarray) -> np.ndarray:
    """Pixel coordinates ``(N, 2)`` of world points ``(N, 3)`` in an OpenCV camera."""
    cam = (points - c2w[:3, 3]) @ c2w[:3, :3]
    pix = cam @ K.T
    return pix[:, :2] / pix[:, 2:3]


def assert_reprojection(seq: VideoSequence, gt_K: np.ndarray, gt_c2w: np.ndarray, gt_depth: np.ndarray, tol_px: float):
    """Frame i pixels lifted with the returned geometry and projected into frame j vs. the known scene's answer."""
    K = seq.K.double().numpy()
    K = np.broadcast_to(K, (seq.num_frames, 3, 3))
    points = unproject_depth(seq.depth, seq.K, seq.c2w).double().numpy()
    height, width = gt_depth.shape[1:]
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    pixels = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3)
    for i, j in [(0, 1), (1, 2), (2, 0)]:
        gt_cam = (pixels @ np.linalg.inv(gt_K).T) * gt_depth[i].reshape(-1, 1)
        gt_world = gt_cam @ gt_c2w[i, :3, :3].T + gt_c2w[i, :3, 3]
        in_front_of_j = ((gt_world - gt_c2w[j, :3, 3]) @ gt_c2w[j, :3, 2]) > 0.5
        mask = seq.valid[i].numpy().reshape(-1)
        assert mask.mean() > 0.9
        mask &= in_front_of_j
        landed = project(points[i].reshape(-1, 3)[mask], K[j], seq.c2w[j].double().numpy())
        expected = project(gt_world[mask], gt_K, gt_c2w[j])
        error = np.abs(landed - expected).max()
        assert error < tol_px, f"frames {i}->{j}: reprojection off by {error:.4f} px"


def rebased(c2w: np.ndarray) -> np.ndarray:
    return np.linalg.inv(c2w[0]) @ c2w


# ---------------------------------------------------------------------------------------------------- PointOdyssey
def write_pointodyssey(root: Path, K: np.ndarray, c2w: np.ndarray, depth: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """``<root>/train/scene_a/{rgbs, depths, anno.npz}``; returns the depth the uint16 PNGs hold (metres)."""
    seq_dir = root / "train" / "scene_a"
    (seq_dir / "rgbs").mkdir(parents=True)
    (seq_dir / "depths").mkdir()
    num_frames, num_tracks = len(c2w), 16
    stored = np.round(depth / 1000.0 * 65535.0).astype(np.uint16)
    stored[:, 0, 0] = 65535  # saturated background
    stored[:, 0, 1] = 0  # no depth
    for t in range(num_frames):
        Image.fromarray(rgb[t]).save(seq_dir / "rgbs" / f"rgb_{t:05d}.jpg", quality=95)
        Image.fromarray(stored[t]).save(seq_dir / "depths" / f"depth_{t:05d}.png")
    trajs_3d = np.random.default_rng(1).uniform(-3, 3, size=(num_frames, num_tracks, 3)).astype(np.float32)
    np.savez(
        seq_dir / "anno.npz",
        trajs_2d=np.zeros((num_frames, num_tracks, 2), np.float32),
        trajs_3d=trajs_3d,
        valids=np.ones((num_frames, num_tracks), bool),
        visibs=np.ones((num_frames, num_tracks), bool),
        intrinsics=np.broadcast_to(K, (num_frames, 3, 3)).astype(np.float32),
        extrinsics=np.linalg.inv(c2w).astype(np.float32),  # world-to-camera
    )
    return stored.astype(np.float64) * 1000.0 / 65535.0


def test_pointodyssey_reader(tmp_path):
    rng = np.random.default_rng(0)
    height, width = 36, 64
    K = np.array([[40.0, 0, 31.0], [0, 42.0, 18.5], [0, 0, 1]])
    c2w = random_cameras(3, rng)
    depth = render_box_depth(K, c2w, height, width)
    rgb = np.clip(depth[..., None] * [60.0, 40.0, 20.0], 0, 255).astype(np.uint8)  # smooth, so JPEG keeps it
    stored_depth = write_pointodyssey(tmp_path, K, c2w, depth, rgb)

    seqs = list(pointodyssey.iter_pointodyssey(tmp_path, split="train"))
    assert [s.name for s in seqs] == ["train/scene_a"]
    seq = seqs[0]
    assert seq.rgb.shape == (3, height, width, 3) and seq.rgb.dtype == torch.uint8
    assert np.abs(seq.rgb.float().numpy() - rgb).mean() < 3  # JPEG
    np.testing.assert_allclose(seq.K.numpy(), np.broadcast_to(K, (3, 3, 3)), atol=1e-5)
    np.testing.assert_allclose(seq.c2w.numpy(), rebased(c2w), atol=1e-5)
    assert not seq.valid[:, 0, :2].any() and (seq.depth[:, 0, :2] == 0).all()
    inner = seq.valid.numpy()
    np.testing.assert_allclose(seq.depth.numpy()[inner], stored_depth[inner], rtol=1e-6)
    assert np.abs(seq.depth.numpy()[inner] - depth[inner]).max() <= 1000.0 / 65535.0  # the PNG's step
    assert_reprojection(seq, K, c2w, stored_depth, tol_px=0.01)
    assert len(list(pointodyssey.iter_pointodyssey(tmp_path, max_frames=2)))
    assert next(pointodyssey.iter_pointodyssey(tmp_path, max_frames=2)).num_frames == 2


def test_pointodyssey_missing_depth_names_file(tmp_path):
    rng = np.random.default_rng(0)
    K = np.array([[40.0, 0, 31.0], [0, 42.0, 18.5], [0, 0, 1]])
    c2w = random_cameras(3, rng)
    write_pointodyssey(tmp_path, K, c2w, render_box_depth(K, c2w, 8, 8), np.zeros((3, 8, 8, 3), np.uint8))
    (tmp_path / "train" / "scene_a" / "depths" / "depth_00001.png").unlink()
    with pytest.raises(FileNotFoundError, match="depth_00001.png"):
        next(pointodyssey.iter_pointodyssey(tmp_path))


# ------------------------------------------------------------------------------------------------------- TartanAir
def ned_pose_line(c2w_cv: np.ndarray) -> str:
    """A ``pose_left.txt`` line built from axis meanings: body x = camera forward, y = right, z = down, world
    coordinates renamed the same way (tartanair_tools ``ned2cam`` maps NED (x, y, z) to camera (y, z, x))."""
    forward, right, down = c2w_cv[:3, 2], c2w_cv[:3, 0], c2w_cv[:3, 1]
    to_ned = np.array([[0, 0, 1.0], [1.0, 0, 0], [0, 1.0, 0]])  # world_cv (x, y, z) -> NED (z, x, y)
    rotation = to_ned @ np.stack([forward, right, down], axis=1)
    position = to_ned @ c2w_cv[:3, 3]
    quat = Rotation.from_matrix(rotation).as_quat()  # x y z w
    return " ".join(f"{x:.10e}" for x in [*position, *quat])


def test_tartanair_reader(tmp_path):
    rng = np.random.default_rng(2)
    K = np.array([[320.0, 0, 320.0], [0, 320.0, 240.0], [0, 0, 1]])
    c2w = random_cameras(3, rng)
    depth = render_box_depth(K, c2w, 480, 640)
    depth[:, 5, 7] = 1e4  # "sky"
    traj = tmp_path / "abandonedfactory" / "abandonedfactory" / "Easy" / "P001"
    (traj / "image_left").mkdir(parents=True)
    (traj / "depth_left").mkdir()
    rgb = rng.integers(0, 256, size=(3, 480, 640, 3), dtype=np.uint8)
    for t in range(3):
        Image.fromarray(rgb[t]).save(traj / "image_left" / f"{t:06d}_left.png")
        np.save(traj / "depth_left" / f"{t:06d}_left_depth.npy", depth[t])
    (traj / "pose_left.txt").write_text("\n".join(ned_pose_line(p) for p in c2w) + "\n")

    seq = next(tartanair.iter_tartanair(tmp_path, max_depth=100.0))
    assert seq.name == "abandonedfactory/Easy/P001"
    assert torch.equal(seq.rgb, torch.from_numpy(rgb))
    np.testing.assert_allclose(seq.K.numpy(), K)
    np.testing.assert_allclose(seq.c2w.numpy(), rebased(c2w), atol=1e-5)
    assert not seq.valid[:, 5, 7].any()
    np.testing.assert_allclose(seq.depth.numpy()[seq.valid.numpy()], depth[seq.valid.numpy()])
    assert_reprojection(seq, K, c2w, depth, tol_px=0.01)
    assert list(tartanair.iter_tartanair(tmp_path, difficulty="Hard")) == []


def test_tartanair_bad_pose_line_names_file(tmp_path):
    traj = tmp_path / "env" / "Hard" / "P000"
    (traj / "image_left").mkdir(parents=True)
    Image.fromarray(np.zeros((480, 640, 3), np.uint8)).save(traj / "image_left" / "000000_left.png")
    (traj / "pose_left.txt").write_text("0 0 0 0 0 1\n")
    with pytest.raises(ValueError, match="pose_left.txt"):
        next(tartanair.iter_tartanair(tmp_path))


# ------------------------------------------------------------------------------------------------- Dynamic Replica
def pytorch3d_viewpoint(K: np.ndarray, c2w_cv: np.ndarray, height: int, width: int, fmt: str) -> dict:
    """A CO3D / Dynamic Replica ``viewpoint``: row-vector ``X_cam = X_world @ R + T``, camera x left / y up, NDC."""
    w2c = np.linalg.inv(c2w_cv)
    flip = np.diag([-1.0, -1.0, 1.0])  # OpenCV (right, down) -> PyTorch3D (left, up)
    R = (flip @ w2c[:3, :3]).T
    T = flip @ w2c[:3, 3]
    half = np.array([width, height]) / 2.0
    scale = half if fmt == "ndc_norm_image_bounds" else half.min()
    focal = np.array([K[0, 0], K[1, 1]]) / scale
    principal = (half - np.array([K[0, 2], K[1, 2]])) / scale
    return {"R": R.tolist(), "T": T.tolist(), "focal_length": focal.tolist(), "principal_point": principal.tolist(),
            "intrinsics_format": fmt}


@pytest.mark.parametrize("fmt", ["ndc_isotropic", "ndc_norm_image_bounds"])
def test_dynamic_replica_reader(tmp_path, fmt):
    rng = np.random.default_rng(3)
    height, width = 40, 56
    K = np.array([[45.0, 0, 27.0], [0, 44.0, 20.5], [0, 0, 1]])
    c2w = random_cameras(3, rng)
    depth = render_box_depth(K, c2w, height, width)
    rgb = rng.integers(0, 256, size=(3, height, width, 3), dtype=np.uint8)
    split_dir = tmp_path / "valid"
    entries = []
    for camera, offset in [("left", 0.0), ("right", 0.12)]:
        seq_name = "a1b2-3_obj_source"
        for t in reversed(range(3)):  # annotation order must not matter
            stem = f"{seq_name}/{camera}/{seq_name}_{camera}-{t:04d}"
            (split_dir / stem).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rgb[t]).save(split_dir / f"{stem}.png")
            half = (depth[t] + offset).astype(np.float16)
            half[2, 3] = np.inf
            Image.fromarray(half.view(np.uint16)).save(split_dir / f"{stem}.geometric.png")
            entries.append({
                "sequence_name": seq_name, "frame_number": t, "frame_timestamp": t / 30.0, "camera_name": camera,
                "image": {"path": f"{stem}.png", "size": [height, width]},
                "depth": {"path": f"{stem}.geometric.png", "scale_adjustment": 1.0, "mask_path": None},
                "mask": None, "meta": None,
                "viewpoint": pytorch3d_viewpoint(K, c2w[t], height, width, fmt),
            })
    with gzip.open(split_dir / "frame_annotations_valid.jgz", "wt", encoding="utf8") as f:
        json.dump(entries, f)

    seq = next(dynamic_replica.iter_dynamic_replica(tmp_path, split="valid"))
    assert seq.name == "valid/a1b2-3_obj_source"
    assert torch.equal(seq.rgb, torch.from_numpy(rgb))
    np.testing.assert_allclose(seq.timestamps.numpy(), np.arange(3) / 30.0)
    np.testing.assert_allclose(seq.K.numpy(), np.broadcast_to(K, (3, 3, 3)), atol=1e-4)
    np.testing.assert_allclose(seq.c2w.numpy(), rebased(c2w), atol=1e-5)
    assert not seq.valid[:, 2, 3].any()
    f16 = depth.astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(seq.depth.numpy()[seq.valid.numpy()], f16[seq.valid.numpy()])
    assert_reprojection(seq, K, c2w, f16, tol_px=0.01)


def test_dynamic_replica_missing_annotations(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match="frame_annotations_train.jgz"):
        next(dynamic_replica.iter_dynamic_replica(tmp_path))


# ---------------------------------------------------------------------------------------------------- clip sampling
def plane_sequence(num_frames: int, height: int, width: int, name: str = "plane", value: int = 0) -> VideoSequence:
    """Random cameras, constant depth 2.5 (so nearest-neighbour depth is exact at every continuous position)."""
    rng = np.random.default_rng(4)
    K = torch.tensor([[50.0, 0, 40.0], [0, 52.0, 29.0], [0, 0, 1]])
    rgb = torch.full((num_frames, height, width, 3), value, dtype=torch.uint8)
    depth = torch.full((num_frames, height, width), 2.5)
    return VideoSequence(name=name, rgb=rgb, K=K, c2w=torch.from_numpy(random_cameras(num_frames, rng)).float(),
                    depth=depth, valid=depth > 0, timestamps=torch.arange(num_frames, dtype=torch.float64))


def test_clip_shapes_and_stride():
    seq = plane_sequence(9, 60, 80)
    generator = torch.Generator().manual_seed(0)
    strides = set()
    for _ in range(20):
        clip = sample_training_clip(seq, 5, 24, 40, generator, max_stride=4)
        assert clip.rgb.shape == (5, 24, 40, 3) and clip.rgb.dtype == torch.uint8
        assert clip.depth.shape == (5, 24, 40) and clip.valid.dtype == torch.bool
        assert clip.points.shape == (5, 24, 40, 3) and clip.c2w.shape == (5, 4, 4)
        steps = torch.diff(clip.timestamps)
        assert (steps == steps[0]).all()
        strides.add(int(steps[0]))
        torch.testing.assert_close(clip.c2w[0], torch.eye(4), atol=1e-5, rtol=0)
    assert strides == {1, 2}  # 9 frames: 5 frames fit at stride <= 2 only
    with pytest.raises(ValueError, match="has 9 frames"):
        sample_training_clip(seq, 10, 24, 40, generator)


@pytest.mark.parametrize("random_crop", [True, False])
def test_clip_intrinsics_match_resized_pixels(random_crop):
    """Clip pixels lifted with the clip's depth / K / c2w land, in the source camera, where the resize+crop put them."""
    seq = plane_sequence(6, 45, 80)
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        clip = sample_training_clip(seq, 3, 32, 32, generator, random_crop=random_crop)
        start, stride = (int(x) for x in clip.name.split("@")[1].split(":"))
        scale = 32 / 45  # short side to fit
        new_w = round(80 * scale)
        v, u = np.mgrid[0:32, 0:32].astype(np.float64)
        for t in range(3):
            src = start + t * stride
            # world of the clip = first clip camera; back into the source world
            world = clip.points[t].double().numpy().reshape(-1, 3) @ seq.c2w[start, :3, :3].double().numpy().T
            world += seq.c2w[start, :3, 3].double().numpy()
            landed = project(world, seq.K.double().numpy(), seq.c2w[src].double().numpy())
            left = (landed[:, 0] + 0.5) * (new_w / 80) - 0.5 - u.reshape(-1)
            top = (landed[:, 1] + 0.5) * (32 / 45) - 0.5 - v.reshape(-1)
            assert np.ptp(left) < 1e-4 and np.ptp(top) < 1e-4  # one integer crop offset for every pixel
            assert abs(left[0] - round(left[0])) < 1e-4 and abs(top[0]) < 1e-4
            if not random_crop:
                assert round(left[0]) == (new_w - 32) // 2


def test_clip_depth_is_nearest_neighbour():
    seq = plane_sequence(3, 50, 70)
    blocks = torch.from_numpy(np.random.default_rng(5).integers(0, 2, size=(3, 5, 7))).float()
    seq.depth = blocks.repeat_interleave(10, 1).repeat_interleave(10, 2) * 4.0 + 1.0  # 1 m or 5 m
    seq.valid = seq.depth > 0
    seq.valid[:, :10] = False
    clip = sample_training_clip(seq, 3, 20, 20, torch.Generator().manual_seed(2), max_stride=1)
    values = set(torch.unique(clip.depth).tolist())
    assert values <= {0.0, 1.0, 5.0} and {1.0, 5.0} <= values
    assert ((clip.depth == 0) == ~clip.valid).all()
    torch.testing.assert_close(clip.points, unproject_depth(clip.depth, clip.K, clip.c2w))


def test_clip_depth_takes_the_nearest_source_pixel():
    """Depth encoding each source pixel's (row, col): every clip pixel holds the source pixel nearest to where the
    clip's K says it comes from (source = K_src K_clip^-1 [u', v', 1], same camera)."""
    seq = plane_sequence(2, 45, 80)
    rows, cols = torch.meshgrid(torch.arange(45.0), torch.arange(80.0), indexing="ij")
    seq.depth = (1.0 + cols + 100.0 * rows).expand(2, 45, 80).clone()
    seq.valid = seq.depth > 0
    generator = torch.Generator().manual_seed(6)
    for size in [(16, 24), (30, 30), (45, 80)]:
        clip = sample_training_clip(seq, 2, *size, generator)
        v, u = torch.meshgrid(torch.arange(size[0], dtype=torch.float64), torch.arange(size[1], dtype=torch.float64),
                              indexing="ij")
        to_source = seq.K.double() @ torch.linalg.inv(clip.K.double())
        source = torch.stack([u, v, torch.ones_like(u)], -1) @ to_source.T
        got_row = torch.div(clip.depth[0].double() - 1.0, 100.0, rounding_mode="floor")
        got_col = clip.depth[0].double() - 1.0 - 100.0 * got_row
        assert (got_col - source[..., 0]).abs().max() <= 0.5 + 1e-6
        assert (got_row - source[..., 1]).abs().max() <= 0.5 + 1e-6


def test_clip_dataset_mixes_sources_by_weight():
    sources = {
        "dark": lambda shard=(0, 1): iter([plane_sequence(5, 30, 40, "dark", value=10)][shard[0]::shard[1]]),
        "bright": lambda shard=(0, 1): iter([plane_sequence(7, 30, 40, "bright", value=200)][shard[0]::shard[1]]),
    }
    only_dark = ClipDataset(sources, num_frames=5, height=16, width=16, weights={"dark": 1.0, "bright": 0.0})
    items = [item for item, _ in zip(only_dark, range(6))]
    assert all(int(item["rgb"][0, 0, 0, 0]) == 10 for item in items)
    item = items[0]
    assert set(item) == {"rgb", "depth", "points", "c2w", "K", "valid"}
    assert item["rgb"].shape == (5, 16, 16, 3) and item["K"].shape == (3, 3) and item["c2w"].shape == (5, 4, 4)

    mixed = ClipDataset(sources, num_frames=5, height=16, width=16, clips_per_sequence=1, seed=3)
    batch = next(iter(torch.utils.data.DataLoader(mixed, batch_size=16)))
    assert batch["rgb"].shape == (16, 5, 16, 16, 3)
    assert set(batch["rgb"][:, 0, 0, 0, 0].tolist()) == {10, 200}
    with pytest.raises(ValueError, match="weights"):
        ClipDataset(sources, num_frames=5, height=16, width=16, weights={"dark": 1.0})
