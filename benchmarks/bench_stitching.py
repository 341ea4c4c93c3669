"""Do the windows of a long video stitch? A long held-out synthetic clip through `Sora3RPipeline.reconstruct` for
several window overlaps, with each window sampled conditioned on the frames it shares with the previous ones (the
default) and without (``--conditioning on off``: both).

    python benchmarks/bench_stitching.py [--model DIR] [--frames 257] [--clip 3] [--overlaps 1 3 5 8] [--device cpu]
        [--conditioning on off]

Per overlap: the largest camera step at a window boundary (the step into the first frame a window adds) over the
median camera step inside windows (a jump shows as a large ratio; the target is <= 3); the whole-sequence ATE (Sim(3)
Umeyama on camera centres) over the mean ATE of the same windows reconstructed alone (drift between windows shows as
a large ratio; the target is <= 1.5); the number of windows and the time. Test clip 3 (a hand-held walk of ~2.4 m at
frames 257) is the default; a pan (clip 5) has no translation for the ATE to measure.
"""

from __future__ import annotations

import argparse
import time

import torch

from sora3r.data.synthetic import SyntheticConfig, render_clip, split_seed
from sora3r.eval.quick import centre_ate, stitching_scores
from sora3r.geometry import recover_cameras, to_first_frame
from sora3r.pipeline import Sora3RPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--frames", type=int, default=257)
    parser.add_argument("--clip", type=int, default=3)
    parser.add_argument("--overlaps", type=int, nargs="+", default=[1, 3, 5, 8])
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--conditioning", nargs="+", choices=["on", "off"], default=["on", "off"],
                        help="sample later windows conditioned on their shared frames (on), or not (off)")
    args = parser.parse_args()

    pipeline = Sora3RPipeline.from_pretrained(args.model, device=args.device)
    window, height, width = pipeline.clip_shape
    seq = render_clip(split_seed("test", args.clip), SyntheticConfig(num_frames=args.frames, height=height,
                                                                     width=width))
    _, gt_c2w = to_first_frame(seq.points, seq.c2w)
    window_ates: dict[int, float] = {}
    print(f"{seq.name}: {args.frames} frames {height}x{width}, windows of {window}, {args.samples} sample(s), "
          f"{args.device}")
    for overlap, conditioning in [(overlap, mode) for overlap in args.overlaps for mode in args.conditioning]:
        started = time.perf_counter()
        rec = pipeline.reconstruct(seq.rgb, overlap=overlap, num_samples=args.samples,
                                   condition_overlap=conditioning == "on")
        seconds = time.perf_counter() - started
        starts = rec.metadata["windows"]
        for start in starts:
            if start not in window_ates:
                generator = torch.Generator(device=pipeline.device).manual_seed(start)
                points, confidence = pipeline.predict_pointmaps(seq.rgb[start:start + window], None, generator,
                                                                args.samples)
                cameras = recover_cameras(points, weights=confidence)
                window_ates[start] = centre_ate(cameras.c2w.cpu(), gt_c2w[start:start + window])
        scores = stitching_scores(rec.c2w, gt_c2w, starts, window, window_ates)
        print(f"overlap {overlap}, conditioning {conditioning}: {len(starts)} windows, boundary jump / median step "
              f"{scores['jump_ratio']:.2f}, ATE {scores['ate']:.4f} / mean window ATE {scores['ate_window']:.4f} = {scores['ate_ratio']:.2f}, "
              f"{seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main()
