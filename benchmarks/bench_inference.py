"""Inference speed, stage by stage: `Sora3RPipeline` against the plain diffusers eager path of the same models.

    python benchmarks/bench_inference.py                          # the bundled model, 17x64x96, on the CPU
    python benchmarks/bench_inference.py --preset paper --height 384 --width 512 --device cuda --dtype bf16 \\
        --peak-tflops 790                                         # paper-size presets, random weights, one H200
    ... --pointmap-vae-preset paper-light                         # the same with the lighter pointmap VAE

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
from sora3r.models.fast import ATTENTION_BACKENDS, COMPILE_MODES, FastPaths
from sora3r.models.inputs import rgb_to_model
from sora3r.models.transformer import JointLatentTransformer
from sora3r.models.vae import build_vae, decode_latents, encode_latents
from sora3r.pipeline import Sora3RPipeline

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> tuple[float, object, float]:
    """Median seconds of ``repeats`` calls after a warm-up call, the last result, and the warm-up's seconds (which
    include any compilation)."""
    seconds = []
    for _ in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds[1:]), result, seconds[0]


def build_pipeline(args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> Sora3RPipeline:
    if args.preset is None:
        return Sora3RPipeline.from_pretrained(args.model, device=device, dtype=dtype)
    torch.manual_seed(0)  # random weights: speed does not depend on them
    pointmap_vae = build_vae(args.pointmap_vae_preset or args.preset)
    pipeline = Sora3RPipeline(video_vae=build_vae(args.preset), pointmap_vae=pointmap_vae,
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
    """`Sora3RPipeline`'s stages as closures (each stage's input computed once, with the pipeline's current fast
    paths), and `reconstruct` end to end."""
    video = rgb_to_model(frames[None].to(pipeline.device))
    latent = encode_latents(pipeline.video_vae, video)
    pointmap_latent = pipeline.sample_pointmap_latent(latent, steps, torch.Generator(pipeline.device).manual_seed(0))
    decoded = decode_latents(pipeline.pointmap_vae, pointmap_latent).float().permute(0, 2, 3, 4, 1)
    points = pipeline.target.decode(decoded)[0]
    return {"encode": lambda: encode_latents(pipeline.video_vae, rgb_to_model(frames[None].to(pipeline.device))),
            "sampling": lambda: pipeline.sample_pointmap_latent(latent, steps),
            "decode": lambda: pipeline.target.decode(
                decode_latents(pipeline.pointmap_vae, pointmap_latent).float().permute(0, 2, 3, 4, 1)),
            "camera recovery": lambda: recover_cameras(points, compile_mode=pipeline.fast_paths.camera_mode),
            "end to end": lambda: pipeline.reconstruct(frames, num_steps=steps)}


def transformer_flops(pipeline: Sora3RPipeline, frames: torch.Tensor) -> int:
    latent = encode_latents(pipeline.video_vae, rgb_to_model(frames[None].to(pipeline.device)))
    latent = latent.to(pipeline.transformer.dtype)
    with FlopCounterMode(display=False) as counter:
        pipeline.transformer(torch.randn_like(latent), latent, torch.ones(1, device=latent.device))
    return counter.get_total_flops()


def peak_memory_gib(device: torch.device) -> float:
    """Peak memory since the last reset: allocated on CUDA; on the CPU the process's peak RSS (load included)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


STAGES = ("encode", "sampling", "decode", "camera recovery", "end to end")


def print_row(name: str, times: dict[str, float], baseline: float, extra: str) -> None:
    cells = "".join(f"{times[stage]:>9.3f}" if stage in times else f"{'-':>9}" for stage in STAGES)
    print(f"{name:<31}{cells}{baseline / times['end to end']:>8.2f}x  {extra}", flush=True)


def dit_rate(seconds: float, steps: int, flops: int, peak_tflops: float | None) -> str:
    """The transformer's achieved TFLOP/s over ``steps`` calls in ``seconds`` (and the fraction of the peak)."""
    rate = flops * steps / seconds / 1e12
    return f"DiT {rate:6.1f} TFLOP/s" + (f" ={rate / peak_tflops:4.0%} of peak" if peak_tflops else "")


