"""Does the model see how far the camera turns? Rotation recovered over 17-frame windows against the truth.

    python benchmarks/bench_rotation.py [MODEL_DIR] [--icl ../shared/data/icl_livingroom_micro] [--clips 24]
        [--steps 4] [--device cpu]

Per source (windows of the ICL room at stride 1, every 12th frame from 0, as `sora3r eval` sees the room; held-out
clips of the synthetic presets, and the first held-out realistic clips whose camera circles what it films, image
motion below 0.7 of the rotation's), for the true pointmaps through the pointmap VAE and for the model (seed = window
index), cameras by `recover_cameras`:

- ``recovered / true``: the summed angle of the rotation from a window's first to its last camera, recovered over
  true (1 is right; below 1 the model turns the camera too little);
- ``error``: the mean angle (deg) between the recovered and the true rotation; ``too little``: the fraction of
  windows whose recovered angle is below the true one;
- ``image motion / rotation's``: the median image motion of the first frame's points into the last frame, over what
  the rotation alone would move them (median over windows; from the ground truth): near 1, the rotation makes the
  image motion; well below 1, the camera turns to keep what it films in view while it moves, and rotation and
  translation cancel in the image.

It measures where the ICL room's ATE is lost: its windows are placed well (ATE 3.4x below a static camera's), but
a bundle that had not trained on circling paths turned them 0.63 of the true angle (16 of 17 windows too little)
while the pointmap VAE's round trip keeps 0.93, and the room's camera keeps what it films in view (median image
motion 0.45 of its rotation's), which the synthetic clips seldom did (median 0.99-1.00); on those it recovered
0.97-0.98, but on the realistic clips that circle what they film (median 0.55) only 0.75 (their pointmap VAE round
trip 1.01): the shortfall went with the motion. Trained on such paths, the bundle recovers 0.81 of the circling
clips' rotation and 0.77 of the room's (README, Benchmarks).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from evo.core.lie_algebra import so3_log_angle

from bench_vae_floor import icl_clips, pointmap_round_trip
from quick_check_model import held_out_clips
from sora3r.data.synthetic import render_clip, split_seed, synthetic_config
from sora3r.geometry import recover_cameras, to_first_frame
from sora3r.pipeline import Sora3RPipeline
from sora3r.types import VideoSequence

ICL_FRAMES = 211  # frames of the icl_livingroom_micro sample
ICL_WINDOW_STEP = 12  # frames between the starts of the ICL windows
CIRCLING_BELOW = 0.7  # image motion / rotation's below which a clip counts as circling what it films


def turn(R: torch.Tensor) -> float:
    """Angle in degrees of the rotation ``(3, 3)`` (evo's SO(3) log map)."""
    return so3_log_angle(R.double().numpy(), degrees=True)


def first_to_last(c2w: torch.Tensor) -> torch.Tensor:
    """The rotation ``(3, 3)`` from the first camera of ``c2w (T, 4, 4)`` to the last."""
    c2w = c2w.double()
    return c2w[0, :3, :3].T @ c2w[-1, :3, :3]


def motion_ratio(clip: VideoSequence) -> float:
    """Median image motion (pixels) of the first frame's valid points into the last frame, over that of the rotation
    alone."""
    K = (clip.K if clip.K.ndim == 2 else clip.K[0]).double()
    points, c2w = to_first_frame(clip.points.double(), clip.c2w.double())
    first = points[0][clip.valid[0]]  # (N, 3) in the first camera's frame
    w2c = torch.linalg.inv(c2w[-1])
    moved = first @ w2c[:3, :3].T + w2c[:3, 3]
    turned = first @ w2c[:3, :3].T
    pixels = lambda x: x[:, :2] / x[:, 2:] * K[0, 0]  # noqa: E731 (the principal point cancels in differences)
    full = (pixels(moved) - pixels(first)).norm(dim=-1).median()
    rotation = (pixels(turned) - pixels(first)).norm(dim=-1).median()
    return float(full / rotation.clamp_min(1e-9))


def icl_windows(root: Path, shape: tuple[int, int, int]) -> list[VideoSequence]:
    """The ICL room's windows at stride 1, every `ICL_WINDOW_STEP` frames, at the model's grid (`icl_clips`)."""
    return icl_clips(root, shape, starts=range(0, ICL_FRAMES - shape[0] + 1, ICL_WINDOW_STEP), stride=1)


def circling_clips(count: int, shape: tuple[int, int, int], below: float = CIRCLING_BELOW,
                   max_seeds: int = 2000) -> list[VideoSequence]:
    """The first ``count`` held-out realistic clips (test-split seeds from 0) whose image motion is below ``below``
    of their rotation's (`motion_ratio`): the camera circles what it films, as the ICL room's does."""
    frames, height, width = shape
    config = synthetic_config("realistic", num_frames=frames, height=height, width=width)
    clips = []
    for index in range(max_seeds):
        clip = render_clip(split_seed("test", index), config)
        if motion_ratio(clip) < below:
            clips.append(clip)
            if len(clips) == count:
                break
    return clips


def rotation_row(pipeline: Sora3RPipeline, clips: list[VideoSequence], steps: int, model: bool) -> dict[str, float]:
    """Recovered / true summed angle, mean error, fraction too little: of the pointmap VAE's round trip of the truth
    (``model=False``) or of the model's pointmaps."""
    true, recovered, errors = [], [], []
    for index, clip in enumerate(clips):
        if model:
            generator = torch.Generator(device=pipeline.device).manual_seed(index)
            points, weights = pipeline.sample_pointmaps(clip.rgb, steps, generator)[0], None
        else:
            points, weights = pointmap_round_trip(pipeline, clip), clip.valid.float()
        with torch.no_grad():
            c2w = recover_cameras(points.float(), weights=weights).c2w.cpu()
        R_true, R = first_to_last(clip.c2w), first_to_last(c2w)
        true.append(turn(R_true))
        recovered.append(turn(R))
        errors.append(turn(R_true.T @ R))
    return {"recovered / true": sum(recovered) / max(sum(true), 1e-9), "error": sum(errors) / len(errors),
            "too little": sum(r < t for r, t in zip(recovered, true)) / len(true), "true": sum(true) / len(true)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=str(Path(__file__).parents[1] / "sora3r/weights/sora3r-tiny"))
    parser.add_argument("--icl", type=Path, default=None, help="the icl_livingroom_micro folder")
    parser.add_argument("--clips", type=int, default=24, help="held-out clips per synthetic preset")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipeline = Sora3RPipeline.from_pretrained(args.model, device=args.device)
    shape = pipeline.clip_shape
    sources = {f"synthetic {preset}": held_out_clips(preset, args.clips, shape) for preset in ("default", "realistic")}
    sources["realistic, circling"] = circling_clips(args.clips, shape)
    if args.icl:
        sources["ICL room"] = icl_windows(args.icl, shape)
    print(f"{args.model}: rotation from a window's first to its last camera, {args.steps} steps, {args.device}")
    print(f"{'':38s} {'image motion':>12s} | {'pointmap VAE':^26s} | {'sora3r':^26s}")
    print(f"{'source':20s} {'windows':>7s} {'true deg':>9s} {'/ rotation':>12s} | {'rec/true':>8s} {'error':>7s} "
          f"{'too little':>9s} | {'rec/true':>8s} {'error':>7s} {'too little':>9s}")
    for name, clips in sources.items():
        ratios = sorted(motion_ratio(clip) for clip in clips)
        vae, model = (rotation_row(pipeline, clips, args.steps, model) for model in (False, True))
        print(f"{name:20s} {len(clips):7d} {model['true']:9.1f} {ratios[len(ratios) // 2]:12.2f} | "
              f"{vae['recovered / true']:8.2f} {vae['error']:7.2f} {vae['too little']:9.2f} | "
              f"{model['recovered / true']:8.2f} {model['error']:7.2f} {model['too little']:9.2f}", flush=True)


if __name__ == "__main__":
    main()
