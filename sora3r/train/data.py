"""Pluggable training data: a data source maps ``(step, batch_size)`` to a `ClipBatch` on the training device.

A batch carries ``rgb uint8 (B, T, H, W, 3)``, ``points float (B, T, H, W, 3)`` world, ``c2w (B, T, 4, 4)``
and ``valid bool (B, T, H, W)`` (plus whatever else the source has). A source that depends only on the
step (the synthetic one) makes a resumed run see exactly the data of an uninterrupted one.
"""

from __future__ import annotations

import math
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Callable, Iterable, Literal

import torch

from sora3r.data.synthetic import SYNTHETIC_PRESETS
from sora3r.types import ClipBatch

DataSource = Callable[[int, int], ClipBatch]
# The names of `sora3r.data.synthetic.SYNTHETIC_PRESETS`, and "mixed": their steps alternate (`MIXED`).
SyntheticPreset = Literal[(*SYNTHETIC_PRESETS, "mixed")]
MIXED = ("default", "realistic")  # "mixed": step s draws from preset MIXED[s % 2]
# A prime above any count of training processes (x DataLoader workers): ``seed * RANK_STRIDE + rank`` gives every
# process of every seed its own random stream.
RANK_STRIDE = 1009


def _sample_scenes(seeds: list[int], config) -> list:
    from sora3r.data.synthetic import sample_scene

    return [sample_scene(seed, config) for seed in seeds]


def _single_threaded() -> None:
    torch.set_num_threads(1)


def synthetic_source(num_frames: int, height: int, width: int, device: torch.device | str,
                     process_index: int = 0, num_processes: int = 1, workers: int = 0,
                     preset: str = "default") -> DataSource:
    """Synthetic scenes of the named ``preset`` (`sora3r.data.synthetic.SYNTHETIC_PRESETS`) rendered on ``device``
    (with the preset's photometric augmentation, if any, applied there too); step ``s`` of process ``r`` uses the
    training seeds ``split_seed("train", (s * num_processes + r) * B + j)``, so processes never share a clip, and a
    clip depends on its seed and preset alone. ``preset="mixed"`` alternates the presets of `MIXED` step by step
    (each batch is of one preset: the renderer takes one config a batch).

    Drawing a scene's parameters is CPU work (~10 ms a clip); with ``workers > 0`` it runs ``2 * workers`` steps
    ahead in that many worker processes while the device ray casts, and the batches stay exactly the same.

    Raises:
        ValueError: ``preset`` is none of `SyntheticPreset`.
    """
    from sora3r.data.synthetic import render_scenes, split_seed, synthetic_config

    names = MIXED if preset == "mixed" else (preset,)
    configs = [synthetic_config(name, num_frames=num_frames, height=height, width=width) for name in names]

    def config_of(step: int):
        return configs[step % len(configs)]

    def seeds_of(step: int, batch_size: int) -> list[int]:
        first = (step * num_processes + process_index) * batch_size
        return [split_seed("train", first + j) for j in range(batch_size)]

    if workers == 0:
        def source(step: int, batch_size: int) -> ClipBatch:
            config = config_of(step)
            return render_scenes(_sample_scenes(seeds_of(step, batch_size), config), config, device)

        return source

    # Spawned (not forked) workers: the parent may already hold a CUDA context.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_single_threaded)
    pending: dict[tuple[int, int], Future] = {}

    def source(step: int, batch_size: int) -> ClipBatch:
        for ahead in range(step, step + 2 * workers):
            if (ahead, batch_size) not in pending:
                pending[ahead, batch_size] = pool.submit(_sample_scenes, seeds_of(ahead, batch_size), config_of(ahead))
        scenes = pending.pop((step, batch_size)).result()
        for key in [k for k in pending if k[0] < step]:  # a jump backwards or forwards (resume) leaves stale work
            pending.pop(key).cancel()
        return render_scenes(scenes, config_of(step), device)

    return source


def clip_stream_source(clips: Iterable[dict[str, torch.Tensor]], device: torch.device | str,
                       num_workers: int = 2) -> DataSource:
    """Batches from an iterable of per-clip dicts (e.g. ``sora3r.data.clips.ClipDataset``).

    The stream does not depend on the step: a resumed run sees new clips, not the same ones.
    """
    iterators: dict[int, object] = {}

    def source(step: int, batch_size: int) -> ClipBatch:
        if batch_size not in iterators:
            loader = torch.utils.data.DataLoader(clips, batch_size=batch_size, num_workers=num_workers,
                                                 pin_memory=torch.cuda.is_available())
            iterators[batch_size] = iter(loader)
        return ClipBatch(**next(iterators[batch_size])).to(device, non_blocking=True)

    return source


def parse_dataset_spec(spec: str) -> dict[str, tuple[str, float]]:
    """``"pointodyssey=/data/po,tartanair=/data/ta:2"`` -> ``{name: (root, weight)}`` (weight 1 unless given)."""
    from sora3r.data.datasets import list_datasets

    parsed = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, rest = item.partition("=")
        root, _, weight = rest.rpartition(":") if ":" in rest else (rest, "", "1")
        if not sep or not root or name not in list_datasets():
            raise ValueError(f"--datasets {item!r}: expected NAME=ROOT[:WEIGHT] with NAME one of {list_datasets()}")
        try:
            weight = float(weight)
        except ValueError:
            weight = math.nan
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"--datasets {item!r}: WEIGHT must be a positive number")
        parsed[name] = (root, weight)
    if not parsed:
        raise ValueError(f"--datasets {spec!r}: no dataset named")
    return parsed


def dataset_source(spec: str, num_frames: int, height: int, width: int, device: torch.device | str, seed: int = 0,
                   process_index: int = 0, num_processes: int = 1, workers: int = 2) -> DataSource:
    """Clips of the real datasets in ``spec`` (see :func:`parse_dataset_spec`) through `ClipDataset`; process ``r``
    reads its own shard of every dataset and draws from its own generator."""
    from functools import partial

    from sora3r.data.clips import ClipDataset
    from sora3r.data.datasets import iter_sequences

    datasets = parse_dataset_spec(spec)
    clips = ClipDataset({name: partial(iter_sequences, name, root) for name, (root, _) in datasets.items()},
                        num_frames, height, width, weights={name: w for name, (_, w) in datasets.items()},
                        seed=seed * RANK_STRIDE + process_index, process_shard=(process_index, num_processes))
    return clip_stream_source(clips, device, num_workers=workers)
