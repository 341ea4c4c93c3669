"""Synthetic dynamic 3D scenes with exact ground truth, ray cast analytically in torch (CPU or CUDA).

Each seed draws a room (box seen from inside) or open ground with a far backdrop dome, several
textured boxes / spheres / cylinders (some moving and spinning, some still), a directional light and a
camera path (orbit, walk, pan or track, optionally with hand-held shake). The "realistic" preset
(`synthetic_config("realistic", ...)`) adds image textures with natural-image statistics (`textures`), furniture
and fittings or buildings made of static boxes (`layout`), hand-held camera paths (`paths`) and photometric
augmentation of the RGB (`augment`). World frame of a scene: z up, floor at z = 0 (not the frame-0 camera).
Cameras: OpenCV axes, camera-to-world poses, pixel centres at integer pixel coordinates, principal point at
((W - 1) / 2, (H - 1) / 2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sora3r.data.synthetic.augment import augment_rgb
from sora3r.data.synthetic.paths import PATH_KINDS
from sora3r.data.synthetic.raycast import PRIMITIVES, cast, stack_scenes
from sora3r.data.synthetic.sampler import axis_angle_matrix, look_at
from sora3r.data.synthetic.scene import (
    ENVIRONMENTS, SYNTHETIC_PRESETS, SyntheticConfig, SyntheticScene, sample_scene, synthetic_config,
)
from sora3r.types import ClipBatch, VideoSequence

SPLIT_SEEDS: dict[str, range] = {
    "test": range(0, 10_000),
    "val": range(10_000, 20_000),
    "train": range(1_000_000, 2**31 - 1),
}


def split_seed(split: str, index: int) -> int:
    """The ``index``-th seed of ``split`` ("train", "val" or "test")."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLIT_SEEDS)}")
    seeds = SPLIT_SEEDS[split]
    if not 0 <= index < len(seeds):
        raise ValueError(f"index {index} out of range for split {split!r} ({len(seeds)} seeds)")
    return seeds[index]


_BOX_SLOTS = 4  # memory of the static-box pairs, in units of one object's per-ray tensors


def _default_chunk_rays(device: torch.device) -> int:
    """Rays cast at once when the config leaves it open: memory, not speed, sets it (see `SyntheticConfig`)."""
    return 2**24 if device.type == "cuda" else 2**20


def render_batch(seeds: Sequence[int], config: SyntheticConfig = SyntheticConfig(),
                 device: torch.device | str = "cpu") -> ClipBatch:
    """Render the clips of ``seeds`` (B of them) on ``device``.

    Returns a `ClipBatch` with every field: rgb uint8 ``(B, T, H, W, 3)``; depth float32 ``(B, T, H, W)`` (z-depth
    in each frame's camera); points float32 ``(B, T, H, W, 3)`` in the scene's world frame; c2w float32
    ``(B, T, 4, 4)``; K float32 ``(B, 3, 3)``; valid bool ``(B, T, H, W)`` (all True: every ray hits a surface);
    dynamic bool ``(B, T, H, W)`` (pixels on moving objects). A clip's output is bit-identical whatever batch it is
    rendered in.
    """
    if len(seeds) == 0:
        raise ValueError("render_batch needs at least one seed")
    return render_scenes([sample_scene(int(seed), config) for seed in seeds], config, device)


def render_scenes(scenes: Sequence[SyntheticScene], config: SyntheticConfig,
                  device: torch.device | str = "cpu") -> ClipBatch:
    """:func:`render_batch` for scenes already drawn with `sample_scene` (the CPU part, which a training loop
    can run ahead in worker processes while the device ray casts)."""
    device = torch.device(device)
    rays_per_clip = config.num_frames * config.height * config.width
    # objects multiply the work per ray; budget the largest per-kind object count (static boxes: a few tests a ray)
    slots = max(1, max(max(s.object_kind.count(k) for k in PRIMITIVES) for s in scenes))
    slots += _BOX_SLOTS if any(s.box_lo.shape[1] for s in scenes) else 0
    per_chunk = max(1, (config.chunk_rays or _default_chunk_rays(device)) // (rays_per_clip * slots))
    parts = [cast(stack_scenes(scenes[i:i + per_chunk], device), config.height, config.width)
             for i in range(0, len(scenes), per_chunk)]
    cast_out = {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
    c2w = torch.stack([s.c2w for s in scenes]).to(device=device, dtype=torch.float32)
    K = torch.stack([s.K for s in scenes]).to(device=device, dtype=torch.float32)
    rgb = cast_out["rgb"]
    if config.augment:
        rgb = augment_rgb(rgb, torch.stack([s.photometric for s in scenes]), cast_out["points"], c2w, K)
    return ClipBatch(rgb=rgb, points=cast_out["points"], c2w=c2w, valid=torch.ones_like(cast_out["dynamic"]), K=K,
                     depth=cast_out["depth"], dynamic=cast_out["dynamic"])


def render_clip(seed: int, config: SyntheticConfig = SyntheticConfig(),
                device: torch.device | str = "cpu") -> VideoSequence:
    """One synthetic clip as a `VideoSequence` named ``synthetic_{seed:06d}`` (timestamps = frame / fps)."""
    out = render_batch([seed], config, device)
    return VideoSequence(
        name=f"synthetic_{seed:06d}", rgb=out.rgb[0], K=out.K[0], c2w=out.c2w[0], depth=out.depth[0],
        valid=out.valid[0], dynamic=out.dynamic[0], points=out.points[0],
        timestamps=torch.arange(config.num_frames, dtype=torch.float64, device=out.rgb.device) / config.fps,
        depth_max=None)


__all__ = [
    "ENVIRONMENTS", "PATH_KINDS", "PRIMITIVES", "SPLIT_SEEDS", "SYNTHETIC_PRESETS", "SyntheticConfig", "SyntheticScene",
    "axis_angle_matrix", "look_at", "render_batch", "render_clip", "render_scenes", "sample_scene", "split_seed",
    "synthetic_config",
]
