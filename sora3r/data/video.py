"""Video IO at the edges of the library: read a clip (video file or image folder) as ``uint8 (T, H, W, 3)``,
resize + centre-crop it with the matching change of intrinsics, pick strided clip indices, write mp4.

Pixel convention (OpenCV): the centre of the top-left pixel is (0, 0). A resize/crop maps original pixel
coordinates to new ones by the affine ``[u', v', 1] = A [u, v, 1]``; intrinsics follow as ``K' = A K``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from sora3r.fs import atomic_output_path

__all__ = [
    "IMAGE_SUFFIXES",
    "adjust_intrinsics",
    "read_video",
    "resize_and_crop",
    "sample_clip_indices",
    "write_video",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _image_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{folder}: folder has no {'/'.join(IMAGE_SUFFIXES)} images")
    return files


def _read_image_folder(folder: Path, max_frames: int | None, stride: int) -> list[np.ndarray]:
    frames = []
    for file in _image_files(folder)[::stride][:max_frames]:
        try:
            with Image.open(file) as image:
                frame = np.asarray(image.convert("RGB"))
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"{file}: cannot decode image ({err})") from None
        _check_same_size(frames, frame, f"{file}: image")
        frames.append(frame)
    return frames


def _check_same_size(frames: list[np.ndarray], frame: np.ndarray, what: str) -> None:
    """Raise ValueError naming ``what`` if ``frame`` differs in size from the frames read before it."""
    if frames and frame.shape != frames[0].shape:
        (h, w), (h0, w0) = frame.shape[:2], frames[0].shape[:2]
        raise ValueError(f"{what} is {w}x{h} pixels but the first frame is {w0}x{h0}; all frames must have one size")


def _decoded_frames(path: Path) -> Iterator[np.ndarray]:
    """Stream the RGB frames of a video file; a decoding failure becomes a ValueError naming the file."""
    try:
        yield from iio.imiter(path, plugin="pyav", format="rgb24")
    except Exception as err:  # PyAV/imageio raise OSError or av.error.* subclasses for unreadable files
        raise ValueError(f"{path}: cannot decode video ({err})") from None


def _read_video_file(path: Path, max_frames: int | None, stride: int) -> list[np.ndarray]:
    frames = []
    # Stream the decode so only the kept frames are held in memory.
    for index, frame in enumerate(_decoded_frames(path)):
        if index % stride == 0:
            _check_same_size(frames, frame, f"{path}: frame {index}")
            frames.append(frame)
            if max_frames is not None and len(frames) >= max_frames:
                break
    if not frames:
        raise ValueError(f"{path}: video has no frames")
    return frames


def read_video(path: str | os.PathLike, max_frames: int | None = None, stride: int = 1) -> torch.Tensor:
    """Frames ``uint8 (T, H, W, 3)`` RGB from a video file or a folder of jpg/png images (sorted by name).

    Keeps every ``stride``-th frame, at most ``max_frames`` of them.
    """
    path = Path(path)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such video file or image folder")
    if path.is_dir():
        frames = _read_image_folder(path, max_frames, stride)
    else:
        if path.stat().st_size == 0:
            raise ValueError(f"{path}: video file is empty")
        frames = _read_video_file(path, max_frames, stride)
    return torch.from_numpy(np.stack(frames))


def resize_and_crop(frames: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize ``uint8 (T, H, W, 3)`` frames so they cover ``(height, width)`` keeping the aspect ratio,
    then centre-crop to exactly that size.

    Returns the new frames and the ``float64 (3, 3)`` affine ``A`` mapping original pixel coordinates to
    new ones (per-axis scale of the rounded resize, then the crop offset); see `adjust_intrinsics`.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    if height < 1 or width < 1:
        raise ValueError(f"target size must be positive, got {height}x{width}")
    in_h, in_w = frames.shape[1:3]
    scale = max(height / in_h, width / in_w)
    resized_h, resized_w = max(height, round(in_h * scale)), max(width, round(in_w * scale))
    top, left = (resized_h - height) // 2, (resized_w - width) // 2

    x = frames.permute(0, 3, 1, 2).float()
    if (resized_h, resized_w) != (in_h, in_w):
        x = F.interpolate(x, size=(resized_h, resized_w), mode="bilinear", align_corners=False, antialias=True)
    x = x[:, :, top : top + height, left : left + width]
    out = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()

    # Pixel centres: new u' = sx * (u + 0.5) - 0.5 - left (align_corners=False resampling).
    sx, sy = resized_w / in_w, resized_h / in_h
    affine = torch.tensor(
        [[sx, 0.0, 0.5 * sx - 0.5 - left], [0.0, sy, 0.5 * sy - 0.5 - top], [0.0, 0.0, 1.0]], dtype=torch.float64
    )
    return out, affine


def adjust_intrinsics(K: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """Intrinsics ``(3, 3)`` or ``(T, 3, 3)`` of frames transformed by ``affine`` (from `resize_and_crop`)."""
    if K.shape[-2:] != (3, 3) or affine.shape != (3, 3):
        raise ValueError(f"K must be (..., 3, 3) and affine (3, 3), got {tuple(K.shape)} and {tuple(affine.shape)}")
    return affine.to(K.dtype) @ K


def sample_clip_indices(num_available: int, num_frames: int, stride: int = 1, start: int = 0) -> list[int]:
    """Indices ``start, start + stride, ...`` of a ``num_frames`` clip within ``num_available`` frames."""
    if num_frames < 1 or stride < 1 or start < 0:
        raise ValueError(f"need num_frames >= 1, stride >= 1, start >= 0; got {num_frames}, {stride}, {start}")
    needed = start + (num_frames - 1) * stride + 1
    if needed > num_available:
        raise ValueError(
            f"a clip of {num_frames} frames at stride {stride} from frame {start} needs {needed} frames, "
            f"only {num_available} available"
        )
    return list(range(start, needed, stride))


def write_video(path: str | os.PathLike, frames: torch.Tensor | np.ndarray, fps: float = 10.0) -> Path:
    """Write ``uint8 (T, H, W, 3)`` frames as an H.264 mp4 (yuv420p).

    yuv420p needs even sizes, so an odd height/width is padded by repeating the last row/column.
    """
    frames = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be non-empty uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    with atomic_output_path(path) as tmp:
        iio.imwrite(tmp, frames, plugin="pyav", extension=".mp4", codec="libx264", fps=fps)
    return Path(path)
