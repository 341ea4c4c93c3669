"""Evaluation-set readers: fixtures written in each dataset's on-disk format, read back exactly."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from shared_data import ICL
from sora3r.data.datasets import DATASETS, iter_sequences, list_datasets
from sora3r.types import VideoSequence

H, W = 6, 8


# ---------------------------------------------------------------- known random scene
def random_poses(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 4, 4)`` camera-to-world poses far from the identity."""
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, :3, :3] = Rotation.from_rotvec(rng.normal(scale=0.5, size=(n, 3))).as_matrix()
    poses[:, :3, 3] = rng.normal(scale=2.0, size=(n, 3))
    return poses


def rebased(c2w: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # lost (inf) poses become NaN
        return np.linalg.inv(c2w[0]) @ c2w


def random_rgb(rng: np.random.Generator, n: int, h: int = H, w: int = W) -> np.ndarray:
    return rng.integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def write_depth_png(path: Path, metres: np.ndarray, units_per_metre: float) -> None:
    write_png(path, np.round(metres * units_per_metre).astype(np.uint16))


def assert_conventions(seq: VideoSequence, n: int) -> None:
    assert seq.rgb.dtype == torch.uint8 and seq.rgb.shape[0] == n and seq.rgb.shape[-1] == 3
    assert seq.depth.dtype == torch.float32 and seq.depth.shape == seq.rgb.shape[:3]
    assert seq.valid.dtype == torch.bool and torch.equal(seq.valid, seq.valid & (seq.depth > 0))
    assert seq.timestamps.dtype == torch.float64 and seq.timestamps.shape == (n,)
    if seq.c2w is not None:
        assert seq.c2w.dtype == torch.float32 and seq.c2w.shape == (n, 4, 4)
        torch.testing.assert_close(seq.c2w[0], torch.eye(4), atol=1e-5, rtol=0)


# ---------------------------------------------------------------- registry
def test_registry_lists_every_reader_and_rejects_unknown_names(tmp_path):
    expected = {"tum", "bonn", "sintel", "scannet", "kitti", "icl-micro", "synthetic"}
    expected |= {"pointodyssey", "tartanair", "dynamic_replica"}
    assert set(list_datasets()) == expected == set(DATASETS)
    with pytest.raises(ValueError, match="unknown dataset 'nope'.*icl-micro"):
        iter_sequences("nope", tmp_path)
    for name in ("tum", "bonn", "sintel", "scannet", "kitti", "icl-micro"):
        with pytest.raises(FileNotFoundError, match=str(tmp_path / "absent")):
            iter_sequences(name, tmp_path / "absent")


# ---------------------------------------------------------------- TUM / Bonn
def write_tum_folder(folder: Path, rng, num_rgb: int, t0: float, *, no_gt: set, no_depth: set):
    """A TUM-layout folder; returns (rgb times, rgb, depth metres, c2w) per rgb frame."""
    times = t0 + np.arange(num_rgb) / 30.0
    rgb, depth, c2w = random_rgb(rng, num_rgb), rng.uniform(0.5, 6.0, (num_rgb, H, W)), random_poses(rng, num_rgb)
    decoys = random_poses(rng, num_rgb)  # poses 13 ms away: the association must prefer the 4 ms ones
    rgb_lines, depth_lines, gt_lines = ["# color images", "# timestamp filename"], ["# depth maps"], ["# gt"]
    for i, t in enumerate(times):
        write_png(folder / "rgb" / f"{t:.6f}.png", rgb[i])
        rgb_lines.append(f"{t:.6f} rgb/{t:.6f}.png")
        if i not in no_depth:
            td = t + 0.009
            write_depth_png(folder / "depth" / f"{td:.6f}.png", depth[i], 5000.0)
            depth_lines.append(f"{td:.6f} depth/{td:.6f}.png")
        if i not in no_gt:
            # a decoy 13 ms later would be within 0.02 s of the next frame too: none before a gap
            offsets = ((0.004, c2w[i]), (0.017, decoys[i])) if i + 1 not in no_gt else ((0.004, c2w[i]),)
            for dt, pose in offsets:
                q = Rotation.from_matrix(pose[:3, :3]).as_quat()
                gt_lines.append(f"{t + dt:.4f} " + " ".join(f"{v:.9f}" for v in (*pose[:3, 3], *q)))
    for name, lines in (("rgb.txt", rgb_lines), ("depth.txt", depth_lines), ("groundtruth.txt", gt_lines)):
        (folder / name).write_text("\n".join(lines) + "\n")
    return times, rgb, depth, c2w


def test_tum_associates_then_subsamples_3_keeps_90(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "rgbd_dataset_freiburg3_walking_xyz"
    no_gt, no_depth = {0, 1, 2, 3, 100}, {13}
    times, rgb, depth, c2w = write_tum_folder(folder, rng, 290, 1341846313.55, no_gt=no_gt, no_depth=no_depth)
    (tmp_path / "rgbd_dataset_freiburg1_xyz").mkdir()  # not a protocol sequence: skipped while one is present
    seqs = list(iter_sequences("tum", tmp_path))
    assert [s.name for s in seqs] == [folder.name]
    seq = seqs[0]
    selected = np.array([i for i in range(290) if i not in no_gt])[::3][:90]
    assert_conventions(seq, 90)
    np.testing.assert_allclose(seq.timestamps.numpy(), times[selected], atol=1e-6, rtol=0)
    assert torch.equal(seq.rgb, torch.from_numpy(rgb[selected]))
    np.testing.assert_allclose(seq.c2w.numpy(), rebased(c2w[selected]), atol=2e-5)
    torch.testing.assert_close(seq.K, torch.tensor([[535.4, 0, 320.1], [0, 539.2, 247.6], [0, 0, 1]]))
    missing = int(np.flatnonzero(selected == 13)[0])
    assert not seq.valid[missing].any() and (seq.depth[missing] == 0).all()
    keep = np.arange(90) != missing
    np.testing.assert_allclose(seq.depth.numpy()[keep], depth[selected][keep], atol=0.5 / 5000 + 1e-6)
    assert seq.valid[keep].all() and seq.depth_max is None


def test_tum_reports_malformed_and_missing_files(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "seq"
    write_tum_folder(folder, rng, 5, 100.0, no_gt=set(), no_depth=set())
    good = (folder / "rgb.txt").read_text()
    lines = good.splitlines()
    lines[3] = "100.1 rgb/a.png extra"
    (folder / "rgb.txt").write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"rgb\.txt:4: expected 2 values"):
        next(iter_sequences("tum", tmp_path))
    (folder / "rgb.txt").write_text("abc rgb/a.png\n")
    with pytest.raises(ValueError, match=r"rgb\.txt:1: not a number"):
        next(iter_sequences("tum", folder))
    (folder / "rgb.txt").write_text(good)
    (folder / "groundtruth.txt").unlink()
    with pytest.raises(FileNotFoundError, match="groundtruth.txt"):
        next(iter_sequences("tum", folder))


def test_bonn_takes_frames_30_to_140_with_marker_to_camera_poses(tmp_path):
    rng = np.random.default_rng(2)
    folder = tmp_path / "rgbd_bonn_balloon2"
    times, rgb, depth, marker = write_tum_folder(folder, rng, 150, 1548266469.3, no_gt=set(), no_depth=set())
    with pytest.raises(FileNotFoundError, match="rgbd_bonn_crowd2"):
        iter_sequences("bonn", tmp_path)  # the 5 protocol sequences are required
    seq = next(iter_sequences("bonn", tmp_path, sequences=["balloon2"]))
    assert seq.name == "balloon2" and seq.depth_max == 70.0
    assert_conventions(seq, 110)
    np.testing.assert_allclose(seq.timestamps.numpy(), times[30:140], atol=1e-6, rtol=0)
    assert torch.equal(seq.rgb, torch.from_numpy(rgb[30:140]))
    np.testing.assert_allclose(seq.depth.numpy(), depth[30:140], atol=0.5 / 5000 + 1e-6)
    t_ros = np.array([[-1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1.0]])
    t_m = np.eye(4)
    t_m[:3, :3] = Rotation.from_matrix(
        [[1.0157, 0.1828, -0.2389], [0.0009, -0.8431, -0.6413], [-0.3009, 0.6147, -0.8085]]
    ).as_matrix()
    t_m[:3, 3] = [0.0113, -0.0098, 0.0111]
    camera = t_ros @ marker[30:140] @ t_ros @ t_m
    np.testing.assert_allclose(seq.c2w.numpy(), rebased(camera), atol=2e-5)
    torch.testing.assert_close(seq.K[0, 0], torch.tensor(542.822841))


# ---------------------------------------------------------------- Sintel
def write_tagged(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<f", 202021.25) + payload)


def write_sintel_sequence(root: Path, name: str, rng, n: int):
    K = np.array([[1120.0, 0, 511.5], [0, 1120.0, 217.5], [0, 0, 1]]) * rng.uniform(0.9, 1.1)
    K[2, 2] = 1.0
    c2w, rgb = random_poses(rng, n), random_rgb(rng, n)
    depth = rng.uniform(0.1, 100.0, (n, H, W)).astype(np.float32)
    for i in range(n):
        stem = f"frame_{i + 1:04d}"
        write_png(root / "training" / "final" / name / f"{stem}.png", rgb[i])
        write_tagged(root / "training" / "depth" / name / f"{stem}.dpt", struct.pack("<ii", W, H) + depth[i].tobytes())
        w2c = np.linalg.inv(c2w[i])[:3]
        cam = struct.pack("<9d", *K.ravel()) + struct.pack("<12d", *w2c.ravel())
        write_tagged(root / "training" / "camdata_left" / name / f"{stem}.cam", cam)
    return K, c2w, rgb, depth


def test_sintel_reads_dpt_cam_and_final_pass(tmp_path):
    rng = np.random.default_rng(3)
    K, c2w, rgb, depth = write_sintel_sequence(tmp_path, "alley_2", rng, 4)
    write_sintel_sequence(tmp_path, "bamboo_1", rng, 3)
    with pytest.raises(FileNotFoundError, match="ambush_4"):
        iter_sequences("sintel", tmp_path)  # "pose": all 14 sequences are required
    assert [s.name for s in iter_sequences("sintel", tmp_path, sequences="all")] == ["alley_2", "bamboo_1"]
    seq = next(iter_sequences("sintel", tmp_path, sequences=["alley_2"]))
    assert_conventions(seq, 4)
    assert seq.depth_max == 70.0 and seq.timestamps.tolist() == [1, 2, 3, 4]
    assert torch.equal(seq.rgb, torch.from_numpy(rgb))
    assert torch.equal(seq.depth, torch.from_numpy(depth))
    assert torch.equal(seq.valid, torch.from_numpy(depth < 70))
    torch.testing.assert_close(seq.K, torch.from_numpy(K).float())
    np.testing.assert_allclose(seq.c2w.numpy(), rebased(c2w), atol=2e-5)
    write_tagged(tmp_path / "training" / "depth" / "alley_2" / "frame_0002.dpt", struct.pack("<ii", W, H + 1))
    with pytest.raises(ValueError, match="frame_0002.dpt: header says 8x7"):
        next(iter_sequences("sintel", tmp_path, sequences=["alley_2"]))


# ---------------------------------------------------------------- ScanNet
def test_scannet_reads_monst3r_prepared_scene(tmp_path):
    rng = np.random.default_rng(4)
    scene = tmp_path / "scene0707_00"
    n, (dh, dw) = 90, (H, W)
    c2w, rgb, depth = random_poses(rng, n), random_rgb(rng, n, 3 * dh, 3 * dw), rng.uniform(0.3, 8.0, (n, dh, dw))
    c2w[7] = -np.inf  # ScanNet's marker for a lost frame
    for i in range(n):
        write_png(scene / "color_90" / f"frame_{i:04d}.jpg", rgb[i])
        write_depth_png(scene / "depth_90" / f"frame_{i:04d}.png", depth[i], 1000.0)
    (scene / "pose_90.txt").write_text("\n".join(" ".join(map(str, p.ravel())) for p in c2w) + "\n")
    K = np.array([[577.6, 0, 318.9, 0], [0, 578.7, 242.7, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    (scene / "intrinsic").mkdir()
    np.savetxt(scene / "intrinsic" / "intrinsic_depth.txt", K, fmt="%f")
    seq = next(iter_sequences("scannet", tmp_path))
    assert seq.name == "scene0707_00"
    assert_conventions(seq, n)
    assert seq.rgb.shape[1:3] == (dh, dw) and seq.timestamps[:3].tolist() == [0, 3, 6]
    torch.testing.assert_close(seq.K, torch.from_numpy(K[:3, :3]).float())
    np.testing.assert_allclose(seq.depth.numpy(), depth, atol=0.5e-3 + 1e-6)
    assert torch.isnan(seq.c2w[7]).all()
    keep = np.arange(n) != 7
    np.testing.assert_allclose(seq.c2w.numpy()[keep], rebased(c2w)[keep], atol=2e-5)
    (scene / "pose_90.txt").write_text("\n".join(" ".join(map(str, p.ravel())) for p in c2w[:89]) + "\n")
    with pytest.raises(ValueError, match="90 colour, 90 depth frames and 89 poses"):
        next(iter_sequences("scannet", tmp_path))


# ---------------------------------------------------------------- KITTI
def test_kitti_first_110_ground_truth_frames_with_rectified_intrinsics(tmp_path):
    rng = np.random.default_rng(5)
    drive = "2011_09_26_drive_0002_sync"
    frames = range(5, 125)  # the annotated depth skips the first 5 raw frames
    depth = rng.uniform(1.0, 80.0, (len(frames), H, W)) * (rng.random((len(frames), H, W)) > 0.3)
    rgb = random_rgb(rng, len(frames))
    for k, f in enumerate(frames):
        write_depth_png(tmp_path / "val" / drive / "proj_depth" / "groundtruth" / "image_02" / f"{f:010d}.png",
                        depth[k], 256.0)
        write_png(tmp_path / "2011_09_26" / drive / "image_02" / "data" / f"{f:010d}.png", rgb[k])
    p_rect = "7.215377e+02 0.000000e+00 6.095593e+02 4.485728e+01 0.000000e+00 7.215377e+02 1.728540e+02 " \
             "2.163791e-01 0.000000e+00 0.000000e+00 1.000000e+00 2.745884e-03"
    (tmp_path / "2011_09_26" / "calib_cam_to_cam.txt").write_text(
        f"calib_time: 09-Jan-2012 13:57:47\ncorner_dist: 9.950000e-02\nP_rect_02: {p_rect}\n"
    )
    seq = next(iter_sequences("kitti", tmp_path))
    assert seq.name == drive and seq.c2w is None and seq.depth_max is None
    assert_conventions(seq, 110)
    assert seq.timestamps[0] == 5 and seq.timestamps[-1] == 114
    assert torch.equal(seq.rgb, torch.from_numpy(rgb[:110]))
    np.testing.assert_allclose(seq.depth.numpy(), depth[:110], atol=0.5 / 256 + 1e-6)
    assert torch.equal(seq.valid, torch.from_numpy(depth[:110] > 0))
    torch.testing.assert_close(seq.K, torch.tensor([[721.5377, 0, 609.5593], [0, 721.5377, 172.854], [0, 0, 1]]))


# ---------------------------------------------------------------- ICL (real sample)
def median_reprojection_error(seq: VideoSequence, src: int, dst: int, c2w: torch.Tensor) -> float:
    """Median |z| difference between frame ``src``'s depth moved into frame ``dst`` and ``dst``'s depth (m)."""
    K, depth = seq.K.double(), seq.depth.double()
    v, u = torch.nonzero(seq.valid[src], as_tuple=True)
    z = depth[src, v, u]
    cam = torch.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z, torch.ones_like(z)])
    moved = torch.linalg.inv(c2w[dst].double()) @ c2w[src].double() @ cam
    x, y = K[0, 0] * moved[0] / moved[2] + K[0, 2], K[1, 1] * moved[1] / moved[2] + K[1, 2]
    col, row = x.round().long(), y.round().long()
    inside = (moved[2] > 0) & (col >= 0) & (col < depth.shape[2]) & (row >= 0) & (row < depth.shape[1])
    col, row, z_moved = col[inside], row[inside], moved[2][inside]
    seen = seq.valid[dst, row, col]
    return float((depth[dst, row[seen], col[seen]] - z_moved[seen]).abs().median())


def test_icl_micro_poses_depth_and_intrinsics_agree():
    seq = next(iter_sequences("icl-micro", ICL, num_frames=6, stride=1))
    assert_conventions(seq, 6)
    torch.testing.assert_close(seq.K, torch.tensor([[525.0, 0, 319.5], [0, 525.0, 239.5], [0, 0, 1]]))
    with_poses = median_reprojection_error(seq, 0, 5, seq.c2w)
    without = median_reprojection_error(seq, 0, 5, torch.eye(4).expand(6, 4, 4))
    assert with_poses < 0.003 and without > 0.02, (with_poses, without)


def test_icl_micro_clip_selection():
    seq = next(iter_sequences("icl-micro", ICL, num_frames=5, stride=3, start=10))
    assert seq.timestamps.tolist() == [10, 13, 16, 19, 22] and seq.rgb.shape == (5, 480, 640, 3)
    with pytest.raises(ValueError, match="do not fit the 211 poses"):
        iter_sequences("icl-micro", ICL, num_frames=17, stride=20)


def test_synthetic_test_split_yields_sequences():
    seqs = list(iter_sequences("synthetic", None, num=2, num_frames=5, height=32, width=32))
    assert len(seqs) == 2 and all(isinstance(s, VideoSequence) for s in seqs)
    assert seqs[0].rgb.shape == (5, 32, 32, 3) and seqs[0].name != seqs[1].name
