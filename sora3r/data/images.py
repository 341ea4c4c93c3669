"""Image files as video frames: which files of a folder are frames and in what order, the capture times their names
carry, and one image decoded to upright 8-bit RGB.

Rules (shared by `sora3r.data.video.read_video` and the dataset readers):
- A frame file is a visible regular file with an image suffix (any case). Names starting with ``.`` are skipped:
  macOS writes ``._0001.jpg`` (AppleDouble metadata, not an image) and ``.DS_Store`` beside copied files; other
  non-image files (``Thumbs.db``, ``desktop.ini``, notes) and subfolders are not frames either.
- Order is natural order (``2.jpg`` before ``10.jpg``, via ``natsort``), or time order when every name is a
  capture time (below). Zero-padded names (every dataset's layout) sort the same either way.
- Capture times from names: decimal seconds (``1305031102.175304.png``, TUM RGB-D and Bonn) or 19-digit integer
  nanoseconds (``1403636579763555584.png``, EuRoC and TUM-VI).
- Decoding: the EXIF / TIFF / XMP orientation tag is applied (frames come out as viewers show them); 16-bit
  grayscale is scaled to 8 bits as ``round(value / 257)``; 16-bit RGB(A) PNGs keep the high byte (Pillow's
  conversion, the same value up to 1); alpha is ignored; 32-bit integer and float images have no defined 8-bit
  range and are refused.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from natsort import natsorted
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["IMAGE_SUFFIXES", "decode_image", "frame_files", "frame_times", "to_8_bits"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_SECONDS = re.compile(r"\d+\.\d+")  # TUM RGB-D / Bonn: 1305031102.175304
_NANOSECONDS = re.compile(r"\d{19}")  # EuRoC / TUM-VI: 1403636579763555584
_GRAY16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def _time_of_name(stem: str) -> float | None:
    """Seconds encoded in a file stem, or None when the stem is not a capture time."""
    if _SECONDS.fullmatch(stem):
        return float(stem)
    if _NANOSECONDS.fullmatch(stem):
        return int(stem) / 1e9
    return None


def frame_times(files: list[Path]) -> np.ndarray | None:
    """``float64 (N,)`` capture times in seconds when every file's name is one (see the module rules), else None."""
    times = [_time_of_name(path.stem) for path in files]
    if not files or any(time is None for time in times):
        return None
    return np.array(times, dtype=np.float64)


def frame_files(folder: Path, pattern: str = "*", suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """The frame files of ``folder`` matching the glob ``pattern``, in frame order (module rules); may be empty."""
    files = [
        path for path in Path(folder).glob(pattern)
        if not path.name.startswith(".") and path.suffix.lower() in suffixes and path.is_file()
    ]
    if frame_times(files) is not None:
        return sorted(files, key=lambda path: _time_of_name(path.stem))
    return natsorted(files, key=lambda path: path.name)


def to_8_bits(values: np.ndarray) -> np.ndarray:
    """16-bit samples (any integer dtype) as ``uint8``: ``round(value / 257)``, so 65535 -> 255 and 257 k -> k."""
    return ((2 * values.astype(np.uint32) + 257) // 514).astype(np.uint8)


def _gray16_to_rgb8(image: Image.Image) -> np.ndarray:
    """A 16-bit grayscale image as ``uint8 (H, W, 3)`` (`to_8_bits`)."""
    return np.repeat(to_8_bits(np.asarray(image))[..., None], 3, axis=-1)


def _to_rgb8(image: Image.Image, path: Path) -> np.ndarray:
    mode = image.mode
    if mode in _GRAY16_MODES or (mode == "I" and image.format == "PNG"):  # PNG samples have at most 16 bits
        return _gray16_to_rgb8(image)
    if mode in ("I", "F"):
        kind = "32-bit integer" if mode == "I" else "floating-point"
        raise ValueError(f"{path}: {kind} image (mode {mode}) has no defined 8-bit range; save the frames as 8- or "
                         f"16-bit PNG or JPEG")
    try:
        return np.array(image.convert("RGB"))  # a writable copy (Pillow's array view is read-only)
    except ValueError as err:
        raise ValueError(f"{path}: cannot convert an image of mode {mode} to RGB ({err})") from None


def decode_image(path: str | Path, upright: bool = True) -> np.ndarray:
    """One image file as ``uint8 (H, W, 3)`` RGB (module rules).

    Args:
        upright: apply the orientation tag. Dataset readers pass False: their calibration and depth maps refer to
            the stored pixel grid.
    Raises:
        ValueError: naming the file, when it is not a decodable image or its mode has no faithful 8-bit form.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            if upright:
                ImageOps.exif_transpose(image, in_place=True)  # in place: no copy of an unrotated frame
            return _to_rgb8(image, path)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:  # Pillow raises SyntaxError for some bad headers
        raise ValueError(f"{path}: cannot decode image ({err})") from None
