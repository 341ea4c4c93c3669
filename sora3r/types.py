"""The data types every part of the package hands around: `VideoSequence` (a clip and its ground truth),
`Reconstruction` (what a method returns for a clip) and `ClipBatch` (a batch of training clips).

All arrays are torch tensors (CPU unless a caller moves them), following the package conventions: OpenCV cameras
(x right, y down, z forward), camera-to-world poses ``c2w``, intrinsics ``K`` in pixels of the arrays they describe,
frames ``uint8 (T, H, W, 3)``, pointmaps ``(T, H, W, 3)``, depth and masks ``(T, H, W)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import TypeVar

import torch

_Self = TypeVar("_Self", bound="_Tensors")


class _Tensors:
    """What the containers below share: moving every tensor field at once."""

    def to(self: _Self, device: torch.device | str, non_blocking: bool = False) -> _Self:
        """A copy with every tensor field moved to ``device`` (other fields shared)."""
        moved = {
            f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return replace(self, **moved)


@dataclass
class VideoSequence(_Tensors):
    """A video clip with whatever ground truth its source has (what readers and the synthetic generator yield).

    Attributes:
        name: identifier, unique within a dataset (used for file names and tables).
        rgb: ``uint8 (T, H, W, 3)`` frames.
        K: ``float (3, 3)`` shared intrinsics, or ``(T, 3, 3)`` per frame; ``None`` if unknown.
        c2w: ``float (T, 4, 4)`` camera-to-world poses; ``None`` if unknown.
        depth: ``float (T, H, W)`` z-depth; 0 where unknown.
        valid: ``bool (T, H, W)`` pixels whose depth / points are ground truth.
        dynamic: ``bool (T, H, W)`` pixels on moving objects (synthetic data only).
        points: ``float (T, H, W, 3)`` world-frame pointmaps.
        timestamps: ``float64 (T,)`` seconds; frame indices when the source has none.
        depth_max: the protocol's depth cap for this dataset (e.g. 70 for Sintel/Bonn), ``None`` = no cap.
    """

    name: str
    rgb: torch.Tensor
    K: torch.Tensor | None = None
    c2w: torch.Tensor | None = None
    depth: torch.Tensor | None = None
    valid: torch.Tensor | None = None
    dynamic: torch.Tensor | None = None
    points: torch.Tensor | None = None
    timestamps: torch.Tensor | None = None
    depth_max: float | None = None

    @property
    def num_frames(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def hw(self) -> tuple[int, int]:
        return int(self.rgb.shape[1]), int(self.rgb.shape[2])

    def subset(self, index: torch.Tensor | slice | list[int]) -> "VideoSequence":
        """A copy holding only the frames ``index`` selects (per-frame fields are sliced)."""
        per_frame = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, torch.Tensor):
                continue
            if f.name == "K" and value.ndim == 2:
                continue
            per_frame[f.name] = value[index]
        return replace(self, **per_frame)


@dataclass
class Reconstruction(_Tensors):
    """4D geometry of one clip, as every method (the model, ``oracle``, ``static``) returns it.

    World frame = camera of the first frame. Units are those of the method's output: the model's
    output is defined up to one global scale (``metadata["scale"]`` says so).

    Attributes:
        points: ``float (T, H, W, 3)`` world-frame pointmaps.
        depth: ``float (T, H, W)`` z-depth of each pixel in its own camera.
        c2w: ``float (T, 4, 4)`` camera-to-world poses (OpenCV axes).
        K: ``float (3, 3)`` shared intrinsics in pixels of these arrays.
        rgb: ``uint8 (T, H, W, 3)`` colours of the pixels.
        confidence: ``float (T, H, W)`` per-pixel weight in [0, 1], or ``None``.
        valid: ``bool (T, H, W)`` pixels worth exporting (finite, positive depth).
        timestamps: ``float64 (T,)`` seconds of the frames (the video's presentation times, capture times from
            image names), or ``None`` when unknown (frame indices are written then).
        metadata: free-form facts about how it was made (method, steps, scale).
    """

    points: torch.Tensor
    depth: torch.Tensor
    c2w: torch.Tensor
    K: torch.Tensor
    rgb: torch.Tensor
    confidence: torch.Tensor | None = None
    valid: torch.Tensor | None = None
    timestamps: torch.Tensor | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.points.shape[0])


@dataclass
class ClipBatch(_Tensors):
    """A batch of B training clips with ground truth (what a training data source gives for one step).

    Attributes:
        rgb: ``uint8 (B, T, H, W, 3)`` frames.
        points: ``float (B, T, H, W, 3)`` world-frame pointmaps (any world; the geometry target re-bases them).
        c2w: ``float (B, T, 4, 4)`` camera-to-world poses in that world.
        valid: ``bool (B, T, H, W)`` pixels whose points are ground truth.
        K: ``float (B, 3, 3)`` intrinsics in pixels, if the source has them.
        depth: ``float (B, T, H, W)`` z-depth, if the source has it.
        dynamic: ``bool (B, T, H, W)`` pixels on moving objects (synthetic clips only).
    """

    rgb: torch.Tensor
    points: torch.Tensor
    c2w: torch.Tensor
    valid: torch.Tensor
    K: torch.Tensor | None = None
    depth: torch.Tensor | None = None
    dynamic: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return int(self.rgb.shape[0])
