"""Round trips of every export format through an independent reader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from evo.tools import file_interface
from scipy.spatial.transform import Rotation

from sora3r.export import (
    export_all,
    read_npz,
    write_colmap_text,
    write_glb,
    write_npz,
    write_ply,
    write_tum,
)
from sora3r.types import Reconstruction

T, H, W = 3, 12, 16
K = torch.tensor([[20.0, 0.0, 7.5], [0.0, 22.0, 5.5], [0.0, 0.0, 1.0]])


def make_reconstruction(seed: int = 0) -> Reconstruction:
    """Unproject a random depth with known K and poses; frame 0 is the world frame."""
    gen = torch.Generator().manual_seed(seed)
    depth = 1.0 + 2.0 * torch.rand(T, H, W, generator=gen)
    c2w = torch.eye(4).repeat(T, 1, 1)
    rotations = Rotation.from_rotvec(np.random.default_rng(seed).normal(scale=0.3, size=(T - 1, 3)))
    c2w[1:, :3, :3] = torch.from_numpy(rotations.as_matrix()).float()
    c2w[1:, :3, 3] = torch.randn(T - 1, 3, generator=gen)
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    pixels = torch.stack([u, v, torch.ones_like(u)], dim=-1)  # (H, W, 3)
    cam = depth[..., None] * (pixels @ torch.linalg.inv(K).T)  # (T, H, W, 3)
    points = torch.einsum("tij,thwj->thwi", c2w[:, :3, :3], cam) + c2w[:, None, None, :3, 3]
    valid = torch.rand(T, H, W, generator=gen) > 0.2
    points[~valid] = float("nan")  # invalid pixels may hold anything; they must never be exported
    return Reconstruction(
        points=points,
        depth=depth,
        c2w=c2w,
        K=K.clone(),
        rgb=torch.randint(0, 256, (T, H, W, 3), dtype=torch.uint8, generator=gen),
        confidence=torch.rand(T, H, W, generator=gen),
        valid=valid,
        timestamps=1305031102.175304 + torch.arange(T, dtype=torch.float64) / 30,  # capture times, seconds
        metadata={"method": "test", "scale": "relative", "steps": 4},
    )


def test_ply_reloads_with_same_points_and_colours(tmp_path):
    rec = make_reconstruction()
    path = write_ply(tmp_path / "sub" / "cloud.ply", rec)
    cloud = trimesh.load(path)
    assert isinstance(cloud, trimesh.PointCloud)
    np.testing.assert_allclose(cloud.vertices, rec.points[rec.valid].numpy(), atol=1e-6)
    np.testing.assert_array_equal(cloud.colors[:, :3], rec.rgb[rec.valid].numpy())
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["cloud.ply"]  # no temp file left


def test_ply_stride_and_confidence_filter(tmp_path):
    rec = make_reconstruction()
    cloud = trimesh.load(write_ply(tmp_path / "c.ply", rec, stride=2, min_confidence=0.5))
    keep = torch.zeros(T, H, W, dtype=torch.bool)
    keep[:, ::2, ::2] = True
    keep &= rec.valid & (rec.confidence >= 0.5)
    np.testing.assert_allclose(cloud.vertices, rec.points[keep].numpy(), atol=1e-6)


def test_glb_holds_points_and_camera_frusta(tmp_path):
    rec = make_reconstruction()
    scene = trimesh.load(write_glb(tmp_path / "scene.glb", rec), force="scene")
    points = scene.geometry["points"]
    np.testing.assert_allclose(points.vertices, rec.points[rec.valid].numpy(), atol=1e-6)
    np.testing.assert_array_equal(points.colors[:, :3], rec.rgb[rec.valid].numpy())
    cameras = scene.geometry["cameras"]
    # Every camera centre is a frustum apex.
    centres = rec.c2w[:, :3, 3].numpy()
    distance = np.linalg.norm(cameras.vertices[None] - centres[:, None], axis=-1).min(axis=1)
    assert distance.max() < 1e-5
    # Vertices stay in OpenCV world coordinates; the node flips y/z for glTF viewers.
    transform, _ = scene.graph[scene.graph.geometry_nodes["points"][0]]
    np.testing.assert_allclose(transform, np.diag([1.0, -1.0, -1.0, 1.0]))


def test_tum_reloads_with_evo_to_same_poses(tmp_path):
    rec = make_reconstruction()
    stamps = torch.tensor([0.0, 0.0333, 0.0667], dtype=torch.float64)
    path = write_tum(tmp_path / "traj.txt", rec.c2w, stamps)
    traj = file_interface.read_tum_trajectory_file(str(path))
    np.testing.assert_allclose(traj.timestamps, stamps.numpy(), atol=1e-9)
    np.testing.assert_allclose(np.stack(traj.poses_se3), rec.c2w.double().numpy(), atol=1e-6)


def _parse_colmap_text(folder):
    """Minimal reader of the COLMAP text format (independent of the writer)."""
    lines = lambda name: [l for l in (folder / name).read_text().splitlines() if not l.startswith("#")]
    (camera,) = lines("cameras.txt")
    _, model, w, h, fx, fy, cx, cy = camera.split()
    images = {}
    image_lines = lines("images.txt")
    for header, points2d in zip(image_lines[0::2], image_lines[1::2]):
        image_id, qw, qx, qy, qz, tx, ty, tz, camera_id, name = header.split()
        w2c = np.eye(4)
        w2c[:3, :3] = Rotation.from_quat([float(qx), float(qy), float(qz), float(qw)]).as_matrix()
        w2c[:3, 3] = [float(tx), float(ty), float(tz)]
        values = points2d.split()
        xy = np.array([[float(values[i]), float(values[i + 1])] for i in range(0, len(values), 3)])
        ids = [int(values[i]) for i in range(2, len(values), 3)]
        images[int(image_id)] = dict(w2c=w2c, name=name, xy=xy, ids=ids)
    points = {}
    for line in lines("points3D.txt"):
        values = line.split()
        track = [(int(values[i]), int(values[i + 1])) for i in range(8, len(values), 2)]
        points[int(values[0])] = dict(
            xyz=np.array(values[1:4], float), rgb=np.array(values[4:7], int), error=float(values[7]), track=track
        )
    intrinsics = (model, int(w), int(h), float(fx), float(fy), float(cx), float(cy))
    return intrinsics, images, points


def test_colmap_text_reloads_to_same_cameras_and_points(tmp_path):
    rec = make_reconstruction()
    folder = write_colmap_text(tmp_path / "colmap", rec, stride=2)
    (model, w, h, fx, fy, cx, cy), images, points = _parse_colmap_text(folder)
    assert (model, w, h) == ("PINHOLE", W, H)
    # COLMAP pixel centres sit at +0.5 of OpenCV ones.
    np.testing.assert_allclose([fx, fy, cx, cy], [20.0, 22.0, 8.0, 6.0])
    assert sorted(images) == [1, 2, 3]
    for i, image in images.items():
        np.testing.assert_allclose(np.linalg.inv(image["w2c"]), rec.c2w[i - 1].double().numpy(), atol=1e-6)
        assert image["name"] == f"{i - 1:05d}.png"
        assert (folder / "images" / image["name"]).is_file()

    keep = torch.zeros(T, H, W, dtype=torch.bool)
    keep[:, ::2, ::2] = True
    keep &= rec.valid
    assert len(points) == int(keep.sum())
    np.testing.assert_allclose(np.stack([p["xyz"] for p in points.values()]), rec.points[keep].numpy(), atol=1e-6)
    np.testing.assert_array_equal(np.stack([p["rgb"] for p in points.values()]), rec.rgb[keep].numpy())
    for point_id, point in points.items():
        ((image_id, idx),) = point["track"]
        image = images[image_id]
        assert image["ids"][idx] == point_id
        # The 2D observation is where the point projects (exact unprojection => ~0 error).
        u, v = image["xy"][idx] - 0.5
        assert rec.valid[image_id - 1, int(v), int(u)]
        assert point["error"] < 1e-3


def test_npz_round_trips_exactly(tmp_path):
    rec = make_reconstruction()
    back = read_npz(write_npz(tmp_path / "rec.npz", rec))
    for name in ("points", "depth", "c2w", "K", "rgb", "confidence", "valid", "timestamps"):
        original, loaded = getattr(rec, name), getattr(back, name)
        assert loaded.dtype == original.dtype, name
        assert torch.equal(torch.nan_to_num(loaded), torch.nan_to_num(original)), name
    assert back.metadata == rec.metadata

    rec.confidence = None
    assert read_npz(write_npz(tmp_path / "rec.npz", rec)).confidence is None


def test_export_all_writes_every_format(tmp_path):
    written = export_all(tmp_path / "out", make_reconstruction())
    assert sorted(written) == ["colmap", "glb", "npz", "ply", "tum"]
    for path in written.values():
        assert path.exists()
    assert not [p for p in (tmp_path / "out").rglob("*") if ".tmp" in p.name]
    # The TUM file carries the reconstruction's timestamps (the video's or the frames' times), to the microsecond.
    stamps = np.loadtxt(written["tum"])[:, 0]
    np.testing.assert_allclose(stamps, make_reconstruction().timestamps.numpy(), rtol=0, atol=1e-6)
    bad = make_reconstruction()
    bad.timestamps = bad.timestamps[:2]
    with pytest.raises(ValueError, match="timestamps must have shape"):
        write_npz(tmp_path / "bad.npz", bad)
    with pytest.raises(ValueError, match="unknown export format"):
        export_all(tmp_path / "out", make_reconstruction(), formats=("obj",))


def test_bad_inputs_raise_clear_errors(tmp_path):
    rec = make_reconstruction()
    rec.c2w[1, 0, 3] = float("nan")
    with pytest.raises(ValueError, match="c2w contains NaN"):
        write_tum(tmp_path / "t.txt", rec.c2w)
    with pytest.raises(ValueError, match="c2w contains NaN"):
        write_ply(tmp_path / "p.ply", rec)

    rec = make_reconstruction()
    rec.valid[:] = True  # now NaN points would be exported
    with pytest.raises(ValueError, match="NaN or infinite"):
        write_glb(tmp_path / "p.glb", rec)

    rec = make_reconstruction()
    rec.depth = rec.depth[:, :-1]
    with pytest.raises(ValueError, match="depth must have shape"):
        write_npz(tmp_path / "r.npz", rec)
    assert not list(tmp_path.iterdir())  # nothing half-written

    with pytest.raises(FileNotFoundError, match="missing.npz"):
        read_npz(tmp_path / "missing.npz")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="broken.npz"):
        read_npz(tmp_path / "broken.npz")
