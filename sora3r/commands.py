"""The `sora3r` commands other than `train`: each is a dataclass of its options and a ``run()`` that does the job.

`sora3r.cli` makes the command line from the fields (a field's comment is its help, ``Literal`` choices come from the
library's registries); ``__post_init__`` checks every value (`sora3r.options`), so a bad one is refused before any
work. Each job writes into a fresh temporary folder beside its output folder and renames it into place at the end, so
an interrupted or failed run leaves nothing half-written. An existing non-empty output folder is replaced only with
``--overwrite``; the clash is reported before any work starts.
"""

from __future__ import annotations

import inspect
import json
import time
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import torch
import tyro
from annotated_types import Interval, MinLen

from sora3r.data.datasets import DATASETS, dataset_reader
from sora3r.data.synthetic import SPLIT_SEEDS
from sora3r.eval.methods import METHODS
from sora3r.export import EXPORT_FORMATS
from sora3r.fs import atomic_output_dir
from sora3r.geometry.align import DEPTH_ALIGN_MODES
from sora3r.options import Count, Seed, check_device, check_fields, invalid
from sora3r.types import Reconstruction

Output = Annotated[Path, tyro.conf.arg(aliases=("-o",))]
ExportFormat = Literal[EXPORT_FORMATS]
DEMO_CLIPS = len(SPLIT_SEEDS["test"])


def ground_truth_reconstruction(seq) -> Reconstruction:
    """A `Reconstruction` holding a sequence's ground truth (for export and viewing next to predictions)."""
    from sora3r.geometry import to_first_frame

    points, c2w = to_first_frame(seq.points, seq.c2w)
    return Reconstruction(points=points, depth=seq.depth, c2w=c2w, K=seq.K, rgb=seq.rgb, valid=seq.valid,
                          timestamps=seq.timestamps,
                          metadata={"method": "ground truth", "source": seq.name, "scale": "metric"})


@dataclass(kw_only=True)
class ModelOptions:
    """Options of the commands that run the model."""

    model: Path | None = None  # model folder (unset: the bundled model shipped with the package)
    steps: Count | None = None  # sampling steps (unset: the model's default)
    seed: Seed = 0  # seed of the sampling noise
    samples: Count = 1  # samples per window (more than 1: their mean, and a per-pixel confidence from their spread)
    overlap: Count | None = None  # frames consecutive windows of a long video share (unset: 2/3 of the model's window)
    device: str = "cpu"  # torch device: cpu, cuda, cuda:1, ...

    def __post_init__(self):
        check_fields(self)
        check_device(self.device)
        self.check_inputs()
        if self.model is None or self.model.is_dir():  # anything else: a Hub id, or an error when the model loads
            from sora3r.pipeline import model_window

            window = model_window(self.model)
            if self.overlap is not None and not self.overlap < window:
                raise invalid("overlap", self.overlap, f"must be less than the model's window of {window} frames")

    def check_inputs(self) -> None:
        """The command's own inputs (files, dataset options), checked after the values and before the model, whose
        checks import the model code (seconds), so that a mistyped path is reported at once."""


@dataclass(kw_only=True)
class Synth:
    """Render synthetic 4D clips with exact ground truth: OUTPUT/<name>/rgb.mp4 and ground_truth.npz."""

    output: Output  # folder for the clips
    overwrite: bool = False  # replace the output folder if it is an earlier sora3r output
    split: Literal[tuple(SPLIT_SEEDS)] = "test"  # which disjoint seed range to draw scenes from
    num: Count = 4  # number of clips
    frames: Count = 17  # frames per clip
    height: Count = 128  # frame height in pixels
    width: Count = 128  # frame width in pixels

    def __post_init__(self):
        check_fields(self)
        if self.num > len(SPLIT_SEEDS[self.split]):
            raise invalid("num", self.num, f"the {self.split} split has {len(SPLIT_SEEDS[self.split])} scenes")

    def run(self) -> int:
        from tqdm import tqdm

        from sora3r.data.synthetic import SyntheticConfig, render_clip, split_seed
        from sora3r.data.video import write_video
        from sora3r.export import write_npz
        from sora3r.text import plural

        config = SyntheticConfig(num_frames=self.frames, height=self.height, width=self.width)
        with atomic_output_dir(self.output, self.overwrite, what="sora3r synth") as staging:
            for index in tqdm(range(self.num), desc="rendering"):
                seq = render_clip(split_seed(self.split, index), config)
                folder = staging / seq.name
                write_video(folder / "rgb.mp4", seq.rgb, fps=10)
                write_npz(folder / "ground_truth.npz", ground_truth_reconstruction(seq))
        print(f"wrote {plural(self.num, 'clip')} to {self.output}")
        return 0


