"""Do the windows of a long video stitch? A long held-out synthetic clip through `Sora3RPipeline.reconstruct` for
several window overlaps, with each window sampled conditioned on the frames it shares with the previous ones (the
default) and without (``--conditioning on off``: both).

    python benchmarks/bench_stitching.py [--model DIR] [--frames 257] [--clips 3] [--seeds 1] [--overlaps 1 3 5 8]
        [--device cpu] [--conditioning on off]

Per overlap: the largest camera step at a window boundary (the step into the first frame a window adds) over the
median camera step inside windows (a jump shows as a large ratio; the target is <= 3); the whole-sequence ATE (Sim(3)
Umeyama on camera centres) over the mean ATE of the same windows reconstructed alone (drift between windows shows as
a large ratio; the target is <= 1.5); the number of windows and the time. Test clip 3 (a walk whose camera ends up
4.8 m from where it started) is the default; a pan (clip 5) has no translation for the ATE to measure. One clip and one
noise seed make a noisy figure (the bundle of 2026-12-02 on clip 3: ratio 6.6x with seed 0 on the CPU, 9.3x with seed
0 and 4.9x with seed 1 on an H200): ``--clips 1 3 7 8 --seeds 2`` runs four walks with two noise seeds each and ends
with the mean and median of each score per overlap and conditioning.

Each run also splits the drift (`sora3r.eval.quick.drift_sources`, over steps of one window's new frames): the ATE of
the true path with only the rotation, only the length or only the direction of each step's translation taken from
the reconstruction; the part that alone reproduces the whole ATE is what drifts.

``--windows vae`` replaces every window's sampled pointmaps by the pointmap VAE's round trip of its true pointmaps
(what a perfect transformer would give, `bench_vae_floor.py`'s floor), ``--windows truth`` by the true pointmaps
themselves (the stitching alone): the drift those leave is a floor the transformer cannot go below.
"""

from __future__ import annotations

import argparse
import time

import torch

from sora3r.data.synthetic import SyntheticConfig, render_clip, split_seed
from sora3r.eval.quick import centre_ate, drift_sources, stitching_scores
from sora3r.geometry import recover_cameras, to_first_frame
from sora3r.models.inputs import pointmap_to_model
from sora3r.models.vae import decode_latents, encode_latents
from sora3r.pipeline import Sora3RPipeline
from sora3r.types import VideoSequence


def use_true_windows(pipeline: Sora3RPipeline, seq: VideoSequence, round_trip: bool) -> None:
    """Make ``pipeline.predict_pointmaps`` return the true pointmaps of the window it is given (found in ``seq`` by
    its frames), normalised as the model's output, through the pointmap VAE when ``round_trip``."""
    window = pipeline.clip_shape[0]

    @torch.no_grad()
    def true_window(frames, num_steps=None, generator=None, num_samples=1, known_points=None):
        frames = frames.cpu()
        start = next(s for s in range(seq.rgb.shape[0] - window + 1) if torch.equal(seq.rgb[s:s + window], frames))
        part = slice(start, start + window)
        target, _ = pointmap_to_model(seq.points[None, part], seq.c2w[None, part], seq.valid[None, part],
                                      pipeline.target)
        target = target.to(pipeline.device)
        if round_trip:
            target = decode_latents(pipeline.pointmap_vae, encode_latents(pipeline.pointmap_vae, target)).float()
        return pipeline.target.decode(target.permute(0, 2, 3, 4, 1))[0], None

    pipeline.predict_pointmaps = true_window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--frames", type=int, default=257)
    parser.add_argument("--clips", type=int, nargs="+", default=[3], help="test-split clips (walks: 1 3 7 8)")
    parser.add_argument("--seeds", type=int, default=1, help="noise seeds per clip (0..N-1)")
    parser.add_argument("--overlaps", type=int, nargs="+", default=[1, 3, 5, 8])
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--conditioning", nargs="+", choices=["on", "off"], default=["on", "off"],
                        help="sample later windows conditioned on their shared frames (on), or not (off)")
    parser.add_argument("--windows", choices=["model", "vae", "truth"], default="model",
                        help="each window's pointmaps: sampled (model), the VAE round trip of the truth, the truth")
    args = parser.parse_args()

    pipeline = Sora3RPipeline.from_pretrained(args.model, device=args.device)
    window, height, width = pipeline.clip_shape
    print(f"{args.frames} frames {height}x{width}, windows of {window}, {args.samples} sample(s), {args.device}, "
          f"windows: {args.windows}")
    runs = [(overlap, mode) for overlap in args.overlaps for mode in args.conditioning]
    scores: dict[tuple[int, str], list[dict[str, float]]] = {run: [] for run in runs}
    for clip in args.clips:
        seq = render_clip(split_seed("test", clip), SyntheticConfig(num_frames=args.frames, height=height,
                                                                    width=width))
        _, gt_c2w = to_first_frame(seq.points, seq.c2w)
        if args.windows != "model":
            use_true_windows(pipeline, seq, round_trip=args.windows == "vae")
        for seed in range(args.seeds):
            window_ates: dict[int, float] = {}
            for overlap, conditioning in runs:
                started = time.perf_counter()
                rec = pipeline.reconstruct(seq.rgb, overlap=overlap, num_samples=args.samples, seed=seed,
                                           condition_overlap=conditioning == "on")
                seconds = time.perf_counter() - started
                starts = rec.metadata["windows"]
                for start in starts:
                    if start not in window_ates:
                        generator = torch.Generator(device=pipeline.device).manual_seed(start + 1000 * seed)
                        points, confidence = pipeline.predict_pointmaps(seq.rgb[start:start + window], None,
                                                                        generator, args.samples)
                        cameras = recover_cameras(points, weights=confidence)
                        window_ates[start] = centre_ate(cameras.c2w.cpu(), gt_c2w[start:start + window])
                score = stitching_scores(rec.c2w, gt_c2w, starts, window, window_ates)
                drift = drift_sources(rec.c2w, gt_c2w, stride=window - overlap)
                score.update({f"ate_{part}_only": drift[part] for part in ("rotation", "length", "direction")})
                scores[overlap, conditioning].append(score)
                print(f"{seq.name} seed {seed}, overlap {overlap}, conditioning {conditioning}: {len(starts)} "
                      f"windows, boundary jump / median step {score['jump_ratio']:.2f}, ATE {score['ate']:.4f} / "
                      f"mean window ATE {score['ate_window']:.4f} = {score['ate_ratio']:.2f}, {seconds:.1f} s; "
                      f"drift (ATE of the true path with only this part of each {window - overlap}-frame step "
                      f"predicted): rotation {drift['rotation']:.4f} ({drift['rotation_deg']:.1f} deg a step), "
                      f"length {drift['length']:.4f} (log ratio std {drift['log_length_std']:.2f}), direction "
                      f"{drift['direction']:.4f} ({drift['direction_deg']:.1f} deg a step; the steps' mean direction "
                      f"{drift['direction_bias_deg']:.1f} deg off)", flush=True)
    if len(args.clips) * args.seeds > 1:
        for (overlap, conditioning), rows in scores.items():
            table = {key: torch.tensor([row[key] for row in rows], dtype=torch.float64) for key in rows[0]}
            print(f"overlap {overlap}, conditioning {conditioning}, {len(rows)} runs, mean (median): "
                  + ", ".join(f"{key} {values.mean():.4f} ({values.median():.4f})" for key, values in table.items()))


if __name__ == "__main__":
    main()
