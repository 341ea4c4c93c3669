"""The diffusion transformer alone at paper scale: how close one call gets to the card's matmul peak, and what each
compile setting gives (issue 12's "DiT >= 60 % of the matmul peak").

    python benchmarks/bench_dit.py [--frames 17 --height 384 --width 512] [--modes eager default ...] [--profile]

One ``JointLatentTransformer`` of the ``paper`` preset (CogVideoX-2B layout, random weights, bf16, x-prediction as
the bundled models) on the latent of a ``frames x height x width`` clip, ``(1, 16, 1 + (frames - 1) / 4, height / 8,
width / 8)``, with fused QKV projections unless ``--unfused``. The peak is measured in the same run: the median rate
of a bf16 ``8192 x 8192 x 8192`` matmul (cuBLAS), so the fraction needs no datasheet figure. FLOPs per call come from
``torch.utils.flop_counter``. Per mode: the median of ``--repeats`` calls (CUDA events, after the compiling call),
TFLOP/s, the fraction of peak, the ratio to eager, the compile time and the peak memory. Modes (each compiled from a
fresh ``torch._dynamo`` state): ``eager``; ``default``, ``reduce-overhead``, ``max-autotune-no-cudagraphs`` and
``max-autotune`` (``torch.compile`` modes); ``default+freezing`` (``default`` with inductor's ``freezing``: weights
folded in as constants, inference only). ``--profile`` prints where the GPU time of one ``default`` call goes (matmul,
attention, other kernels), from ``torch.profiler``. Modes that would start past ``--budget`` seconds are skipped; the
``max-autotune`` ones run only when asked for (on an H200 they were still autotuning after 4 minutes).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench_camera_recovery import median_seconds
from sora3r.models.fast import ATTENTION_BACKENDS, attention_context, set_fused_qkv
from sora3r.models.transformer import JointLatentTransformer

CUDA = torch.device("cuda")
MODES = ("eager", "default", "default+freezing", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")


def matmul_peak_tflops(size: int = 8192, repeats: int = 20) -> float:
    """Median TFLOP/s of a bf16 ``size^3`` matmul on the current GPU."""
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    return 2 * size**3 / median_seconds(lambda: a @ b, CUDA, repeats) / 1e12


def kernel_shares(call) -> tuple[dict[str, float], dict[str, str]]:
    """Milliseconds of GPU kernel time in one ``call`` by kind (matmul, attention, other), and each kind's largest
    kernel by name."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        call()
        torch.cuda.synchronize()
    shares = {"matmul": 0.0, "attention": 0.0, "other": 0.0}
    largest: dict[str, tuple[float, str]] = {}
    for event in prof.key_averages():
        if event.device_type != torch.autograd.DeviceType.CUDA:
            continue
        name = event.key.lower()
        kind = ("attention" if any(k in name for k in ("flash", "fmha", "attention", "cudnn", "sdpa"))
                else "matmul" if any(k in name for k in ("gemm", "nvjet", "cutlass", "sm90_xmma", "matmul", "mm_"))
                else "other")
        shares[kind] += event.device_time_total / 1e3
        largest[kind] = max(largest.get(kind, (0.0, "")), (event.device_time_total, event.key))
    return shares, {kind: name[:80] for kind, (_, name) in largest.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES[:4]),
                        help="default: the four that compile within minutes (max-autotune autotunes ~45 s a matmul shape)")
    parser.add_argument("--unfused", action="store_true", help="keep three QKV projections")
    parser.add_argument("--attention", choices=sorted(ATTENTION_BACKENDS), default=None,
                        help="one SDPA backend for every mode (default: PyTorch's choice)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds; later modes are skipped past it")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_dit.py: needs a CUDA GPU")
    started = time.perf_counter()
    torch.manual_seed(0)
    model = JointLatentTransformer.from_preset("paper", prediction_type="sample").to("cuda", torch.bfloat16).eval()
    model.requires_grad_(False)
    set_fused_qkv(model.transformer, not args.unfused, False)
    shape = (1, 16, 1 + (args.frames - 1) // 4, args.height // 8, args.width // 8)
    noisy = torch.randn(shape, device="cuda", dtype=torch.bfloat16)
    video = torch.randn(shape, device="cuda", dtype=torch.bfloat16)
    t = torch.full((1,), 0.5, device="cuda")
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(noisy, video, t)
    flops = counter.get_total_flops()
    peak = matmul_peak_tflops()
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}; bf16 8192^3 matmul {peak:.0f} TFLOP/s (the peak)")
    print(f"paper transformer, latent {shape}, {'unfused' if args.unfused else 'fused'} QKV, SDPA "
          f"{args.attention or 'default'}, "
          f"{flops / 1e9:.0f} GFLOP a call")
    print("| mode | ms a call | TFLOP/s | of peak | vs eager | compile s | peak GiB |\n|---|---|---|---|---|---|---|")
    eager_ms = None
    for mode in args.modes:
        if time.perf_counter() - started > args.budget:
            print(f"| {mode} | skipped: past the {args.budget:.0f} s budget | | | | | |")
            continue
        torch._dynamo.reset()
        torch._inductor.config.freezing = mode.endswith("+freezing")
        network = model if mode == "eager" else torch.compile(model, mode=mode.split("+")[0], dynamic=False)
        torch.cuda.reset_peak_memory_stats()
        with torch.inference_mode(), attention_context(args.attention):
            first = time.perf_counter()
            network(noisy, video, t)
            network(noisy, video, t)  # reduce-overhead records its graph on a later call
            torch.cuda.synchronize()
            compile_s = time.perf_counter() - first
            ms = 1e3 * median_seconds(lambda: network(noisy, video, t), CUDA, args.repeats, warm_up=False)
        eager_ms = eager_ms or ms
        rate = flops / ms / 1e9
        print(f"| {mode} | {ms:.2f} | {rate:.0f} | {rate / peak:.0%} | {eager_ms / ms:.2f}x | "
              f"{compile_s if mode != 'eager' else 0:.0f} | {torch.cuda.max_memory_allocated() / 2**30:.2f} |",
              flush=True)
        if args.profile and mode == "default":
            with torch.inference_mode(), attention_context(args.attention):
                shares, names = kernel_shares(lambda: network(noisy, video, t))
            total = sum(shares.values())
            print("  GPU time of one call: " + ", ".join(f"{k} {v:.2f} ms ({v / total:.0%})" for k, v in shares.items())
                  + "; largest kernels: " + "; ".join(f"{k} {v}" for k, v in names.items()), flush=True)


if __name__ == "__main__":
    main()
