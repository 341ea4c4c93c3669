"""Throughput of the synthetic scene generator: clips/s of `render_batch` per preset, size, batch and device.

Usage: python benchmarks/bench_synthetic.py --device cpu|cuda [--repeats N] [--batches 8 32] [--threads N]
[--sizes 64x96 128x128] [--clock wall|process]

Each row times `render_batch` (the fastest of ``--repeats`` calls; drawing the scenes on the CPU, ray casting on the
device, and for the realistic preset the photometric augmentation) on fresh training seeds. Baselines from the same run: the same preset rendering
one clip per call (``x batch 1``) and the default preset at the same size and batch (``x default``); the presets are
timed alternately, so a shared machine's drift hits both alike. ``draw ms`` is the CPU time of drawing one scene's
parameters (what `--data-workers` processes do), ``augment ms`` the augmentation's share of a clip. A machine
yardstick (time of one 2**20-element float32 multiply on the device) is printed too, since shared CPUs vary a lot.
``--clock process`` (CPU only) times with the process's CPU time instead of the wall clock: clips per CPU-second,
which other jobs on a shared machine disturb far less than the wall clock (with ``--threads 1`` the two agree on an
idle machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import time

import torch

from sora3r.data.synthetic import render_batch, render_scenes, sample_scene, split_seed, synthetic_config
from sora3r.data.synthetic.augment import augment_rgb

PRESETS = ("default", "realistic")
_SEEDS = itertools.count()


def _fresh_seeds(batch: int) -> list[int]:
    return [split_seed("train", next(_SEEDS)) for _ in range(batch)]


_CLOCKS = {"wall": time.perf_counter, "process": time.process_time}
_clock = _CLOCKS["wall"]


def _seconds(call, device: torch.device, repeats: int) -> float:
    """The fastest of ``repeats`` calls, in seconds of ``_clock``, after one warm-up call (the minimum is what a
    shared machine's load disturbs least)."""
    call()  # warm-up (allocator, CUDA context / kernels, the texture bank)
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        begin = _clock()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, _clock() - begin)
    return best


def _multiply_ms(device: torch.device, repeats: int = 50) -> float:
    """Milliseconds per elementwise multiply of two 2**20-element float32 tensors on ``device``."""
    a, b = torch.rand(2**20, device=device), torch.rand(2**20, device=device)
    out = torch.empty_like(a)
    torch.mul(a, b, out=out)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    begin = _clock()
    for _ in range(repeats):
        torch.mul(a, b, out=out)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (_clock() - begin) / repeats * 1000.0


def _parts_ms(config, batch: int, device: torch.device, repeats: int) -> tuple[float, float]:
    """Milliseconds per clip of drawing the scene parameters (CPU) and of the augmentation (device)."""
    draw = _seconds(lambda: [sample_scene(s, config) for s in _fresh_seeds(batch)], torch.device("cpu"), repeats)
    if not config.augment:
        return draw / batch * 1000.0, 0.0
    scenes = [sample_scene(s, config) for s in _fresh_seeds(batch)]
    out = render_scenes(scenes, dataclasses.replace(config, augment=False), device)
    params = torch.stack([s.photometric for s in scenes])
    augment = _seconds(lambda: augment_rgb(out.rgb, params, out.points, out.c2w, out.K), device, repeats)
    return draw / batch * 1000.0, augment / batch * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per setting (the fastest counts)")
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--sizes", nargs="+", default=["64x96", "128x128"], help="clip sizes HxW (17 frames each)")
    parser.add_argument("--clock", choices=sorted(_CLOCKS), default="wall",
                        help="wall: elapsed seconds; process: CPU seconds of this process (CPU device only)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but CUDA is not available")
    if args.clock == "process" and device.type != "cpu":
        raise SystemExit("--clock process times CPU work only; use it with --device cpu")
    global _clock
    _clock = _CLOCKS[args.clock]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}, clock: {args.clock}")
    print(f"{'clip (TxHxW)':>14} {'preset':>10} {'batch':>6} {'clips/s':>9} {'x batch 1':>10} {'x default':>10} "
          f"{'draw ms':>8} {'augment ms':>11} {'yardstick ms':>13}")
    for height, width in (tuple(int(side) for side in size.split("x")) for size in args.sizes):
        configs = {p: synthetic_config(p, num_frames=17, height=height, width=width) for p in PRESETS}
        single: dict[str, float] = {}
        for batch in [1, *args.batches]:
            rates = {}
            for preset, config in configs.items():  # alternately, same batch
                yardstick = _multiply_ms(device)  # per row: a shared machine's speed drifts during a run
                seconds = _seconds(lambda: render_batch(_fresh_seeds(batch), config, device), device, args.repeats)
                rates[preset] = batch / seconds
                single.setdefault(preset, rates[preset])
                draw, augment = _parts_ms(config, batch, device, args.repeats)
                print(f"{f'17x{height}x{width}':>14} {preset:>10} {batch:>6} {rates[preset]:>9.2f} "
                      f"{rates[preset] / single[preset]:>10.2f} {rates[preset] / rates['default']:>10.2f} "
                      f"{draw:>8.1f} {augment:>11.1f} {yardstick:>13.3f}", flush=True)


if __name__ == "__main__":
    main()