@dataclass(kw_only=True)
class Reconstruct(ModelOptions):
    """Video file or folder of frames -> pointmaps, cameras, intrinsics and depth, in the chosen formats."""

    video: tyro.conf.Positional[Path]  # video file (mp4, ...) or folder of images
    output: Output  # folder for the exported reconstruction
    overwrite: bool = False  # replace the output folder if it is an earlier sora3r output
    formats: Annotated[tuple[ExportFormat, ...], MinLen(1)] = EXPORT_FORMATS
    """what to write: npz = reconstruction.npz (everything, for `sora3r view`), ply = points.ply (with a confidence
    property when --samples > 1), glb = scene.glb (points + camera frustums), tum = trajectory_tum.txt, colmap =
    colmap/ (text model + images), depth_video = depth.mp4 (colourised, one near/far range for the whole video),
    depth_sheet = depth_sheet.png (6 input frames spread over the video above their depth, same colours),
    depth_png = depth/*.png (16-bit; depth = value * depth_per_unit of depth/depth_scale.json), intrinsics =
    intrinsics.txt (fx fy cx cy and K, in pixels of the model's grid and of the input video)"""
    stride: Count = 1  # use every n-th frame of the video
    max_frames: Count | None = None  # use at most this many frames (after --stride; unset: all)
    intrinsics: Annotated[tuple[float, float, float, float] | None, tyro.conf.arg(metavar="FX FY CX CY")] = None
    """known intrinsics in pixels of the input video, its principal point inside the frames (unset: estimated)"""

    def __post_init__(self):
        super().__post_init__()
        self.formats = tuple(dict.fromkeys(self.formats))  # each once, in the order given

    def check_inputs(self) -> None:
        from sora3r.data.video import check_video_path

        check_video_path(self.video)
        if self.intrinsics is not None and not min(self.intrinsics[:2]) > 0:
            raise invalid("intrinsics", self.intrinsics, "the focal lengths FX and FY must be positive (pixels)")

    def run(self) -> int:
        from sora3r.data.video import adjust_intrinsics, load_video
        from sora3r.export import export_all
        from sora3r.geometry.projection import intrinsics_matrix
        from sora3r.pipeline import Sora3RPipeline
        from sora3r.text import plural

        started = time.perf_counter()
        with atomic_output_dir(self.output, self.overwrite, inputs=(self.video, self.model),
                               what="sora3r reconstruct") as staging:
            pipeline = Sora3RPipeline.from_pretrained(self.model, device=self.device)
            window, height, width = pipeline.clip_shape
            # Each frame is resized to the model's grid as it is decoded: memory does not grow with the resolution.
            clip = load_video(self.video, max_frames=self.max_frames, stride=self.stride, size=(height, width))
            if len(clip.rgb) < window:
                options = [f"--{name} {value}" for name, value, unset in
                           (("stride", self.stride, 1), ("max-frames", self.max_frames, None)) if value != unset]
                kept = f" with {' '.join(options)}" if options else ""
                raise ValueError(f"{self.video}: {plural(len(clip.rgb), 'frame')}{kept}; the model needs at least "
                                 f"{window}")
            K = None
            if self.intrinsics is not None:
                in_h, in_w = clip.source_hw
                if not (0 <= self.intrinsics[2] <= in_w and 0 <= self.intrinsics[3] <= in_h):
                    raise invalid("intrinsics", self.intrinsics, f"the principal point CX CY must lie in the "
                                  f"{in_w}x{in_h} input frames (intrinsics of another resolution?)")
                K = intrinsics_matrix(*self.intrinsics, dtype=torch.float64)
                K = adjust_intrinsics(K, clip.affine)  # pixels of the upright input -> pixels of the read frames
            rec = pipeline.reconstruct(clip.rgb, K=K, num_steps=self.steps, seed=self.seed, progress=True,
                                       num_samples=self.samples, overlap=self.overlap)
            clip.describe(rec, self.video)  # timestamps, input size, input pixels -> model pixels
            export_all(staging, rec, formats=self.formats)
        print(_reconstruct_summary(rec, window, self.stride, time.perf_counter() - started))
        view = f"; view with: sora3r view {self.output}/reconstruction.npz" if "npz" in self.formats else ""
        print(f"wrote {', '.join(self.formats)} to {self.output}{view}")
        return 0


