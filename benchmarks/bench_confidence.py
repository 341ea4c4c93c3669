"""Does the confidence from N samples rank pixels by their true error, does weighting camera recovery by it lower the
ATE, and what do N samples cost?

    python benchmarks/bench_confidence.py [--model DIR] [--clips 12] [--samples 2 4 8] [--device cpu]

On held-out synthetic test clips (test-split seeds 0..clips-1 at the model's clip shape; clips whose true camera
centres coincide, pure pans, have no ATE and are left out of its mean), per clip and number of samples N: the largest N
is drawn once (`Sora3RPipeline.sample_pointmaps`, one batch) and the first N of them are combined
(`sora3r.pipeline.combine_samples`). Reported:
- Spearman rank correlation between the spread (1 - confidence) and the per-pixel point error (the combined points
  Sim(3)-aligned to the truth by Umeyama, distance to the true point over the mean true distance; valid pixels), and
  against the relative error (that distance over the true point's distance). A confidence that ranks errors has a
  positive correlation here. ``raw``: the same for the spread of the samples as drawn, not aligned to their mean (the
  norm of their per-pixel standard deviation), which the pipeline used before.
- ATE (Umeyama on camera centres, `sora3r.eval.quick.centre_ate`) of `recover_cameras` on the combined points weighted
  by the confidence (what `reconstruct` does) against unweighted.
- Seconds of `reconstruct` for one window with 1 and with each N samples on the first clip (after a warm-up, best of
  ``--repeats``).
"""

from __future__ import annotations

import argparse
import time

import torch
from scipy.stats import spearmanr

from sora3r.data.synthetic import SyntheticConfig, render_clip, split_seed
from sora3r.eval.quick import centre_ate, coincident_centres
from sora3r.geometry import apply_sim3, recover_cameras, to_first_frame, umeyama
from sora3r.pipeline import Sora3RPipeline, combine_samples


def point_errors(points: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per valid pixel: Sim(3)-aligned distance over the mean true distance, and over the true point's distance."""
    est, true = points[valid].double(), gt[valid].double()
    distance = (apply_sim3(*umeyama(est, true), est) - true).norm(dim=-1)
    return distance / true.norm(dim=-1).mean(), distance / true.norm(dim=-1).clamp_min(1e-9)


def rank(spread: torch.Tensor, error: torch.Tensor) -> float:
    return float(spearmanr(spread.numpy(), error.numpy()).statistic)


def clip_rows(pipeline: Sora3RPipeline, index: int, counts: list[int], device: str) -> list[dict]:
    """One row per sample count for test clip ``index`` (see the module doc)."""
    num_frames, height, width = pipeline.clip_shape
    seq = render_clip(split_seed("test", index), SyntheticConfig(num_frames=num_frames, height=height, width=width))
    gt, gt_c2w = to_first_frame(seq.points, seq.c2w)
    pan = coincident_centres(gt_c2w[:, :3, 3])
    generator = torch.Generator(device=pipeline.device).manual_seed(0)
    samples = pipeline.sample_pointmaps(seq.rgb, generator=generator, num_samples=max(counts)).cpu()
    rows = []
    for count in counts:
        points, confidence = combine_samples(samples[:count])
        raw = samples[:count].std(0, unbiased=False).norm(dim=-1)
        error, relative = point_errors(points, gt, seq.valid)
        spread, raw = (1 - confidence)[seq.valid], raw[seq.valid]
        weighted = recover_cameras(points.to(device), weights=confidence.to(device)).c2w.cpu()
        unweighted = recover_cameras(points.to(device)).c2w.cpu()
        rows.append({"clip": seq.name, "samples": count, "pan": pan, "point_error": float(error.mean()),
                     "rho": rank(spread, error), "rho_relative": rank(spread, relative),
                     "rho_raw": rank(raw, error), "rho_raw_relative": rank(raw, relative),
                     "ate_weighted": centre_ate(weighted, gt_c2w), "ate_unweighted": centre_ate(unweighted, gt_c2w)})
    return rows


def timings(pipeline: Sora3RPipeline, counts: list[int], repeats: int) -> dict[int, float]:
    """Best-of-``repeats`` seconds of `reconstruct` on test clip 0 for 1 and each count of samples."""
    num_frames, height, width = pipeline.clip_shape
    rgb = render_clip(split_seed("test", 0), SyntheticConfig(num_frames=num_frames, height=height, width=width)).rgb
    seconds = {}
    for count in [1, *counts]:
        pipeline.reconstruct(rgb, num_samples=count)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            pipeline.reconstruct(rgb, num_samples=count)
            best = min(best, time.perf_counter() - started)
        seconds[count] = best
    return seconds


def summary(rows: list[dict], count: int) -> str:
    """The means over the clips for one sample count (ATE over the clips that are not pure pans)."""
    chosen = [row for row in rows if row["samples"] == count]
    posed = [row for row in chosen if not row["pan"]]
    mean = {key: sum(row[key] for row in chosen) / len(chosen)
            for key in ("rho", "rho_relative", "rho_raw", "rho_raw_relative", "point_error")}
    ate = {key: sum(row[key] for row in posed) / max(len(posed), 1) for key in ("ate_weighted", "ate_unweighted")}
    better = sum(row["ate_weighted"] < row["ate_unweighted"] for row in posed)
    return (f"N={count}: spearman {mean['rho']:+.3f} (relative error {mean['rho_relative']:+.3f}; raw spread "
            f"{mean['rho_raw']:+.3f} / {mean['rho_raw_relative']:+.3f}), positive on "
            f"{sum(row['rho'] > 0 for row in chosen)} of {len(chosen)} clips; point error {mean['point_error']:.4f}; "
            f"ATE weighted {ate['ate_weighted']:.4f} vs unweighted {ate['ate_unweighted']:.4f} "
            f"(lower on {better} of {len(posed)} clips with camera motion)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--samples", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--repeats", type=int, default=2, help="timing runs per sample count (0: no timing)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if min(args.samples) < 2:
        parser.error("--samples: every count must be >= 2")

    pipeline = Sora3RPipeline.from_pretrained(args.model, device=args.device)
    rows = []
    for index in range(args.clips):
        rows += clip_rows(pipeline, index, args.samples, args.device)
        print("  ".join(f"{row['clip']} N={row['samples']}: spearman {row['rho']:+.3f} / relative "
                        f"{row['rho_relative']:+.3f} (raw {row['rho_raw']:+.3f} / {row['rho_raw_relative']:+.3f}), "
                        f"ATE weighted {row['ate_weighted']:.4f} unweighted {row['ate_unweighted']:.4f}"
                        f"{' (pan)' if row['pan'] else ''}" for row in rows[-len(args.samples):]), flush=True)
    num_frames, height, width = pipeline.clip_shape
    print(f"means over {args.clips} clips ({num_frames}x{height}x{width}, {args.device}):")
    for count in args.samples:
        print("  " + summary(rows, count))
    if args.repeats:
        seconds = timings(pipeline, args.samples, args.repeats)
        print("reconstruct, one window: " + ", ".join(f"{count} sample{'s' if count > 1 else ''} {value:.2f} s "
                                                      f"({value / seconds[1]:.2f}x)" for count, value in seconds.items()))


if __name__ == "__main__":
    main()
