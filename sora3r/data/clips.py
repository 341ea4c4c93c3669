"""Training clips from real sequences: frame sampling, resize + crop with consistent intrinsics, world points.

`sample_training_clip` turns one `VideoSequence` (any reader's) into a fixed-size clip; `ClipDataset` mixes several
readers into an endless stream of such clips as dicts of tensors named like the fields of `sora3r.types.ClipBatch`
(no batch dimension: the DataLoader adds it, and the training data source makes the batch a `ClipBatch`).

Pixel convention (OpenCV): integer pixel coordinates are pixel centres, so resizing by a factor ``s`` maps a pixel
coordinate ``x`` to ``(x + 0.5) * s - 0.5`` and cropping at ``x0`` subtracts ``x0``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace

import torch

from sora3r.data.video import adjust_intrinsics, resize_and_crop, sample_clip_indices
from sora3r.geometry.projection import pixel_affine, unproject_depth
from sora3r.geometry.transforms import invert_rigid
from sora3r.text import plural
from sora3r.types import VideoSequence

# Sources are callables that yield sequences; ClipDataset passes shard=(index, count) so that DataLoader workers read
# disjoint sequences (every training-set reader, `iter_pointodyssey` etc., accepts it).
SequenceSource = Callable[..., Iterator[VideoSequence]]


def _random_int(low: int, high: int, generator: torch.Generator) -> int:
    """Uniform integer in ``[low, high]`` (inclusive)."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def _sample_nearest(maps: torch.Tensor, affine: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(T, h, w)`` maps resampled onto a ``(height, width)`` grid by nearest neighbour through ``affine``.

    ``affine`` maps source pixel coordinates to output ones (pixel centres at integers, as for K), so output pixel
    ``(u', v')`` takes the source pixel nearest to ``affine^-1 [u', v', 1]``; values are never blended.
    """
    inverse = torch.linalg.inv(affine)
    u = torch.arange(width, dtype=torch.float64) * inverse[0, 0] + inverse[0, 2]
    v = torch.arange(height, dtype=torch.float64) * inverse[1, 1] + inverse[1, 2]
    cols = torch.floor(u + 0.5).long().clamp(0, maps.shape[2] - 1)
    rows = torch.floor(v + 0.5).long().clamp(0, maps.shape[1] - 1)
    return maps[:, rows[:, None], cols[None, :]]


def sample_training_clip(seq: VideoSequence, num_frames: int, height: int, width: int, generator: torch.Generator,
                         max_stride: int = 4, random_crop: bool = True) -> VideoSequence:
    """A random ``num_frames``-frame clip of ``seq`` at ``(height, width)``, re-based to its first camera.

    Frames are taken at a random stride in ``1..max_stride`` (lowered so the clip fits) from a random start. Frames are
    resized (one scale for both axes, the smallest that covers the target; antialiased bilinear, `resize_and_crop`)
    and cropped at random (``random_crop``) or in the centre. Depth / valid / dynamic are resampled through the same
    pixel mapping by nearest neighbour, and K follows it exactly (`adjust_intrinsics`). The returned poses are
    relative to the clip's first camera (``c2w[0]`` is the identity, as the model's geometry target wants) and
    ``points`` are the unprojection of the returned depth with the returned K and c2w.

    Raises:
        ValueError: when ``seq`` lacks depth, K or c2w, or has fewer than ``num_frames`` frames (or a size is < 1).
    """
    if seq.depth is None or seq.K is None or seq.c2w is None:
        raise ValueError(f"sequence {seq.name!r} needs depth, K and c2w to make a training clip")
    if num_frames < 1 or max_stride < 1:
        raise ValueError(f"num_frames and max_stride must be >= 1, got {num_frames} and {max_stride}")
    length = seq.num_frames
    if length < num_frames:
        raise ValueError(f"sequence {seq.name!r} has {plural(length, 'frame')}, a clip needs {num_frames}")

    largest_stride = max_stride if num_frames == 1 else min(max_stride, (length - 1) // (num_frames - 1))
    stride = _random_int(1, largest_stride, generator)
    start = _random_int(0, length - 1 - (num_frames - 1) * stride, generator)
    clip = seq.subset(sample_clip_indices(length, num_frames, stride, start))

    # Resize to the smallest size covering the target (the same rule as resize_and_crop), then crop ourselves so that
    # the crop can be random; the affine tracks both steps for K and for the nearest-neighbour maps.
    src_h, src_w = clip.hw
    scale = max(height / src_h, width / src_w)
    cover_h, cover_w = max(height, round(src_h * scale)), max(width, round(src_w * scale))
    rgb, affine = resize_and_crop(clip.rgb, cover_h, cover_w)
    top = _random_int(0, cover_h - height, generator) if random_crop else (cover_h - height) // 2
    left = _random_int(0, cover_w - width, generator) if random_crop else (cover_w - width) // 2
    rgb = rgb[:, top : top + height, left : left + width].contiguous()
    affine = pixel_affine(1.0, 1.0, left, top) @ affine

    valid = clip.valid if clip.valid is not None else clip.depth > 0
    depth = _sample_nearest(clip.depth.float(), affine, height, width)
    valid = _sample_nearest(valid, affine, height, width) & (depth > 0)
    depth = torch.where(valid, depth, 0.0)
    dynamic = None if clip.dynamic is None else _sample_nearest(clip.dynamic, affine, height, width)
    K = adjust_intrinsics(clip.K.to(torch.float64), affine).to(torch.float32)
    c2w = (invert_rigid(clip.c2w[0].to(torch.float64)) @ clip.c2w.to(torch.float64)).to(torch.float32)
    return replace(clip, name=f"{seq.name}@{start}:{stride}", rgb=rgb, K=K, c2w=c2w, depth=depth, valid=valid,
                   dynamic=dynamic, points=unproject_depth(depth, K, c2w))


def _shared_intrinsics(K: torch.Tensor, rtol: float = 1e-4) -> torch.Tensor | None:
    """``(3, 3)`` intrinsics of a clip, or None when its per-frame intrinsics differ."""
    if K.ndim == 2:
        return K
    return K[0] if torch.allclose(K, K[:1].expand_as(K), rtol=rtol, atol=0.0) else None


class ClipDataset(torch.utils.data.IterableDataset):
    """An endless stream of training clips mixed from several sequence sources.

    Each step picks a source with probability proportional to its weight, takes the next sequence of that source
    (starting over when it runs out) and yields ``clips_per_sequence`` clips of it (reading a sequence costs far more
    than sampling from it). DataLoader workers (of every training process) read disjoint shards of every source and draw
    from their own generator (``seed + worker id``).

    Yields dicts (no batch dimension): ``rgb uint8 (T, H, W, 3)``, ``depth float32 (T, H, W)``, ``points float32
    (T, H, W, 3)`` in the first camera's frame, ``c2w float32 (T, 4, 4)`` (``c2w[0]`` = identity), ``K float32 (3, 3)``,
    ``valid bool (T, H, W)``.

    Args:
        sources: name -> callable returning an iterator of `VideoSequence` and accepting ``shard=(index, count)``, e.g.
            ``functools.partial(pointodyssey.iter_pointodyssey, root, split="train", max_frames=200)``.
        weights: name -> sampling weight (default: equal).
        process_shard: ``(rank, world size)`` of the training process: each (process, worker) pair reads its own
            shard of every source.
    """

    def __init__(self, sources: Mapping[str, SequenceSource], num_frames: int, height: int, width: int,
                 weights: Mapping[str, float] | None = None, max_stride: int = 4, clips_per_sequence: int = 4,
                 random_crop: bool = True, seed: int = 0, process_shard: tuple[int, int] = (0, 1)):
        super().__init__()
        if not sources:
            raise ValueError("ClipDataset needs at least one source")
        weights = dict(weights) if weights is not None else {name: 1.0 for name in sources}
        if set(weights) != set(sources) or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"weights {weights} must be non-negative, not all zero, one per source {list(sources)}")
        self.sources = dict(sources)
        self.names = list(sources)
        self.weights = torch.tensor([float(weights[name]) for name in self.names])
        self.num_frames, self.height, self.width = num_frames, height, width
        self.max_stride, self.clips_per_sequence, self.random_crop, self.seed = (
            max_stride, clips_per_sequence, random_crop, seed)
        self.process_shard = process_shard

    def _endless_sequences(self, name: str, worker: int, num_workers: int) -> Iterator[VideoSequence]:
        """Sequences of one source long enough for a clip, cycling forever over this worker's shard."""
        shard = (worker, num_workers)
        while True:
            yielded = 0
            for seq in self.sources[name](shard=shard):
                if seq.num_frames >= self.num_frames:
                    yielded += 1
                    yield seq
            if yielded == 0:
                if shard == (0, 1):
                    raise ValueError(f"source {name!r} has no sequence with at least {self.num_frames} frames")
                shard = (0, 1)  # fewer sequences than workers: this worker reads them all

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        process, num_processes = self.process_shard  # training processes x DataLoader workers share the sequences
        worker, num_workers = process * num_workers + worker, num_processes * num_workers
        generator = torch.Generator().manual_seed(self.seed + worker)
        streams = {name: self._endless_sequences(name, worker, num_workers) for name in self.names}
        while True:
            name = self.names[int(torch.multinomial(self.weights, 1, generator=generator))]
            seq = next(streams[name])
            for _ in range(self.clips_per_sequence):
                clip = sample_training_clip(seq, self.num_frames, self.height, self.width, generator,
                                            max_stride=self.max_stride, random_crop=self.random_crop)
                K = _shared_intrinsics(clip.K)
                if K is None:
                    warnings.warn(f"skipping clip {clip.name}: its intrinsics change over time", stacklevel=2)
                    continue
                yield {"rgb": clip.rgb, "depth": clip.depth, "points": clip.points, "c2w": clip.c2w, "K": K,
                       "valid": clip.valid}
