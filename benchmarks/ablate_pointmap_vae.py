"""Stage-1 ablations at equal budget: pointmap VAE initialised from the video VAE vs from scratch, and the plain
vs the radially squashed target.

    python benchmarks/ablate_pointmap_vae.py --video-vae runs/video_vae/model --minutes 1.2 [--out runs/ablation]

Each variant trains for the same wall-clock budget on the same synthetic stream; each is then scored on held-out
synthetic test clips by its round trip (encode, decode, undo the squash) in point space: the mean distance
between reconstructed and true normalised points (world = frame-0 camera, mean point distance 1), so the plain and
squashed targets are compared on the same scale. Also printed: the same error for the untrained start of each
variant (what the initialisation alone gives).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from sora3r.data.synthetic import SyntheticConfig, render_batch, split_seed
from sora3r.models.vae import build_vae, pointmap_vae_from_video_vae
from sora3r.train.pointmap_vae import PointmapVAEConfig, round_trip_error, train_pointmap_vae

CLIP = dict(num_frames=17, height=64, width=96)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video-vae", required=True)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--out", default="runs/ablation")
    parser.add_argument("--test-clips", type=int, default=32)
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = SyntheticConfig(**CLIP)
    test = [render_batch([split_seed("test", i + j) for j in range(8)], config, device)
            for i in range(0, args.test_clips, 8)]

    variants = {"video-VAE init, squashed": (args.video_vae, True),
                "random init, squashed": (None, True),
                "video-VAE init, plain": (args.video_vae, False)}
    rows = []
    for name, (init, squash) in variants.items():
        start = pointmap_vae_from_video_vae(build_vae(init or "tiny")).to(device).eval()
        before = round_trip_error(start, squash, test)
        output = Path(args.out) / name.replace(" ", "_").replace(",", "")
        summary = train_pointmap_vae(PointmapVAEConfig(
            output=str(output), init_video_vae=init, squash=squash, max_minutes=args.minutes, steps=10**6,
            batch_size=args.batch_size, lr=3e-4, warmup_steps=200, checkpoint_mode="light", checkpoint_every=10**6,
            log_every=5,
            data_workers=args.workers, **CLIP))
        trained = build_vae(output / "model").to(device).eval()
        rows.append((name, before, round_trip_error(trained, squash, test), summary["step"]))
    print(f"pointmap VAE round-trip error (mean point distance / mean point norm), {args.test_clips} held-out clips "
          f"{CLIP['num_frames']}x{CLIP['height']}x{CLIP['width']}, {args.minutes} min each on {device}")
    print(f"{'variant':28s} {'at start':>9s} {'trained':>9s} {'steps':>6s}")
    for name, before, after, steps in rows:
        print(f"{name:28s} {before:9.4f} {after:9.4f} {steps:6d}")


if __name__ == "__main__":
    main()
