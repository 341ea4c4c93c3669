"""Does the confidence from N samples rank pixels by their true error, and does weighting by it help the cameras?

    python benchmarks/bench_confidence.py [--model DIR] [--clips 8] [--samples 4] [--device cpu]

On held-out synthetic test clips (seeds 0..clips-1 at the model's clip shape), per clip: the Spearman rank correlation
between the confidence and the per-pixel point error (Sim(3)-aligned distance to the true point over the mean true
distance, valid pixels; a good confidence correlates negatively), and the ATE (Umeyama on camera centres) of camera
recovery weighted by the confidence against unweighted recovery on the same N-sample mean pointmaps. Also the time of a
reconstruction with 1 and with N samples (after a warm-up), the cost of the confidence.
"""

from __future__ import annotations

import argparse
import time

import torch
from scipy.stats import spearmanr

from sora3r.data.synthetic import SyntheticConfig, render_clip, split_seed
from sora3r.eval.quick import centre_ate
from sora3r.geometry import apply_sim3, recover_cameras, to_first_frame, umeyama
from sora3r.pipeline import Sora3RPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    pipeline = Sora3RPipeline.from_pretrained(args.model, device=args.device)
    num_frames, height, width = pipeline.clip_shape
    config = SyntheticConfig(num_frames=num_frames, height=height, width=width)
    rows, times = [], {1: 0.0, args.samples: 0.0}
    for index in range(args.clips):
        seq = render_clip(split_seed("test", index), config)
        for samples in times:
            if index == 0:
                pipeline.reconstruct(seq.rgb, num_samples=samples)  # warm-up
            started = time.perf_counter()
            rec = pipeline.reconstruct(seq.rgb, num_samples=samples)
            times[samples] += time.perf_counter() - started
        gt_points, gt_c2w = to_first_frame(seq.points, seq.c2w)
        valid = seq.valid & rec.valid
        scale, rotation, translation = umeyama(rec.points[valid].double(), gt_points[valid].double())
        error = (apply_sim3(scale, rotation, translation, rec.points[valid].double()) - gt_points[valid]).norm(dim=-1)
        error = error / gt_points[valid].norm(dim=-1).mean()
        rho = spearmanr(rec.confidence[valid].numpy(), error.numpy()).statistic
        unweighted = recover_cameras(rec.points.to(args.device)).c2w.cpu()
        rows.append({"clip": seq.name, "spearman": float(rho), "ate_weighted": centre_ate(rec.c2w, gt_c2w),
                     "ate_unweighted": centre_ate(unweighted, gt_c2w)})
        print(f"{rows[-1]['clip']}: spearman {rho:+.3f}  ATE weighted {rows[-1]['ate_weighted']:.4f}  "
              f"unweighted {rows[-1]['ate_unweighted']:.4f}", flush=True)
    mean = {key: sum(row[key] for row in rows) / len(rows) for key in ("spearman", "ate_weighted", "ate_unweighted")}
    better = sum(row["ate_weighted"] < row["ate_unweighted"] for row in rows)
    print(f"mean over {len(rows)} clips ({num_frames}x{height}x{width}, {args.samples} samples, {args.device}): "
          f"spearman {mean['spearman']:+.3f}, ATE weighted {mean['ate_weighted']:.4f} vs unweighted "
          f"{mean['ate_unweighted']:.4f} (weighted lower on {better} of {len(rows)} clips)")
    print(f"time per clip: 1 sample {times[1] / len(rows):.2f} s, {args.samples} samples "
          f"{times[args.samples] / len(rows):.2f} s ({times[args.samples] / times[1]:.2f}x)")


if __name__ == "__main__":
    main()