def _reconstruct_summary(rec: Reconstruction, window: int, stride: int, seconds: float) -> str:
    """What `sora3r reconstruct` did, in a few lines: frames, windows, model grid, focal and field of view (on the
    model's grid and of the input), samples, time."""
    from sora3r.geometry.projection import field_of_view
    from sora3r.text import plural

    frames, height, width = rec.points.shape[:3]
    meta = rec.metadata
    fov_x, fov_y = field_of_view(rec.K, height, width)
    in_h, in_w = meta["input_hw"]
    input_fx = float(rec.K[0, 0]) / meta["crop_affine"][0][0]  # the resize's scale: model pixels per input pixel
    starts, shared = meta["windows"], ""
    if len(starts) > 1:
        shared = f", consecutive windows share {meta['window_overlap']}"
        last_shared = starts[-2] + window - starts[-1]
        if last_shared != meta["window_overlap"]:
            shared += f" (the last two {last_shared}, so that the last window ends on the last frame)"
    return "\n".join([
        f"frames: {frames}{f' (stride {stride})' if stride > 1 else ''} at the model's {width}x{height} (input "
        f"{in_w}x{in_h})",
        f"windows: {plural(len(meta['windows']), 'window')} of {window} frames{shared}",
        f"focal: {float(rec.K[0, 0]):.1f} px on the model's grid = {input_fx:.1f} px of the input; field of view "
        f"{fov_x:.1f} deg horizontal x {fov_y:.1f} deg vertical (of the centre crop the model sees)",
        f"samples: {meta['num_samples']} per window, {plural(meta['sampler_steps'], 'step')}, seed {meta['seed']}"
        f"{'' if rec.confidence is None else f', mean confidence {float(rec.confidence.mean()):.2f}'}",
        f"time: {seconds:.1f} s (model load to outputs written)",
    ])


@dataclass(kw_only=True)
class View:
    """Open a reconstruction (.npz) in the viser 4D viewer (timestep slider, play, point size, camera frusta)."""

    reconstruction: tyro.conf.Positional[Path]  # reconstruction.npz written by reconstruct or demo
    port: Annotated[int, Interval(ge=1, le=65535)] = 8080  # port of the viewer's web page
    host: Annotated[str, MinLen(1)] = "127.0.0.1"  # address to serve on (127.0.0.1: this machine only; 0.0.0.0: all)
    stride: Count = 2  # show every n-th pixel of each row and column

    def __post_init__(self):
        check_fields(self)

    def run(self) -> int:
        from sora3r.export import read_npz

        rec = read_npz(self.reconstruction)  # before importing the viewer (seconds): a bad file is reported at once
        from sora3r.viz.viewer import serve

        serve(rec, port=self.port, host=self.host, stride=self.stride)
        return 0


@dataclass(kw_only=True)
class App(ModelOptions):
    """Serve the web app (Gradio): upload a video or use the sample clip, see the depth video, camera path, confidence
    and 3D scene, download every export. The model options set the page's controls when it opens. Needs the app
    extra: pip install 'sora3r[app]'."""

    host: Annotated[str, MinLen(1)] = "127.0.0.1"  # address to serve on (127.0.0.1: this machine only; 0.0.0.0: all)
    port: Annotated[int, Interval(ge=1, le=65535)] = 7860  # port of the web page
    share: bool = False  # also serve through a temporary public link on Gradio's share servers

    def run(self) -> int:
        import importlib.util

        if importlib.util.find_spec("gradio") is None:
            raise RuntimeError("sora3r app needs the app extra: pip install 'sora3r[app]'")
        from sora3r.pipeline import Sora3RPipeline

        pipeline = Sora3RPipeline.from_pretrained(self.model, device=self.device)
        from sora3r.app import JobOptions, serve  # Gradio takes seconds to import: after the model is known good

        start = JobOptions(steps=self.steps, samples=self.samples, seed=self.seed, overlap=self.overlap)
        serve(pipeline, host=self.host, port=self.port, share=self.share, start=start)
        return 0


