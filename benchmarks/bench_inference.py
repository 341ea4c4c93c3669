"""Inference speed, stage by stage: `Sora3RPipeline` against the plain diffusers eager path of the same models.

    python benchmarks/bench_inference.py                          # the bundled model, 17x64x96, on the CPU
    python benchmarks/bench_inference.py --preset paper --height 384 --width 512 --device cuda --dtype bf16 \\
        --peak-tflops 790                                         # paper-size presets, random weights, one H200

Stages of one window: encode (frames -> scaled video latent), sampling (``--steps`` transformer calls), decode
(pointmap latent -> normalised points), camera recovery (points -> c2w, K, depth), and `reconstruct` end to end.
The baseline is what a diffusers user writes for the same models: ``vae.encode(x).latent_dist.mode()``,
``FlowMatchEulerDiscreteScheduler.set_timesteps`` + ``scheduler.step`` around each transformer call,
``vae.decode(z).sample``, eager, no sora3r code in the loop (camera recovery has no diffusers counterpart).
Each figure is the median of ``--repeats`` timed runs after one warm-up; on CUDA every stage ends with a
synchronise. The transformer's FLOPs per call come from ``torch.utils.flop_counter``; with ``--peak-tflops`` (the
dense bf16 matmul peak of the card, measured: ~790 on an H200) the table gives the fraction of peak. Peak memory is
``torch.cuda.max_memory_allocated`` on CUDA and the process's peak RSS on the CPU (load included).
Issue 12's targets: paper preset 17x384x512, 4 steps, one H200 <= 0.35 s end to end, the DiT >= 60 % of peak; the
bundled model on a 2-core CPU <= 5 s for 17 frames (load excluded).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from typing import Callable

import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from torch.utils.flop_counter import FlopCounterMode

from sora3r.geometry import recover_cameras
from sora3r.models.inputs import rgb_to_model
from sora3r.models.transformer import JointLatentTransformer
from sora3r.models.vae import build_vae, decode_latents, encode_latents
from sora3r.pipeline import Sora3RPipeline

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> tuple[float, object]:
    """Median seconds of ``repeats`` calls after a warm-up, and the last result."""
    result = fn()
    seconds = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def build_pipeline(args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> Sora3RPipeline:
    if args.preset is None:
        return Sora3RPipeline.from_pretrained(args.model, device=device, dtype=dtype)
    torch.manual_seed(0)  # random weights: speed does not depend on them
    pipeline = Sora3RPipeline(video_vae=build_vae(args.preset), pointmap_vae=build_vae(args.preset),
                              transformer=JointLatentTransformer.from_preset(args.preset, prediction_type="sample"),
                              scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0), num_frames=args.frames,
                              height=args.height, width=args.width, squash=True, sampler_steps=args.steps)
    return pipeline.to(device=device, dtype=dtype)


def plain_diffusers(pipeline: Sora3RPipeline, video: torch.Tensor, steps: int) -> dict[str, Callable[[], object]]:
    """The baseline's three stages, as closures over the same models."""
    scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0)
    dtype = pipeline.transformer.dtype
    factor_in = pipeline.video_vae.config.scaling_factor
    factor_out = pipeline.pointmap_vae.config.scaling_factor

    def encode():
        return pipeline.video_vae.encode(video.to(dtype)).latent_dist.mode() * factor_in

    latent = encode()

    def sample():
        scheduler.set_timesteps(steps, device=video.device)
        x = torch.randn(latent.shape, device=latent.device, dtype=dtype)
        for t in scheduler.timesteps:
            flow_time = (t / scheduler.config.num_train_timesteps).expand(x.shape[0])
            velocity = pipeline.transformer(x, latent, flow_time)
            x = scheduler.step(velocity, t, x).prev_sample
        return x

    pointmap_latent = sample()
    return {"encode": encode, "sampling": sample,
            "decode": lambda: pipeline.pointmap_vae.decode(pointmap_latent / factor_out).sample}


