"""Quick accuracy check of a model folder on held-out synthetic clips, with no evo (runs on the lent GPU).

    python benchmarks/quick_check_model.py MODEL_DIR [--clips 16] [--device cuda] [--steps 4]

Prints, averaged over the clips: depth Abs Rel and delta<1.25 after one per-clip scale ("scale" alignment),
the scale-aligned mean point error relative to the mean point distance (world = frame-0 camera), and the RMSE of
the Sim(3)-aligned camera centres (an ATE computed with our Umeyama, not evo's: use `sora3r eval` for the table).
"""

from __future__ import annotations

import argparse
import time

import torch

from sora3r.data.synthetic import SyntheticConfig, render_clip, split_seed
from sora3r.eval.depth import depth_metrics
from sora3r.geometry import apply_sim3, to_first_frame, umeyama
from sora3r.pipeline import Sora3RPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()

    pipeline = Sora3RPipeline.from_pretrained(args.model, device=args.device)
    frames, height, width = pipeline.clip_shape
    config = SyntheticConfig(num_frames=frames, height=height, width=width)
    totals = {"abs_rel": 0.0, "delta_1.25": 0.0, "point_error": 0.0, "ate": 0.0}
    started = time.perf_counter()
    for index in range(args.clips):
        seq = render_clip(split_seed("test", index), config)
        rec = pipeline.reconstruct(seq.rgb, num_steps=args.steps)
        scores = depth_metrics(rec.depth, seq.depth, seq.valid, align="scale")
        gt_points, gt_c2w = to_first_frame(seq.points, seq.c2w)
        s, R, t = umeyama(rec.points.reshape(-1, 3).double(), gt_points.reshape(-1, 3).double())
        aligned = apply_sim3(s, R, t, rec.points.double())
        totals["point_error"] += float((aligned - gt_points).norm(dim=-1).mean() / gt_points.norm(dim=-1).mean())
        s, R, t = umeyama(rec.c2w[:, :3, 3].double(), gt_c2w[:, :3, 3].double())
        centres = apply_sim3(s, R, t, rec.c2w[:, :3, 3].double())
        totals["ate"] += float((centres - gt_c2w[:, :3, 3]).square().sum(-1).mean().sqrt())
        totals["abs_rel"] += scores["abs_rel"]
        totals["delta_1.25"] += scores["delta_1.25"]
    seconds = time.perf_counter() - started
    print(f"{args.model}: {args.clips} held-out synthetic clips {frames}x{height}x{width} on {args.device}, "
          f"{seconds / args.clips:.2f} s/clip")
    print("  ".join(f"{key} {value / args.clips:.4f}" for key, value in totals.items()))


if __name__ == "__main__":
    main()
