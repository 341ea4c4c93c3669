"""Quick accuracy check of a model folder on held-out synthetic clips, with no evo (runs on the lent GPU).

    python benchmarks/quick_check_model.py MODEL_DIR [--clips 24] [--device cuda] [--steps 1 4] [--json OUT.json]
        [--threads N] [--profile] [--synthetic default|realistic] [--seeds N]

For each number of sampling steps, prints averages over the clips (test-split seeds 0..clips-1 of the ``--synthetic``
preset, the realistic one with its photometric augmentation) of: depth Abs Rel and delta<1.25 after one per-clip scale
("scale" alignment); the point error (Sim(3)-aligned mean point distance over the mean true point distance, world =
frame-0 camera); the RMSE of the Sim(3)-aligned camera centres (an ATE computed with our Umeyama, not evo's: use
`sora3r eval` for the protocol's table); and the motion scale (`sora3r.eval.quick.motion_scale`: log of the predicted
camera motion over the true one in the scene's scale, over the clips whose camera moves; its mean says if the model
under- or overestimates motion, its mean absolute value ``motion_abs`` how much each window's motion is off, which
stitched windows accumulate). The same model run on a uniform grey clip of the same length and scored against the same
ground truth (``blind``) shows how much it reads its input, and the ``static`` row (identity poses, constant depth) is
the floor every method must beat.

``--seeds N`` samples every clip with N noise seeds (0..N-1) and prints the mean over seeds and clips with, in
brackets, the standard deviation of the N per-seed means: the sampling-noise band of the figure. It is wide: the
bundle of 2026-12-01 scored Abs Rel 0.134 / 0.141 / 0.167 on the same 24 default clips with seeds 0 / 1 / 2 (CPU), as
a few clips (close to a wall, a narrow depth range) swing with the noise.

Time per clip is the wall time of ``reconstruct`` (on CUDA synchronised by its results' copy to the host), with the
scoring timed apart; the model is loaded once and stays on the device, and the clips are rendered once before any
timing. ``--threads`` sets torch's CPU threads (default: at most 4; the rendering and scoring run on the CPU, and a
process per GPU with torch's default of one thread per core oversubscribes a shared host, which once made a clip take
5.45 s instead of ~0.3 s). ``--profile`` prints the functions that took the most time (cProfile, cumulative).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import time

import torch

from sora3r.data.synthetic import SYNTHETIC_PRESETS, render_clip, split_seed, synthetic_config
from sora3r.eval.depth import depth_metrics
from sora3r.eval.quick import centre_ate, motion_scale, point_error
from sora3r.geometry import to_first_frame
from sora3r.pipeline import Sora3RPipeline
from sora3r.types import VideoSequence

GREY = 128  # the uint8 value of the input-blind clip


def held_out_clips(preset: str, count: int, shape: tuple[int, int, int]) -> list[VideoSequence]:
    """Held-out clips (test-split seeds 0..count-1) of a synthetic preset at a model's clip shape ``(T, H, W)``."""
    frames, height, width = shape
    config = synthetic_config(preset, num_frames=frames, height=height, width=width)
    return [render_clip(split_seed("test", index), config) for index in range(count)]


def clip_scores(points: torch.Tensor, depth: torch.Tensor, c2w: torch.Tensor, seq) -> dict[str, float]:
    """Abs Rel, delta<1.25, point error, centre ATE and motion scale (NaN when the camera does not move) of one
    prediction against the sequence's ground truth."""
    scores = depth_metrics(depth, seq.depth, seq.valid, align="scale")
    gt_points, gt_c2w = to_first_frame(seq.points, seq.c2w)
    motion = motion_scale(points, c2w, gt_points, gt_c2w, seq.valid)
    return {"abs_rel": scores["abs_rel"], "delta_1.25": scores["delta_1.25"],
            "point_error": point_error(points, gt_points, seq.valid), "ate": centre_ate(c2w, gt_c2w),
            "motion": motion, "motion_abs": abs(motion)}


