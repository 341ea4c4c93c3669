"""How much a lighter pointmap decoder could save at paper scale (issue 12's largest stage): the decode time of
CogVideoX-architecture VAE decoders narrower or shallower than the paper's, random weights, bf16.

    python benchmarks/bench_decoder_width.py [--frames 17] [--height 384] [--width 512] [--repeats 3]

Per variant: parameters of the decoder, the median decode time of one clip's latent ``(1, 16, 1 + (T - 1) / 4, H / 8,
W / 8)`` after a warm-up (eager, as `Sora3RPipeline` decodes), its ratio to the paper decoder of the same run and the
peak memory. Only the speed side of the lever: a narrower decoder must be trained (stage 1 with the encoder frozen,
`scripts/bundled_model.sh pointmap-decoder`) before its accuracy cost is known.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from diffusers import AutoencoderKLCogVideoX

VARIANTS = {  # constructor kwargs on top of the library's default (= the paper's VAE)
    "paper (128, 256, 256, 512) x 3": {},
    "paper widths, 1 layer a block": dict(layers_per_block=1),
    "half width (64, 128, 128, 256) x 3": dict(block_out_channels=(64, 128, 128, 256)),
    "half width x 1": dict(block_out_channels=(64, 128, 128, 256), layers_per_block=1),
    "quarter width (32, 64, 64, 128) x 1": dict(block_out_channels=(32, 64, 64, 128), layers_per_block=1),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    latent = torch.randn(1, 16, 1 + (args.frames - 1) // 4, args.height // 8, args.width // 8, device=device,
                         dtype=dtype)
    print(f"decode of a {args.frames}x{args.height}x{args.width} clip's latent {tuple(latent.shape)}, {device}, {dtype}")
    print("| decoder | parameters (M) | seconds | vs paper | peak GiB |\n|---|---|---|---|---|")
    baseline = None
    for name, kwargs in VARIANTS.items():
        vae = AutoencoderKLCogVideoX(**kwargs).to(device, dtype).eval()
        parameters = sum(p.numel() for p in vae.decoder.parameters()) / 1e6
        times = []
        with torch.inference_mode():
            for repeat in range(args.repeats + 1):  # the first call warms up
                if device.type == "cuda":
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                started = time.perf_counter()
                vae.decode(latent).sample
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if repeat:
                    times.append(time.perf_counter() - started)
        seconds = statistics.median(times)
        baseline = baseline or seconds
        peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
        print(f"| {name} | {parameters:.1f} | {seconds:.3f} | {seconds / baseline:.2f}x | {peak:.2f} |", flush=True)
        del vae


if __name__ == "__main__":
    main()
