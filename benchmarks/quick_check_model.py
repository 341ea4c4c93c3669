"""Quick accuracy check of a model folder on held-out synthetic clips, with no evo (runs on the lent GPU).

    python benchmarks/quick_check_model.py MODEL_DIR [--clips 24] [--device cuda] [--steps 1 4] [--json OUT.json]
        [--threads N] [--profile] [--synthetic default|realistic]

For each number of sampling steps, prints averages over the clips (test-split seeds 0..clips-1 of the ``--synthetic``
preset, the realistic one with its photometric augmentation) of: depth Abs Rel and
delta<1.25 after one per-clip scale ("scale" alignment); the point error (Sim(3)-aligned mean point distance over the
mean true point distance, world = frame-0 camera); and the RMSE of the Sim(3)-aligned camera centres (an ATE computed
with our Umeyama, not evo's: use `sora3r eval` for the protocol's table). The same model run on a uniform grey clip
of the same length and scored against the same ground truth (``blind``) shows how much it reads its input, and the
``static`` row (identity poses, constant depth) is the floor every method must beat.

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
from sora3r.eval.quick import centre_ate, point_error
from sora3r.geometry import to_first_frame
from sora3r.pipeline import Sora3RPipeline

GREY = 128  # the uint8 value of the input-blind clip


def clip_scores(points: torch.Tensor, depth: torch.Tensor, c2w: torch.Tensor, seq) -> dict[str, float]:
    """Abs Rel, delta<1.25, point error and centre ATE of one prediction against the sequence's ground truth."""
    scores = depth_metrics(depth, seq.depth, seq.valid, align="scale")
    gt_points, gt_c2w = to_first_frame(seq.points, seq.c2w)
    return {"abs_rel": scores["abs_rel"], "delta_1.25": scores["delta_1.25"],
            "point_error": point_error(points, gt_points, seq.valid), "ate": centre_ate(c2w, gt_c2w)}


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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pipeline = Sora3RPipeline.from_pretrained(args.model, device=args.device)
    frames, height, width = pipeline.clip_shape
    config = synthetic_config(args.synthetic, num_frames=frames, height=height, width=width)
    sequences = [render_clip(split_seed("test", index), config) for index in range(args.clips)]
    grey = torch.full_like(sequences[0].rgb, GREY)
    rows: dict[str, list[dict]] = {"static": [clip_scores(*static_prediction(seq), seq) for seq in sequences]}
    pipeline.reconstruct(sequences[0].rgb)  # warm-up (CUDA context, kernels, allocator)
    timing, scoring = {}, {}
    profiler = cProfile.Profile() if args.profile else None
    for steps in args.steps:
        name = f"sora3r ({steps or 'default'} steps)"
        rows[name], timing[name], scoring[name] = [], 0.0, 0.0
        for seq in sequences:
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            rec = pipeline.reconstruct(seq.rgb, num_steps=steps)  # results come back on the CPU: synchronised
            if profiler:
                profiler.disable()
            scored = time.perf_counter()
            rows[name].append(clip_scores(rec.points, rec.depth, rec.c2w, seq))
            timing[name] += (scored - started) / len(sequences)
            scoring[name] += (time.perf_counter() - scored) / len(sequences)
        blind = pipeline.reconstruct(grey, num_steps=steps)
        rows[f"blind ({steps or 'default'} steps)"] = [clip_scores(blind.points, blind.depth, blind.c2w, seq)
                                                        for seq in sequences]
    table = {name: {key: sum(r[key] for r in clips) / len(clips) for key in clips[0]} for name, clips in rows.items()}
    print(f"{args.model}: {args.clips} held-out {args.synthetic} synthetic clips {frames}x{height}x{width} on {args.device}, "
          f"{torch.get_num_threads()} CPU threads")
    for name, means in table.items():
        extra = f"  {timing[name]:.3f} s/clip (+ {scoring[name]:.3f} s scoring)" if name in timing else ""
        print(f"  {name:24s} " + "  ".join(f"{key} {value:.4f}" for key, value in means.items()) + extra)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "clips": args.clips, "synthetic": args.synthetic, "table": table, "seconds_per_clip": timing,
                       "scoring_seconds_per_clip": scoring, "threads": torch.get_num_threads()}, f, indent=2)
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