def measure_row(name: str, make_stages: Callable[[], dict[str, Callable[[], object]]], args: argparse.Namespace,
                flops: int, baseline: float | None, reference=None) -> tuple[dict[str, float], object]:
    """Time every stage of one configuration and print its row, with the seconds its first calls took beyond the
    timed medians (compile time, for a compiled configuration) and the largest distance between its decoded points
    and ``reference`` (the default's)."""
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    stages = make_stages()  # runs each stage once to make the next one's input (compiles, when compiled)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    warmup = time.perf_counter() - started
    times, result = {}, None
    for stage, fn in stages.items():
        times[stage], value, first = timed(fn, device, args.repeats)
        warmup += first - times[stage] - (times[stage] if stage in STAGES[:3] else 0.0)
        if stage == "decode":
            result = value  # the normalised points (before camera recovery, which random weights make chaotic)
    if "end to end" not in times:  # the plain path: its stages back to back
        times["end to end"] = times["encode"] + times["sampling"] + times["decode"]
    warmup = max(warmup, 0.0)
    extra = (f"{dit_rate(times['sampling'], args.steps, flops, args.peak_tflops)}  "
             f"{args.frames / times['end to end']:6.1f} frames/s  peak {peak_memory_gib(device):6.2f} GiB  "
             f"first calls +{warmup:6.1f} s")
    if reference is not None and result is not None:
        distance = (result - reference).norm(dim=-1)
        extra += f"  decoded points vs default: mean {float(distance.mean()):.1e} max {float(distance.max()):.1e}"
    print_row(name, times, baseline or times["end to end"], extra)
    return times, result


def fast_rows(args: argparse.Namespace) -> list[tuple[str, FastPaths]]:
    """The fast-path configurations to measure, cheapest to undo first; compilation (irreversible) last."""
    rows = [(f"attention {backend}", FastPaths(attention=backend)) for backend in args.attention]
    if args.fuse_qkv:
        rows.append(("fused QKV", FastPaths(fuse_qkv=True)))
    if args.channels_last:
        rows.append(("channels-last VAEs", FastPaths(channels_last=True)))
    for mode in args.compile:
        rows.append((f"compile {mode} + levers above", FastPaths(attention=args.attention[0] if args.attention else None,
                                                                fuse_qkv=args.fuse_qkv,
                                                                channels_last=args.channels_last, compile=mode,
                                                                camera_compile=args.camera_compile)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    parser.add_argument("--preset", default=None, help="random weights of this VAE/transformer preset instead")
    parser.add_argument("--pointmap-vae-preset", default=None,
                        help="with --preset: another preset for the pointmap VAE alone (e.g. paper-light)")
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the card's dense matmul peak, for the fraction")
    parser.add_argument("--attention", nargs="*", default=[], choices=sorted(ATTENTION_BACKENDS),
                        help="SDPA backends to measure as rows (the first also goes into the compile rows)")
    parser.add_argument("--fuse-qkv", action="store_true",
                        help="measure the transformer's fused QKV projections as a row (also in the compile rows)")
    parser.add_argument("--channels-last", action="store_true", help="measure channels-last VAEs as a row")
    parser.add_argument("--camera-compile", default=None, choices=COMPILE_MODES,
                        help="in the compile rows, this mode for camera recovery (e.g. reduce-overhead: CUDA graphs)")
    parser.add_argument("--compile", nargs="*", default=[], choices=COMPILE_MODES,
                        help="torch.compile modes to measure as rows, last (compile time reported)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    torch.set_grad_enabled(False)

    pipeline = build_pipeline(args, device, dtype)
    for module in (pipeline.video_vae, pipeline.pointmap_vae, pipeline.transformer):
        module.requires_grad_(False)  # the FLOP counter's module hooks trip over parameters that want gradients
    frames_count, height, width = pipeline.clip_shape
    args.frames = frames_count
    frames = torch.randint(0, 256, (frames_count, height, width, 3), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    video = rgb_to_model(frames[None].to(device))
    flops = transformer_flops(pipeline, frames)

    name = args.model or (f"{args.preset} preset (random weights)" if args.preset else "bundled model")
    if args.preset and args.pointmap_vae_preset:
        name += f", {args.pointmap_vae_preset} pointmap VAE"
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    print(f"{name}: {frames_count}x{height}x{width}, {args.steps} steps, {args.device} {args.dtype} ({gpu}), "
          f"torch {torch.__version__}, median of {args.repeats} after one warm-up; seconds per stage")
    print(f"transformer: {flops / 1e9:.1f} GFLOP a call; 'end' = reconstruct end to end (plain: its 3 stages)")
    print(f"{'configuration':<31}" + "".join(f"{stage.split()[0]:>9}" for stage in STAGES) + f"{'vs plain':>9}")
    plain, _ = measure_row("plain diffusers eager", lambda: plain_diffusers(pipeline, video, args.steps), args, flops,
                           None)
    _, reference = measure_row("sora3r default", lambda: ours(pipeline, frames, args.steps), args, flops,
                               plain["end to end"])
    for label, fast in fast_rows(args):
        try:
            pipeline.enable_fast_paths(fast)
            measure_row(label, lambda: ours(pipeline, frames, args.steps), args, flops, plain["end to end"], reference)
        except Exception as error:  # a backend this GPU / input does not support: report it and go on
            print(f"{label:<31}failed: {type(error).__name__}: {str(error).splitlines()[0][:150]}", flush=True)
        pipeline.enable_fast_paths(FastPaths(compile=pipeline.fast_paths.compile,  # undo the reversible levers
                                             camera_compile=pipeline.fast_paths.camera_compile))


if __name__ == "__main__":
    main()