# The value kinds a dataset reader's keyword can take from ``--option KEY=VALUE``, and how a message names them.
_READER_VALUE_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "text",
                       list[str]: "a comma-separated list"}


def _reader_value(dataset: str, key: str, text: str, hint) -> object:
    """``text`` as the dataset reader's keyword ``key`` (annotated ``hint``) takes it."""
    members = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    kinds = [kind for kind in members if kind in _READER_VALUE_KINDS]
    for kind in kinds:
        if kind is bool and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                continue
        if kind is str:
            return text
        if kind == list[str]:
            return text.split(",")
    if not kinds:
        raise invalid("option", f"{key}={text}", f"{key} of the {dataset} reader cannot be set from the command line")
    expected = " or ".join(_READER_VALUE_KINDS[kind] for kind in kinds)
    raise invalid("option", f"{key}={text}", f"the {dataset} reader takes {expected} for {key}")


@dataclass(kw_only=True)
class Eval(ModelOptions):
    """Run a method over a dataset under the MonST3R protocol: per-sequence and summary tables, trajectory plots."""

    method: Literal[tuple(METHODS)]
    """sora3r (the model) | oracle (ground-truth points through the same camera recovery) | static (identity poses,
    constant depth) | blind (the model on a uniform grey clip: what it predicts without reading the video)"""
    dataset: Literal[tuple(DATASETS)]  # the dataset's reader and protocol (docs/datasets.md)
    root: Path | None = None  # dataset folder (the synthetic set needs none)
    output: Output  # folder for summary.json, per_sequence.json, results.md and plots/
    overwrite: bool = False  # replace the output folder if it is an earlier sora3r output
    max_sequences: Count | None = None  # stop after this many sequences (unset: all)
    depth_align: Literal[DEPTH_ALIGN_MODES] | None = None
    """per-sequence depth alignment of the prediction to ground truth (unset: scale&shift, the protocol's choice for
    relative depth)"""
    option: tyro.conf.UseAppendAction[tuple[str, ...]] = ()
    """dataset option KEY=VALUE, e.g. num=8 or sequences=all (the dataset reader's keywords)"""

    def check_inputs(self) -> None:
        root = inspect.signature(dataset_reader(self.dataset)).parameters["root"]
        if self.root is None and root.default is inspect.Parameter.empty:
            raise ValueError(f"--root: the {self.dataset} dataset needs its folder (docs/datasets.md)")
        if self.root is not None and not self.root.is_dir():
            raise FileNotFoundError(f"--root {self.root}: no such folder")
        self.dataset_options()

    def dataset_options(self) -> dict:
        """``--option`` pairs as keywords of the dataset reader, typed as it takes them."""
        reader = dataset_reader(self.dataset)
        hints = typing.get_type_hints(reader)
        accepted = [name for name in inspect.signature(reader).parameters if name != "root"]
        options = {}
        for pair in self.option:
            key, sep, text = pair.partition("=")
            if not sep or key not in accepted:
                raise invalid("option", pair, f"the {self.dataset} reader takes KEY=VALUE with KEY one of "
                                              f"{', '.join(accepted) or '(none)'}")
            options[key] = _reader_value(self.dataset, key, text, hints.get(key, str))
        return options

    def run(self) -> int:
        from sora3r.eval.runner import run_eval
        from sora3r.text import plural

        method_options = {"model": self.model, "num_steps": self.steps, "seed": self.seed, "device": self.device,
                          "num_samples": self.samples, "overlap": self.overlap}
        summary = run_eval(self.method, self.dataset, self.root, self.output, max_sequences=self.max_sequences,
                           method_options=method_options, dataset_options=self.dataset_options(),
                           depth_align=self.depth_align, overwrite=self.overwrite)
        print(f"wrote {self.output}/results.md ({plural(summary['num_sequences'], 'sequence')}, "
              f"{summary['num_failed']} failed)")
        return 0 if summary["num_failed"] == 0 else 1