def static_prediction(seq) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Identity poses and a constant depth (points on a fronto-parallel plane seen through the true K)."""
    num_frames, height, width = seq.depth.shape
    K = seq.K if seq.K.ndim == 2 else seq.K[0]
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                          indexing="ij")
    rays = torch.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], torch.ones_like(u)], -1)
    points = rays.float().expand(num_frames, height, width, 3)
    return points, torch.ones(num_frames, height, width), torch.eye(4).expand(num_frames, 4, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, nargs="+", default=[None], help="sampling steps (default: the model's)")
    parser.add_argument("--json", default=None, help="also write the table here")
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1), help="torch CPU threads")
    parser.add_argument("--profile", action="store_true", help="print where the time of the timed clips went")
    parser.add_argument("--synthetic", default="default", choices=sorted(SYNTHETIC_PRESETS), help="scene preset")
    parser.add_argument("--seeds", type=int, default=1, help="noise seeds per clip (0..N-1); brackets: their spread")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pipeline = Sora3RPipeline.from_pretrained(args.model, device=args.device)
    frames, height, width = pipeline.clip_shape
    sequences = held_out_clips(args.synthetic, args.clips, pipeline.clip_shape)
    grey = torch.full_like(sequences[0].rgb, GREY)
    # rows[name][seed] = per-clip scores drawn with that noise seed (static has no noise: one "seed")
    rows: dict[str, list[list[dict]]] = {"static": [[clip_scores(*static_prediction(seq), seq) for seq in sequences]]}
    pipeline.reconstruct(sequences[0].rgb)  # warm-up (CUDA context, kernels, allocator)
    timing, scoring = {}, {}
    profiler = cProfile.Profile() if args.profile else None
    draws = len(sequences) * args.seeds
    for steps in args.steps:
        name, blind_name = f"sora3r ({steps or 'default'} steps)", f"blind ({steps or 'default'} steps)"
        rows[name], rows[blind_name], timing[name], scoring[name] = [], [], 0.0, 0.0
        for seed in range(args.seeds):
            rows[name].append([])
            for seq in sequences:
                started = time.perf_counter()
                if profiler:
                    profiler.enable()
                rec = pipeline.reconstruct(seq.rgb, num_steps=steps, seed=seed)  # results on the CPU: synchronised
                if profiler:
                    profiler.disable()
                scored = time.perf_counter()
                rows[name][-1].append(clip_scores(rec.points, rec.depth, rec.c2w, seq))
                timing[name] += (scored - started) / draws
                scoring[name] += (time.perf_counter() - scored) / draws
            blind = pipeline.reconstruct(grey, num_steps=steps, seed=seed)
            rows[blind_name].append([clip_scores(blind.points, blind.depth, blind.c2w, seq) for seq in sequences])
    table, spread = {}, {}
    for name, per_seed in rows.items():
        # NaN-aware: the motion scale is NaN on clips whose camera stands still (and on every clip of `static`)
        means = torch.tensor([[[r[key] for key in clips[0]] for r in clips] for clips in per_seed]).nanmean(1)
        table[name] = dict(zip(per_seed[0][0], means.mean(0).tolist()))
        band = means.std(0) if len(per_seed) > 1 else torch.zeros(means.shape[1])
        spread[name] = dict(zip(per_seed[0][0], band.tolist()))
    seeds = f", {args.seeds} noise seeds (std of their means)" if args.seeds > 1 else ""
    print(f"{args.model}: {args.clips} held-out {args.synthetic} synthetic clips {frames}x{height}x{width} on "
          f"{args.device}, {torch.get_num_threads()} CPU threads{seeds}")
    for name, means in table.items():
        extra = f"  {timing[name]:.3f} s/clip (+ {scoring[name]:.3f} s scoring)" if name in timing else ""
        band = spread[name] if args.seeds > 1 and name != "static" else None
        print(f"  {name:24s} " + "  ".join(f"{key} {value:.4f}" + (f" ({band[key]:.4f})" if band else "")
                                             for key, value in means.items()) + extra)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "clips": args.clips, "synthetic": args.synthetic, "seeds": args.seeds,
                       "table": table, "seed_std": spread, "seconds_per_clip": timing,
                       "scoring_seconds_per_clip": scoring, "threads": torch.get_num_threads()}, f, indent=2)
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
