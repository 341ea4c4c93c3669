"""The one container every reader, generator and method hands around.

All arrays are torch tensors (CPU unless a caller moves them), following the package conventions:
OpenCV cameras, camera-to-world poses, intrinsics in pixels of the arrays they describe.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


@dataclass
class Sequence:
    """A video clip with whatever ground truth its source has.

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

    def to(self, device: torch.device | str) -> "Sequence":
        """A copy with every tensor moved to ``device``."""
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return replace(self, **moved)

    def subset(self, index: torch.Tensor | slice | list[int]) -> "Sequence":
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