@dataclass(kw_only=True)
class Demo(ModelOptions):
    """Reconstruct a held-out synthetic clip with the bundled model and score it next to `oracle` and `static`."""

    output: Output = Path("sora3r_demo")
    """folder for the reconstruction (every format), ground truth, input video, trajectory and depth pictures,
    metrics.json"""
    overwrite: bool = False  # replace the output folder if it is an earlier sora3r output
    clip: Annotated[int, Interval(ge=0, lt=DEMO_CLIPS)] = 10
    """index of the held-out synthetic test clip (10: a typical clip for the bundled model, Abs Rel 0.073 against its
    median 0.074 over clips 0-23; clips 6 and 0 are its worst)"""

    def run(self) -> int:
        from sora3r.data.synthetic import SyntheticConfig, render_clip, split_seed
        from sora3r.data.video import write_video
        from sora3r.export import export_all, write_npz
        from sora3r.geometry.align import align_depth
        from sora3r.pipeline import Sora3RPipeline
        from sora3r.viz.depth import plot_depth_comparison
        from sora3r.viz.plots import plot_pose_alignment

        with atomic_output_dir(self.output, self.overwrite, inputs=(self.model,), what="sora3r demo") as staging:
            pipeline = Sora3RPipeline.from_pretrained(self.model, device=self.device)
            num_frames, height, width = pipeline.clip_shape
            config = SyntheticConfig(num_frames=num_frames, height=height, width=width)
            seq = render_clip(split_seed("test", self.clip), config)
            gt = ground_truth_reconstruction(seq)
            reconstructions = {
                "sora3r": pipeline.reconstruct(seq.rgb, num_steps=self.steps, seed=self.seed, progress=True,
                                               num_samples=self.samples, overlap=self.overlap),
                "oracle": METHODS["oracle"]()(seq),
                "static": METHODS["static"]()(seq),
            }
            results = _score(reconstructions, seq, gt)
            _print_scores(results, f"{seq.name}: {num_frames} frames {height}x{width} (held-out synthetic test clip)")
            reconstructions["sora3r"].timestamps = seq.timestamps
            export_all(staging, reconstructions["sora3r"])
            write_npz(staging / "ground_truth.npz", gt)
            write_video(staging / "input.mp4", seq.rgb, fps=10)
            plot_pose_alignment(staging / "trajectory.png", reconstructions["sora3r"].c2w, gt.c2w, "sim3",
                                title=seq.name)
            aligned, _ = align_depth(reconstructions["sora3r"].depth, seq.depth, seq.valid, "scale")
            plot_depth_comparison(staging / "depth.png", seq.rgb, aligned, seq.depth, seq.valid,
                                  title=f"{seq.name}: prediction scaled to the ground truth (one scale per clip)")
            (staging / "metrics.json").write_text(json.dumps(results, indent=2))
        print(f"wrote {self.output}; view with: sora3r view {self.output}/reconstruction.npz")
        return 0


def _score(reconstructions: dict[str, Reconstruction], seq, gt: Reconstruction) -> dict[str, dict]:
    """Pose and depth scores of each reconstruction against the sequence's ground truth (depth aligned by scale)."""
    from sora3r.eval.depth import depth_metrics
    from sora3r.eval.pose import pose_metrics

    results = {}
    for name, rec in reconstructions.items():
        results[name] = pose_metrics(rec.c2w, gt.c2w)
        results[name].update(depth_metrics(rec.depth, seq.depth, seq.valid, align="scale"))
    return results


# The demo table's columns: score key, header, whether lower is better.
_SCORE_COLUMNS = (("abs_rel", "Abs Rel", True), ("delta_1.25", "delta<1.25", False), ("ate", "ATE", True),
                  ("rpe_trans", "RPE-t", True), ("rpe_rot", "RPE-r (deg)", True))


def _print_scores(results: dict[str, dict], title: str) -> None:
    """The demo's table: one row per method, each column headed by its metric and which direction is better."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, caption="depth aligned to the ground truth by one scale; poses by Sim(3) (evo)")
    table.add_column("method")
    for _, header, lower in _SCORE_COLUMNS:
        table.add_column(f"{header}\n{'lower' if lower else 'higher'} is better", justify="right")
    for name, scores in results.items():
        table.add_row(name, *("undefined" if scores[key] is None else f"{scores[key]:.4f}"
                              for key, _, _ in _SCORE_COLUMNS))
    Console().print(table)
