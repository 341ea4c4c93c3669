"""Video reading/writing on the sample clip, resize/crop geometry and clip sampling."""

from __future__ import annotations

from pathlib import Path

import av
import imageio.v3 as iio
import numpy as np
import pytest
import torch

from shared_data import LADY_RUNNING
from sora3r.data.video import (
    adjust_intrinsics,
    load_video,
    read_video,
    resize_and_crop,
    sample_clip_indices,
    write_video,
)

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


# ---------------------------------------------------------------- inputs as people have them


def _blocks(height: int, width: int, seed: int) -> np.ndarray:
    """A frame of 8x8-pixel blocks of random colours: survives compression, shows any turn or mirror."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(height // 8, width // 8, 3), dtype=np.uint8)
    return np.repeat(np.repeat(small, 8, axis=0), 8, axis=1)


def _write_pyav(path: Path, frames: np.ndarray, fps: int = 30, codec: str = "libx264", pix_fmt: str = "yuv420p",
                input_format: str = "rgb24", rotation: tuple[int, bool] | None = None, lossless: bool = False,
                faststart: bool = False) -> Path:
    """Encode ``frames`` with PyAV; ``rotation=(degrees counter-clockwise, hflip)`` sets the display matrix."""
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as container:
        stream = container.add_stream(codec, rate=fps, options={"crf": "0"} if lossless else {})
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        if rotation is not None:
            stream.set_display_rotation(rotation[0], hflip=rotation[1])
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format=input_format)))
        container.mux(stream.encode())
    return path


def _write_audio_only(path: Path) -> Path:
    """An mp4 holding one AAC stream of silence and no video (a voice memo)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        silence = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        silence.sample_rate, silence.pts = 16000, 0
        container.mux(stream.encode(silence))
        container.mux(stream.encode())
    return path


def test_image_folder_is_read_in_natural_order_and_skips_what_is_not_a_frame(tmp_path):
    folder = tmp_path / "phone_copy"
    folder.mkdir()
    for number in range(1, 18):  # 1.jpg ... 17.jpg, each a flat grey of 10 * number
        suffix = ".JPG" if number == 5 else ".jpg"  # suffix case varies between cameras
        iio.imwrite(folder / f"{number}{suffix}", np.full((24, 32, 3), 10 * number, np.uint8))
    (folder / "._3.jpg").write_bytes(b"\0\5\26\7 AppleDouble")  # macOS metadata beside a copied file
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (folder / "notes.txt").write_text("frames of the garden")
    (folder / "thumbnails").mkdir()
    iio.imwrite(folder / "thumbnails" / "0.jpg", np.zeros((8, 8, 3), np.uint8))
    clip = load_video(folder)
    assert clip.rgb.shape == (17, 24, 32, 3)
    assert [round(float(frame.float().mean()) / 10) for frame in clip.rgb] == list(range(1, 18))
    assert clip.timestamps.tolist() == list(range(17))  # names are not times: frame indices
    assert load_video(folder, stride=4).timestamps.tolist() == [0, 4, 8, 12, 16]


