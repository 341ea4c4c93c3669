"""The outputs beyond clouds and poses: confidence in every format, the depth video, 16-bit depth PNGs, the
intrinsics text file; each read back by an independent reader (plyfile, trimesh, PyAV, Pillow, numpy)."""

from __future__ import annotations

import json

import av
import numpy as np
import plyfile
import pytest
import torch
import trimesh
from PIL import Image

from sora3r.export import (
    DEPTH_PNG_MAX,
    DEPTH_VIDEO_MIN_WIDTH,
    write_colmap_text,
    write_depth_png,
    write_depth_sheet,
    write_depth_video,
    write_glb,
    write_intrinsics,
    write_ply,
)
from sora3r.viz.depth import colorize_depth, depth_range, plot_depth_comparison
from test_export import make_reconstruction


def test_ply_carries_confidence_as_a_scalar_vertex_property(tmp_path):
    rec = make_reconstruction()
    path = write_ply(tmp_path / "points.ply", rec)
    vertex = plyfile.PlyData.read(str(path))["vertex"]
    assert vertex["confidence"].dtype == np.float32
    np.testing.assert_array_equal(vertex["confidence"], rec.confidence[rec.valid].numpy())
    np.testing.assert_allclose(np.stack([vertex["x"], vertex["y"], vertex["z"]], 1), rec.points[rec.valid].numpy())
    cloud = trimesh.load(path)  # trimesh still reads a coloured point cloud
    assert isinstance(cloud, trimesh.PointCloud)
    np.testing.assert_array_equal(cloud.colors[:, :3], rec.rgb[rec.valid].numpy())

    rec.confidence = None
    names = [prop.name for prop in plyfile.PlyData.read(str(write_ply(path, rec)))["vertex"].properties]
    assert names == ["x", "y", "z", "red", "green", "blue", "alpha"]


def test_glb_and_colmap_are_the_same_with_or_without_confidence(tmp_path):
    rec = make_reconstruction()
    plain = make_reconstruction()
    plain.confidence = None
    for name, r in {"with": rec, "without": plain}.items():
        write_glb(tmp_path / f"{name}.glb", r)
        write_colmap_text(tmp_path / name, r, write_images=False)
    scenes = [trimesh.load(tmp_path / f"{name}.glb", force="scene").geometry["points"] for name in ("with", "without")]
    np.testing.assert_array_equal(scenes[0].colors, scenes[1].colors)
    np.testing.assert_array_equal(scenes[0].colors[:, :3], rec.rgb[rec.valid].numpy())  # colours stay the image's
    for text in ("cameras.txt", "images.txt", "points3D.txt"):
        assert (tmp_path / "with" / text).read_text() == (tmp_path / "without" / text).read_text()


def test_depth_pngs_are_16_bit_with_their_scale_beside_them(tmp_path):
    rec = make_reconstruction()
    folder = write_depth_png(tmp_path / "depth", rec)
    scale = json.loads((folder / "depth_scale.json").read_text())
    assert scale["invalid"] == 0 and scale["units"] == rec.metadata["scale"]
    per_unit = scale["depth_per_unit"]
    assert per_unit == pytest.approx(rec.depth[rec.valid].max().item() / DEPTH_PNG_MAX)
    codes = np.stack([np.asarray(Image.open(folder / f"{t:05d}.png")) for t in range(rec.num_frames)])
    assert codes.dtype == np.uint16 and codes.max() == DEPTH_PNG_MAX
    valid = rec.valid.numpy()
    np.testing.assert_array_equal(codes == 0, ~valid)  # 0 = no depth, and only there
    np.testing.assert_allclose(codes[valid] * per_unit, rec.depth[valid].numpy(), rtol=0, atol=per_unit / 2 + 1e-9)