def ours(pipeline: Sora3RPipeline, frames: torch.Tensor, steps: int) -> dict[str, Callable[[], object]]:
    video = rgb_to_model(frames[None].to(pipeline.device))
    latent = encode_latents(pipeline.video_vae, video)
    pointmap_latent = pipeline.sample_pointmap_latent(latent, steps)
    decoded = decode_latents(pipeline.pointmap_vae, pointmap_latent).float().permute(0, 2, 3, 4, 1)
    points = pipeline.target.decode(decoded)[0]
    return {"encode": lambda: encode_latents(pipeline.video_vae, rgb_to_model(frames[None].to(pipeline.device))),
            "sampling": lambda: pipeline.sample_pointmap_latent(latent, steps),
            "decode": lambda: pipeline.target.decode(
                decode_latents(pipeline.pointmap_vae, pointmap_latent).float().permute(0, 2, 3, 4, 1)),
            "camera recovery": lambda: recover_cameras(points),
            "end to end": lambda: pipeline.reconstruct(frames, num_steps=steps)}


def transformer_flops(pipeline: Sora3RPipeline, frames: torch.Tensor) -> int:
    latent = encode_latents(pipeline.video_vae, rgb_to_model(frames[None].to(pipeline.device)))
    latent = latent.to(pipeline.transformer.dtype)
    with FlopCounterMode(display=False) as counter:
        pipeline.transformer(torch.randn_like(latent), latent, torch.ones(1, device=latent.device))
    return counter.get_total_flops()


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    parser.add_argument("--preset", default=None, help="random weights of this VAE/transformer preset instead")
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the card's dense matmul peak, for the fraction")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    torch.set_grad_enabled(False)

    pipeline = build_pipeline(args, device, dtype)
    for module in (pipeline.video_vae, pipeline.pointmap_vae, pipeline.transformer):
        module.requires_grad_(False)  # the FLOP counter's module hooks trip over parameters that want gradients
    frames_count, height, width = pipeline.clip_shape
    frames = torch.randint(0, 256, (frames_count, height, width, 3), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    ours_stages = ours(pipeline, frames, args.steps)
    baseline = plain_diffusers(pipeline, rgb_to_model(frames[None].to(device)), args.steps)
    flops = transformer_flops(pipeline, frames)

    name = args.model or (f"{args.preset} preset (random weights)" if args.preset else "bundled model")
    print(f"{name}: {frames_count}x{height}x{width}, {args.steps} steps, {args.device} {args.dtype}, "
          f"{torch.get_num_threads()} CPU threads, median of {args.repeats}")
    print(f"{'stage':<18}{'sora3r (s)':>12}{'plain diffusers (s)':>21}{'ratio':>8}")
    for stage, fn in ours_stages.items():
        mine, _ = timed(fn, device, args.repeats)
        theirs = timed(baseline[stage], device, args.repeats)[0] if stage in baseline else None
        other = f"{theirs:>21.3f}{theirs / mine:>7.2f}x" if theirs else f"{'-':>21}{'':>8}"
        print(f"{stage:<18}{mine:>12.3f}{other}")
        if stage == "sampling":
            per_step = mine / args.steps
            rate = flops / per_step / 1e9
            share = f", {rate / 1e3 / args.peak_tflops:.0%} of the {args.peak_tflops:g} TFLOP/s peak" \
                if args.peak_tflops else ""
            print(f"{'':<18}transformer: {flops / 1e9:.2f} GFLOP a call, {per_step * 1e3:.1f} ms a step = "
                  f"{rate:.1f} GFLOP/s{share}")
    frames_per_second = frames_count / timed(ours_stages["end to end"], device, 1)[0]
    print(f"end to end: {frames_per_second:.1f} frames/s; peak memory {peak_memory_gib(device):.2f} GiB")


if __name__ == "__main__":
    main()
