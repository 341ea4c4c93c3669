"""The user-facing jobs behind `sora3r demo | reconstruct | synth`, composed from library parts.

Each job writes into a fresh temporary folder beside its output folder and renames it into place at the end, so an
interrupted or failed run leaves nothing half-written. An existing non-empty output folder is replaced only with
``overwrite=True``; the clash is reported before any work starts.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from sora3r.data.video import atomic_output_dir
from sora3r.reconstruction import Reconstruction


def ground_truth_reconstruction(seq) -> Reconstruction:
    """A `Reconstruction` holding a sequence's ground truth (for export and viewing next to predictions)."""
    from sora3r.geometry import to_first_frame

    points, c2w = to_first_frame(seq.points, seq.c2w)
    return Reconstruction(points=points, depth=seq.depth, c2w=c2w, K=seq.K, rgb=seq.rgb, valid=seq.valid,
                          timestamps=seq.timestamps,
                          metadata={"method": "ground truth", "source": seq.name, "scale": "metric"})


def synth(output: Path, split: str, num: int, num_frames: int, height: int, width: int, overwrite: bool = False) -> None:
    """Render ``num`` synthetic clips of ``split``: ``<output>/<name>/{rgb.mp4, ground_truth.npz}``."""
    from tqdm import tqdm

    from sora3r.data.synthetic import SyntheticConfig, render_clip, split_seed
    from sora3r.data.video import write_video
    from sora3r.export import write_npz
    from sora3r.text import plural

    config = SyntheticConfig(num_frames=num_frames, height=height, width=width)
    with atomic_output_dir(output, overwrite) as staging:
        for index in tqdm(range(num), desc="rendering"):
            seq = render_clip(split_seed(split, index), config)
            folder = staging / seq.name
            write_video(folder / "rgb.mp4", seq.rgb, fps=10)
            write_npz(folder / "ground_truth.npz", ground_truth_reconstruction(seq))
    print(f"wrote {plural(num, 'clip')} to {output}")


def reconstruct(video: Path, output: Path, formats, stride: int, max_frames: int | None, intrinsics, model,
                num_steps: int | None, seed: int, device: str, overwrite: bool = False) -> Reconstruction:
    """Read a video, reconstruct it with the model and export every requested format into ``output``."""
    from sora3r.data.video import adjust_intrinsics, load_video
    from sora3r.export import export_all
    from sora3r.pipeline import Sora3RPipeline
    from sora3r.text import plural

    with atomic_output_dir(output, overwrite) as staging:
        pipeline = Sora3RPipeline.from_pretrained(model, device=device)
        window, height, width = pipeline.clip_shape
        # Each frame is resized to the model's grid as it is decoded: memory does not grow with the resolution.
        clip = load_video(video, max_frames=max_frames, stride=stride, size=(height, width))
        if len(clip.rgb) < window:
            kept = "" if (stride, max_frames) == (1, None) else f" (stride {stride}, at most {max_frames})"
            raise ValueError(f"{video}: {plural(len(clip.rgb), 'frame')}{kept}; the model needs at least {window}")
        K = None
        if intrinsics is not None:
            fx, fy, cx, cy = intrinsics
            K = torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float64)
            K = adjust_intrinsics(K, clip.affine)  # pixels of the upright input -> pixels of the read frames
        rec = pipeline.reconstruct(clip.rgb, K=K, num_steps=num_steps, seed=seed, progress=True)
        rec.metadata["source"] = str(video)
        model_affine = torch.tensor(rec.metadata["crop_affine"], dtype=torch.float64)
        rec.metadata["crop_affine"] = (model_affine @ clip.affine).tolist()  # input pixels -> model pixels
        rec.timestamps = clip.timestamps
        export_all(staging, rec, formats=formats)
    print(f"wrote {', '.join(formats)} to {output}; view with: sora3r view {output}/reconstruction.npz")
    return rec


def demo(output: Path, clip: int, model, num_steps: int | None, seed: int, device: str, overwrite: bool = False) -> dict:
    """Reconstruct a held-out synthetic test clip with the bundled model; score it against ground truth,
    `oracle` and `static`; write the reconstruction, the ground truth and a trajectory plot into ``output``."""
    from rich.console import Console
    from rich.table import Table

    from sora3r.data.synthetic import SyntheticConfig, render_clip, split_seed
    from sora3r.data.video import write_video
    from sora3r.eval.depth import depth_metrics
    from sora3r.eval.methods import METHODS
    from sora3r.eval.pose import pose_metrics
    from sora3r.export import export_all, write_npz
    from sora3r.pipeline import Sora3RPipeline
    from sora3r.viz.plots import plot_pose_alignment

    with atomic_output_dir(output, overwrite) as staging:
        pipeline = Sora3RPipeline.from_pretrained(model, device=device)
        num_frames, height, width = pipeline.clip_shape
        seq = render_clip(split_seed("test", clip), SyntheticConfig(num_frames=num_frames, height=height, width=width))
        gt = ground_truth_reconstruction(seq)

        results = {}
        reconstructions = {
            "sora3r": pipeline.reconstruct(seq.rgb, num_steps=num_steps, seed=seed, progress=True),
            "oracle": METHODS["oracle"]()(seq),
            "static": METHODS["static"]()(seq),
        }
        for name, rec in reconstructions.items():
            scores = pose_metrics(rec.c2w, gt.c2w)
            scores.update(depth_metrics(rec.depth, seq.depth, seq.valid, align="scale"))
            results[name] = scores

        table = Table(title=f"{seq.name}: {num_frames} frames {height}x{width} (held-out synthetic test clip)")
        keys = ["abs_rel", "delta_1.25", "ate", "rpe_trans", "rpe_rot"]
        table.add_column("method")
        for key in keys:
            table.add_column(key, justify="right")
        for name, scores in results.items():
            table.add_row(name, *("undefined" if scores[key] is None else f"{scores[key]:.4f}" for key in keys))
        Console().print(table)

        reconstructions["sora3r"].timestamps = seq.timestamps
        export_all(staging, reconstructions["sora3r"])
        write_npz(staging / "ground_truth.npz", gt)
        write_video(staging / "input.mp4", seq.rgb, fps=10)
        plot_pose_alignment(staging / "trajectory.png", reconstructions["sora3r"].c2w, gt.c2w, "sim3", title=seq.name)
        (staging / "metrics.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {output}; view with: sora3r view {output}/reconstruction.npz")
    return results
