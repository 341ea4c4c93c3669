"""Methods the benchmark can run: ``sora3r`` (the model) and three reference points, ``oracle``, ``static`` and
``blind``.

A method is a callable ``(seq: VideoSequence) -> Reconstruction``. ``METHODS`` maps a name to a factory that
takes the method's options as keywords and returns such a callable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch

from sora3r.geometry.projection import focal_from_fov, image_centre, intrinsics_matrix, unproject_depth
from sora3r.types import Reconstruction, VideoSequence

Method = Callable[[VideoSequence], Reconstruction]

STATIC_FOV_DEG = 60.0


def _ground_truth_points(seq: VideoSequence) -> tuple[torch.Tensor, torch.Tensor]:
    """World pointmaps ``(T, H, W, 3)`` and their validity ``bool (T, H, W)`` from a sequence's ground truth."""
    if seq.points is not None:
        points = seq.points
    elif seq.depth is not None and seq.K is not None and seq.c2w is not None:
        points = unproject_depth(seq.depth, seq.K, seq.c2w)
    else:
        raise ValueError(f"{seq.name}: the oracle needs ground-truth points, or depth with K and c2w")
    valid = torch.isfinite(points).all(dim=-1)
    if seq.valid is not None:
        valid &= seq.valid.bool()
    if seq.depth is not None:
        valid &= seq.depth > 0
    return torch.where(valid[..., None], points, 0.0), valid


def oracle(device: str = "cpu") -> Method:
    """Ground-truth points through the same camera recovery as the model: the floor post-processing allows.

    Points are moved into the frame-0 camera (when poses are known) and handed to
    ``sora3r.geometry.recover_cameras`` with the ground-truth validity as weights; K is recovered, not given.
    """

    def run(seq: VideoSequence) -> Reconstruction:
        from sora3r.geometry import first_camera_world, recover_cameras, to_first_frame

        points, valid = _ground_truth_points(seq)
        if seq.c2w is not None:
            points, _ = to_first_frame(points, seq.c2w.to(points.dtype))
        points, valid = points.to(device), valid.to(device)
        points, cameras = first_camera_world(points, recover_cameras(points, weights=valid.float(), K=None))
        return Reconstruction(
            points=points.cpu(), depth=cameras.depth.cpu(), c2w=cameras.c2w.cpu(), K=cameras.K.cpu(), rgb=seq.rgb,
            confidence=valid.float().cpu(), valid=valid.cpu(),
            metadata={"method": "oracle", "source": seq.name, "scale": "metric"},
        )

    return run


def static(depth: float = 1.0, fov_deg: float = STATIC_FOV_DEG) -> Method:
    """A camera that never moves and sees a fronto-parallel wall: identity poses, constant ``depth``,
    K from a ``fov_deg`` horizontal field of view with the principal point at the image centre."""
    if depth <= 0 or not 0 < fov_deg < 180:
        raise ValueError(f"static: need depth > 0 and 0 < fov_deg < 180, got depth={depth}, fov_deg={fov_deg}")

    def run(seq: VideoSequence) -> Reconstruction:
        num_frames, (height, width) = seq.num_frames, seq.hw
        focal = focal_from_fov(width, fov_deg)
        K = intrinsics_matrix(focal, focal, *image_centre(height, width), dtype=torch.float32)
        c2w = torch.eye(4).expand(num_frames, 4, 4).clone()
        depth_map = torch.full((num_frames, height, width), float(depth))
        return Reconstruction(
            points=unproject_depth(depth_map, K, c2w), depth=depth_map, c2w=c2w, K=K, rgb=seq.rgb,
            valid=torch.ones(num_frames, height, width, dtype=torch.bool),
            metadata={"method": "static", "source": seq.name, "scale": "relative"},
        )

    return run


def sora3r(model: str | Path | None = None, device: str = "cpu", num_steps: int | None = None, seed: int = 0,
           num_samples: int = 1, overlap: int | None = None) -> Method:
    """The Sora3R pipeline: ``Sora3RPipeline.from_pretrained(model).reconstruct(seq.rgb, ...)`` (options as there).

    ``model=None`` loads the bundled model. The pipeline is imported and loaded on the first call (once),
    so listing or building methods never needs it; an import failure is a clear RuntimeError then.
    """
    loaded = {}

    def run(seq: VideoSequence) -> Reconstruction:
        if "pipeline" not in loaded:
            try:
                from sora3r.pipeline import Sora3RPipeline
            except ImportError as error:
                raise RuntimeError(f"method 'sora3r' needs sora3r.pipeline, which failed to import: {error}") from error
            loaded["pipeline"] = Sora3RPipeline.from_pretrained(model, device=device)
        rec = loaded["pipeline"].reconstruct(seq.rgb, num_steps=num_steps, seed=seed, num_samples=num_samples,
                                             overlap=overlap)
        rec.metadata.setdefault("source", seq.name)
        return rec

    return run


BLIND_GREY = 128  # the uint8 value of every pixel of the input-blind clip


def blind(model: str | Path | None = None, device: str = "cpu", num_steps: int | None = None, seed: int = 0,
          num_samples: int = 1, overlap: int | None = None) -> Method:
    """The same model on a uniform grey clip of the sequence's length and size, scored against the sequence's ground
    truth: what the model predicts without reading its input (its prior). A method earns its scores from the video
    only where it beats this; the gap shows how much the model reads its input."""
    model_run = sora3r(model, device, num_steps, seed, num_samples, overlap)

    def run(seq: VideoSequence) -> Reconstruction:
        rec = model_run(dataclasses.replace(seq, rgb=torch.full_like(seq.rgb, BLIND_GREY)))
        rec.metadata.update(method="blind", source=seq.name)
        return rec

    return run


METHODS: dict[str, Callable[..., Method]] = {"sora3r": sora3r, "oracle": oracle, "static": static, "blind": blind}
