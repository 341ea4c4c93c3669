"""Video IO at the edges of the library: read a clip (video file or image folder) as upright ``uint8 (T, H, W, 3)``
frames with their times, resized as they are decoded when asked; resize + centre-crop with the matching change of
intrinsics; pick strided clip indices; write mp4 (frame by frame).

Pixel convention (OpenCV): the centre of the top-left pixel is (0, 0). A resize/crop maps original pixel
coordinates to new ones by the affine ``[u', v', 1] = A [u, v, 1]``; intrinsics follow as ``K' = A K``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from natsort import natsorted

from sora3r.data.images import IMAGE_SUFFIXES, decode_image, frame_files, frame_times, to_8_bits
from sora3r.fs import atomic_output_path
from sora3r.geometry.projection import pixel_affine

__all__ = [
    "IMAGE_SUFFIXES",
    "VideoClip",
    "adjust_intrinsics",
    "encode_video",
    "load_video",
    "read_video",
    "resize_and_crop",
    "sample_clip_indices",
    "write_video",
]


_Frame = tuple[str, int, float, np.ndarray]  # a decoded frame: label for errors, index in the source, seconds, RGB


def _orientation(frame: av.VideoFrame, label: str) -> tuple[bool, bool, bool] | None:
    """``(transpose, flip_columns, flip_rows)`` that turn a decoded frame upright as players show it, from its
    display matrix (FFmpeg's ``AV_FRAME_DATA_DISPLAYMATRIX``; ffprobe prints its rotation); None when it has none.

    FFmpeg's matrix ``[a b u; c d v; x y w]`` (16.16 fixed point) maps a source pixel ``(p, q)`` to
    ``p' = a p + c q + x``, ``q' = b p + d q + y`` (libavutil/display.h); only its 90-degree rotations and mirrors
    occur in practice, and only those are accepted.
    """
    matrix = next((bytes(data) for data in frame.side_data if data.type.name == "DISPLAYMATRIX"), None)
    if matrix is None or len(matrix) != 36:
        return None
    a, b, _, c, d = (value / 65536 for value in np.frombuffer(matrix, dtype=np.int32)[:5])
    if abs(a) > 0.5 and abs(d) > 0.5 and abs(b) < 1e-3 and abs(c) < 1e-3:
        return False, a < 0, d < 0
    if abs(b) > 0.5 and abs(c) > 0.5 and abs(a) < 1e-3 and abs(d) < 1e-3:
        return True, c < 0, b < 0  # out[b p, c q] = in[q, p]: transpose, then mirror
    raise ValueError(f"{label}: its display matrix rotates by {frame.rotation} degrees; only multiples of 90 are "
                     f"supported")


def _to_rgb8(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as ``uint8 (H, W, 3)`` RGB. Formats of more than 8 bits (10/12-bit HEVC, ProRes, 16-bit
    gray or RGB) go through 16-bit RGB and ``round(value / 257)``: swscale's direct conversion to 8 bits is off by
    one for about half of the 16-bit gray values."""
    if max(component.bits for component in frame.format.components) <= 8:
        return frame.to_ndarray(format="rgb24")
    return to_8_bits(frame.to_ndarray(format="rgb48le"))


def _upright(frame: av.VideoFrame, turn: tuple[bool, bool, bool] | None) -> np.ndarray:
    """A decoded frame as ``uint8 (H, W, 3)`` RGB (`_to_rgb8`), turned by `_orientation`'s ``turn``."""
    rgb = _to_rgb8(frame)
    if turn is not None:
        transpose, flip_columns, flip_rows = turn
        rgb = rgb.transpose(1, 0, 2) if transpose else rgb
        rgb = rgb[:, ::-1] if flip_columns else rgb
        rgb = rgb[::-1] if flip_rows else rgb
    return np.ascontiguousarray(rgb)


def _frame_time(frame: av.VideoFrame, index: int, rate: Fraction | None) -> float:
    """Presentation time in seconds; from the frame rate when the container gives none."""
    if frame.pts is not None and frame.time is not None:
        return float(frame.time)
    return index / float(rate) if rate else float(index)


def _open_video(path: Path) -> av.container.InputContainer:
    """``path`` opened with PyAV; ValueError naming it when it is empty, not a video, or has no video stream."""
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: video file is empty")
    try:
        container = av.open(str(path))
    except av.FFmpegError as err:
        raise ValueError(f"{path}: not a readable video file (truncated, corrupt or not a video: "
                         f"{err.strerror or err})") from None
    if not container.streams.video:
        kinds = sorted({stream.type for stream in container.streams})
        container.close()
        raise ValueError(f"{path}: no video stream (the file holds {' and '.join(kinds) or 'no streams'})")
    return container


def _index_end(stream: av.video.stream.VideoStream) -> int:
    """The byte just past the last packet the container's index lists for ``stream`` (0 without an index)."""
    return max((entry.pos + entry.size for entry in stream.index_entries or ()), default=0)


def _video_file_frames(path: Path, stride: int, max_frames: int | None) -> Iterator[_Frame]:
    """``(label, index, time, frame)`` of every ``stride``-th frame of a video file, at most ``max_frames``; frames
    that are not kept are decoded but not converted. A file cut short (its index points past its end) is an error
    unless the frames asked for were all read before the cut."""
    with _open_video(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        kept = decoded = 0
        try:
            for index, frame in enumerate(container.decode(stream)):
                decoded = index + 1
                if index == 0:
                    # The display matrix belongs to the stream: read it once (PyAV's side data holds a reference
                    # cycle to its frame, so reading it per frame keeps every full-size frame until a GC pass).
                    turn = _orientation(frame, f"{path}: frame 0")
                if index % stride == 0:
                    label = f"{path}: frame {index}"
                    yield label, index, _frame_time(frame, index, stream.average_rate), _upright(frame, turn)
                    kept += 1
                    if kept == max_frames:
                        return
        except av.FFmpegError as err:
            raise ValueError(f"{path}: video is corrupt or truncated; decoding failed after {decoded} frames "
                             f"({err.strerror or err})") from None
        size = path.stat().st_size
        if _index_end(stream) > size:
            usable = f" (--max-frames {kept} reconstructs those)" if kept else ""
            raise ValueError(f"{path}: video file is truncated ({size} of {_index_end(stream)} bytes): {decoded} of "
                             f"its {stream.frames} frames decode{usable}")


_IMAGE_KIND = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}


def _folder_hint(folder: Path) -> str:
    """What a folder without frames holds instead: subfolders of images, or files of other types (e.g. .heic)."""
    visible = natsorted((entry for entry in folder.iterdir() if not entry.name.startswith(".")), key=lambda p: p.name)
    holders = [entry.name for entry in visible if entry.is_dir() and frame_files(entry)]
    if holders:
        if len(holders) == 1:
            return f" (its subfolder {holders[0]} holds images: pass it)"
        return f" (its subfolders {', '.join(holders[:3])} hold images: pass one of them)"
    others = Counter(entry.suffix.lower() or "no suffix" for entry in visible if entry.is_file())
    return f" (it holds {', '.join(f'{count} {kind}' for kind, count in others.most_common(3))})" if others else ""


def _folder_frame_files(folder: Path) -> list[Path]:
    """The frame files of an image folder (`sora3r.data.images.frame_files`); ValueError naming the folder when
    it holds none, or images of more than one type (frames of one clip share a format)."""
    files = frame_files(folder)
    if not files:
        raise ValueError(f"{folder}: no {'/'.join(suffix[1:] for suffix in IMAGE_SUFFIXES)} images in this folder"
                         f"{_folder_hint(folder)}")
    kinds = Counter(_IMAGE_KIND.get(path.suffix.lower(), path.suffix.lower()[1:].upper()) for path in files)
    if len(kinds) > 1:
        mixed = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
        raise ValueError(f"{folder}: holds images of several types ({mixed}); put one clip's frames, of one type, "
                         f"in a folder of their own")
    return files


def _image_folder_frames(folder: Path, stride: int, max_frames: int | None) -> Iterator[_Frame]:
    """``(label, index, time, frame)`` of every ``stride``-th image of a folder, at most ``max_frames``; only those
    are decoded. Times come from the file names when they are capture times, else the frame's index in the folder."""
    files = _folder_frame_files(folder)
    times = frame_times(files)
    times = np.arange(len(files), dtype=np.float64) if times is None else times
    for index in range(0, len(files), stride)[:max_frames]:
        yield f"{files[index]}: image", index, float(times[index]), decode_image(files[index])


@dataclass
class VideoClip:
    """Frames read from a video file or an image folder (`load_video`).

    Attributes:
        rgb: ``uint8 (T, H, W, 3)`` frames, upright as players and viewers show them.
        timestamps: ``float64 (T,)`` seconds: the container's presentation times for a video file (from the frame
            rate where a frame has none; frame indices where they do not increase), the capture times in the file
            names of an image folder named by time, else each frame's index in the folder (before ``stride``).
        affine: ``float64 (3, 3)`` map from pixel coordinates of the upright source frames to those of ``rgb``
            (identity unless resized; see `resize_and_crop`, `adjust_intrinsics`).
        source_hw: ``(H, W)`` of the upright source frames.
    """

    rgb: torch.Tensor
    timestamps: torch.Tensor
    affine: torch.Tensor
    source_hw: tuple[int, int]

    def describe(self, rec, source: str | os.PathLike | None = None) -> None:
        """Record in a `Reconstruction` of these frames where they came from, for the exports: the timestamps, the
        source's size (``metadata["input_hw"]``), the source's path (``metadata["source"]``, if given) and its
        ``metadata["crop_affine"]`` composed with `affine`, so that it maps pixels of the source (not of ``rgb``) to
        the model's grid (intrinsics.txt then also gives K in pixels of the input video)."""
        rec.timestamps = self.timestamps
        rec.metadata["input_hw"] = list(self.source_hw)
        if source is not None:
            rec.metadata["source"] = str(source)
        model_affine = torch.tensor(rec.metadata["crop_affine"], dtype=torch.float64)
        rec.metadata["crop_affine"] = (model_affine @ self.affine.double()).tolist()


def _collect(frames: Iterator[_Frame], size: tuple[int, int] | None, path: Path) -> VideoClip:
    """Stack the frames, each resized and centre-cropped to ``size`` as soon as it is decoded (when given)."""
    kept, indices, times, affine, source_hw = [], [], [], torch.eye(3, dtype=torch.float64), None
    for label, index, time, frame in frames:
        if source_hw is None:
            source_hw = frame.shape[:2]
        elif frame.shape[:2] != source_hw:
            (h, w), (h0, w0) = frame.shape[:2], source_hw
            raise ValueError(f"{label} is {w}x{h} pixels but the first frame is {w0}x{h0}; all frames must have one "
                             f"size")
        tensor = torch.from_numpy(frame)[None]
        if size is not None:
            tensor, affine = resize_and_crop(tensor, *size)
        kept.append(tensor[0])
        indices.append(index)
        times.append(time)
    if not kept:
        raise ValueError(f"{path}: video has no frames")
    if any(later <= earlier for earlier, later in zip(times, times[1:])):
        times = indices  # a broken container's presentation times: frame indices say at least the order
    return VideoClip(rgb=torch.stack(kept), timestamps=torch.tensor(times, dtype=torch.float64), affine=affine,
                     source_hw=(int(source_hw[0]), int(source_hw[1])))


def load_video(path: str | os.PathLike, max_frames: int | None = None, stride: int = 1,
               size: tuple[int, int] | None = None) -> VideoClip:
    """Read a video file (anything FFmpeg decodes: mp4, mov, mkv, webm, avi, ...; any pixel format and bit depth)
    or a folder of images (`sora3r.data.images` says which files are frames, their order and their times).

    Args:
        max_frames, stride: keep every ``stride``-th frame, at most ``max_frames`` of them.
        size: ``(H, W)``: resize (cover) and centre-crop each frame to it as it is decoded (`resize_and_crop`), so
            memory grows with ``H x W``, not with the input's resolution. ``None`` keeps the source size.
    Returns:
        `VideoClip`: frames turned upright by the container's display matrix or the images' orientation tags.
    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: one line naming the file or folder (not a video, no video stream, corrupt, no images, mixed
            image types, frames of different sizes, an image mode with no faithful 8-bit form, bad arguments).
    """
    path = Path(path)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise ValueError(f"size must be (H, W) with positive sizes, got {size}")
    check_video_path(path)
    reader = _image_folder_frames if path.is_dir() else _video_file_frames
    return _collect(reader(path, stride, max_frames), size, path)


def check_video_path(path: str | os.PathLike) -> None:
    """Raise ``FileNotFoundError`` naming ``path`` unless it exists (a video file or a folder of frames)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such video file or image folder")


def read_video(path: str | os.PathLike, max_frames: int | None = None, stride: int = 1) -> torch.Tensor:
    """Frames ``uint8 (T, H, W, 3)`` of a video file or image folder at their source size (`load_video`)."""
    return load_video(path, max_frames=max_frames, stride=stride).rgb


_RESIZE_CHUNK_VALUES = 1 << 24  # float32 values (64 MB) resized at once


def resize_and_crop(frames: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize ``uint8 (T, H, W, 3)`` frames so they cover ``(height, width)`` keeping the aspect ratio,
    then centre-crop to exactly that size (a few frames at a time, so the float copy stays small).

    Returns the new frames and the ``float64 (3, 3)`` affine ``A`` mapping original pixel coordinates to
    new ones (per-axis scale of the rounded resize, then the crop offset); see `adjust_intrinsics`. Frames that
    already have that size are returned as they are (not copied: a long video read at the model's size is held
    once), with the identity affine.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    if height < 1 or width < 1:
        raise ValueError(f"target size must be positive, got {height}x{width}")
    in_h, in_w = frames.shape[1:3]
    if (in_h, in_w) == (height, width):
        return frames, pixel_affine(1.0, 1.0)
    scale = max(height / in_h, width / in_w)
    resized_h, resized_w = max(height, round(in_h * scale)), max(width, round(in_w * scale))
    top, left = (resized_h - height) // 2, (resized_w - width) // 2

    out = torch.empty((frames.shape[0], height, width, 3), dtype=torch.uint8, device=frames.device)
    chunk = max(1, _RESIZE_CHUNK_VALUES // (in_h * in_w * 3))  # bounds the float copy, whatever the input size
    for first in range(0, frames.shape[0], chunk):
        x = frames[first : first + chunk].permute(0, 3, 1, 2).float()
        if (resized_h, resized_w) != (in_h, in_w):
            x = F.interpolate(x, size=(resized_h, resized_w), mode="bilinear", align_corners=False, antialias=True)
        x = x[:, :, top : top + height, left : left + width]
        out[first : first + chunk] = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)

    return out, pixel_affine(resized_w / in_w, resized_h / in_h, left, top)


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


def encode_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float = 10.0) -> Path:
    """Encode ``uint8 (H, W, 3)`` frames, one at a time as ``frames`` yields them (memory holds one frame, so a
    video of any length can be written), into an H.264 mp4 (yuv420p, PyAV).

    yuv420p needs even sizes, so an odd height/width is padded by repeating the last row/column. The file is
    written beside ``path`` and renamed into place.

    Raises:
        ValueError: no frames, a frame that is not ``uint8 (H, W, 3)``, frames of different sizes, ``fps <= 0``.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    with atomic_output_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream, size = None, None
            for frame in frames:
                frame = np.asarray(frame)
                if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
                    raise ValueError(f"{path}: frames must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
                if stream is None:
                    size = frame.shape
                    stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
                    stream.pix_fmt = "yuv420p"
                    stream.height, stream.width = size[0] + size[0] % 2, size[1] + size[1] % 2
                elif frame.shape != size:
                    raise ValueError(f"{path}: frames must share one size, got {frame.shape} after {size}")
                padded = np.pad(frame, ((0, size[0] % 2), (0, size[1] % 2), (0, 0)), mode="edge")
                container.mux(stream.encode(av.VideoFrame.from_ndarray(padded, format="rgb24")))
            if stream is None:
                raise ValueError(f"{path}: no frames to write")
            container.mux(stream.encode(None))  # flush the encoder
    return Path(path)


def write_video(path: str | os.PathLike, frames: torch.Tensor | np.ndarray, fps: float = 10.0) -> Path:
    """Write ``uint8 (T, H, W, 3)`` frames as an H.264 mp4 (yuv420p; see `encode_video`)."""
    frames = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be non-empty uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    return encode_video(path, iter(frames), fps)
