"""`Reconstruction`: what every method (the model, `oracle`, `static`) returns for a clip."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import torch


@dataclass
class Reconstruction:
    """4D geometry of one clip, in the package conventions.

    World frame = camera of the first frame. Units are those of the method's output: the model's
    output is defined up to one global scale (``metadata["scale"] == "relative"``).

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

    def to(self, device: torch.device | str) -> "Reconstruction":
        """A copy with every tensor moved to ``device``."""
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return replace(self, **moved)
