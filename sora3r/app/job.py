"""One reconstruction as the app runs it: video file -> `Reconstruction` -> every export plus what the page shows.

No Gradio here: `run_job` takes a ``report(fraction, text)`` callback for progress, and its errors are plain
exceptions whose text `user_message` turns into what the page says (the upload's name instead of its temp path).
The composition follows `sora3r reconstruct` (`sora3r.commands.Reconstruct.run`): frames resized to the model's grid
as they are decoded, the crop affine composed with the reader's, the video's timestamps on the trajectory.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sora3r.app.figures import write_confidence_figure, write_depth_video
from sora3r.data.video import load_video
from sora3r.export import EXPORT_FORMATS, export_all, write_glb
from sora3r.text import plural
from sora3r.viz.plots import plot_trajectories

MAX_SHOWN_POINTS = 400_000
"""The 3D view thins its cloud to about this many points (a browser renders that smoothly); downloads keep all."""


@dataclass(frozen=True)
class JobOptions:
    """What the page's controls set.

    Attributes:
        steps: sampling steps per window (``None``: the model's default).
        samples: samples drawn per window (``num_samples`` of `Sora3RPipeline.reconstruct`); above 1 the points are
            their mean and their spread gives the per-pixel confidence.
        stride: use every ``stride``-th frame of the video.
        max_frames: use at most this many frames after the stride (``None``: all).
        seed: seed of the sampling noise.
        overlap: frames consecutive windows of a long video share (1 .. the model's window - 1; ``None``: the
            pipeline's default, `sora3r.geometry.stitch.default_overlap`).
        min_confidence: points below this confidence are left out of the 3D view and the ply, glb and COLMAP exports
            (the npz keeps all); 0 keeps every valid point. Above 0 it needs ``samples > 1``.
    """

    steps: int | None = None
    samples: int = 1
    stride: int = 1
    max_frames: int | None = None
    seed: int = 0
    overlap: int | None = None
    min_confidence: float = 0.0


@dataclass
class JobResult:
    """Files of one run (all inside the run's folder) and a one-paragraph summary.

    Attributes:
        depth_video: mp4, input frames next to colourised depth.
        trajectory_plot: PNG of the camera centres (top-down and side views).
        confidence_figure: PNG of the confidence maps, or ``None`` when the reconstruction has no confidence.
        scene: GLB of the coloured points and camera frusta for the 3D view (thinned to `MAX_SHOWN_POINTS`).
        downloads: every export (`sora3r.export.EXPORT_FORMATS`), folders as zips (colmap.zip, depth.zip).
        summary: markdown, what was reconstructed and how long it took.
    """

    depth_video: Path
    trajectory_plot: Path
    confidence_figure: Path | None
    scene: Path
    downloads: list[Path] = field(default_factory=list)
    summary: str = ""


def user_message(error: BaseException, video: str | Path) -> str:
    """The text of ``error`` on one line, the upload's temporary path replaced by its file name."""
    video = Path(video)
    return " ".join(str(error).replace(str(video), video.name).split())


def _read_clip(pipeline, video: Path, options: JobOptions):
    """The video's frames at the model's grid (`load_video`), refused when too few for one window."""
    window, height, width = pipeline.clip_shape
    clip = load_video(video, max_frames=options.max_frames, stride=options.stride, size=(height, width))
    if len(clip.rgb) < window:
        raise ValueError(f"{video}: {len(clip.rgb)} frames with stride {options.stride}; the model needs at least "
                         f"{window}: lower the stride or use a longer video")
    return clip


def _frame_rate(timestamps: torch.Tensor) -> float:
    """Frames per second of the (strided) clip from its timestamps, kept within [1, 60] (10 if unknown)."""
    steps = np.diff(timestamps.double().numpy())
    if len(steps) == 0 or not np.median(steps) > 0:
        return 10.0
    return float(np.clip(1.0 / np.median(steps), 1.0, 60.0))


def _downloads(folder: Path, rec, min_confidence: float | None) -> dict[str, Path]:
    """Every export format under ``folder/exports`` (`export_all`); folders (COLMAP, the 16-bit depth PNGs) as zips,
    since a browser downloads files."""
    written = export_all(folder / "exports", rec, formats=EXPORT_FORMATS, min_confidence=min_confidence)
    for name, path in written.items():
        if path.is_dir():
            written[name] = Path(shutil.make_archive(str(folder / path.name), "zip", root_dir=path.parent,
                                                     base_dir=path.name))
    return written


def _exported(rec, min_confidence: float | None) -> torch.Tensor:
    """``bool (T, H, W)``: the pixels whose points the clouds hold (valid, and at least ``min_confidence``)."""
    kept = torch.ones(rec.points.shape[:3], dtype=torch.bool) if rec.valid is None else rec.valid.clone()
    if min_confidence is not None:
        kept &= rec.confidence >= min_confidence
    return kept


def _shown_scene(folder: Path, rec, exported_glb: Path, min_confidence: float | None = None) -> Path:
    """The GLB for the 3D view: the exported one, or a copy on a coarser pixel grid above `MAX_SHOWN_POINTS`."""
    stride = math.ceil(math.sqrt(int(_exported(rec, min_confidence).sum()) / MAX_SHOWN_POINTS))
    if stride <= 1:
        return exported_glb
    return write_glb(folder / "shown_scene.glb", rec, stride=stride, min_confidence=min_confidence)


def _summary(rec, options: JobOptions, seconds: float) -> str:
    frames, height, width = rec.points.shape[:3]
    fx = float(rec.K[0, 0])
    fov = math.degrees(2 * math.atan(width / (2 * fx)))
    windows = len(rec.metadata.get("windows", [0]))
    steps = rec.metadata.get("sampler_steps", options.steps)
    confidence = "no confidence (one sample)" if rec.confidence is None else \
        f"mean confidence {float(rec.confidence.mean()):.2f}"
    if options.min_confidence > 0:
        kept = int(_exported(rec, options.min_confidence).sum()) / int(_exported(rec, None).sum())
        confidence += f", {kept:.0%} of the points at or above {options.min_confidence:g}"
    return (f"**{plural(frames, 'frame')}** (stride {options.stride}) in {plural(windows, 'window')} at "
            f"{height}x{width} · estimated focal {fx:.1f} px (horizontal field of view {fov:.0f}°) · "
            f"{plural(steps, 'sampling step')}, {plural(options.samples, 'sample')}, {confidence} · {seconds:.1f} s. "
            f"Scale is relative (the model's output is defined up to one global scale).")


def run_job(pipeline, video: str | Path, options: JobOptions, folder: str | Path,
            report: Callable[[float, str], None] = lambda fraction, text: None) -> JobResult:
    """Reconstruct ``video`` (a file or a folder of frames) with ``pipeline`` and write everything into ``folder``.

    Raises:
        FileNotFoundError, ValueError: the video is missing, unreadable or too short (one line naming the file);
            ``min_confidence > 0`` with one sample; whatever `Sora3RPipeline.reconstruct` raises (e.g. an overlap
            not below the model's window).
    """
    video, folder, started = Path(video), Path(folder), time.perf_counter()
    if options.min_confidence > 0 and options.samples < 2:
        raise ValueError(f"min confidence {options.min_confidence:g} needs 2 or more samples (the confidence comes "
                         f"from their spread)")
    min_confidence = options.min_confidence or None
    report(0.0, "reading the video")
    clip = _read_clip(pipeline, video, options)
    report(0.05, "sampling pointmaps")
    rec = pipeline.reconstruct(clip.rgb, num_steps=options.steps, seed=options.seed, progress=True,
                               num_samples=options.samples, overlap=options.overlap)
    clip.describe(rec, video.name)  # timestamps, input size, input pixels -> model pixels
    report(0.85, "writing the exports")
    downloads = _downloads(folder, rec, min_confidence)
    report(0.95, "drawing the figures")
    confidence = None
    if rec.confidence is not None:
        confidence = write_confidence_figure(folder / "confidence.png", rec.confidence)
    fps = _frame_rate(clip.timestamps)
    return JobResult(
        depth_video=write_depth_video(folder / "depth.mp4", rec.rgb, rec.depth, rec.valid, fps),
        trajectory_plot=plot_trajectories(folder / "trajectory.png", rec.c2w, title=f"camera path of {video.name}"),
        confidence_figure=confidence,
        scene=_shown_scene(folder, rec, downloads["glb"], min_confidence),
        downloads=list(downloads.values()),
        summary=_summary(rec, options, time.perf_counter() - started),
    )
