"""Throughput of the synthetic scene generator: clips/s of `render_batch` per size, batch and device.

Usage: python benchmarks/bench_synthetic.py --device cpu|cuda [--repeats N]

The baseline (same run, same device) is the same generator rendering one clip per call (batch 1); the
table gives each batched setting's clips/s and its ratio to that baseline. A machine yardstick (time of
one 2**20-element float32 multiply on the device) is printed too, since shared CPUs vary a lot in speed.
"""

from __future__ import annotations

import argparse
import time

import torch

from sora3r.data.synthetic import SyntheticConfig, render_batch, split_seed


def _clips_per_second(config: SyntheticConfig, batch: int, device: torch.device, repeats: int) -> float:
    """Mean clips/s over ``repeats`` calls with fresh seeds, after one warm-up call."""
    seeds = iter(split_seed("train", i) for i in range(10**6))

    def call() -> None:
        render_batch([next(seeds) for _ in range(batch)], config, device)

    call()  # warm-up (allocator, CUDA context / kernels)
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)
        start.record()
        for _ in range(repeats):
            call()
        end.record()
        torch.cuda.synchronize(device)
        seconds = start.elapsed_time(end) / 1000.0
    else:
        begin = time.perf_counter()
        for _ in range(repeats):
            call()
        seconds = time.perf_counter() - begin
    return batch * repeats / seconds


def _multiply_ms(device: torch.device, repeats: int = 50) -> float:
    """Milliseconds per elementwise multiply of two 2**20-element float32 tensors on ``device``."""
    a, b = torch.rand(2**20, device=device), torch.rand(2**20, device=device)
    out = torch.empty_like(a)
    torch.mul(a, b, out=out)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    begin = time.perf_counter()
    for _ in range(repeats):
        torch.mul(a, b, out=out)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - begin) / repeats * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per setting")
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 32])
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but CUDA is not available")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}")
    print(f"{'clip (TxHxW)':>14} {'batch':>6} {'clips/s':>10} {'x batch 1':>10} {'yardstick ms':>13}")
    for size in (128, 64):
        config = SyntheticConfig(num_frames=17, height=size, width=size)
        baseline = None
        for batch in [1, *args.batches]:
            yardstick = _multiply_ms(device)  # per row: a shared machine's speed drifts during a run
            rate = _clips_per_second(config, batch, device, args.repeats)
            baseline = baseline or rate
            print(f"{f'17x{size}x{size}':>14} {batch:>6} {rate:>10.2f} {rate / baseline:>10.2f} {yardstick:>13.3f}",
                  flush=True)


if __name__ == "__main__":
    main()
