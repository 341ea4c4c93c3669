"""MPI Sintel (training set, final pass) reader for pose and video-depth evaluation.

Layout (as MonST3R's ``data/download_sintel.sh`` unpacks the training images and the depth/camera zip):
``<root>/training/final/<seq>/frame_%04d.png``, ``<root>/training/depth/<seq>/frame_%04d.dpt``,
``<root>/training/camdata_left/<seq>/frame_%04d.cam``.

Binary formats (Sintel SDK ``sintel_io.py``; also MonST3R ``dust3r/utils/vo_eval.py:sintel_cam_read``), all
little-endian:
- ``.dpt``: float32 tag 202021.25, int32 width, int32 height, then ``width * height`` float32 depth, row-major.
- ``.cam``: float32 tag 202021.25, 9 float64 intrinsics ``M`` (3x3, row-major), 12 float64 extrinsics ``N``
  (3x4 world-to-camera) such that ``x = M N X`` in pixels, i.e. OpenCV axes.

Protocol (MonST3R ``dust3r/eval_metadata.py``): pose on 14 sequences, all frames; video depth on all
sequences, valid ``0 < d < 70``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sora3r.data.datasets._io import make_sequence, read_rgb, require_dir, require_file
from sora3r.data.images import frame_files
from sora3r.types import VideoSequence

SINTEL_TAG = 202021.25
SINTEL_DEPTH_MAX = 70.0
SINTEL_POSE_SEQUENCES = (
    "alley_2", "ambush_4", "ambush_5", "ambush_6", "cave_2", "cave_4", "market_2",
    "market_5", "market_6", "shaman_3", "sleeping_1", "sleeping_2", "temple_2", "temple_3",
)  # fmt: skip


def _read_tagged(path: Path) -> bytes:
    data = require_file(path).read_bytes()
    if len(data) < 4 or np.frombuffer(data, "<f4", count=1)[0] != SINTEL_TAG:
        raise ValueError(f"{path}: missing the Sintel tag {SINTEL_TAG} at byte 0")
    return data


def read_dpt(path: Path) -> np.ndarray:
    """A Sintel ``.dpt`` depth file as ``float32 (H, W)``."""
    data = _read_tagged(path)
    width, height = (int(v) for v in np.frombuffer(data, "<i4", count=2, offset=4))
    if width <= 0 or height <= 0 or len(data) != 12 + 4 * width * height:
        raise ValueError(f"{path}: header says {width}x{height} but the file holds {len(data)} bytes")
    return np.frombuffer(data, "<f4", offset=12).reshape(height, width).copy()


def read_cam(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A Sintel ``.cam`` file as (``float64 (3, 3)`` intrinsics, ``float64 (4, 4)`` world-to-camera)."""
    data = _read_tagged(path)
    if len(data) != 4 + 8 * 21:
        raise ValueError(f"{path}: expected {4 + 8 * 21} bytes, got {len(data)}")
    values = np.frombuffer(data, "<f8", offset=4)
    w2c = np.eye(4)
    w2c[:3] = values[9:].reshape(3, 4)
    return values[:9].reshape(3, 3).copy(), w2c


def iter_sintel(root: Path, sequences: str | list[str] = "pose") -> Iterator[VideoSequence]:
    """Sintel final-pass sequences with depth, per-frame intrinsics and camera-to-world poses.

    Args:
        root: folder holding ``training/``.
        sequences: ``"pose"`` (the 14 pose-protocol sequences), ``"all"`` (every sequence, for depth) or a
            list of names. Every requested sequence must be present.
    """
    final = require_dir(Path(root) / "training" / "final" if root is not None else None, "sintel")
    if sequences == "pose":
        names = list(SINTEL_POSE_SEQUENCES)
    elif sequences == "all":
        names = sorted(d.name for d in final.iterdir() if d.is_dir())
    elif isinstance(sequences, str):
        raise ValueError(f"sintel: sequences must be 'pose', 'all' or a list of names, got {sequences!r}")
    else:
        names = list(sequences)
    for name in names:
        require_dir(final / name, "sintel")
    return (_load_sintel_sequence(final.parent, name) for name in names)


def _load_sintel_sequence(training: Path, name: str) -> VideoSequence:
    images = frame_files(training / "final" / name, "frame_*.png")
    if not images:
        raise FileNotFoundError(f"sintel: no frame_*.png in {training / 'final' / name}")
    cams = [read_cam(training / "camdata_left" / name / f"{p.stem}.cam") for p in images]
    K = np.stack([k for k, _ in cams])
    if np.allclose(K, K[:1]):
        K = K[0]
    return make_sequence(
        name,
        rgb=[read_rgb(p) for p in images],
        depth=[read_dpt(training / "depth" / name / f"{p.stem}.dpt") for p in images],
        K=K,
        c2w=np.linalg.inv(np.stack([w2c for _, w2c in cams])),
        timestamps=np.array([int(p.stem.split("_")[-1]) for p in images], dtype=np.float64),
        depth_max=SINTEL_DEPTH_MAX,
    )
