"""File reading and `VideoSequence` assembly shared by the evaluation-set readers.

Every reader goes through these helpers so that errors, units and conventions are the same for all
of them: a missing file is a one-line ``FileNotFoundError`` naming it, a malformed text line a
``ValueError`` naming file and line, depth is float32 metres with 0 = unknown, poses are rebased so
that the first frame's camera is the world frame (the package convention).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sora3r.data.images import decode_image
from sora3r.types import VideoSequence


def require_file(path: Path) -> Path:
    """``path`` if it is an existing file, else a one-line ``FileNotFoundError`` naming it."""
    if not path.is_file():
        raise FileNotFoundError(f"missing file: {path}")
    return path


def require_dir(path: Path | None, what: str) -> Path:
    """``path`` if it is an existing folder, else a one-line ``FileNotFoundError`` naming it."""
    if path is None:
        raise FileNotFoundError(f"{what}: no root folder given")
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{what}: missing folder {path}")
    return path


def read_rows(path: Path, num_values: int | None = None) -> list[tuple[int, list[str]]]:
    """Whitespace-separated rows of a text file, skipping blank lines and ``#`` comments.

    Returns ``(line_number, tokens)`` pairs. With ``num_values`` set, every row must have exactly
    that many tokens (ValueError naming file and line otherwise).
    """
    rows = []
    with open(require_file(path), encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            tokens = line.replace(",", " ").split()
            if num_values is not None and len(tokens) != num_values:
                raise ValueError(f"{path}:{number}: expected {num_values} values, got {len(tokens)}")
            rows.append((number, tokens))
    return rows


def parse_floats(path: Path, number: int, tokens: list[str]) -> np.ndarray:
    """``tokens`` as float64, or a ValueError naming ``path`` and line ``number``."""
    try:
        return np.array([float(t) for t in tokens], dtype=np.float64)
    except ValueError:
        raise ValueError(f"{path}:{number}: not a number in {' '.join(tokens)!r}") from None


def read_matrix_rows(path: Path, num_values: int) -> np.ndarray:
    """A text file of ``num_values`` floats per row as ``float64 (N, num_values)``."""
    rows = read_rows(path, num_values)
    if not rows:
        raise ValueError(f"{path}: no data rows")
    return np.stack([parse_floats(path, number, tokens) for number, tokens in rows])


def read_rgb(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """An image file as ``uint8 (H, W, 3)`` (`sora3r.data.images.decode_image`: 16-bit scaled to 8 bits, the stored
    pixel grid that the dataset's calibration refers to); ``size=(W, H)`` resizes it (bilinear, antialiased)."""
    rgb = decode_image(require_file(path), upright=False)
    if size is not None and (rgb.shape[1], rgb.shape[0]) != tuple(size):
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))
    return rgb


def read_depth_png(path: Path, units_per_metre: float) -> np.ndarray:
    """A 16-bit depth PNG as ``float32 (H, W)`` metres (stored value / ``units_per_metre``; 0 stays 0)."""
    with Image.open(require_file(path)) as image:
        if image.mode not in ("I;16", "I;16B", "I"):
            raise ValueError(f"{path}: expected a 16-bit depth PNG, got mode {image.mode}")
        stored = np.asarray(image)
    return (stored.astype(np.float64) / units_per_metre).astype(np.float32)


def rebase_to_first_camera(c2w: np.ndarray) -> np.ndarray:
    """Camera-to-world poses ``(T, 4, 4)`` re-expressed in the camera frame of the first finite pose.

    Frames whose pose is not finite (unknown) stay NaN.
    """
    finite = np.isfinite(c2w).all(axis=(1, 2))
    if not finite.any():
        raise ValueError("no finite camera pose in the sequence")
    first = c2w[int(np.argmax(finite))]
    rebased = np.full_like(c2w, np.nan)
    rebased[finite] = np.linalg.inv(first) @ c2w[finite]
    return rebased


def make_sequence(
    name: str,
    rgb: list[np.ndarray],
    depth: list[np.ndarray],
    K: np.ndarray | None,
    c2w: np.ndarray | None,
    timestamps: np.ndarray,
    depth_max: float | None,
) -> VideoSequence:
    """Assemble a `VideoSequence` from per-frame numpy arrays.

    Args:
        rgb: ``T`` frames ``uint8 (H, W, 3)``.
        depth: ``T`` maps ``float32 (H, W)`` metres, 0 where unknown.
        K: ``(3, 3)`` shared or ``(T, 3, 3)`` per-frame intrinsics in pixels of ``rgb``.
        c2w: ``(T, 4, 4)`` camera-to-world poses (OpenCV axes) in any world frame; rebased here so that
            the first frame is the identity. NaN rows mark frames with unknown pose.
        timestamps: ``(T,)`` seconds, or frame indices when the source has none.
        depth_max: the protocol's depth cap; pixels at or beyond it are not ``valid``.
    """
    if len(rgb) != len(depth) or any(d.shape != image.shape[:2] for image, d in zip(rgb, depth)):
        raise ValueError(f"{name}: colour frames and depth maps differ in number or size")
    depth_t = torch.from_numpy(np.stack(depth).astype(np.float32))
    known = torch.isfinite(depth_t) & (depth_t > 0)
    depth_t = torch.where(known, depth_t, torch.zeros_like(depth_t))
    valid = known if depth_max is None else known & (depth_t < depth_max)
    return VideoSequence(
        name=name,
        rgb=torch.from_numpy(np.stack(rgb)),
        K=None if K is None else torch.from_numpy(np.asarray(K, dtype=np.float32)),
        c2w=None if c2w is None else torch.from_numpy(rebase_to_first_camera(c2w).astype(np.float32)),
        depth=depth_t,
        valid=valid,
        timestamps=torch.from_numpy(np.asarray(timestamps, dtype=np.float64)),
        depth_max=depth_max,
    )