def test_image_folder_errors_say_what_is_there(tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for number in range(3):
        iio.imwrite(mixed / f"frame_{number}.jpg", np.zeros((8, 8, 3), np.uint8))
    iio.imwrite(mixed / "frame_0.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r"mixed: holds images of several types \(3 JPEG, 1 PNG\)"):
        load_video(mixed)
    parent = tmp_path / "sequence"
    (parent / "rgb").mkdir(parents=True)
    iio.imwrite(parent / "rgb" / "0.png", np.zeros((8, 8, 3), np.uint8))
    (parent / "rgb.txt").write_text("# list\n")
    with pytest.raises(ValueError, match=r"sequence: no .* images in this folder \(its subfolder rgb holds images"):
        load_video(parent)
    iphone = tmp_path / "iphone"
    iphone.mkdir()
    for number in range(3):
        (iphone / f"IMG_{number:04d}.HEIC").write_bytes(b"\0\0\0\x18ftypheic")
    with pytest.raises(ValueError, match=r"iphone: no .* images in this folder \(it holds 3 .heic\)"):
        load_video(iphone)


def test_image_folder_named_by_capture_time_keeps_the_times(tmp_path):
    tum = tmp_path / "tum"
    tum.mkdir()
    times = [1305031102.175304, 1305031102.211214, 1305031102.243211, 1305031103.2]
    for value, stamp in enumerate(["1305031102.175304", "1305031102.211214", "1305031102.243211", "1305031103.2"]):
        iio.imwrite(tum / f"{stamp}.png", np.full((8, 8, 3), value, np.uint8))  # "...103.2" sorts last by time
    clip = load_video(tum)
    assert clip.timestamps.dtype == torch.float64 and clip.timestamps.tolist() == times
    assert clip.rgb[:, 0, 0, 0].tolist() == [0, 1, 2, 3]
    euroc = tmp_path / "euroc"
    euroc.mkdir()
    for stamp in ("1403636579763555584", "1403636579813555456"):
        iio.imwrite(euroc / f"{stamp}.png", np.zeros((8, 8, 3), np.uint8))
    assert load_video(euroc).timestamps.tolist() == pytest.approx([1403636579.7635556, 1403636579.8135555], abs=1e-6)


def test_video_timestamps_are_the_presentation_times(tmp_path):
    path = _write_pyav(tmp_path / "30fps.mp4", np.stack([_blocks(32, 48, seed) for seed in range(9)]), fps=30)
    clip = load_video(path, stride=2)
    np.testing.assert_allclose(clip.timestamps.numpy(), [0, 2 / 30, 4 / 30, 6 / 30, 8 / 30], atol=1e-9)
    np.testing.assert_allclose(load_video(LADY_MP4, stride=2, max_frames=3).timestamps, [0, 0.0667, 0.1333], atol=1e-4)


@pytest.mark.parametrize(("degrees", "hflip"), [(-90, False), (90, False), (180, False), (-90, True), (0, True)])
def test_video_display_matrix_is_applied(tmp_path, degrees, hflip):
    """A portrait phone video is stored 192x108 with a display matrix of -90 degrees (ffprobe: "rotation of -90");
    players turn it 90 degrees clockwise. Expected: PyAV's documented meaning (rotate counter-clockwise by degrees,
    then mirror), which is FFmpeg's."""
    stored = np.stack([_blocks(112, 192, seed) for seed in range(3)])
    path = _write_pyav(tmp_path / "phone.mp4", stored, pix_fmt="yuv444p", rotation=(degrees, hflip), lossless=True)
    shown = np.rot90(stored, k=degrees // 90, axes=(1, 2))
    shown = shown[:, :, ::-1] if hflip else shown
    clip = load_video(path)
    assert clip.rgb.shape == shown.shape
    assert (clip.rgb.float() - torch.from_numpy(shown.copy()).float()).abs().mean() < 2.0  # colour conversion only


EXIF_ORIENTATION = {  # EXIF 2.32 tag 0x0112: how to turn the stored pixels to show them
    1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("orientation", sorted(EXIF_ORIENTATION))
def test_exif_orientation_is_applied(tmp_path, orientation):
    from PIL import Image

    stored = _blocks(24, 40, seed=orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    folder = tmp_path / "frames"
    folder.mkdir()
    Image.fromarray(stored).save(folder / "0.png", exif=exif)  # PNG: exact pixels; JPEG below
    assert np.array_equal(load_video(folder).rgb[0].numpy(), EXIF_ORIENTATION[orientation](stored))
    Image.fromarray(stored).save(folder / "0.png", exif=exif)
    if orientation == 6:  # the usual portrait phone photo
        (folder / "0.png").unlink()
        Image.fromarray(stored).save(folder / "0.jpg", exif=exif, quality=95)
        assert load_video(folder).rgb.shape == (1, 40, 24, 3)


def test_sixteen_bit_frames_scale_to_eight_bits(tmp_path):
    from PIL import Image

    frames8 = np.stack([_blocks(32, 48, seed) for seed in range(3)])
    gray = tmp_path / "gray16"
    gray.mkdir()
    for index, frame in enumerate(frames8):
        Image.fromarray(frame[..., 0].astype(np.uint16) * 257).save(gray / f"{index}.png")  # mode I;16
    clip = load_video(gray)
    assert torch.equal(clip.rgb, torch.from_numpy(np.repeat(frames8[..., :1], 3, axis=-1)))  # not all white
    rgb48 = tmp_path / "rgb48"
    rgb48.mkdir()
    with av.open(str(rgb48 / "%d.png"), "w", format="image2") as container:  # 16-bit RGB PNGs
        stream = container.add_stream("png")
        stream.height, stream.width, stream.pix_fmt = 32, 48, "rgb48be"
        for frame in frames8:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame.astype(np.uint16) * 257, format="rgb48le")))
    assert torch.equal(load_video(rgb48).rgb, torch.from_numpy(frames8))
    # 16-bit video pixel formats (lossless codecs, so the comparison is exact).
    gray_video = _write_pyav(tmp_path / "gray16.mkv", frames8[..., 0].astype(np.uint16) * 257, codec="ffv1",
                             pix_fmt="gray16le", input_format="gray16le")
    assert torch.equal(load_video(gray_video).rgb, clip.rgb)
    rgb_video = _write_pyav(tmp_path / "rgb48.mkv", frames8.astype(np.uint16) * 257, codec="ffv1",
                            pix_fmt="gbrp16le", input_format="rgb48le")
    assert torch.equal(load_video(rgb_video).rgb, torch.from_numpy(frames8))


def test_image_modes_without_an_eight_bit_form_are_one_clear_error(tmp_path):
    from PIL import Image

    folder = tmp_path / "float_frames"
    folder.mkdir()
    Image.fromarray(np.ones((8, 8), np.float32)).save(folder / "0001.tif")
    with pytest.raises(ValueError, match=r"0001.tif: floating-point image \(mode F\) has no defined 8-bit range"):
        load_video(folder)


def test_video_errors_name_the_file_and_say_what_is_wrong(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video\n")
    with pytest.raises(ValueError, match=r"notes.mp4: not a readable video file"):
        load_video(tmp_path / "notes.mp4")
    (tmp_path / "half.mp4").write_bytes(LADY_MP4.read_bytes()[: LADY_MP4.stat().st_size // 2])  # index at the end
    with pytest.raises(ValueError, match=r"half.mp4: not a readable video file \(truncated"):
        load_video(tmp_path / "half.mp4")
    # Index at the start (faststart, as phones write): the first frames decode, then the file ends.
    whole = _write_pyav(tmp_path / "whole.mp4", np.stack([_blocks(32, 48, s) for s in range(24)]), lossless=True,
                        faststart=True)
    (tmp_path / "cut.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cut.mp4: video file is truncated .*: \d+ of its 24 frames decode"):
        load_video(tmp_path / "cut.mp4")
    assert load_video(tmp_path / "cut.mp4", max_frames=4).rgb.shape[0] == 4  # the readable part, when asked for
    _write_audio_only(tmp_path / "voice.mp4")
    with pytest.raises(ValueError, match=r"voice.mp4: no video stream \(the file holds audio\)"):
        load_video(tmp_path / "voice.mp4")


def test_frames_are_resized_as_they_are_decoded(lady_mp4):
    clip = load_video(LADY_MP4, max_frames=6, size=(64, 96))
    expected, affine = resize_and_crop(lady_mp4[:6], 64, 96)
    assert torch.equal(clip.rgb, expected) and torch.equal(clip.affine, affine)
    assert clip.source_hw == (480, 854)
    assert torch.equal(load_video(LADY_MP4, max_frames=2).affine, torch.eye(3, dtype=torch.float64))


def test_describe_records_the_source_for_the_exports(tmp_path):
    """`VideoClip.describe`: a reconstruction of clip frames gets the clip's timestamps, the source's size and path,
    and a crop affine that maps source pixels (not the read frames') to the model's grid."""
    from sora3r.data.video import VideoClip
    from sora3r.types import Reconstruction

    read = torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)  # source -> read
    clip = VideoClip(rgb=torch.zeros(3, 8, 8, 3, dtype=torch.uint8), timestamps=torch.tensor([0.0, 0.1, 0.2]),
                     affine=read, source_hw=(16, 16))
    rec = Reconstruction(points=torch.zeros(3, 4, 4, 3), depth=torch.ones(3, 4, 4), c2w=torch.eye(4).expand(3, 4, 4),
                         K=torch.eye(3), rgb=torch.zeros(3, 4, 4, 3, dtype=torch.uint8),
                         metadata={"crop_affine": [[0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0]]})
    clip.describe(rec, tmp_path / "clip.mp4")
    assert rec.metadata["input_hw"] == [16, 16] and rec.metadata["source"] == str(tmp_path / "clip.mp4")
    torch.testing.assert_close(rec.timestamps, clip.timestamps)
    source_pixel = torch.tensor([12.0, 4.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(torch.tensor(rec.metadata["crop_affine"], dtype=torch.float64) @ source_pixel,
                               torch.tensor([3.0, 1.0, 1.0], dtype=torch.float64))
