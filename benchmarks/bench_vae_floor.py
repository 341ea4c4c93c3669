"""What the DiT can see and the best it can do: a model folder's video VAE PSNR and its pointmap VAE's floor.

    python benchmarks/bench_vae_floor.py [MODEL_DIR] [--clips 24] [--icl ../shared/data/icl_livingroom_micro]
        [--lady ../shared/data/lady_running] [--steps 4] [--json OUT.json]

For held-out synthetic clips (test-split seeds 0..clips-1 of the default and the realistic preset) and, when given,
17-frame clips of the ICL room (every 3rd frame from frames 0, 51, 102, 153, centre-cropped to the model's grid as
training clips are, `sora3r.data.clips.sample_training_clip`) and of lady_running (video only: no ground truth), prints per source:

- ``video PSNR``: the video VAE's round trip (encode, decode) of the frames at the model's resolution, in dB over
  [0, 1] RGB: what the DiT's conditioning keeps of the video.
- ``truth``: the true pointmaps straight into camera recovery: the floor of the post-processing alone.
- ``pointmap VAE``: the true pointmaps' round trip through the pointmap VAE (the target normalisation, encode to the
  posterior mean, decode, undo the normalisation), then camera recovery: the best a DiT that predicted the true
  latent exactly could score.
- ``sora3r``: the model itself (``reconstruct``, ``--steps`` sampling steps, seed 0), for comparison.

Scores as in ``benchmarks/quick_check_model.py`` (Abs Rel and delta<1.25 with one scale per clip, the Sim(3)-aligned
point error, the camera-centre ATE, the motion scale), averaged over clips. The floors recover cameras with the
ground truth's valid pixels as weights; ``sora3r`` uses none, as ``reconstruct`` does.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from quick_check_model import clip_scores, held_out_clips
from sora3r.data.clips import sample_training_clip
from sora3r.data.datasets import iter_sequences
from sora3r.data.video import read_video, resize_and_crop
from sora3r.geometry import first_camera_world, recover_cameras
from sora3r.models.inputs import pointmap_to_model, rgb_to_model
from sora3r.models.vae import decode_latents, encode_latents
from sora3r.pipeline import Sora3RPipeline
from sora3r.types import VideoSequence

ICL_STARTS = (0, 51, 102, 153)  # 17 frames at stride 3 from each: four clips spread over the 211 frames


def video_psnr(pipeline: Sora3RPipeline, rgb: torch.Tensor) -> float:
    """PSNR in dB of the video VAE's round trip of ``uint8 (T, H, W, 3)`` frames, over [0, 1] RGB."""
    video = rgb_to_model(rgb[None].to(pipeline.device))
    decoded = decode_latents(pipeline.video_vae, encode_latents(pipeline.video_vae, video)).float()
    error = ((decoded.clamp(-1, 1) - video) / 2).square().mean()
    return float(-10 * torch.log10(error))


def cameras_from(points: torch.Tensor, weights: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Points in the first recovered camera's frame, depth and c2w, as ``reconstruct`` makes them."""
    cameras = recover_cameras(points, weights=weights)
    points, cameras = first_camera_world(points, cameras)
    return points, cameras.depth, cameras.c2w


def pointmap_round_trip(pipeline: Sora3RPipeline, clip: VideoSequence) -> torch.Tensor:
    """The true pointmaps ``(T, H, W, 3)`` through the pointmap VAE, in the normalised target space."""
    x, _ = pointmap_to_model(clip.points[None], clip.c2w[None], clip.valid[None], pipeline.target)
    vae = pipeline.pointmap_vae
    decoded = decode_latents(vae, encode_latents(vae, x.to(pipeline.device))).float().permute(0, 2, 3, 4, 1)
    return pipeline.target.decode(decoded)[0].cpu()


def score_clip(pipeline: Sora3RPipeline, clip: VideoSequence, steps: int) -> dict[str, dict[str, float]]:
    """The table's rows for one clip: video PSNR always; truth, pointmap VAE and sora3r scores when it has ground
    truth."""
    rows = {"video PSNR": {"psnr_db": video_psnr(pipeline, clip.rgb)}}
    if clip.points is None:
        return rows
    weights = clip.valid.float()
    rows["truth"] = clip_scores(*cameras_from(clip.points.clone(), weights), clip)
    rows["pointmap VAE"] = clip_scores(*cameras_from(pointmap_round_trip(pipeline, clip), weights), clip)
    rec = pipeline.reconstruct(clip.rgb, num_steps=steps)
    rows["sora3r"] = clip_scores(rec.points, rec.depth, rec.c2w, clip)
    return rows


def icl_clips(root: Path, shape: tuple[int, int, int], starts=ICL_STARTS, stride: int = 3) -> list[VideoSequence]:
    """The ICL room's clips (every ``stride``-th frame from each of ``starts``) at the model's grid, ground truth
    included: the frames resized and centre-cropped as `reconstruct` does, depth and validity resampled by nearest
    pixel, K adjusted, points the unprojected depth (`sample_training_clip` with one stride and a centre crop)."""
    frames, height, width = shape
    return [sample_training_clip(next(iter_sequences("icl-micro", root, num_frames=frames, stride=stride, start=start)),
                                 frames, height, width, torch.Generator(), max_stride=1, random_crop=False)
            for start in starts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=str(Path(__file__).parents[1] / "sora3r/weights/sora3r-tiny"))
    parser.add_argument("--clips", type=int, default=24, help="held-out clips per synthetic preset")
    parser.add_argument("--icl", type=Path, default=None, help="the icl_livingroom_micro folder")
    parser.add_argument("--lady", type=Path, default=None, help="the lady_running folder (video PSNR only)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--json", default=None, help="also write the table here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipeline = Sora3RPipeline.from_pretrained(args.model, device=args.device)
    shape = pipeline.clip_shape
    sources = {f"synthetic {preset}": held_out_clips(preset, args.clips, shape) for preset in ("default", "realistic")}
    if args.icl:
        sources["ICL room"] = icl_clips(args.icl, shape)
    if args.lady:
        frames = resize_and_crop(read_video(args.lady, max_frames=shape[0]), *shape[1:])[0]
        sources["lady_running"] = [VideoSequence(name="lady_running", rgb=frames)]
    table = {}
    with torch.inference_mode():
        for source, clips in sources.items():
            scored = [score_clip(pipeline, clip, args.steps) for clip in clips]
            # NaN-aware means: the motion scale is NaN on clips whose camera stands still
            table[source] = {row: {key: torch.tensor([s[row][key] for s in scored]).nanmean().item()
                                   for key in scored[0][row]} for row in scored[0]}
            print(f"{source} ({len(clips)} clips of {'x'.join(map(str, shape))})", flush=True)
            for row, means in table[source].items():
                print(f"  {row:14s} " + "  ".join(f"{key} {value:.4f}" for key, value in means.items()), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "steps": args.steps, "table": table}, indent=2))


if __name__ == "__main__":
    main()
