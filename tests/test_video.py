"""Video reading/writing on the sample clip, resize/crop geometry and clip sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from shared_data import LADY_RUNNING
from sora3r.data.video import adjust_intrinsics, read_video, resize_and_crop, sample_clip_indices, write_video

LADY = LADY_RUNNING
LADY_MP4 = LADY / "lady-running.mp4"


@pytest.fixture(scope="module")
def lady_mp4() -> torch.Tensor:
    return read_video(LADY_MP4)


def test_reads_mp4_and_image_folder_alike(lady_mp4):
    assert lady_mp4.dtype == torch.uint8 and tuple(lady_mp4.shape) == (65, 480, 854, 3)
    folder = read_video(LADY, stride=16)
    assert tuple(folder.shape) == (5, 480, 854, 3)
    # Same clip, two encodings: the frames agree up to compression noise.
    difference = (folder.float() - lady_mp4[::16].float()).abs().mean()
    assert difference < 8.0, difference


def test_stride_and_max_frames(lady_mp4):
    clip = read_video(LADY_MP4, max_frames=4, stride=3)
    assert torch.equal(clip, lady_mp4[::3][:4])
    assert read_video(LADY, max_frames=2).shape[0] == 2


def test_bad_inputs_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing_here.mp4"):
        read_video(tmp_path / "nothing_here.mp4")
    (tmp_path / "empty.mp4").touch()
    with pytest.raises(ValueError, match="empty.mp4"):
        read_video(tmp_path / "empty.mp4")
    (tmp_path / "corrupt.mp4").write_bytes(LADY_MP4.read_bytes()[:2000] + b"\0" * 5000)
    with pytest.raises(ValueError, match="corrupt.mp4"):
        read_video(tmp_path / "corrupt.mp4")
    (tmp_path / "no_images").mkdir()
    (tmp_path / "no_images" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="no_images"):
        read_video(tmp_path / "no_images")
    (tmp_path / "bad_images").mkdir()
    (tmp_path / "bad_images" / "00000.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="00000.jpg"):
        read_video(tmp_path / "bad_images")


@pytest.mark.parametrize(("in_hw", "out_hw"), [((120, 200), (48, 48)), ((30, 40), (64, 96)), ((480, 854), (64, 64))])
def test_resize_and_crop_affine_matches_image_content(in_hw, out_hw):
    """Pixels of a linear ramp image land where the returned affine says they do."""
    h, w = in_hw
    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    ramp_u, ramp_v = 255.0 * u / (w - 1), 255.0 * v / (h - 1)
    frames = torch.stack([ramp_u, ramp_v, torch.zeros_like(u)], dim=-1).round().to(torch.uint8)[None]
    out, affine = resize_and_crop(frames, *out_hw)
    assert out.shape == (1, *out_hw, 3) and out.dtype == torch.uint8

    new_v, new_u = torch.meshgrid(
        torch.arange(out_hw[0], dtype=torch.float64), torch.arange(out_hw[1], dtype=torch.float64), indexing="ij"
    )
    original = torch.stack([new_u, new_v, torch.ones_like(new_u)], dim=-1) @ torch.linalg.inv(affine).T
    interior = (slice(3, -3), slice(3, -3))  # the ramp is clamped at the image border
    expected_u = 255.0 * original[..., 0] / (w - 1)
    expected_v = 255.0 * original[..., 1] / (h - 1)
    assert (out[0, ..., 0].double() - expected_u)[interior].abs().max() <= 1.5
    assert (out[0, ..., 1].double() - expected_v)[interior].abs().max() <= 1.5


def test_adjust_intrinsics_keeps_projection_consistent():
    K = torch.tensor([[500.0, 0.0, 426.5], [0.0, 510.0, 239.5], [0.0, 0.0, 1.0]], dtype=torch.float64)
    frames = torch.zeros(1, 480, 854, 3, dtype=torch.uint8)
    _, affine = resize_and_crop(frames, 256, 320)
    new_K = adjust_intrinsics(K, affine)
    points = torch.randn(100, 3, dtype=torch.float64) + torch.tensor([0.0, 0.0, 5.0], dtype=torch.float64)
    project = lambda K, X: (X @ K.T)[:, :2] / X[:, 2:3]
    old_px = project(K, points)
    mapped = torch.cat([old_px, torch.ones(100, 1, dtype=torch.float64)], dim=1) @ affine.T
    torch.testing.assert_close(mapped[:, :2], project(new_K, points))
    assert adjust_intrinsics(K.expand(3, 3, 3), affine).shape == (3, 3, 3)


def test_sample_clip_indices():
    assert sample_clip_indices(65, 17, 4) == list(range(0, 65, 4))
    assert sample_clip_indices(10, 3, 2, start=5) == [5, 7, 9]
    with pytest.raises(ValueError, match="needs 81 frames, only 65"):
        sample_clip_indices(65, 17, 5)


def test_write_video_round_trip(tmp_path):
    v, u = np.meshgrid(np.arange(33), np.arange(47), indexing="ij")
    frame = np.stack([u * 5, v * 7, np.full_like(u, 128)], axis=-1).astype(np.uint8)
    frames = np.stack([np.roll(frame, shift, axis=1) for shift in range(6)])
    path = write_video(tmp_path / "out" / "clip.mp4", torch.from_numpy(frames), fps=12)
    back = read_video(path)
    assert tuple(back.shape) == (6, 34, 48, 3)  # odd sizes padded to even for yuv420p
    assert (back[:, :33, :47].float() - torch.from_numpy(frames).float()).abs().mean() < 4.0
    assert [p.name for p in path.parent.iterdir()] == ["clip.mp4"]