def _decode(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def test_depth_video_keeps_one_colour_per_depth_over_the_video(tmp_path):
    rec = make_reconstruction()
    t, h, w = rec.depth.shape
    rec.valid = torch.ones(t, h, w, dtype=torch.bool)
    rec.depth = torch.full((t, h, w), 1.0)  # frame 0: all near
    rec.depth[1, :, w // 2:] = 3.0  # frame 1: left near, right far
    rec.depth[2] = 3.0  # frame 2: all far
    rec.timestamps = torch.arange(t, dtype=torch.float64) / 25  # 25 fps
    path = write_depth_video(tmp_path / "depth.mp4", rec)
    with av.open(str(path)) as container:
        assert float(container.streams.video[0].average_rate) == pytest.approx(25)
    frames = _decode(path).astype(float)
    assert frames.shape[0] == t and frames.shape[2] >= DEPTH_VIDEO_MIN_WIDTH and frames.shape[2] % w == 0
    near, far = colorize_depth(np.array([1.0, 3.0]), *depth_range(rec.depth)).astype(float)
    block = frames.shape[2] // w
    centre = lambda f, left: frames[f, block * h // 2, block * (w // 4 if left else 3 * w // 4)]  # noqa: E731
    # A depth keeps its colour whatever else the frame holds (a per-frame range would make frames 0 and 2 alike).
    for colour, expected in [(centre(0, True), near), (centre(1, True), near), (centre(1, False), far),
                             (centre(2, False), far)]:
        assert np.abs(colour - expected).max() < 12, (colour, expected)  # H.264 / yuv420p rounding
    assert frames[0].mean() > frames[2].mean() + 50  # near is bright


def test_colorize_depth_is_brighter_nearer_and_black_where_invalid():
    depth = np.array([[0.5, 1.0, 2.0, 4.0, 8.0, np.nan, -1.0]])
    colours = colorize_depth(depth, near=1.0, far=4.0).astype(int)
    luminance = (colours @ np.array([299, 587, 114]))[0]
    assert luminance[0] == luminance[1] > luminance[2] > luminance[3] == luminance[4] > 0  # clipped at near/far
    assert (colours[0, 5:] == 0).all()  # NaN and negative depth
    assert depth_range(torch.tensor([[1.0, 2.0], [float("nan"), 0.0]])) == pytest.approx((1.02, 1.98))
    with pytest.raises(ValueError, match="near"):
        colorize_depth(depth, near=2.0, far=1.0)
    with pytest.raises(ValueError, match="no valid pixel"):
        depth_range(np.zeros((2, 2)))


def test_intrinsics_text_gives_K_of_the_model_grid_and_of_the_input(tmp_path):
    rec = make_reconstruction()
    # An input -> model-grid affine as `sora3r reconstruct` records it: a resize by 1/100, then a crop.
    affine = np.array([[0.01, 0.0, -2.0], [0.0, 0.01, -0.5], [0.0, 0.0, 1.0]])
    rec.metadata.update(crop_affine=affine.tolist(), input_hw=[1080, 1920])
    path = write_intrinsics(tmp_path / "intrinsics.txt", rec)
    numbers = [np.array(line.split(), dtype=float) for line in path.read_text().splitlines() if not
               line.startswith("#")]
    assert len(numbers) == 8  # per grid: fx fy cx cy, then 3 rows of K
    K = rec.K.double().numpy()
    np.testing.assert_array_equal(numbers[0], K[[0, 1, 0, 1], [0, 1, 2, 2]])
    np.testing.assert_array_equal(np.stack(numbers[1:4]), K)
    K_input = np.stack(numbers[5:8])
    np.testing.assert_allclose(affine @ K_input, K, atol=1e-9)  # through the crop affine, back to the model's K
    np.testing.assert_allclose(numbers[4], K_input[[0, 1, 0, 1], [0, 1, 2, 2]])
    text = path.read_text()
    assert "model grid: 16x12 pixels" in text and "input video" in text and "1920x1080" in text
    fov_x = np.degrees(2 * np.arctan2(16 / 2, K[0, 0]))
    assert f"field of view {fov_x:.2f}" in text

    del rec.metadata["input_hw"]  # without the input's size only the model grid is written
    assert "input video" not in write_intrinsics(path, rec).read_text()


def test_depth_comparison_picture_has_input_prediction_and_truth_rows(tmp_path):
    t, h, w = 5, 32, 48
    rgb = torch.zeros(t, h, w, 3, dtype=torch.uint8)
    rgb[..., 1] = 255  # pure green input: appears in the input row only
    ground_truth = torch.linspace(1.0, 4.0, w).expand(t, h, w).clone()
    prediction = torch.full((t, h, w), 1.0)  # all near: the brightest colour of the range
    path = plot_depth_comparison(tmp_path / "depth.png", rgb, prediction, ground_truth, num_frames=3, title="clip")
    image = np.asarray(Image.open(path).convert("RGB")).astype(int)
    rows_of = lambda colour: np.nonzero((np.abs(image - colour).max(axis=2) < 8).any(axis=1))[0]  # noqa: E731
    green = rows_of([0, 255, 0])
    near = colorize_depth(np.array([1.0]), *depth_range(ground_truth))[0]
    bright = rows_of(near)
    middle = rows_of(colorize_depth(np.array([2.0]), *depth_range(ground_truth))[0])  # only in the truth
    assert len(green) and len(bright) and len(middle)
    # Top to bottom: input, then the prediction (near colour only), then the ground truth (near to far).
    assert green.max() < bright.min() and middle.min() > bright.min()
    prediction_rows = bright[bright < middle.min()]
    assert len(prediction_rows) > 0.5 * len(green)  # a whole row of panels, as tall as the input row
    columns = np.nonzero((np.abs(image - [0, 255, 0]).max(axis=2) < 8).any(axis=0))[0]
    assert np.count_nonzero(np.diff(columns) > 1) == 2  # three frames side by side


def test_depth_sheet_puts_six_frames_over_their_depth_in_one_range(tmp_path):
    rec = make_reconstruction()
    t, h, w = rec.depth.shape
    rec.rgb = torch.zeros(t, h, w, 3, dtype=torch.uint8)
    rec.rgb[..., 2] = 255  # pure blue input: the top row only
    rec.valid = torch.ones(t, h, w, dtype=torch.bool)
    rec.depth = torch.linspace(1.0, 3.0, t)[:, None, None].expand(t, h, w).clone()  # each frame further away
    path = write_depth_sheet(tmp_path / "depth_sheet.png", rec)
    image = np.asarray(Image.open(path).convert("RGB")).astype(int)
    found = lambda colour: np.nonzero((np.abs(image - colour).max(axis=2) < 8))  # noqa: E731
    blue_rows, blue_columns = found([0, 0, 255])
    near, middle = colorize_depth(np.array([1.0, 2.0]), *depth_range(rec.depth, rec.valid))
    near_rows, near_columns = found(near)
    middle_rows, middle_columns = found(middle)
    # The first frame is the nearest, the next ones further away, in one range for the sheet (far is near-black, as
    # the text is, so the test looks at near and middle): below the input row, near in the first column of panels,
    # the middle depth in a later one.
    assert len(blue_rows) and len(near_rows) and len(middle_rows)
    assert blue_rows.max() < near_rows.min() and blue_rows.max() < middle_rows.min()
    assert near_columns.max() < middle_columns.min()
    assert np.count_nonzero(np.diff(np.unique(blue_columns)) > 1) == min(t, 6) - 1  # the frames side by side
